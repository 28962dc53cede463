/* nettcp: the guest's end of bench/net's TCP transfers, with 256 KiB reads and writes, so that
 * what is timed is the network path rather than busybox nc's 4 KiB copies through pipes (which
 * held a guest under emulation to a few MiB/s whatever carried its frames).
 *   nettcp zero PORT        serve zeros to each connection on PORT, one after another, until
 *                           the peer closes it
 *   nettcp count PORT WORDS read each connection on PORT to its end, then print "shoji-guest:
 *                           WORDS N" (N: the bytes it carried) and close it
 *   nettcp get ADDR PORT N  read N bytes from ADDR:PORT; print "N SECONDS"
 *   nettcp put ADDR PORT N  write N zero bytes to ADDR:PORT, end the stream and wait for the
 *                           peer to close it (so all was received); print "N SECONDS"
 * A count short of N (the connection ended early) is printed as it is. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static char buf[CHUNK];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int listener(const char *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 4) < 0) {
		perror("nettcp: listen");
		exit(1);
	}
	return fd;
}

static int connected(const char *addr, const char *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("nettcp: connect");
		exit(1);
	}
	return fd;
}

/* Moves up to limit bytes between fd and buf (reading where in, else writing buf's zeros)
 * until the stream ends or fails; the bytes moved. */
static long long move(int fd, long long limit, bool in)
{
	long long n = 0;
	for (ssize_t r = 1; n < limit && r > 0; n += r > 0 ? r : 0) {
		size_t len = limit - n < CHUNK ? (size_t)(limit - n) : CHUNK;
		r = in ? read(fd, buf, len) : write(fd, buf, len);
	}
	return n;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a peer that closes ends a write with EPIPE, not this process */
	if (argc == 3 && !strcmp(argv[1], "zero")) {
		for (int l = listener(argv[2]);;) {
			int c = accept(l, NULL, NULL);
			if (c >= 0)
				move(c, 1ll << 62, false), close(c);
		}
	}
	if (argc == 4 && !strcmp(argv[1], "count")) {
		for (int l = listener(argv[2]);;) {
			int c = accept(l, NULL, NULL);
			if (c < 0)
				continue;
			printf("shoji-guest: %s %lld\n", argv[3], move(c, 1ll << 62, true));
			fflush(stdout);
			close(c);
		}
	}
	if (argc == 5 && (!strcmp(argv[1], "get") || !strcmp(argv[1], "put"))) {
		int fd = connected(argv[2], argv[3]);
		long long want = atoll(argv[4]), n;
		double t0 = now();
		if (argv[1][0] == 'g') {
			n = move(fd, want, true);
		} else {
			n = move(fd, want, false);
			shutdown(fd, SHUT_WR);
			move(fd, 1ll << 62, true); /* the peer closes once it has counted all */
		}
		printf("%lld %.3f\n", n, now() - t0);
		return n == want ? 0 : 1;
	}
	fprintf(stderr, "usage: nettcp zero PORT | count PORT WORDS | get|put ADDR PORT BYTES\n");
	return 2;
}

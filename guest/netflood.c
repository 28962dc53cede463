/* netflood: the guest's UDP flooder (busybox's nc speaks no UDP): datagrams of 1,400 bytes to
 * ADDR:PORT, one after another as fast as the guest's stack takes them, until it is killed; every
 * 5 s "shoji-guest: netflood sent N datagrams (M MiB), R refused" (R: sends the stack turned
 * away, its queue to the NIC full).
 *   netflood ADDR PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define DATAGRAM 1400

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = {.sin_family = AF_INET};
	if (argc != 3 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 ||
	    !(to.sin_port = htons((uint16_t)atoi(argv[2])))) {
		fprintf(stderr, "usage: netflood ADDR PORT\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		printf("shoji-guest: netflood FAILED: socket: %s\n", strerror(errno));
		return 1;
	}
	static char buf[DATAGRAM];
	memset(buf, 0x5a, sizeof(buf));
	unsigned long long sent = 0, refused = 0;
	double next = now() + 5;
	for (;;) {
		if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)) >= 0)
			sent++;
		else if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED)
			refused++; /* ECONNREFUSED: the peer's port-unreachable answer to an earlier one */
		else {
			printf("shoji-guest: netflood FAILED: sendto: %s\n", strerror(errno));
			return 1;
		}
		if ((sent + refused) % 256 == 0 && now() >= next) {
			printf("shoji-guest: netflood sent %llu datagrams (%llu MiB), %llu refused\n", sent,
			       sent * DATAGRAM >> 20, refused);
			fflush(stdout);
			next += 5;
		}
	}
}

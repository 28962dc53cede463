/* vsock: a small AF_VSOCK client and server for the test guest, which busybox lacks.
 *   vsock connect CID PORT   connect, send stdin, then print what the peer sends until it closes
 *   vsock listen PORT        accept one connection, then the same
 * Built statically into the guest's initramfs by guest/build.sh. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Copies stdin to the socket (then half-closes it) and the socket to stdout, until both end. */
static int relay(int s)
{
	static char buf[65536];
	struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = s, .events = POLLIN}};
	int open_in = 1;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (open_in && (p[0].revents & (POLLIN | POLLHUP))) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				open_in = 0;
				p[0].fd = -1;
				shutdown(s, SHUT_WR);
			} else if (write_all(s, buf, (size_t)n) < 0) {
				return 1;
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(s, buf, sizeof(buf));
			if (n <= 0)
				return n < 0;
			if (write_all(1, buf, (size_t)n) < 0)
				return 1;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_vm addr = {.svm_family = AF_VSOCK};
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0) {
		perror("vsock: socket");
		return 1;
	}
	if (argc == 4 && !strcmp(argv[1], "connect")) {
		addr.svm_cid = (unsigned)strtoul(argv[2], NULL, 10);
		addr.svm_port = (unsigned)strtoul(argv[3], NULL, 10);
		if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			perror("vsock: connect");
			return 1;
		}
		return relay(s);
	}
	if (argc == 3 && !strcmp(argv[1], "listen")) {
		addr.svm_cid = VMADDR_CID_ANY;
		addr.svm_port = (unsigned)strtoul(argv[2], NULL, 10);
		if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s, 1) < 0) {
			perror("vsock: listen");
			return 1;
		}
		int c = accept(s, NULL, NULL);
		if (c < 0) {
			perror("vsock: accept");
			return 1;
		}
		return relay(c);
	}
	fprintf(stderr, "usage: vsock connect CID PORT | vsock listen PORT\n");
	return 2;
}

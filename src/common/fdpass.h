/* fdpass: the one way shoji passes file descriptors over Unix sockets (SCM_RIGHTS), for the
 * shojid API, the monitors' control sockets and the display channel alike. A receiver states
 * how many descriptors it expects; every other descriptor that arrives is closed at once, and
 * control data that was cut short (MSG_CTRUNC) or is anything but SCM_RIGHTS fails the receive
 * after closing whatever did arrive. So no peer, however hostile, leaves a descriptor behind
 * in the receiver. Received descriptors are close-on-exec. Any thread; no shared state. */
#ifndef SHOJI_COMMON_FDPASS_H
#define SHOJI_COMMON_FDPASS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The most descriptors one message may carry, sent or expected. */
#define FDPASS_MAX 4

struct fdpass_msg {
	size_t len;          /* bytes read; 0 at end of stream (stream sockets) */
	int fds[FDPASS_MAX]; /* the descriptors kept, in the order sent */
	unsigned nfds;
	unsigned dropped; /* descriptors beyond the expected number, closed */
};

enum fdpass_result {
	FDPASS_OK,    /* *m holds the message (len 0: end of stream) */
	FDPASS_AGAIN, /* nothing to read now (EAGAIN, EINTR) */
	FDPASS_ERROR, /* errno says why; EPROTO: control data truncated or not SCM_RIGHTS
		       * (every descriptor that came was closed) */
};

/* One recvmsg into buf (flags: e.g. MSG_DONTWAIT), keeping at most max_fds (<= FDPASS_MAX)
 * descriptors. MSG_TRUNC of the bytes is the caller's to judge (m->len is what fit). */
enum fdpass_result fdpass_recv(int sock, void *buf, size_t size, unsigned max_fds, int flags, struct fdpass_msg *m);
/* One sendmsg of the iovecs with nfds (<= FDPASS_MAX) descriptors attached (none when 0);
 * MSG_NOSIGNAL is added to flags. Returns what sendmsg returns. */
ssize_t fdpass_sendv(int sock, const struct iovec *iov, int iovcnt, const int *fds, unsigned nfds, int flags);
/* The same for one buffer and at most one descriptor (fd < 0: none). */
ssize_t fdpass_send(int sock, const void *buf, size_t len, int fd, int flags);
/* Closes the descriptors of m that the caller did not take (set to -1 to take one). */
void fdpass_close(struct fdpass_msg *m);

#endif

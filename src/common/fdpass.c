/* fdpass: see fdpass.h. The control buffer has room for more descriptors than anyone may send
 * (FDPASS_ROOM), so that surplus ones arrive whole and are closed here; descriptors the kernel
 * could not fit at all (MSG_CTRUNC) are never installed in this process, and the receive fails. */
#include "fdpass.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define FDPASS_ROOM 64

/* Walks the control messages: keeps up to max_fds descriptors in m, closes the rest. Returns
 * false when a control message is not SCM_RIGHTS (its descriptors, if any, closed too). */
static bool take_fds(struct msghdr *mh, unsigned max_fds, struct fdpass_msg *m)
{
	bool ok = true;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			ok = false; /* SCM_CREDENTIALS and the like: none is asked for */
			continue;
		}
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int fds[FDPASS_ROOM];
		if (k > FDPASS_ROOM)
			k = FDPASS_ROOM; /* cannot happen: the buffer holds no more */
		memcpy(fds, CMSG_DATA(c), k * sizeof(int));
		for (size_t i = 0; i < k; i++) {
			if (m->nfds < max_fds) {
				m->fds[m->nfds++] = fds[i];
			} else {
				close(fds[i]);
				m->dropped++;
			}
		}
	}
	return ok;
}

enum fdpass_result fdpass_recv(int sock, void *buf, size_t size, unsigned max_fds, int flags, struct fdpass_msg *m)
{
	union {
		char b[CMSG_SPACE(FDPASS_ROOM * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	memset(m, 0, sizeof(*m));
	if (max_fds > FDPASS_MAX)
		max_fds = FDPASS_MAX;
	ssize_t n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? FDPASS_AGAIN : FDPASS_ERROR;
	bool ok = take_fds(&mh, max_fds, m);
	m->len = (size_t)n;
	if (!ok || (mh.msg_flags & MSG_CTRUNC)) {
		fdpass_close(m);
		errno = EPROTO;
		return FDPASS_ERROR;
	}
	return FDPASS_OK;
}

ssize_t fdpass_sendv(int sock, const struct iovec *iov, int iovcnt, const int *fds, unsigned nfds, int flags)
{
	union {
		char b[CMSG_SPACE(FDPASS_MAX * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	if (nfds > FDPASS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (nfds) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	ssize_t n;
	do
		n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

ssize_t fdpass_send(int sock, const void *buf, size_t len, int fd, int flags)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	return fdpass_sendv(sock, &iov, 1, &fd, fd >= 0 ? 1 : 0, flags);
}

void fdpass_close(struct fdpass_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	}
	m->nfds = 0;
}

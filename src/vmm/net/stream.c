/* net/stream: length-prefixed frames on a non-blocking byte stream (see stream.h). A frame to
 * send is copied once, with its length, into one buffer and sent with one send() (no SIGPIPE
 * from a closed stream): a stream that takes part of it keeps the rest here, so frames never
 * interleave. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int net_stream_init(struct net_stream *s, size_t max, struct err *e)
{
	*s = (struct net_stream){.max = max};
	s->in = malloc(NET_STREAM_LEN_BYTES + max);
	s->out = malloc(NET_STREAM_LEN_BYTES + max);
	if (!s->in || !s->out) {
		net_stream_destroy(s);
		return err_set(e, "out of memory for a stream's frames");
	}
	return 0;
}

void net_stream_destroy(struct net_stream *s)
{
	free(s->in);
	free(s->out);
	s->in = s->out = NULL;
}

void net_stream_reset(struct net_stream *s)
{
	s->in_off = s->in_len = s->out_off = s->out_len = 0;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A whole frame at the front of what was read: taken into buf. */
static enum net_stream_result take(struct net_stream *s, uint8_t *buf, uint32_t *len, bool *got)
{
	*got = false;
	if (s->in_len < NET_STREAM_LEN_BYTES)
		return NET_STREAM_AGAIN;
	uint32_t n = get_be32(s->in + s->in_off);
	if (n > s->max) {
		errno = EPROTO;
		return NET_STREAM_BROKEN;
	}
	if (s->in_len < NET_STREAM_LEN_BYTES + n)
		return NET_STREAM_AGAIN;
	memcpy(buf, s->in + s->in_off + NET_STREAM_LEN_BYTES, n);
	s->in_off += NET_STREAM_LEN_BYTES + n;
	s->in_len -= NET_STREAM_LEN_BYTES + n;
	if (s->in_len == 0)
		s->in_off = 0;
	*len = n;
	*got = true;
	return NET_STREAM_FRAME;
}

enum net_stream_result net_stream_read(struct net_stream *s, int fd, uint8_t *buf, uint32_t *len)
{
	for (;;) {
		bool got;
		enum net_stream_result r = take(s, buf, len, &got);
		if (got || r == NET_STREAM_BROKEN)
			return r;
		if (s->in_off) { /* room for the rest of this frame after what is held */
			memmove(s->in, s->in + s->in_off, s->in_len);
			s->in_off = 0;
		}
		ssize_t n = read(fd, s->in + s->in_len, NET_STREAM_LEN_BYTES + s->max - s->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? NET_STREAM_AGAIN : NET_STREAM_BROKEN;
		if (n == 0)
			return NET_STREAM_CLOSED;
		s->in_len += (size_t)n;
	}
}

bool net_stream_pending(const struct net_stream *s)
{
	return s->out_len > 0;
}

enum net_stream_result net_stream_flush(struct net_stream *s, int fd)
{
	while (s->out_len) {
		ssize_t n = send(fd, s->out + s->out_off, s->out_len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return NET_STREAM_AGAIN;
		if (n < 0)
			return errno == EPIPE || errno == ECONNRESET ? NET_STREAM_CLOSED : NET_STREAM_BROKEN;
		s->out_off += (size_t)n;
		s->out_len -= (size_t)n;
	}
	s->out_off = 0;
	return NET_STREAM_FRAME;
}

enum net_stream_result net_stream_write(struct net_stream *s, int fd, const struct iovec *iov, int n, size_t len)
{
	if (len > s->max || s->out_len) {
		errno = len > s->max ? EMSGSIZE : EBUSY;
		return NET_STREAM_BROKEN;
	}
	uint8_t *p = s->out;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	size_t at = NET_STREAM_LEN_BYTES;
	for (int i = 0; i < n && at < NET_STREAM_LEN_BYTES + len; i++) {
		size_t k = iov[i].iov_len < NET_STREAM_LEN_BYTES + len - at ? iov[i].iov_len
									    : NET_STREAM_LEN_BYTES + len - at;
		memcpy(p + at, iov[i].iov_base, k);
		at += k;
	}
	if (at != NET_STREAM_LEN_BYTES + len) { /* the iovecs hold less than len: never send a short frame */
		errno = EINVAL;
		return NET_STREAM_BROKEN;
	}
	s->out_off = 0;
	s->out_len = at;
	enum net_stream_result r = net_stream_flush(s, fd);
	if (r == NET_STREAM_AGAIN && s->out_len == at) { /* nothing went: the caller keeps the frame */
		s->out_len = 0;
		return NET_STREAM_AGAIN;
	}
	return r == NET_STREAM_AGAIN ? NET_STREAM_FRAME : r;
}

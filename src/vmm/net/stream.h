/* net/stream: Ethernet frames on a byte stream, each after its length as 4 bytes big-endian: the
 * framing of passt's socket interface and of QEMU's -netdev stream. A non-blocking stream may
 * take part of a frame or give part of one; this keeps what is between frames on each side, so
 * the device above sees whole frames only. Bounded: at most one frame in and one frame out
 * held. Written here because no library in Debian carries this framing apart from passt and
 * QEMU themselves. Threads: the NIC's I/O thread (or another holding its lock); no shared state. */
#ifndef SHOJI_VMM_NET_STREAM_H
#define SHOJI_VMM_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../../common/err.h"

#define NET_STREAM_LEN_BYTES 4

struct net_stream {
	size_t max;  /* the longest frame either way */
	uint8_t *in; /* bytes read and not yet taken: in[in_off, in_off + in_len) */
	size_t in_off, in_len;
	uint8_t *out; /* the part of a frame the stream has not taken yet */
	size_t out_off, out_len;
};

enum net_stream_result {
	NET_STREAM_FRAME,  /* read: a whole frame; write: taken (maybe in part, the rest kept) */
	NET_STREAM_AGAIN,  /* read: no whole frame yet; write: nothing taken, try when writable */
	NET_STREAM_CLOSED, /* the other end closed the stream */
	NET_STREAM_BROKEN, /* a read or write error (errno), or a frame longer than max (EPROTO) */
};

int net_stream_init(struct net_stream *s, size_t max, struct err *e);
void net_stream_destroy(struct net_stream *s);
/* Forgets whatever is held either way (a new stream). */
void net_stream_reset(struct net_stream *s);
/* The next whole frame from fd into buf (room for max bytes), its length in *len. */
enum net_stream_result net_stream_read(struct net_stream *s, int fd, uint8_t *buf, uint32_t *len);
/* One frame (the iovecs, len bytes in all, at most max) onto fd after its length. Call only while
 * nothing is held (net_stream_pending false). */
enum net_stream_result net_stream_write(struct net_stream *s, int fd, const struct iovec *iov, int n, size_t len);
/* Whether part of a frame waits for the stream to take it. */
bool net_stream_pending(const struct net_stream *s);
/* Writes what is held: FRAME once all of it went, AGAIN while some remains. */
enum net_stream_result net_stream_flush(struct net_stream *s, int fd);

#endif

/* iov: byte-stream views over a chain's buffers: copy to or from an offset, and cut a sub-range
 * into a new iovec array for preadv/pwritev. A request's framing (header, data, status) may be
 * split over buffers any way the driver likes, so devices address it by byte offset. */
#ifndef SHOJI_VMM_VIRTIO_IOV_H
#define SHOJI_VMM_VIRTIO_IOV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtqueue.h"

/* Copies up to len bytes starting `offset` bytes into the buffers; returns the bytes copied. */
size_t iov_to_buf(const struct virtq_iov *iov, unsigned n, uint64_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct virtq_iov *iov, unsigned n, uint64_t offset, const void *buf, size_t len);
/* Fills out[] (room for cap) with the bytes [offset, offset+len) of the buffers; returns the
 * number of entries, or -1 when the range is not all there or needs more than cap entries. */
int iov_slice(const struct virtq_iov *iov, unsigned n, uint64_t offset, uint64_t len, struct iovec *out, unsigned cap);

#endif

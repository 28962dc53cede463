/* iov: byte-offset access to chain buffers (see iov.h). */
#include "iov.h"

#include <string.h>

static size_t copy(const struct virtq_iov *iov, unsigned n, uint64_t offset, uint8_t *buf, size_t len, int to_guest)
{
	size_t done = 0;
	for (unsigned i = 0; i < n && done < len; i++) {
		if (offset >= iov[i].len) {
			offset -= iov[i].len;
			continue;
		}
		size_t chunk = iov[i].len - offset;
		if (chunk > len - done)
			chunk = len - done;
		uint8_t *g = (uint8_t *)iov[i].base + offset;
		if (to_guest)
			memcpy(g, buf + done, chunk);
		else
			memcpy(buf + done, g, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

size_t iov_to_buf(const struct virtq_iov *iov, unsigned n, uint64_t offset, void *buf, size_t len)
{
	return copy(iov, n, offset, buf, len, 0);
}

size_t iov_from_buf(const struct virtq_iov *iov, unsigned n, uint64_t offset, const void *buf, size_t len)
{
	return copy(iov, n, offset, (uint8_t *)buf, len, 1);
}

int iov_slice(const struct virtq_iov *iov, unsigned n, uint64_t offset, uint64_t len, struct iovec *out, unsigned cap)
{
	unsigned m = 0;
	for (unsigned i = 0; i < n && len; i++) {
		if (offset >= iov[i].len) {
			offset -= iov[i].len;
			continue;
		}
		if (m == cap)
			return -1;
		uint64_t chunk = iov[i].len - offset;
		if (chunk > len)
			chunk = len;
		out[m++] = (struct iovec){(uint8_t *)iov[i].base + offset, (size_t)chunk};
		len -= chunk;
		offset = 0;
	}
	return len ? -1 : (int)m;
}

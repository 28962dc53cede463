/* qcow2_create: writes a new, empty qcow2 v3 image: the header cluster (with the backing
 * format extension and the backing file name when there is one), the refcount table, the
 * refcount blocks covering the initial clusters, and an empty L1 table. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

/* Opens the backing file as the new image will (relative to the image's directory). */
static int probe_backing(const char *path, const struct qcow2_create_opts *o, uint64_t *size, struct err *e)
{
	enum block_format fmt;
	if (!o->backing_format || block_format_parse(o->backing_format, &fmt) < 0)
		return err_set(e, "backing file '%s' needs its format: -F raw or -F qcow2", o->backing);
	char *bp = NULL, *copy = strdup(path);
	if (!copy ||
	    (o->backing[0] == '/' ? !(bp = strdup(o->backing))
				  : asprintf(&bp, "%s/%s", dirname(copy), o->backing) < 0)) {
		free(copy);
		return err_set(e, "out of memory");
	}
	free(copy);
	struct block_dev *b;
	int r = block_open(&b, bp, fmt, BLOCK_OPEN_RDONLY, e);
	free(bp);
	if (r < 0)
		return -1;
	*size = b->size;
	block_close(b);
	return 0;
}

/* The image's first clusters: header, refcount table, refcount blocks, empty L1 table. */
static int build_image(const char *label, const struct qcow2_create_opts *o, uint8_t **out, uint64_t *bytes,
		       struct err *e)
{
	unsigned bits = o->cluster_bits ? o->cluster_bits : 16;
	if (bits < QCOW2_MIN_CLUSTER_BITS || bits > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, "cluster size must be a power of two from 512 bytes to 2 MiB");
	uint64_t cs = 1ull << bits, size = o->size;
	size_t blen = o->backing ? strlen(o->backing) : 0;
	if (blen > QCOW2_MAX_BACKING_NAME || (o->backing && !blen))
		return err_set(e, "backing file name must be 1 to %d bytes long", QCOW2_MAX_BACKING_NAME);
	if (o->backing && (!o->backing_format || strlen(o->backing_format) > 16))
		return err_set(e, "backing file '%s' needs its format: raw or qcow2", o->backing);
	uint64_t per_l1 = cs << (bits - 3);
	uint64_t l1_size = size / per_l1 + (size % per_l1 != 0);
	if (l1_size == 0)
		l1_size = 1;
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES || size > (1ull << 62))
		return err_set(e, "size %llu is too large for %llu-byte clusters", (unsigned long long)size,
			       (unsigned long long)cs);
	uint64_t l1c = (l1_size * 8 + cs - 1) / cs, per_rb = cs / 2, rtc = 1, rbc = 1, total;
	for (;;) {
		total = 1 + rtc + rbc + l1c;
		uint64_t want_rb = (total + per_rb - 1) / per_rb, want_rt = (want_rb * 8 + cs - 1) / cs;
		if (want_rb == rbc && want_rt == rtc)
			break;
		rbc = want_rb;
		rtc = want_rt;
	}
	if (rtc * cs > QCOW2_MAX_RT_BYTES)
		return err_set(e, "size %llu is too large for %llu-byte clusters", (unsigned long long)size,
			       (unsigned long long)cs);

	uint8_t *buf = calloc(total, cs);
	if (!buf)
		return err_set(e, "out of memory creating '%s'", label);
	uint8_t *h = buf;
	qcow2_put32(h + QH_MAGIC, QCOW2_MAGIC);
	qcow2_put32(h + QH_VERSION, 3);
	qcow2_put32(h + QH_CLUSTER_BITS, bits);
	qcow2_put64(h + QH_SIZE, size);
	qcow2_put32(h + QH_L1_SIZE, (uint32_t)l1_size);
	qcow2_put64(h + QH_L1_OFFSET, (1 + rtc + rbc) * cs);
	qcow2_put64(h + QH_RT_OFFSET, cs);
	qcow2_put32(h + QH_RT_CLUSTERS, (uint32_t)rtc);
	qcow2_put32(h + QH_REFCOUNT_ORDER, 4);
	qcow2_put32(h + QH_HEADER_LENGTH, QCOW2_HEADER_LEN);
	uint64_t at = QCOW2_HEADER_LEN;
	if (o->backing) {
		size_t flen = strlen(o->backing_format);
		qcow2_put32(h + at, QCOW2_EXT_BACKING_FORMAT);
		qcow2_put32(h + at + 4, (uint32_t)flen);
		memcpy(h + at + 8, o->backing_format, flen);
		at += 8 + ((flen + 7) & ~7ull);
	}
	at += 8; /* the end-of-extensions marker: zeroes */
	if (o->backing) {
		if (at + blen > cs) {
			free(buf);
			return err_set(e, "backing file name too long for %llu-byte clusters", (unsigned long long)cs);
		}
		qcow2_put64(h + QH_BACKING_OFFSET, at);
		qcow2_put32(h + QH_BACKING_SIZE, (uint32_t)blen);
		memcpy(h + at, o->backing, blen);
	}
	for (uint64_t k = 0; k < rbc; k++)
		qcow2_put64(buf + cs + k * 8, (1 + rtc + k) * cs);
	for (uint64_t c = 0; c < total; c++)
		qcow2_put16(buf + (1 + rtc) * cs + c * 2, 1); /* the blocks are contiguous */
	*out = buf;
	*bytes = total * cs;
	return 0;
}

int qcow2_create_fd(int fd, const char *label, const struct qcow2_create_opts *o, struct err *e)
{
	uint8_t *buf = NULL;
	uint64_t bytes = 0;
	if (build_image(label, o, &buf, &bytes, e) < 0)
		return -1;
	int r = block_fd_pwrite(fd, buf, bytes, 0, label, e);
	if (r == 0 && !o->scratch && fdatasync(fd) < 0)
		r = err_errno(e, errno, "cannot write '%s'", label);
	free(buf);
	return r;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *o, struct err *e)
{
	struct qcow2_create_opts opts = *o;
	if (o->backing) {
		uint64_t bsize = 0;
		if (probe_backing(path, o, &bsize, e) < 0)
			return -1;
		if (opts.size == UINT64_MAX)
			opts.size = bsize;
	} else if (opts.size == UINT64_MAX) {
		return err_set(e, "an image without a backing file needs a size");
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno(e, errno, "cannot create '%s'", path);
	int r = qcow2_create_fd(fd, path, &opts, e);
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

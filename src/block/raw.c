/* raw: the raw-file backend: the disk is the file, byte for byte (size rounded down to whole
 * 512-byte sectors). Flush is fdatasync, discard punches a hole, write-zeroes zeroes the range
 * with fallocate where the file system can, by writing zeroes where it cannot. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block.h"

struct raw {
	struct block_dev dev;
	int fd;
};

static struct raw *raw_of(struct block_dev *d)
{
	return (struct raw *)d;
}

static int raw_readv(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e)
{
	return block_fd_preadv(raw_of(d)->fd, iov, n, off, d->path, e);
}

static int raw_writev(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e)
{
	return block_fd_pwritev(raw_of(d)->fd, iov, n, off, d->path, e);
}

static int raw_flush(struct block_dev *d, struct err *e)
{
	return block_sync(d, e);
}

static int raw_discard(struct block_dev *d, uint64_t off, uint64_t len, struct err *e)
{
	(void)e; /* a hint: a file system without hole punching keeps the data */
	(void)!fallocate(raw_of(d)->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (off_t)off, (off_t)len);
	return 0;
}

static int raw_write_zeroes(struct block_dev *d, uint64_t off, uint64_t len, bool may_unmap, struct err *e)
{
	int mode = FALLOC_FL_KEEP_SIZE | (may_unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
	if (fallocate(raw_of(d)->fd, mode, (off_t)off, (off_t)len) == 0)
		return 0;
	static const uint8_t zeros[64 << 10];
	for (uint64_t at = off; at < off + len;) {
		uint64_t chunk = off + len - at < sizeof(zeros) ? off + len - at : sizeof(zeros);
		if (block_fd_pwrite(raw_of(d)->fd, zeros, chunk, at, d->path, e) < 0)
			return -1;
		at += chunk;
	}
	return 0;
}

static void raw_close(struct block_dev *d)
{
	close(raw_of(d)->fd);
	free(d->path);
	free(d);
}

static const struct block_ops raw_ops = {
	.format = "raw",
	.concurrent = true,
	.readv = raw_readv,
	.writev = raw_writev,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.close = raw_close,
};

int raw_open(struct block_dev **out, int fd, const char *path, bool read_only, struct err *e)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_errno(e, errno, "cannot stat disk image '%s'", path);
	struct raw *r = calloc(1, sizeof(*r));
	char *p = strdup(path);
	if (!r || !p) {
		free(r);
		free(p);
		return err_set(e, "out of memory opening disk image '%s'", path);
	}
	r->dev = (struct block_dev){.ops = &raw_ops,
				    .size = (uint64_t)st.st_size / 512 * 512,
				    .discard_unit = 512,
				    .read_only = read_only,
				    .path = p,
				    .fd = fd};
	r->fd = fd;
	*out = &r->dev;
	return 0;
}

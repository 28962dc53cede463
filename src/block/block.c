/* block: opening images (format choice, backing chains), the checked entry points every
 * caller goes through, and positional I/O helpers shared by the backends (see block.h). */
#include "block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2_format.h"

int block_format_parse(const char *name, enum block_format *out)
{
	if (strcmp(name, "raw") == 0)
		*out = BLOCK_FORMAT_RAW;
	else if (strcmp(name, "qcow2") == 0)
		*out = BLOCK_FORMAT_QCOW2;
	else
		return -1;
	return 0;
}

static const char *file_kind(mode_t mode)
{
	return S_ISFIFO(mode)   ? "a FIFO"
		: S_ISCHR(mode) ? "a character device"
		: S_ISBLK(mode) ? "a block device"
		: S_ISDIR(mode) ? "a directory"
				: "not a regular file";
}

/* Opens an image looked at before it is opened for I/O: the name is first opened O_PATH (which
 * opens no device and waits on no FIFO), checked to be a regular file, and only that very file
 * is then opened for reading or writing, through /proc/self/fd. So a FIFO never blocks, and a
 * device (a watchdog, a terminal) named as an image is never opened at all. */
static int open_image(const char *path, bool ro, struct stat *st, struct err *e)
{
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return err_errno(e, errno, "cannot open disk image '%s'", path);
	if (fstat(pfd, st) < 0) {
		int en = errno;
		close(pfd);
		return err_errno(e, en, "cannot look at disk image '%s'", path);
	}
	if (!S_ISREG(st->st_mode)) {
		close(pfd);
		return err_set(e, "disk image '%s' is %s, not a regular file; name an image file", path,
			       file_kind(st->st_mode));
	}
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	int fd = open(self, (ro ? O_RDONLY : O_RDWR) | O_NOCTTY | O_CLOEXEC);
	int en = errno;
	close(pfd);
	if (fd < 0)
		return err_errno(e, en, "cannot open disk image '%s'%s", path,
				 en == ENOENT ? " (/proc is not mounted)"
					 : !ro && (en == EACCES || en == EROFS)
					 ? " for writing (add ,ro for a read-only disk)"
					 : "");
	return fd;
}

int block_open_in_chain(struct block_dev **out, const char *path, enum block_format fmt, unsigned flags,
			struct block_chain *chain, struct err *e)
{
	bool ro = flags & BLOCK_OPEN_RDONLY;
	if (chain->depth >= BLOCK_MAX_CHAIN)
		return err_set(e, "disk image '%s': backing chain deeper than %d images", path, BLOCK_MAX_CHAIN);
	struct stat st;
	int fd = open_image(path, ro, &st, e);
	if (fd < 0)
		return -1;
	for (unsigned i = 0; i < chain->depth; i++)
		if (chain->dev[i] == (uint64_t)st.st_dev && chain->ino[i] == (uint64_t)st.st_ino) {
			close(fd);
			return err_set(e, "disk image '%s': the backing chain loops back to an image already in it",
				       path);
		}
	struct flock lk = {.l_type = ro ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET};
	if (!(flags & BLOCK_OPEN_NO_LOCK) && fcntl(fd, F_OFD_SETLK, &lk) < 0 && (errno == EAGAIN || errno == EACCES)) {
		close(fd);
		return err_set(e, "disk image '%s' is locked: another VM or tool is using it", path);
	}
	chain->dev[chain->depth] = (uint64_t)st.st_dev;
	chain->ino[chain->depth] = (uint64_t)st.st_ino;
	chain->depth++;
	uint8_t magic[4] = {0};
	if (pread(fd, magic, sizeof(magic), 0) < 0) {
		close(fd);
		return err_errno(e, errno, "cannot read disk image '%s'", path);
	}
	bool looks_qcow2 = memcmp(magic, QCOW2_MAGIC_BYTES, 4) == 0;
	if (fmt == BLOCK_FORMAT_PROBE) {
		if (looks_qcow2) {
			close(fd);
			return err_set(e,
				       "disk image '%s' looks like qcow2: say format=qcow2 if it is one, or "
				       "format=raw to use the file as it is",
				       path);
		}
		fmt = BLOCK_FORMAT_RAW;
	}
	int r = fmt == BLOCK_FORMAT_QCOW2 ? qcow2_open(out, fd, path, flags, chain, e) : raw_open(out, fd, path, ro, e);
	if (r < 0)
		close(fd);
	return r;
}

int block_open(struct block_dev **out, const char *path, enum block_format fmt, unsigned flags, struct err *e)
{
	struct block_chain chain = {0};
	return block_open_in_chain(out, path, fmt, flags, &chain, e);
}

void block_close(struct block_dev *d)
{
	if (d)
		d->ops->close(d);
}

static int check_range(struct block_dev *d, uint64_t off, uint64_t len, bool write, struct err *e)
{
	if (write && d->read_only)
		return err_set(e, "disk image '%s' is read-only", d->path);
	if (off > d->size || len > d->size - off)
		return err_set(e, "disk image '%s': range %llu+%llu is beyond its size %llu", d->path,
			       (unsigned long long)off, (unsigned long long)len, (unsigned long long)d->size);
	return 0;
}

int block_readv(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e)
{
	if (check_range(d, off, block_iov_len(iov, n), false, e) < 0)
		return -1;
	return d->ops->readv(d, iov, n, off, e);
}

int block_writev(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e)
{
	if (check_range(d, off, block_iov_len(iov, n), true, e) < 0)
		return -1;
	return d->ops->writev(d, iov, n, off, e);
}

int block_pread(struct block_dev *d, void *buf, uint64_t len, uint64_t off, struct err *e)
{
	struct iovec v = {buf, len};
	return block_readv(d, &v, 1, off, e);
}

int block_pwrite(struct block_dev *d, const void *buf, uint64_t len, uint64_t off, struct err *e)
{
	struct iovec v = {(void *)buf, len};
	return block_writev(d, &v, 1, off, e);
}

int block_flush(struct block_dev *d, struct err *e)
{
	return d->read_only ? 0 : d->ops->flush(d, e);
}

int block_discard(struct block_dev *d, uint64_t off, uint64_t len, struct err *e)
{
	if (check_range(d, off, len, true, e) < 0)
		return -1;
	return len ? d->ops->discard(d, off, len, e) : 0;
}

int block_write_zeroes(struct block_dev *d, uint64_t off, uint64_t len, bool may_unmap, struct err *e)
{
	if (check_range(d, off, len, true, e) < 0)
		return -1;
	return len ? d->ops->write_zeroes(d, off, len, may_unmap, e) : 0;
}

uint64_t block_iov_len(const struct iovec *iov, int n)
{
	uint64_t len = 0;
	for (int i = 0; i < n; i++)
		len += iov[i].iov_len;
	return len;
}

enum iov_op { IOV_TO_BUF, IOV_FROM_BUF, IOV_FILL };

/* One walk for the three copies: buf is read, written, or (IOV_FILL) its first byte repeated. */
static void iov_walk(const struct iovec *iov, int n, uint64_t off, uint8_t *buf, uint64_t len, enum iov_op op)
{
	for (int i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		uint64_t k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		uint8_t *p = (uint8_t *)iov[i].iov_base + off;
		if (op == IOV_TO_BUF)
			memcpy(buf, p, k);
		else if (op == IOV_FROM_BUF)
			memcpy(p, buf, k);
		else
			memset(p, buf[0], k);
		if (op != IOV_FILL)
			buf += k;
		len -= k;
		off = 0;
	}
}

void block_iov_to_buf(const struct iovec *iov, int n, uint64_t off, void *buf, uint64_t len)
{
	iov_walk(iov, n, off, buf, len, IOV_TO_BUF);
}

void block_iov_from_buf(const struct iovec *iov, int n, uint64_t off, const void *buf, uint64_t len)
{
	iov_walk(iov, n, off, (uint8_t *)buf, len, IOV_FROM_BUF);
}

void block_iov_memset(const struct iovec *iov, int n, uint64_t off, int c, uint64_t len)
{
	uint8_t b = (uint8_t)c;
	iov_walk(iov, n, off, &b, len, IOV_FILL);
}

int block_iov_slice(const struct iovec *iov, int n, uint64_t off, uint64_t len, struct iovec *out, int cap)
{
	int k = 0;
	for (int i = 0; i < n && len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		if (k == cap)
			return -1;
		uint64_t take = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		out[k++] = (struct iovec){(uint8_t *)iov[i].iov_base + off, take};
		len -= take;
		off = 0;
	}
	return len ? -1 : k;
}

/* One loop for both directions: a short transfer drops what was moved from the front. */
static int fd_rw(int fd, const struct iovec *iov, int n, uint64_t off, bool write, const char *path, struct err *e)
{
	struct iovec v[64];
	const struct iovec *src = iov;
	if (n > 64) { /* transfer in pieces of 64 entries */
		for (int i = 0; i < n; i += 64) {
			int k = n - i < 64 ? n - i : 64;
			if (fd_rw(fd, iov + i, k, off, write, path, e) < 0)
				return -1;
			off += block_iov_len(iov + i, k);
		}
		return 0;
	}
	memcpy(v, src, sizeof(v[0]) * (size_t)n);
	int nv = n;
	while (nv > 0) {
		if (v[0].iov_len == 0) {
			memmove(v, v + 1, sizeof(v[0]) * (size_t)--nv);
			continue;
		}
		ssize_t r = write ? pwritev(fd, v, nv, (off_t)off) : preadv(fd, v, nv, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(e, errno, "disk image '%s': %s at byte %llu failed", path,
					 write ? "write" : "read", (unsigned long long)off);
		if (r == 0) {
			if (write)
				return err_set(e, "disk image '%s': write at byte %llu made no progress", path,
					       (unsigned long long)off);
			for (int i = 0; i < nv; i++) /* past the end of the file: zeroes */
				memset(v[i].iov_base, 0, v[i].iov_len);
			return 0;
		}
		off += (uint64_t)r;
		while (r > 0 && nv > 0) {
			if ((size_t)r >= v[0].iov_len) {
				r -= (ssize_t)v[0].iov_len;
				memmove(v, v + 1, sizeof(v[0]) * (size_t)--nv);
			} else {
				v[0].iov_base = (uint8_t *)v[0].iov_base + r;
				v[0].iov_len -= (size_t)r;
				r = 0;
			}
		}
	}
	return 0;
}

int block_sync(struct block_dev *d, struct err *e)
{
	if (d->scratch)
		return 0;
	int earlier = __atomic_load_n(&d->sync_error, __ATOMIC_ACQUIRE);
	if (earlier)
		return err_errno(e, earlier,
				 "disk image '%s': an earlier write-back to the host's storage failed, so data "
				 "written before it may be lost; every flush fails from now on: check the host's "
				 "storage and the image (shoji-img check), then restart the VM",
				 d->path);
	if (fdatasync(d->fd) == 0)
		return 0;
	int errnum = errno;
	__atomic_store_n(&d->sync_error, errnum, __ATOMIC_RELEASE);
	return err_errno(e, errnum, "disk image '%s': write-back to the host's storage failed", d->path);
}

int block_fd_preadv(int fd, const struct iovec *iov, int n, uint64_t off, const char *path, struct err *e)
{
	return fd_rw(fd, iov, n, off, false, path, e);
}

int block_fd_pwritev(int fd, const struct iovec *iov, int n, uint64_t off, const char *path, struct err *e)
{
	return fd_rw(fd, iov, n, off, true, path, e);
}

int block_fd_pread(int fd, void *buf, uint64_t len, uint64_t off, const char *path, struct err *e)
{
	struct iovec v = {buf, len};
	return fd_rw(fd, &v, 1, off, false, path, e);
}

int block_fd_pwrite(int fd, const void *buf, uint64_t len, uint64_t off, const char *path, struct err *e)
{
	struct iovec v = {(void *)buf, len};
	return fd_rw(fd, &v, 1, off, true, path, e);
}

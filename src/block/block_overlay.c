/* block_overlay: a qcow2 overlay made over an image that is already open (a live snapshot's new
 * top, a volatile disk's unnamed write layer), turning a writable image into a read-only
 * backing file, and listing the files of a backing chain (what a jail must show). */
#include "block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"

static int overlay_write(int fd, const char *label, const struct block_dev *backing, const char *backing_name,
			 bool scratch, struct err *e)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return err_set(e, "the new image '%s' is not a regular file", label);
	if (st.st_size != 0)
		return err_set(e, "the new image '%s' is not empty (give a new, empty file)", label);
	int mode = fcntl(fd, F_GETFL);
	if (mode < 0 || (mode & O_ACCMODE) != O_RDWR)
		return err_set(e, "the new image '%s' must be opened read-write (O_RDWR)", label);
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_OFD_SETLK, &lk) < 0 && (errno == EAGAIN || errno == EACCES))
		return err_set(e, "the new image '%s' is locked: another VM or tool is using it", label);
	unsigned bits = backing->cluster_size ? (unsigned)__builtin_ctzll(backing->cluster_size) : 16;
	struct qcow2_create_opts o = {.size = backing->size,
				      .cluster_bits = bits,
				      .backing = backing_name,
				      .backing_format = backing->ops->format,
				      .scratch = scratch};
	return qcow2_create_fd(fd, label, &o, e);
}

int block_overlay_write(int fd, const char *label, const struct block_dev *backing, const char *backing_name,
			struct err *e)
{
	return overlay_write(fd, label, backing, backing_name, false, e);
}

int block_overlay_open(struct block_dev **out, int fd, const char *label, struct block_dev *backing, struct err *e)
{
	struct block_chain chain = {0};
	if (qcow2_open(out, fd, label, BLOCK_OPEN_SKIP_BACKING, &chain, e) < 0)
		return -1;
	(*out)->backing = backing;
	return 0;
}

int block_overlay_create(struct block_dev **out, int fd, const char *label, struct block_dev *backing,
			 const char *backing_name, struct err *e)
{
	if (block_overlay_write(fd, label, backing, backing_name, e) < 0)
		return -1;
	return block_overlay_open(out, fd, label, backing, e);
}

int block_scratch_create(struct block_dev **out, int fd, const char *label, struct block_dev *backing,
			 const char *backing_name, struct err *e)
{
	if (overlay_write(fd, label, backing, backing_name, true, e) < 0 ||
	    block_overlay_open(out, fd, label, backing, e) < 0)
		return -1;
	(*out)->scratch = true;
	return 0;
}

void block_mark_read_only(struct block_dev *d)
{
	if (d->read_only)
		return;
	d->read_only = true;
	struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
	(void)fcntl(d->fd, F_OFD_SETLK, &lk); /* a downgrade cannot conflict */
}

int block_make_read_only(struct block_dev *d, struct err *e)
{
	if (!d->read_only && d->ops->flush(d, e) < 0)
		return -1;
	block_mark_read_only(d);
	return 0;
}

void block_overlay_discard(struct block_dev *overlay)
{
	overlay->backing = NULL; /* not the overlay's to close */
	block_close(overlay);
}

int block_chain_paths(const char *path, enum block_format fmt, char *out[BLOCK_MAX_CHAIN], unsigned *n, struct err *e)
{
	struct block_dev *d;
	*n = 0;
	if (block_open(&d, path, fmt, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_LOCK, e) < 0)
		return -1;
	for (struct block_dev *b = d; b && *n < BLOCK_MAX_CHAIN; b = b->backing) {
		if (!(out[*n] = strdup(b->path))) {
			while (*n)
				free(out[--*n]);
			block_close(d);
			return err_set(e, "out of memory");
		}
		(*n)++;
	}
	block_close(d);
	return 0;
}

int block_backing_of(const char *path, char *name, size_t name_size, char *format, size_t format_size, struct err *e)
{
	struct block_dev *d;
	if (block_open(&d, path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_LOCK | BLOCK_OPEN_SKIP_BACKING,
		       e) < 0)
		return -1;
	const struct qcow2 *q = (const struct qcow2 *)d;
	int r = 0;
	if (snprintf(name, name_size, "%s", q->backing_name ? q->backing_name : "") >= (int)name_size ||
	    snprintf(format, format_size, "%s", q->backing_format ? q->backing_format : "") >= (int)format_size)
		r = err_set(e, "disk image '%s': its backing file name is too long", path);
	block_close(d);
	return r;
}

/* block_merge: one level of a backing chain folded into the image above it (merge) or an image
 * folded into its backing file (commit), and the header rewrite that names a new backing file
 * (see block_merge.h). */
#include "block_merge.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block.h"
#include "qcow2.h"

static bool all_zero(const uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* A new header cluster n for the image whose header cluster is h: the same header, every
 * extension but the backing format kept in order, then the backing format given (if any), the
 * end of the extensions and the backing name given (if any). */
static int new_header_cluster(const struct qcow2 *q, const uint8_t *h, uint8_t *n, const char *name, const char *format,
			      const char *path, struct err *e)
{
	uint64_t cs = q->cs, hl = q->header_length, boff = qcow2_be64(h + QH_BACKING_OFFSET);
	uint64_t ext_end = boff ? boff : cs, at = hl;
	size_t blen = name ? strlen(name) : 0, flen = format ? strlen(format) : 0;
	memcpy(n, h, hl);
	for (uint64_t p = hl; p + 8 <= ext_end;) {
		uint32_t type = qcow2_be32(h + p), len = qcow2_be32(h + p + 4);
		uint64_t whole = 8 + ((len + 7ull) & ~7ull);
		if (type == QCOW2_EXT_END)
			break;
		if (whole > ext_end - p)
			return err_set(e, "qcow2 image '%s': header extensions run past the header cluster", path);
		if (type != QCOW2_EXT_BACKING_FORMAT) {
			memcpy(n + at, h + p, whole);
			at += whole;
		}
		p += whole;
	}
	bool fits = !format || at + 8 + 16 <= cs; /* room for the format's extension */
	if (format && fits) {
		qcow2_put32(n + at, QCOW2_EXT_BACKING_FORMAT);
		qcow2_put32(n + at + 4, (uint32_t)flen);
		memcpy(n + at + 8, format, flen);
		at += 8 + ((flen + 7) & ~7ull);
	}
	at += 8; /* end of extensions */
	if (!fits || at + blen > cs)
		return err_set(e, "qcow2 image '%s': the backing file name does not fit in its header cluster", path);
	qcow2_put64(n + QH_BACKING_OFFSET, name ? at : 0);
	qcow2_put32(n + QH_BACKING_SIZE, (uint32_t)blen);
	if (name)
		memcpy(n + at, name, blen);
	return 0;
}

int block_set_backing(const char *path, const char *name, const char *format, struct err *e)
{
	size_t blen = name ? strlen(name) : 0, flen = format ? strlen(format) : 0;
	if (name && (blen == 0 || blen > QCOW2_MAX_BACKING_NAME))
		return err_set(e, "backing file name must be 1 to %d bytes long", QCOW2_MAX_BACKING_NAME);
	if (flen > 16)
		return err_set(e, "backing format '%s' is too long", format);
	/* Open it as an image first: this checks the header and takes the write lock. */
	struct block_dev *d;
	if (block_open(&d, path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_SKIP_BACKING, e) < 0)
		return -1;
	struct qcow2 *q = qcow2_of(d);
	uint64_t cs = q->cs;
	uint8_t *h = calloc(1, cs), *n = calloc(1, cs);
	int r = -1;
	if (!h || !n)
		err_set(e, "out of memory");
	else if (block_fd_pread(q->fd, h, cs, 0, path, e) == 0 &&
		 new_header_cluster(q, h, n, name, format, path, e) == 0) {
		/* Whatever upper's data was, it is on disk before the header names a new backing. */
		if (fdatasync(q->fd) < 0 || pwrite(q->fd, n, cs, 0) != (ssize_t)cs || fdatasync(q->fd) < 0)
			err_errno(e, errno, "cannot rewrite the header of '%s'", path);
		else
			r = 0;
	}
	free(h);
	free(n);
	block_close(d);
	return r;
}

/* The name upper should record for its new backing file (the backing's own backing, named
 * relative to the backing's directory): kept when both live in one directory or the name is
 * absolute, else made absolute. */
static char *new_backing_name(const char *upper, const char *backing, const char *bb)
{
	if (bb[0] == '/')
		return strdup(bb);
	char *u = realpath(upper, NULL), *b = realpath(backing, NULL), *out = NULL;
	if (u && b) {
		char *ud = dirname(u), *bd = dirname(b);
		if (strcmp(ud, bd) == 0)
			out = strdup(bb);
		else if (asprintf(&out, "%s/%s", bd, bb) < 0)
			out = NULL;
	}
	free(u);
	free(b);
	return out;
}

/* Copies into upper the clusters it does not allocate and the backing file decides. */
static int fold(struct block_dev *d, bool new_backing, struct err *e)
{
	struct qcow2 *q = qcow2_of(d);
	struct block_dev *b = q->dev.backing;
	struct qcow2 *bq = strcmp(b->ops->format, "qcow2") == 0 ? qcow2_of(b) : NULL;
	/* The backing's own allocation can be asked cluster by cluster when the sizes agree. */
	bool ask_backing = bq && bq->cs == q->cs && bq->backing_name;
	uint8_t *buf = malloc(q->cs);
	if (!buf)
		return err_set(e, "out of memory");
	int r = 0;
	for (uint64_t off = 0; off < d->size && r == 0; off += q->cs) {
		uint64_t len = d->size - off < q->cs ? d->size - off : q->cs;
		bool mine, theirs = true;
		if ((r = qcow2_allocates(q, off, &mine, e)) < 0 || mine)
			continue;
		if (off >= b->size)
			theirs = false; /* reads as zeroes now, and must still after */
		else if (ask_backing && (r = qcow2_allocates(bq, off, &theirs, e)) < 0)
			break;
		if (!theirs && !(off >= b->size && new_backing))
			continue; /* the backing's backing decides: it still will */
		if ((r = block_pread(d, buf, len, off, e)) < 0)
			break;
		if (all_zero(buf, len))
			r = new_backing ? block_write_zeroes(d, off, len, false, e) : 0;
		else
			r = block_pwrite(d, buf, len, off, e);
	}
	free(buf);
	return r < 0 ? -1 : block_flush(d, e);
}

int block_merge(const char *upper_path, struct err *e)
{
	struct block_dev *d;
	if (block_open(&d, upper_path, BLOCK_FORMAT_QCOW2, 0, e) < 0)
		return -1;
	struct qcow2 *q = qcow2_of(d);
	if (!q->dev.backing) {
		block_close(d);
		return err_set(e, "'%s' has no backing file to merge", upper_path);
	}
	struct qcow2 *bq = strcmp(q->dev.backing->ops->format, "qcow2") == 0 ? qcow2_of(q->dev.backing) : NULL;
	char *name = NULL, *format = NULL;
	if (bq && bq->backing_name) {
		name = new_backing_name(upper_path, q->dev.backing->path, bq->backing_name);
		if (!name) {
			block_close(d);
			return err_set(e, "cannot resolve the backing file of '%s'", q->dev.backing->path);
		}
		if (bq->backing_format && !(format = strdup(bq->backing_format))) {
			free(name);
			block_close(d);
			return err_set(e, "out of memory");
		}
	}
	int r = fold(d, name != NULL, e);
	block_close(d);
	if (r == 0)
		r = block_set_backing(upper_path, name, format, e);
	free(name);
	free(format);
	return r;
}

int block_commit(const char *upper_path, struct err *e)
{
	struct block_dev *u;
	if (block_open(&u, upper_path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY | BLOCK_OPEN_SKIP_BACKING, e) < 0)
		return -1;
	struct qcow2 *q = qcow2_of(u);
	enum block_format fmt = BLOCK_FORMAT_PROBE;
	char *bp = NULL, *copy = strdup(upper_path);
	int r = -1;
	if (!q->backing_name) {
		err_set(e, "'%s' has no backing file to commit into", upper_path);
		goto out;
	}
	if (q->backing_format && block_format_parse(q->backing_format, &fmt) < 0) {
		err_set(e, "'%s': backing format '%s' is not raw or qcow2", upper_path, q->backing_format);
		goto out;
	}
	if (!copy ||
	    (q->backing_name[0] == '/' ? !(bp = strdup(q->backing_name))
				       : asprintf(&bp, "%s/%s", dirname(copy), q->backing_name) < 0)) {
		bp = NULL;
		err_set(e, "out of memory");
		goto out;
	}
	struct block_dev *b;
	if (block_open(&b, bp, fmt, 0, e) < 0)
		goto out;
	uint8_t *buf = malloc(q->cs);
	r = buf ? 0 : err_set(e, "out of memory");
	for (uint64_t off = 0; off < u->size && r == 0; off += q->cs) {
		uint64_t len = u->size - off < q->cs ? u->size - off : q->cs;
		bool mine;
		if ((r = qcow2_allocates(q, off, &mine, e)) < 0 || !mine)
			continue;
		if (off >= b->size)
			break; /* the backing file is shorter: nothing of it to change there */
		if (len > b->size - off)
			len = b->size - off;
		if ((r = block_pread(u, buf, len, off, e)) < 0)
			break;
		r = all_zero(buf, len) ? block_write_zeroes(b, off, len, false, e) : block_pwrite(b, buf, len, off, e);
	}
	free(buf);
	if (r == 0)
		r = block_flush(b, e);
	block_close(b);
out:
	free(bp);
	free(copy);
	block_close(u);
	return r;
}

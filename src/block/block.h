/* block: the block-device abstraction under virtio-blk and shoji-img. A block_dev is a
 * virtual disk of `size` bytes served by one backend (raw.c, qcow2.c); callers read and write
 * scatter-gather lists at byte offsets and never see the image format. One caller at a time
 * (a disk's I/O thread or workers, the image tool), unless ops->concurrent says otherwise. */
#ifndef SHOJI_VMM_BLOCK_BLOCK_H
#define SHOJI_VMM_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "../common/err.h"

enum block_format {
	BLOCK_FORMAT_PROBE, /* raw, unless the file starts with the qcow2 magic: then refused */
	BLOCK_FORMAT_RAW,
	BLOCK_FORMAT_QCOW2,
};

/* Open flags. */
#define BLOCK_OPEN_RDONLY 1u
#define BLOCK_OPEN_SKIP_BACKING                                                                                        \
	2u                    /* leave backing files closed: unallocated ranges read as zeroes                         \
			       * (metadata tools, fuzzing) */
#define BLOCK_OPEN_NO_LOCK 4u /* inspect without taking the image's lock (info) */

#define BLOCK_MAX_CHAIN 16 /* an image and its backing files, at most */

struct block_dev;

struct block_ops {
	const char *format;
	/* The callbacks may run on several threads at once (positional I/O on one file, no
	 * shared metadata: raw); otherwise one at a time. */
	bool concurrent;
	/* Transfer the whole of iov at byte offset off; the range lies inside the disk. */
	int (*readv)(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e);
	int (*writev)(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e);
	/* Everything written so far reaches stable storage. */
	int (*flush)(struct block_dev *d, struct err *e);
	/* A hint: the range may read back as anything afterwards (zeroes in practice). */
	int (*discard)(struct block_dev *d, uint64_t off, uint64_t len, struct err *e);
	/* The range reads back as zeroes; may_unmap lets the backend free the space. */
	int (*write_zeroes)(struct block_dev *d, uint64_t off, uint64_t len, bool may_unmap, struct err *e);
	void (*close)(struct block_dev *d);
};

struct block_dev {
	const struct block_ops *ops;
	uint64_t size;         /* bytes */
	uint32_t discard_unit; /* bytes: smaller or unaligned discards may be ignored */
	bool read_only;
	/* A volatile layer, whose content ends with the process that made it (block_scratch_create):
	 * its flushes write back, but nothing is ever synced to stable storage, as QEMU's temporary
	 * snapshot overlays (cache.no-flush) are not. */
	bool scratch;
	/* The errno of the first failed fdatasync of the file, or 0 (block_sync; atomic: raw's
	 * callbacks run on several threads). */
	int sync_error;
	char *path;
	int fd;                    /* the image file (its lock is taken on it) */
	uint64_t cluster_size;     /* qcow2: bytes a cluster; raw: 0 */
	struct block_dev *backing; /* qcow2: the next image of the chain, or NULL */
};

/* Opens `path` as `fmt`. Backing files are opened read-only, relative names resolved against
 * the image's directory; a chain that loops or is deeper than BLOCK_MAX_CHAIN is refused.
 * Each file is locked (an open-file-description lock over the whole file: shared for
 * read-only, exclusive for read-write), so that no two users write one image, nor write an
 * image another uses as a backing file; a file system without locks is used unlocked. */
int block_open(struct block_dev **out, const char *path, enum block_format fmt, unsigned flags, struct err *e);
void block_close(struct block_dev *d);

/* A new qcow2 overlay written into fd (an empty regular file opened O_RDWR, possibly unnamed:
 * O_TMPFILE) over the open image `backing`: the same virtual size and cluster size (64 KiB over
 * a raw image), backing file name `backing_name` as given, backing format backing's own; then
 * opened read-write with `backing` as its backing image and fd locked exclusively. On success
 * *out owns fd and backing; on failure neither is taken and fd's content is unspecified. */
int block_overlay_create(struct block_dev **out, int fd, const char *label, struct block_dev *backing,
			 const char *backing_name, struct err *e);
/* The same for a volatile layer (an unnamed file, gone when its last descriptor closes): no
 * fdatasync, now or at any flush (block_dev.scratch), since no crash can leave anything of it to
 * keep. */
int block_scratch_create(struct block_dev **out, int fd, const char *label, struct block_dev *backing,
			 const char *backing_name, struct err *e);
/* The two steps of block_overlay_create: the image written into fd (checked empty and O_RDWR,
 * locked), then opened over backing (the same rules for *out, fd and backing). */
int block_overlay_write(int fd, const char *label, const struct block_dev *backing, const char *backing_name,
			struct err *e);
int block_overlay_open(struct block_dev **out, int fd, const char *label, struct block_dev *backing, struct err *e);
/* Flushes a writable image and makes it read-only: writes fail from then on and its lock
 * becomes shared, so that it can serve as a backing file. */
int block_make_read_only(struct block_dev *d, struct err *e);
/* The same without the flush, for an image just flushed with no request in flight. */
void block_mark_read_only(struct block_dev *d);
/* Closes an overlay that block_overlay_open made (its descriptor too) but not its backing. */
void block_overlay_discard(struct block_dev *overlay);
/* The files of the chain that opening `path` as `fmt` would use, top first, each as the opener
 * would name it (relative backing names resolved against the naming image's directory): *n
 * paths, malloc'd, freed by the caller. Opens the chain read-only without locks. */
int block_chain_paths(const char *path, enum block_format fmt, char *out[BLOCK_MAX_CHAIN], unsigned *n, struct err *e);
/* The backing file name and format that the qcow2 header at path records, as written ("" for
 * none), without opening the backing file: what a caller compares with its own record. */
int block_backing_of(const char *path, char *name, size_t name_size, char *format, size_t format_size, struct err *e);

/* Parses "raw" or "qcow2". */
int block_format_parse(const char *name, enum block_format *out);

/* Checked entry points: the range must lie inside the disk, writes need a writable disk. */
int block_readv(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e);
int block_writev(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e);
int block_pread(struct block_dev *d, void *buf, uint64_t len, uint64_t off, struct err *e);
int block_pwrite(struct block_dev *d, const void *buf, uint64_t len, uint64_t off, struct err *e);
int block_flush(struct block_dev *d, struct err *e);
int block_discard(struct block_dev *d, uint64_t off, uint64_t len, struct err *e);
int block_write_zeroes(struct block_dev *d, uint64_t off, uint64_t len, bool may_unmap, struct err *e);

/* Helpers for backends. Full-length positional I/O on a file descriptor (EINTR retried; a
 * read past the end of the file fills zeroes). */
/* fdatasync of d's file (nothing for a scratch layer). A failure is sticky, as QEMU's
 * page_cache_inconsistent is: the kernel reports a write-back error to one fdatasync only and may
 * have dropped the pages that failed, so once one sync failed no later one can promise that
 * everything written before it is on disk, and every later sync fails too, saying why. */
int block_sync(struct block_dev *d, struct err *e);
int block_fd_preadv(int fd, const struct iovec *iov, int n, uint64_t off, const char *path, struct err *e);
int block_fd_pwritev(int fd, const struct iovec *iov, int n, uint64_t off, const char *path, struct err *e);
int block_fd_pread(int fd, void *buf, uint64_t len, uint64_t off, const char *path, struct err *e);
int block_fd_pwrite(int fd, const void *buf, uint64_t len, uint64_t off, const char *path, struct err *e);

/* Byte ranges of an iovec array: copy out of / into it, or cut [off, off+len) into out[]
 * (at most cap entries; -1 when more are needed or the range is not all there). */
void block_iov_to_buf(const struct iovec *iov, int n, uint64_t off, void *buf, uint64_t len);
void block_iov_from_buf(const struct iovec *iov, int n, uint64_t off, const void *buf, uint64_t len);
int block_iov_slice(const struct iovec *iov, int n, uint64_t off, uint64_t len, struct iovec *out, int cap);
void block_iov_memset(const struct iovec *iov, int n, uint64_t off, int c, uint64_t len);
uint64_t block_iov_len(const struct iovec *iov, int n);

/* The chain being opened: files already in it (loop detection) and the depth. */
struct block_chain {
	uint64_t dev[BLOCK_MAX_CHAIN], ino[BLOCK_MAX_CHAIN];
	unsigned depth;
	bool backing_error; /* the error already names the backing file that failed and its user */
};

/* Opens one image of a chain (used by backends for their backing files). */
int block_open_in_chain(struct block_dev **out, const char *path, enum block_format fmt, unsigned flags,
			struct block_chain *chain, struct err *e);

/* Backend constructors: fd is the image, opened by block_open_in_chain (taken over on
 * success). */
int raw_open(struct block_dev **out, int fd, const char *path, bool read_only, struct err *e);
int qcow2_open(struct block_dev **out, int fd, const char *path, unsigned flags, struct block_chain *chain,
	       struct err *e);

#endif

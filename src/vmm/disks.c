/* disks: opening the VM's disks for the monitor's life, volatile overlays, jail binds of
 * backing chains, live snapshots (see disks.h). */
#include "disks.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"

/* The volatile layer: an unnamed file in dir, opened read-write. */
static int open_volatile(const struct vm_disk_config *d, struct block_dev *base, struct block_dev **out, struct err *e)
{
	int fd = open(d->volatile_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
			return err_set(e,
				       "--disk %s: volatile=%s: its file system cannot make unnamed files "
				       "(O_TMPFILE); use a directory on tmpfs, ext4, xfs or btrfs",
				       d->path, d->volatile_dir);
		return err_errno(e, errno,
				 "--disk %s: cannot make a volatile overlay in '%s' (it must be a "
				 "writable directory)",
				 d->path, d->volatile_dir);
	}
	char label[PATH_MAX + 64];
	snprintf(label, sizeof(label), "volatile overlay of %s", d->path);
	if (block_scratch_create(out, fd, label, base, d->path, e) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int disks_open(struct vm_disk_config *d, unsigned n, struct err *e)
{
	for (unsigned i = 0; i < n; i++) {
		bool vol = d[i].volatile_dir != NULL;
		unsigned flags = d[i].read_only || vol ? BLOCK_OPEN_RDONLY : 0;
		struct block_dev *base;
		if (block_open(&base, d[i].path, d[i].format, flags, e) < 0)
			goto fail;
		d[i].dev = base;
		if (vol && open_volatile(&d[i], base, &d[i].dev, e) < 0) {
			block_close(base);
			d[i].dev = NULL;
			goto fail;
		}
	}
	return 0;
fail:
	disks_close(d, n);
	return -1;
}

void disks_close(struct vm_disk_config *d, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		block_close(d[i].dev);
		d[i].dev = NULL;
	}
}

int disks_jail(struct jail *j, struct vm_disk_config *d, unsigned n, struct err *e)
{
	for (unsigned i = 0; i < n; i++) {
		bool top_writable = !d[i].read_only && !d[i].volatile_dir;
		if (jail_add_file(j, &d[i].path, top_writable, false, e) < 0)
			return -1;
		if (d[i].volatile_dir && jail_add_file(j, &d[i].volatile_dir, true, false, e) < 0)
			return -1;
		char *chain[BLOCK_MAX_CHAIN];
		unsigned k;
		if (block_chain_paths(d[i].path, d[i].format, chain, &k, e) < 0)
			return -1;
		int r = 0;
		for (unsigned c = 1; c < k && r == 0; c++) { /* [0] is the top, added above */
			const char *real = chain[c];
			r = jail_add_file(j, &real, false, false, e);
			if (r == 0 && strcmp(real, chain[c]) != 0) /* named through a symbolic link */
				r = jail_add_alias(j, chain[c], real, e);
		}
		for (unsigned c = 0; c < k; c++)
			free(chain[c]);
		if (r < 0)
			return -1;
	}
	return 0;
}

int disks_find(const struct vm_disk_config *d, unsigned n, const char *id)
{
	for (unsigned i = 0; i < n; i++)
		if (d[i].serial && *d[i].serial && strcmp(d[i].serial, id) == 0)
			return (int)i;
	char *end;
	errno = 0;
	unsigned long v = strtoul(id, &end, 10);
	if (*id >= '0' && *id <= '9' && !*end && !errno && v < n)
		return (int)v;
	return -1;
}

struct snap {
	struct block_dev *next; /* the new top, opened over the old before the hold */
	const char *id;
	struct err *e;
	const struct timespec *t0; /* the hold began (virtio_blk_quiesce): its steps' ends, since then */
	double drained_ms, flushed_ms;
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Under the device's lock, the guest running: most of the write-back happens here. */
static int snap_preflush(struct block_dev *disk, struct block_dev **next, void *opaque)
{
	(void)next;
	return block_flush(disk, ((struct snap *)opaque)->e);
}

/* Under the device's lock, no request being served: what the guest wrote since the preflush
 * goes to the old top, which turns read-only, and the new top takes its place (and the requests
 * not yet started). */
static int snap_swap(struct block_dev *disk, struct block_dev **next, void *opaque)
{
	struct snap *s = opaque;
	s->drained_ms = ms_since(s->t0);
	if (block_flush(disk, s->e) < 0)
		return -1;
	s->flushed_ms = ms_since(s->t0);
	block_mark_read_only(disk); /* just flushed, nothing being served: nothing to write */
	*next = s->next;
	return 0;
}

static unsigned chain_depth(const struct block_dev *d)
{
	unsigned n = 0;
	for (; d; d = d->backing)
		n++;
	return n;
}

/* The disk disk_snapshot may snapshot (its index), or -1 with the reason. */
static int snapshot_target(struct vm *vm, const char *id, const char *backing, struct err *e)
{
	int i = disks_find(vm->cfg.disks, vm->cfg.ndisks, id);
	struct vm_disk_config *d = i >= 0 ? &vm->cfg.disks[i] : NULL;
	if (!d)
		return err_set(e, "disk-snapshot: no disk '%s' (give its serial= value or its index, 0 to %u)", id,
			       vm->cfg.ndisks ? vm->cfg.ndisks - 1 : 0);
	if (d->read_only)
		return err_set(e, "disk-snapshot: disk '%s' is read-only: there is nothing to snapshot", id);
	if (d->volatile_dir)
		return err_set(e,
			       "disk-snapshot: disk '%s' is volatile: its writes are not kept, so there is nothing "
			       "to snapshot (snapshot its image instead)",
			       id);
	if (strcmp(d->dev->ops->format, "qcow2") != 0)
		return err_set(e,
			       "disk-snapshot: disk '%s' is a raw image; a live snapshot needs a qcow2 disk "
			       "(convert it: shoji-img convert -O qcow2)",
			       id);
	if (!*backing || strlen(backing) > 1023)
		return err_set(e, "disk-snapshot: \"backing\" must be a file name of 1 to 1023 bytes");
	if (!vm->disks[i])
		return err_set(e, "disk-snapshot: the VM is not running");
	if (chain_depth(d->dev) >= BLOCK_MAX_CHAIN)
		return err_set(e,
			       "disk-snapshot: disk '%s' is a chain of %d images already, the most it may have: "
			       "merge some first",
			       id, BLOCK_MAX_CHAIN);
	return i;
}

/* The new top written into fd and opened over the current one, its name for the log in label;
 * the first flush done; all while the guest runs. -1 with fd not taken. */
static int snapshot_prepare(struct vm *vm, int i, const char *backing, int fd, struct snap *s, char *label, size_t size)
{
	char link[64];
	struct block_dev *top = vm->cfg.disks[i].dev;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, label, size - 1);
	if (len <= 0)
		len = snprintf(label, size, "snapshot of disk %s", s->id);
	label[len] = '\0';
	if (block_overlay_write(fd, label, top, backing, s->e) < 0 ||
	    virtio_blk_quiesce(vm->disks[i], snap_preflush, s) < 0)
		return -1;
	return block_overlay_open(&s->next, fd, label, top, s->e);
}

int disk_snapshot(struct vm *vm, const char *id, const char *backing, int fd, double *paused_ms, struct err *e)
{
	*paused_ms = 0;
	char label[PATH_MAX];
	struct snap s = {.id = id, .e = e};
	int i = snapshot_target(vm, id, backing, e);
	if (i < 0 || snapshot_prepare(vm, i, backing, fd, &s, label, sizeof(label)) < 0) {
		close(fd);
		return -1;
	}
	/* The vCPUs run on; the disk's requests wait from here, each queue's in the ring. */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s.t0 = &t0;
	int r = virtio_blk_quiesce(vm->disks[i], snap_swap, &s);
	*paused_ms = ms_since(&t0);
	if (r < 0) {
		block_overlay_discard(s.next); /* fd with it; the old top stays the disk's, writable */
		return -1;
	}
	struct vm_disk_config *d = &vm->cfg.disks[i];
	d->dev = vm->disks[i]->disk;
	log_info("disk %s: live snapshot, new top %s over %s, requests held %.3f ms (waiting for those being served "
		 "%.3f, flush %.3f, switch %.3f)",
		 id, d->dev->path, d->dev->backing->path, *paused_ms, s.drained_ms, s.flushed_ms - s.drained_ms,
		 *paused_ms - s.flushed_ms);
	return 0;
}

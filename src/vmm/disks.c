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
	if (block_overlay_create(out, fd, label, base, d->path, e) < 0) {
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
	int fd;
	const char *label, *id;
	struct err *e;
	const struct timespec *t0; /* the pause began (snap_swap): its steps' ends, since then */
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

/* Under the device's lock, the vCPUs paused: no request is in flight. */
static int snap_swap(struct block_dev *disk, struct block_dev **next, void *opaque)
{
	struct snap *s = opaque;
	s->drained_ms = ms_since(s->t0); /* the requests in flight are done */
	if (block_flush(disk, s->e) < 0)
		return -1;
	s->flushed_ms = ms_since(s->t0);
	if (block_overlay_open(next, s->fd, s->label, disk, s->e) < 0)
		return -1;
	struct err e;
	if (block_make_read_only(disk, &e) < 0) /* flushed already: nothing can fail here */
		log_warn("disk %s: %s", s->id, e.msg);
	return 0;
}

static unsigned chain_depth(const struct block_dev *d)
{
	unsigned n = 0;
	for (; d; d = d->backing)
		n++;
	return n;
}

int disk_snapshot(struct vm *vm, const char *id, const char *backing, int fd, double *paused_ms, struct err *e)
{
	*paused_ms = 0;
	int i = disks_find(vm->cfg.disks, vm->cfg.ndisks, id);
	struct vm_disk_config *d = i >= 0 ? &vm->cfg.disks[i] : NULL;
	int r = 0;
	if (!d)
		r = err_set(e, "disk-snapshot: no disk '%s' (give its serial= value or its index, 0 to %u)", id,
			    vm->cfg.ndisks ? vm->cfg.ndisks - 1 : 0);
	else if (d->read_only)
		r = err_set(e, "disk-snapshot: disk '%s' is read-only: there is nothing to snapshot", id);
	else if (d->volatile_dir)
		r = err_set(e,
			    "disk-snapshot: disk '%s' is volatile: its writes are not kept, so there is nothing "
			    "to snapshot (snapshot its image instead)",
			    id);
	else if (strcmp(d->dev->ops->format, "qcow2") != 0)
		r = err_set(e,
			    "disk-snapshot: disk '%s' is a raw image; a live snapshot needs a qcow2 disk "
			    "(convert it: shoji-img convert -O qcow2)",
			    id);
	else if (!*backing || strlen(backing) > 1023)
		r = err_set(e, "disk-snapshot: \"backing\" must be a file name of 1 to 1023 bytes");
	else if (!vm->disks[i])
		r = err_set(e, "disk-snapshot: the VM is not running");
	else if (chain_depth(d->dev) >= BLOCK_MAX_CHAIN)
		r = err_set(e,
			    "disk-snapshot: disk '%s' is a chain of %d images already, the most it may have: "
			    "merge some first",
			    id, BLOCK_MAX_CHAIN);
	if (r < 0) {
		close(fd);
		return -1;
	}
	/* The new image's header and the first flush while the guest runs; the pause then only
	 * covers what the guest wrote meanwhile and the switch. */
	char link[64], label[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, label, sizeof(label) - 1);
	if (len <= 0)
		len = snprintf(label, sizeof(label), "snapshot of disk %s", id);
	label[len] = '\0';
	struct snap s = {.fd = fd, .label = label, .id = id, .e = e};
	if (block_overlay_write(fd, label, d->dev, backing, e) < 0 ||
	    virtio_blk_quiesce(vm->disks[i], snap_preflush, &s) < 0) {
		close(fd);
		return -1;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s.t0 = &t0;
	bool was_paused = vm_paused(vm);
	if (!was_paused && vm_pause(vm, e) < 0) {
		close(fd);
		return -1;
	}
	double stopped_ms = ms_since(&t0);
	r = virtio_blk_quiesce(vm->disks[i], snap_swap, &s);
	double switched_ms = ms_since(&t0);
	if (r == 0)
		d->dev = vm->disks[i]->disk;
	if (!was_paused)
		vm_resume(vm);
	*paused_ms = ms_since(&t0);
	if (r < 0)
		close(fd);
	else
		log_info("disk %s: live snapshot, new top %s over %s, vCPUs held %.3f ms (stopping them %.3f, "
			 "draining requests %.3f, flush %.3f, switch %.3f)",
			 id, d->dev->path, d->dev->backing->path, *paused_ms, stopped_ms, s.drained_ms - stopped_ms,
			 s.flushed_ms - s.drained_ms, switched_ms - s.flushed_ms);
	return r;
}

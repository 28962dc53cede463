/* virtio_blk: the virtio block device (type 2) on a disk image of the block layer (raw or
 * qcow2, block/): read, write, flush, discard, write-zeroes, device ID (serial), read-only
 * mode, one request queue per vCPU (up to 8). The device's I/O thread takes requests from the
 * queues and hands them to a few worker threads (io/workpool.h), up to 64 in flight, served
 * side by side (raw and qcow2 allow it: block_ops.concurrent; a backend that did not would see
 * one request at a time, under the device's `lock`); the I/O thread completes them as they finish, in
 * any order, one interrupt per batch. A write is acknowledged once the backend has it (the
 * host's page cache), a flush once the backend's flush (metadata write-back, fdatasync)
 * returns: it covers every write completed before it, as virtio asks. */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_BLK_H
#define SHOJI_VMM_DEVICES_VIRTIO_BLK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../block/block.h"
#include "../../common/limits.h"
#include "../io/workpool.h"
#include "../virtio/virtio.h"

#define VIRTIO_BLK_SERIAL_LEN SHOJI_DISK_SERIAL_MAX

struct blk_req;

struct virtio_blk {
	struct virtio_dev vdev;
	struct workpool pool;
	pthread_mutex_t lock;   /* held by a worker while it uses a backend that is not concurrent */
	struct blk_req *free;   /* requests to reuse; vdev.lock */
	unsigned in_flight;     /* requests taken from the queues and not yet completed; vdev.lock */
	unsigned stalled;       /* queues with chains left at the in-flight limit (bit q); vdev.lock */
	unsigned next_q;        /* the stalled queue to serve first at the next completion; vdev.lock */
	struct block_dev *disk; /* changed only by virtio_blk_quiesce, with no request being served */
	uint64_t sectors;
	bool read_only;
	char serial[VIRTIO_BLK_SERIAL_LEN + 1];
	const char *path;
};

/* A virtio-blk device on disk (not taken over; the disk's size is rounded down to whole
 * sectors); read_only refuses the guest's writes; `queues` request queues (1 to 8; more than
 * one offers VIRTIO_BLK_F_MQ: the guest gives each vCPU its own). */
int virtio_blk_init(struct virtio_blk *b, struct block_dev *disk, bool read_only, const char *serial, unsigned queues,
		    struct machine *m, const struct guest_mem *mem, struct err *e);
void virtio_blk_destroy(struct virtio_blk *b);
/* Waits for the requests in flight and completes them (for tests, which run the device without
 * its I/O thread). Takes vdev.lock. */
void virtio_blk_settle(struct virtio_blk *b);
/* Runs fn(b->disk, opaque) with no request being served: those being served finish first;
 * those taken from the rings but not started, and the next ones, wait. fn may return a new
 * device of the same size, which serves every request started from then on (the waiting ones
 * included: none of them was completed, so the guest cannot tell on which side of the change
 * they were taken). Takes vdev.lock. */
int virtio_blk_quiesce(struct virtio_blk *b, int (*fn)(struct block_dev *disk, struct block_dev **next, void *opaque),
		       void *opaque);

#endif

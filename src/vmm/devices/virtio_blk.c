/* virtio_blk: block device on a block-layer disk (see virtio_blk.h; virtio 1.x section 5.2). */
#include "virtio_blk.h"

#include <errno.h>
#include <linux/virtio_blk.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../virtio/iov.h"

#define SECTOR                  512u
#define BLK_QUEUE_SIZE          256
#define BLK_MAX_QUEUES          8   /* request queues: one a vCPU up to this */
#define BLK_SEG_MAX             254 /* data buffers a request may have: queue size minus header and status */
#define BLK_MAX_DISCARD_SECTORS (1u << 22)
#define BLK_MAX_IN_FLIGHT       64 /* requests taken from the queue and not yet completed */

/* The configuration fields up to the write-zeroes ones and their padding: no secure erase. */
#define CONFIG_SIZE (offsetof(struct virtio_blk_config, unused1) + sizeof(((struct virtio_blk_config *)0)->unused1))

_Static_assert(VIRTIO_BLK_SERIAL_LEN == VIRTIO_BLK_ID_BYTES, "GET_ID answers the whole serial");

static struct virtio_blk *blk_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

static void config_read(struct virtio_dev *vdev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_blk *b = blk_of(vdev);
	struct virtio_blk_config c = {
		.capacity = b->sectors,
		.seg_max = BLK_SEG_MAX,
		.blk_size = SECTOR,
		.max_discard_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_discard_seg = 1,
		.discard_sector_alignment = (uint32_t)(b->disk->discard_unit / SECTOR), /* the backend's */
		.max_write_zeroes_sectors = BLK_MAX_DISCARD_SECTORS,
		.max_write_zeroes_seg = 1,
		.write_zeroes_may_unmap = 1,
		.num_queues = vdev->num_queues,
	};
	memcpy(data, (uint8_t *)&c + off, len); /* inside CONFIG_SIZE: the core checked */
}

static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t count)
{
	return sector <= b->sectors && count <= b->sectors - sector;
}

static uint8_t do_rw(struct virtio_blk *b, const struct virtq_chain *c, const struct virtio_blk_outhdr *h,
		     uint32_t *written)
{
	bool is_write = h->type == VIRTIO_BLK_T_OUT;
	if (is_write && b->read_only)
		return VIRTIO_BLK_S_IOERR;
	/* Data: the readable bytes after the header (write), or the writable bytes before the
	 * status byte (read). */
	const struct virtq_iov *iov = is_write ? c->iov : virtq_chain_writable(c);
	unsigned n = is_write ? c->n_readable : c->n_writable;
	uint64_t off = is_write ? sizeof(*h) : 0;
	uint64_t len = is_write ? c->readable_bytes - sizeof(*h) : c->writable_bytes - 1;
	if (len % SECTOR || !in_range(b, h->sector, len / SECTOR))
		return VIRTIO_BLK_S_IOERR;
	struct iovec v[BLK_SEG_MAX + 2];
	int nv = iov_slice(iov, n, off, len, v, BLK_SEG_MAX + 2);
	if (nv < 0)
		return VIRTIO_BLK_S_IOERR;
	struct err e;
	uint64_t pos = h->sector * SECTOR;
	if ((is_write ? block_writev(b->disk, v, nv, pos, &e) : block_readv(b->disk, v, nv, pos, &e)) < 0) {
		log_guest(LOG_WARN, "virtio-blk %s: %s at sector %llu failed: %s", b->path, is_write ? "write" : "read",
			  (unsigned long long)h->sector, e.msg);
		return VIRTIO_BLK_S_IOERR;
	}
	if (!is_write)
		*written = (uint32_t)len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t do_discard(struct virtio_blk *b, const struct virtq_chain *c, uint32_t type)
{
	if (b->read_only)
		return VIRTIO_BLK_S_IOERR;
	struct virtio_blk_discard_write_zeroes s;
	if (c->readable_bytes != sizeof(struct virtio_blk_outhdr) + sizeof(s) ||
	    iov_to_buf(c->iov, c->n_readable, sizeof(struct virtio_blk_outhdr), &s, sizeof(s)) != sizeof(s))
		return VIRTIO_BLK_S_UNSUPP; /* one segment a request, as the configuration says */
	if (s.num_sectors > BLK_MAX_DISCARD_SECTORS || !in_range(b, s.sector, s.num_sectors))
		return VIRTIO_BLK_S_IOERR;
	uint64_t pos = s.sector * SECTOR, len = (uint64_t)s.num_sectors * SECTOR;
	struct err e;
	int r = type == VIRTIO_BLK_T_DISCARD
		? block_discard(b->disk, pos, len, &e)
		: block_write_zeroes(b->disk, pos, len, s.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP, &e);
	if (r < 0) {
		log_guest(LOG_WARN, "virtio-blk %s: %s at sector %llu failed: %s", b->path,
			  type == VIRTIO_BLK_T_DISCARD ? "discard" : "write-zeroes", (unsigned long long)s.sector,
			  e.msg);
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Serves one request; returns the bytes written into the driver's buffers, status included. */
static uint32_t serve(struct virtio_blk *b, const struct virtq_chain *c)
{
	struct virtio_blk_outhdr h;
	uint32_t written = 0;
	uint8_t status;
	if (c->n_writable == 0)
		return 0; /* nowhere to put a status: nothing can be said */
	if (iov_to_buf(c->iov, c->n_readable, 0, &h, sizeof(h)) != sizeof(h)) {
		status = VIRTIO_BLK_S_IOERR;
	} else {
		switch (h.type) {
		case VIRTIO_BLK_T_IN:
		case VIRTIO_BLK_T_OUT: status = do_rw(b, c, &h, &written); break;
		case VIRTIO_BLK_T_FLUSH: {
			struct err e;
			status = VIRTIO_BLK_S_OK;
			if (block_flush(b->disk, &e) < 0) {
				log_guest(LOG_WARN, "virtio-blk %s: flush failed: %s", b->path, e.msg);
				status = VIRTIO_BLK_S_IOERR;
			}
			break;
		}
		case VIRTIO_BLK_T_GET_ID: {
			char id[VIRTIO_BLK_SERIAL_LEN] = {0};
			memcpy(id, b->serial, strnlen(b->serial, sizeof(id)));
			size_t room = c->writable_bytes - 1;
			written = (uint32_t)iov_from_buf(virtq_chain_writable(c), c->n_writable, 0, id,
							 room < sizeof(id) ? room : sizeof(id));
			status = VIRTIO_BLK_S_OK;
			break;
		}
		case VIRTIO_BLK_T_DISCARD:
		case VIRTIO_BLK_T_WRITE_ZEROES: status = do_discard(b, c, h.type); break;
		default: status = VIRTIO_BLK_S_UNSUPP;
		}
	}
	iov_from_buf(virtq_chain_writable(c), c->n_writable, c->writable_bytes - 1, &status, 1);
	return written + 1;
}

/* --- requests in flight ---------------------------------------------------------------------- */

/* One request handed to the workers: the chain (host pointers into guest RAM, valid as long as
 * RAM is) and, once run, the bytes written into its buffers. */
struct blk_req {
	struct work work; /* first: a work is its request */
	struct virtio_blk *b;
	unsigned q;
	struct virtq_chain chain;
	uint32_t written;
	struct virtq_iov iov[BLK_SEG_MAX + 2];
};

/* On a worker: serves the request; a backend that is not concurrent is used by one at a time. */
static void req_run(struct work *w)
{
	struct blk_req *r = (struct blk_req *)w;
	struct virtio_blk *b = r->b;
	bool one = !b->disk->ops->concurrent;
	if (one)
		pthread_mutex_lock(&b->lock);
	r->written = serve(b, &r->chain);
	if (one)
		pthread_mutex_unlock(&b->lock);
}

static struct blk_req *req_get(struct virtio_blk *b)
{
	struct blk_req *r = b->free;
	if (r)
		b->free = (struct blk_req *)r->work.next;
	else if (!(r = malloc(sizeof(*r))))
		return NULL;
	r->b = b;
	r->work.run = req_run;
	virtq_chain_init(&r->chain, r->iov, BLK_SEG_MAX + 2);
	return r;
}

static void req_put(struct virtio_blk *b, struct blk_req *r)
{
	r->work.next = (struct work *)b->free;
	b->free = r;
}

/* Takes queue q's chains to the workers, up to BLK_MAX_IN_FLIGHT requests in all; past that
 * the rest waits for completions (complete() comes back here). Lock held. */
static void submit_queue(struct virtio_blk *b, unsigned q)
{
	struct virtq *vq = &b->vdev.queues[q].vq;
	struct err e;
	b->stalled &= ~(1u << q);
	while (virtio_queue_live(&b->vdev, q)) {
		struct blk_req *r = b->in_flight < BLK_MAX_IN_FLIGHT ? req_get(b) : NULL;
		if (!r) { /* at the limit (or out of memory): again at the next completion */
			b->stalled |= 1u << q;
			if (!b->in_flight) /* none to come: try again after the other work */
				virtio_requeue(&b->vdev, q);
			break;
		}
		r->q = q;
		int got = virtq_pop(vq, &r->chain, &e);
		if (got <= 0) {
			req_put(b, r);
			if (got < 0) {
				log_guest(LOG_WARN, "virtio-blk %s: %s", b->path, e.msg);
				virtio_set_needs_reset(&b->vdev);
			}
			break;
		}
		b->in_flight++;
		workpool_submit(&b->pool, &r->work);
	}
}

/* Hands the finished requests back through their queues' used rings, one interrupt per queue
 * for the batch, and takes more from the queues that had to stop. Lock held. */
static void complete(struct virtio_blk *b)
{
	unsigned touched = 0;
	for (struct work *w = workpool_reap(&b->pool), *next; w; w = next) {
		struct blk_req *r = (struct blk_req *)w;
		next = w->next;
		virtq_push(&b->vdev.queues[r->q].vq, r->chain.head, r->written);
		touched |= 1u << r->q;
		b->in_flight--;
		req_put(b, r);
	}
	for (unsigned q = 0; q < b->vdev.num_queues; q++)
		if (touched & (1u << q))
			virtio_notify_queue(&b->vdev, q);
	/* The stalled queues in turn, starting after the one that went first last time, so that
	 * a busy queue cannot take every freed slot while the others wait. */
	unsigned n = b->vdev.num_queues;
	for (unsigned i = 0; i < n && b->stalled; i++) {
		unsigned q = (b->next_q + i) % n;
		if (b->stalled & (1u << q)) {
			submit_queue(b, q);
			b->next_q = (q + 1) % n;
		}
	}
}

static void blk_notify(struct virtio_dev *vdev, unsigned q)
{
	submit_queue(blk_of(vdev), q);
}

static void blk_fd_ready(struct virtio_dev *vdev, unsigned token)
{
	(void)token;
	complete(blk_of(vdev));
}

static int blk_start(struct virtio_dev *vdev, struct err *e)
{
	struct virtio_blk *b = blk_of(vdev);
	if (virtio_watch(vdev, b->pool.done_fd, 0) < 0)
		return err_errno(e, errno, "virtio-blk %s: cannot watch its workers", b->path);
	return 0;
}

/* The driver reset the device: the requests in flight finish (their buffers are still the
 * driver's until then) and are dropped, not completed. Lock held. */
static void blk_reset(struct virtio_dev *vdev)
{
	struct virtio_blk *b = blk_of(vdev);
	workpool_drain(&b->pool);
	for (struct work *w = workpool_reap(&b->pool), *next; w; w = next) {
		next = w->next;
		req_put(b, (struct blk_req *)w);
	}
	b->in_flight = 0;
	b->stalled = 0;
}

void virtio_blk_settle(struct virtio_blk *b)
{
	pthread_mutex_lock(&b->vdev.lock);
	while (workpool_pending(&b->pool)) {
		workpool_drain(&b->pool);
		complete(b);
	}
	pthread_mutex_unlock(&b->vdev.lock);
}

int virtio_blk_quiesce(struct virtio_blk *b, int (*fn)(struct block_dev *disk, struct block_dev **next, void *opaque),
		       void *opaque)
{
	pthread_mutex_lock(&b->vdev.lock); /* no request is taken from the rings: the I/O thread waits */
	workpool_hold(&b->pool);           /* nor started: those handed to the workers wait there */
	struct block_dev *next = NULL;
	int r = fn(b->disk, &next, opaque);
	if (r == 0 && next) {
		b->disk = next; /* a worker reads it once it takes its next job, after the release */
		b->path = next->path;
	}
	workpool_release(&b->pool);
	pthread_mutex_unlock(&b->vdev.lock);
	return r;
}

static const struct virtio_device_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
		VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES),
	.num_queues = BLK_MAX_QUEUES, /* the most; virtio_blk_init offers as many as asked */
	.queue_max_size = BLK_QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = config_read,
	.queue_notify = blk_notify,
	.fd_ready = blk_fd_ready,
	.start = blk_start,
	.reset = blk_reset,
};

int virtio_blk_init(struct virtio_blk *b, struct block_dev *disk, bool read_only, const char *serial, unsigned queues,
		    struct machine *m, const struct guest_mem *mem, struct err *e)
{
	memset(b, 0, sizeof(*b));
	if (disk->size < SECTOR)
		return err_set(e, "disk image '%s' is smaller than one 512-byte sector", disk->path);
	b->disk = disk;
	b->sectors = disk->size / SECTOR;
	b->read_only = read_only;
	b->path = disk->path;
	snprintf(b->serial, sizeof(b->serial), "%s", serial ? serial : "");
	if (workpool_init(&b->pool, "blk", SHOJI_DISK_WORKERS, e) < 0) {
		b->disk = NULL;
		return -1;
	}
	pthread_mutex_init(&b->lock, NULL);
	if (virtio_dev_init(&b->vdev, &blk_ops, b, m, mem, e) < 0) {
		pthread_mutex_destroy(&b->lock);
		workpool_destroy(&b->pool);
		b->disk = NULL;
		return -1;
	}
	if (read_only)
		b->vdev.device_features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	queues = queues < 1 ? 1 : queues > BLK_MAX_QUEUES ? BLK_MAX_QUEUES : queues;
	virtio_set_num_queues(&b->vdev, (uint16_t)queues);
	if (queues > 1)
		b->vdev.device_features |= VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	virtio_dev_destroy(&b->vdev); /* the I/O thread has stopped: nothing submits any more */
	if (b->disk) {
		workpool_drain(&b->pool);
		for (struct work *w = workpool_reap(&b->pool), *next; w; w = next) {
			next = w->next;
			free(w);
		}
		workpool_destroy(&b->pool);
		pthread_mutex_destroy(&b->lock);
		while (b->free) {
			struct blk_req *r = b->free;
			b->free = (struct blk_req *)r->work.next;
			free(r);
		}
	}
	b->disk = NULL;
}

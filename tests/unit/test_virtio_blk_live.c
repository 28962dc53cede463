/* test_virtio_blk_live: virtio-blk served as in a running VM (its I/O thread, its workers, a
 * qcow2 overlay over a raw backing file, MSI-X interrupts on eventfds) while driver threads
 * behave as Linux's does with EVENT_IDX: each kicks only when the device's avail_event asks for
 * it, waits for its request's interrupt, and reaps the used ring with interrupts suppressed and
 * enabled again as virtblk_done does. Two writers, each on a queue of its own, make synchronous
 * 4 KiB writes and flushes side by side (the pattern of the integration tests' flushwrite
 * guest) while another thread masks and unmasks the queues' MSI-X vectors, as an interrupt's
 * affinity change does. Every
 * request must complete, every record must read back, and no wait may outlast STALL_MS: a
 * device that stops completing is a failure here, with the rings' indices printed. A second case
 * does the same while another thread takes live snapshots again and again (virtio_blk_quiesce
 * with the monitor's switch: flush, a new overlay over the top, the old top read-only): no
 * write may reach an old top, and every record must read back through the chain. A third case
 * makes a request available and notifies it before DRIVER_OK: it must be served when DRIVER_OK
 * comes. */
#include "unit.h"

#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>
#include <unistd.h>

#include "image_fixture.h"
#include "virtio_fixture.h"
#include "vmm/devices/virtio_blk.h"

#define QSIZE    8
#define NQ       2
#define WRITERS  NQ /* one a queue */
#define RECORDS  40
#define REC_4K   16 /* 4 KiB writes a record */
#define SLOTS    53 /* records' places a writer, each writer its own */
#define STALL_MS 30000
#define RING(q)  (0x100000ull + 0x10000ull * (q))
#define BUF(w)   (0x400000ull + 0x10000ull * (w))
#define DISK     (8u << 20)

struct drv {
	unsigned q;
	uint16_t avail_idx, last_used;
	bool no_interrupt;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t *used_event, *avail_event;
};

static struct vfx F;
static struct virtio_blk B;
static struct block_dev *disk;
static struct drv D[NQ];
static atomic_int stalls, failures, stop_masker; /* counted on the threads, asserted on the test's */

static void *gmem(uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&F.mem, gpa, len);
}

static void msix_entry(unsigned v, uint32_t addr, uint32_t masked)
{
	vfx_wr(&F, 0x4000 + 16 * v + 12, 1, 4);
	vfx_wr(&F, 0x4000 + 16 * v, addr, 4);
	vfx_wr(&F, 0x4000 + 16 * v + 4, 0, 4);
	vfx_wr(&F, 0x4000 + 16 * v + 8, 0x40 + v, 4);
	vfx_wr(&F, 0x4000 + 16 * v + 12, masked, 4);
}

static void queue_up(unsigned q)
{
	uint64_t r = RING(q);
	vfx_wr(&F, 0x16, q, 2);
	vfx_wr(&F, 0x18, QSIZE, 2);
	vfx_wr(&F, 0x1a, q, 2); /* MSI-X vector q */
	vfx_wr(&F, 0x20, r, 8);
	vfx_wr(&F, 0x28, r + 0x1000, 8);
	vfx_wr(&F, 0x30, r + 0x2000, 8);
	vfx_wr(&F, 0x1c, 1, 2);
	struct drv *d = &D[q];
	*d = (struct drv){.q = q};
	d->desc = gmem(r, 16 * QSIZE);
	d->avail = gmem(r + 0x1000, 6 + 2 * QSIZE);
	d->used = gmem(r + 0x2000, 6 + 8 * QSIZE);
	d->used_event = &d->avail->ring[QSIZE];
	d->avail_event = (uint16_t *)&d->used->ring[QSIZE];
}

/* Up to FEATURES_OK and the queues; DRIVER_OK too when `live`. */
static void bring_up(bool live)
{
	uint64_t features = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) |
		VIRTIO_BIT(VIRTIO_BLK_F_MQ) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH);
	vfx_cfg_wr(&F, F.vp.msix_cap + 2u, 0x8000, 2); /* MSI-X on */
	for (unsigned v = 0; v <= NQ; v++)
		msix_entry(v, 0xfee00000, 0);
	vfx_wr(&F, 0x14, 1 | 2, 1);
	vfx_wr(&F, 0x08, 0, 4);
	vfx_wr(&F, 0x0c, (uint32_t)features, 4);
	vfx_wr(&F, 0x08, 1, 4);
	vfx_wr(&F, 0x0c, features >> 32, 4);
	vfx_wr(&F, 0x14, 1 | 2 | 8, 1);
	vfx_wr(&F, 0x10, NQ, 2); /* configuration vector */
	for (unsigned q = 0; q < NQ; q++)
		queue_up(q);
	if (live)
		vfx_wr(&F, 0x14, 1 | 2 | 8 | 4, 1);
}

/* A qcow2 overlay (64 KiB clusters) over a raw backing file, in the image fixture's directory;
 * the device brought up to DRIVER_OK when `live`. */
static int setup_device(void **state, bool live)
{
	struct err e;
	if (image_fx_setup(state) < 0)
		return -1;
	struct image_fx *fx = *state;
	const char *base = image_fx_in_dir(fx, "base.raw");
	int fd = open(base, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, DISK) < 0)
		return -1;
	close(fd);
	image_create(fx->path, DISK, 16, base, "raw");
	disk = image_open(fx->path, BLOCK_FORMAT_QCOW2, 0);
	if (vfx_init(&F) < 0 || virtio_blk_init(&B, disk, false, "live", NQ, &F.fm.m, &F.mem, &e) < 0 ||
	    vfx_attach(&F, &B.vdev) < 0)
		return -1;
	bring_up(live);
	return virtio_dev_start(&B.vdev, &e);
}

static int setup(void **state)
{
	return setup_device(state, true);
}

static int setup_not_live(void **state)
{
	return setup_device(state, false);
}

static int teardown(void **state)
{
	virtio_blk_destroy(&B);
	vfx_destroy(&F);
	block_close(disk);
	return image_fx_teardown(state);
}

/* Linux's virtblk_done: reaps with interrupts suppressed, then asks for the next one
 * (used_event) and looks again. */
static void reap(struct drv *d)
{
	do {
		d->no_interrupt = true;
		while (d->last_used != __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE))
			d->last_used++;
		d->no_interrupt = false;
		__atomic_store_n(d->used_event, d->last_used, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	} while (d->last_used != __atomic_load_n(&d->used->idx, __ATOMIC_ACQUIRE));
}

static void stall(struct drv *d, const char *why)
{
	struct virtq *vq = &B.vdev.queues[d->q].vq;
	print_message("stalled on queue %u (%s): driver avail %u, used seen %u, used_event %u; device "
		      "last_avail %u, used %u, avail_event %u; in flight %u, not reaped %u\n",
		      d->q, why, d->avail_idx, d->last_used, *d->used_event, vq->last_avail, vq->used_idx,
		      *d->avail_event, B.in_flight, workpool_pending(&B.pool));
	atomic_fetch_add(&stalls, 1);
}

/* Makes the chain at descriptor `head` available and kicks if the device asked. */
static void offer(struct drv *d, unsigned head)
{
	uint16_t old = d->avail_idx;
	d->avail->ring[d->avail_idx % QSIZE] = (uint16_t)head;
	d->avail_idx++;
	__atomic_store_n(&d->avail->idx, d->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vring_need_event(__atomic_load_n(d->avail_event, __ATOMIC_RELAXED), d->avail_idx, old)) {
		uint64_t one = 1;
		if (write(B.vdev.queues[d->q].kick_fd, &one, 8) != 8)
			atomic_fetch_add(&failures, 1);
	}
}

/* Until the status byte at st is written and the queue's interrupt has come: the writer owns
 * the queue, so nothing else takes its interrupts, and a status with no interrupt is a stall
 * (a guest would wait for ever). Lock held. */
static void wait_status(struct drv *d, volatile uint8_t *st)
{
	for (;;) {
		struct pollfd p = {.fd = F.vp.irqs[d->q].fd, .events = POLLIN};
		uint64_t c;
		if (poll(&p, 1, STALL_MS) != 1 || read(p.fd, &c, 8) != 8) {
			stall(d, *st == 0xee ? "no status" : "a status but no interrupt");
			return;
		}
		reap(d);
		if (*st != 0xee)
			return;
	}
}

/* One synchronous request from writer w on its queue (descriptors 0..2). */
static uint8_t request(struct drv *d, unsigned w, uint32_t type, uint64_t sector, const void *data, uint32_t len)
{
	uint64_t hdr = BUF(w), st = hdr + 16, buf = hdr + 0x1000;
	uint32_t h[4] = {type, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};
	memcpy(gmem(hdr, 16), h, 16);
	volatile uint8_t *status = gmem(st, 1);
	*status = 0xee;
	unsigned i = 0, n = 1;
	d->desc[i] = (struct vring_desc){hdr, 16, VRING_DESC_F_NEXT, (uint16_t)n};
	if (len) {
		memcpy(gmem(buf, len), data, len);
		d->desc[n] = (struct vring_desc){buf, len, VRING_DESC_F_NEXT, (uint16_t)(n + 1)};
		n++;
	}
	d->desc[n] = (struct vring_desc){st, 1, VRING_DESC_F_WRITE, 0};
	offer(d, i);
	wait_status(d, status);
	return *status;
}

static uint64_t record_offset(unsigned w, unsigned i)
{
	return ((uint64_t)(w * SLOTS + i * 37 % SLOTS) * REC_4K + 1) * 4096; /* 4 KiB past a 64 KiB cluster */
}

static void fill(uint8_t *b, unsigned w, unsigned i, unsigned k)
{
	for (unsigned j = 0; j < 4096; j++)
		b[j] = (uint8_t)(w * 131 + i * 7 + k * 3 + j);
}

static void *writer(void *arg)
{
	unsigned w = (unsigned)(uintptr_t)arg;
	struct drv *d = &D[w]; /* its own queue */
	uint8_t b[4096];
	for (unsigned i = 0; i < RECORDS && !atomic_load(&stalls); i++) {
		for (unsigned k = 0; k < REC_4K && !atomic_load(&stalls); k++) {
			fill(b, w, i, k);
			uint64_t sector = (record_offset(w, i) + k * 4096ull) / 512;
			if (request(d, w, VIRTIO_BLK_T_OUT, sector, b, 4096) != VIRTIO_BLK_S_OK)
				atomic_fetch_add(&failures, 1);
		}
		if (!atomic_load(&stalls) && request(d, w, VIRTIO_BLK_T_FLUSH, 0, NULL, 0) != VIRTIO_BLK_S_OK)
			atomic_fetch_add(&failures, 1);
	}
	return NULL;
}

/* Masks a queue's vector, moves it (another address) and unmasks it, again and again. */
static void *masker(void *arg)
{
	(void)arg;
	unsigned seed = 5;
	while (!atomic_load(&stop_masker)) {
		unsigned v = (unsigned)rand_r(&seed) % NQ;
		msix_entry(v, 0xfee00000 | ((rand_r(&seed) & 1u) << 12), 1);
		usleep((unsigned)rand_r(&seed) % 200);
		vfx_wr(&F, 0x4000 + 16 * v + 12, 0, 4);
		usleep((unsigned)rand_r(&seed) % 500);
	}
	return NULL;
}

/* A later record of the writer may have taken the same place: the last one wins. */
static bool last_in_slot(unsigned w, unsigned i)
{
	for (unsigned j = i + 1; j < RECORDS; j++)
		if (record_offset(w, j) == record_offset(w, i))
			return false;
	return true;
}

static void check_records(void)
{
	uint8_t want[4096], got[4096];
	struct err e;
	for (unsigned w = 0; w < WRITERS; w++)
		for (unsigned i = 0; i < RECORDS; i++)
			for (unsigned k = 0; last_in_slot(w, i) && k < REC_4K; k++) {
				struct iovec v = {got, sizeof(got)};
				assert_int_equal(block_readv(disk, &v, 1, record_offset(w, i) + k * 4096ull, &e), 0);
				fill(want, w, i, k);
				assert_memory_equal(got, want, sizeof(want));
			}
}

/* The writers to their end, while `beside(arg)` runs on a thread of its own until *stop is set. */
static void writers_beside(void *(*beside)(void *), void *arg, atomic_int *stop)
{
	pthread_t t[WRITERS], b;
	assert_int_equal(pthread_create(&b, NULL, beside, arg), 0);
	for (unsigned w = 0; w < WRITERS; w++)
		assert_int_equal(pthread_create(&t[w], NULL, writer, (void *)(uintptr_t)w), 0);
	for (unsigned w = 0; w < WRITERS; w++)
		pthread_join(t[w], NULL);
	atomic_store(stop, 1);
	pthread_join(b, NULL);
}

static void writers_with_masking(void **state)
{
	(void)state;
	writers_beside(masker, NULL, &stop_masker);
	assert_int_equal(atomic_load(&stalls), 0);
	assert_int_equal(atomic_load(&failures), 0);
	check_records();
}

static atomic_int stop_snapshots;
static int snapshots;

/* As the monitor's live snapshot switches (disks.c): nothing being served, the top flushed, a
 * new overlay over it, the old one read-only. */
static int swap_top(struct block_dev *top, struct block_dev **next, void *opaque)
{
	struct image_fx *fx = opaque;
	char name[32];
	struct err e;
	snprintf(name, sizeof(name), "snap%d.qcow2", snapshots);
	int fd = open(image_fx_in_dir(fx, name), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || block_flush(top, &e) < 0 || block_overlay_create(next, fd, name, top, name, &e) < 0)
		return -1;
	block_mark_read_only(top);
	snapshots++;
	return 0;
}

static void *snapshotter(void *arg)
{
	while (!atomic_load(&stop_snapshots) && snapshots < BLOCK_MAX_CHAIN - 2) {
		usleep(3000);
		if (virtio_blk_quiesce(&B, swap_top, arg) < 0)
			atomic_fetch_add(&failures, 1);
	}
	return NULL;
}

static void writers_with_snapshots(void **state)
{
	writers_beside(snapshotter, *state, &stop_snapshots);
	disk = B.disk; /* the top: reads go through the chain; closing it closes the chain */
	assert_true(snapshots >= 2);
	assert_int_equal(atomic_load(&stalls), 0);
	assert_int_equal(atomic_load(&failures), 0);
	check_records();
}

/* A request the driver made available and notified before DRIVER_OK is not served then (the
 * queue is not live), and is served when DRIVER_OK comes, with no second notification. */
static void notified_before_driver_ok(void **state)
{
	(void)state;
	struct drv *d = &D[0];
	uint64_t hdr = BUF(0), st = hdr + 16;
	uint32_t h[4] = {VIRTIO_BLK_T_FLUSH, 0, 0, 0};
	memcpy(gmem(hdr, 16), h, 16);
	volatile uint8_t *status = gmem(st, 1);
	*status = 0xee;
	d->desc[0] = (struct vring_desc){hdr, 16, VRING_DESC_F_NEXT, 1};
	d->desc[1] = (struct vring_desc){st, 1, VRING_DESC_F_WRITE, 0};
	offer(d, 0); /* avail_event is 0: this kicks */
	usleep(100 * 1000);
	assert_int_equal(*status, 0xee);
	vfx_wr(&F, 0x14, 1 | 2 | 8 | 4, 1);
	wait_status(d, status);
	assert_int_equal(*status, VIRTIO_BLK_S_OK);
	assert_int_equal(atomic_load(&stalls), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(writers_with_masking, setup, teardown),
		cmocka_unit_test_setup_teardown(writers_with_snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(notified_before_driver_ok, setup_not_live, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

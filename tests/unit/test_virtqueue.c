/* test_virtqueue: the split virtqueue against a 2 MiB guest whose rings and descriptors the tests
 * write as a driver would: chains direct and indirect, used ring updates and notification
 * decisions (EVENT_IDX with wrap-around, NO_INTERRUPT), each kind of malformed input, ring
 * checks at set-up, and a driver rewriting descriptors while the device pops. */
#include "unit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "vmm/memory.h"
#include "vmm/virtio/virtqueue.h"

#define MIB      (1ull << 20)
#define GIB      (1ull << 30)
#define MEM_SIZE (2 * MIB)

/* Where the tests put things in guest memory. */
#define DESC   0x10000ull
#define AVAIL  0x20000ull
#define USED   0x30000ull
#define BUF    0x40000ull
#define INDIR  0x80000ull
#define INDIR2 0x90000ull

#define R 0
#define W VRING_DESC_F_WRITE
#define N VRING_DESC_F_NEXT
#define I VRING_DESC_F_INDIRECT

struct fixture {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_chain c;
	struct err e;
	uint16_t avail_idx; /* the driver's */
	struct virtq_iov iov[VIRTQ_MAX_IOV];
};

static int fixture_setup_size(void **state, uint64_t mem_size)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (guest_mem_init(&f->mem, mem_size, &f->e) < 0) {
		free(f);
		return -1;
	}
	virtq_chain_init(&f->c, f->iov, VIRTQ_MAX_IOV);
	*state = f;
	return 0;
}

static int fixture_setup(void **state)
{
	return fixture_setup_size(state, MEM_SIZE);
}

/* Five GiB: RAM below the PCI hole and a second region from 4 GiB; mostly never touched. */
static int fixture_setup_big(void **state)
{
	return fixture_setup_size(state, 5 * GIB);
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_free(&f->mem);
	free(f);
	return 0;
}

static uint8_t *host(struct fixture *f, uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(&f->mem, gpa, len);
	assert_non_null(p);
	return p;
}

static void put16(struct fixture *f, uint64_t gpa, uint16_t v)
{
	memcpy(host(f, gpa, 2), &v, 2);
}

static uint16_t get16(struct fixture *f, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, host(f, gpa, 2), 2);
	return v;
}

static uint32_t get32(struct fixture *f, uint64_t gpa)
{
	uint32_t v;
	memcpy(&v, host(f, gpa, 4), 4);
	return v;
}

/* Descriptor i of the table at `table`. */
static void put_desc(struct fixture *f, uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *p = host(f, table + 16ull * i, 16);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void qinit(struct fixture *f, uint16_t size, bool event_idx, bool indirect)
{
	f->avail_idx = 0;
	put16(f, AVAIL + 2, 0);
	assert_int_equal(virtq_init(&f->q, &f->mem, size, DESC, AVAIL, USED, event_idx, indirect, &f->e), 0);
	assert_false(f->q.broken);
}

/* The driver makes the chain at head available. */
static void offer(struct fixture *f, uint16_t head)
{
	put16(f, AVAIL + 4 + 2ull * (f->avail_idx & (f->q.size - 1)), head);
	f->avail_idx++;
	put16(f, AVAIL + 2, f->avail_idx);
}

static void set_avail_flags(struct fixture *f, uint16_t v)
{
	put16(f, AVAIL, v);
}
static void set_used_event(struct fixture *f, uint16_t v)
{
	put16(f, AVAIL + 4 + 2ull * f->q.size, v);
}
static uint16_t avail_event(struct fixture *f)
{
	return get16(f, USED + 4 + 8ull * f->q.size);
}
static uint16_t used_idx(struct fixture *f)
{
	return get16(f, USED + 2);
}

static void assert_used(struct fixture *f, uint16_t n, uint32_t id, uint32_t len)
{
	uint64_t elem = USED + 4 + 8ull * (n & (f->q.size - 1));
	assert_int_equal(get32(f, elem), id);
	assert_int_equal(get32(f, elem + 4), len);
}

static void assert_iov(struct fixture *f, unsigned i, uint64_t gpa, uint32_t len)
{
	assert_ptr_equal(f->c.iov[i].base, f->mem.host + gpa);
	assert_int_equal(f->c.iov[i].len, len);
}

static int pop(struct fixture *f)
{
	f->e.msg[0] = '\0';
	return virtq_pop(&f->q, &f->c, &f->e);
}

/* The next pop fails with a message containing `needle`; the queue then stays broken even once
 * the driver offers a good chain, and pushes leave the used ring alone. */
static void assert_broken(struct fixture *f, const char *needle)
{
	uint16_t used_before = used_idx(f);
	assert_int_equal(pop(f), -1);
	assert_true(f->q.broken);
	assert_contains(f->e.msg, needle);
	put_desc(f, DESC, 0, BUF, 16, R, 0);
	offer(f, 0);
	assert_int_equal(pop(f), -1);
	assert_contains(f->e.msg, "broken");
	virtq_push(&f->q, 0, 1);
	assert_int_equal(used_idx(f), used_before);
}

/* ---- well-formed chains ---- */

static void vq_readable_writable(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 5, BUF, 100, R | N, 2);
	put_desc(f, DESC, 2, BUF + 0x1000, 200, W, 0);
	offer(f, 5);

	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 5);
	assert_int_equal(f->c.n_readable, 1);
	assert_int_equal(f->c.n_writable, 1);
	assert_int_equal(f->c.readable_bytes, 100);
	assert_int_equal(f->c.writable_bytes, 200);
	assert_iov(f, 0, BUF, 100);
	assert_iov(f, 1, BUF + 0x1000, 200);
	assert_ptr_equal(virtq_chain_writable(&f->c), &f->c.iov[1]);
	assert_int_equal(pop(f), 0);

	virtq_push(&f->q, 5, 42);
	assert_int_equal(used_idx(f), 1);
	assert_used(f, 0, 5, 42);
	assert_true(virtq_should_notify(&f->q));
	assert_int_equal(pop(f), 0);
}

/* A device that took chains it cannot use yet gives them back and gets them again, in order;
 * it can never give back more than it holds. */
static void vq_rewind(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	for (uint16_t i = 0; i < 3; i++) {
		put_desc(f, DESC, i, BUF + 0x1000ull * i, 64, W, 0);
		offer(f, i);
	}
	assert_int_equal(pop(f), 1);
	virtq_push(&f->q, f->c.head, 0); /* chain 0 done */
	assert_int_equal(pop(f), 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 2);
	virtq_rewind(&f->q, 100); /* only the two in flight go back */
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 2);
	assert_int_equal(pop(f), 0);
}

static void vq_three_descriptors(void **state)
{
	struct fixture *f = *state;
	qinit(f, 4, false, false);
	/* A block request: header, data, status byte; and a lone readable one after it. */
	put_desc(f, DESC, 0, BUF, 16, R | N, 3);
	put_desc(f, DESC, 3, BUF + 0x100, 4096, W | N, 1);
	put_desc(f, DESC, 1, BUF + 0x2000, 1, W, 0);
	put_desc(f, DESC, 2, BUF + 0x3000, 7, R, 0);
	offer(f, 0);
	offer(f, 2);

	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 0);
	assert_int_equal(f->c.n_readable, 1);
	assert_int_equal(f->c.n_writable, 2);
	assert_int_equal(f->c.writable_bytes, 4097);
	assert_iov(f, 0, BUF, 16);
	assert_iov(f, 1, BUF + 0x100, 4096);
	assert_iov(f, 2, BUF + 0x2000, 1);

	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 2);
	assert_int_equal(f->c.n_readable, 1);
	assert_int_equal(f->c.n_writable, 0);
	assert_iov(f, 0, BUF + 0x3000, 7);
	assert_int_equal(pop(f), 0);

	/* Out of order completion. */
	virtq_push(&f->q, 2, 0);
	virtq_push(&f->q, 0, 4097);
	assert_int_equal(used_idx(f), 2);
	assert_used(f, 0, 2, 0);
	assert_used(f, 1, 0, 4097);
}

static void vq_full_length_chain(void **state)
{
	struct fixture *f = *state;
	/* A chain as long as the queue is allowed; the queue may be full. */
	qinit(f, 4, false, false);
	for (uint16_t i = 0; i < 4; i++)
		put_desc(f, DESC, i, BUF + 0x100 * i, 8, i < 2 ? R | N : W | (i < 3 ? N : 0), (uint16_t)(i + 1));
	for (int i = 0; i < 4; i++)
		offer(f, 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pop(f), 1);
		assert_int_equal(f->c.n_readable, 2);
		assert_int_equal(f->c.n_writable, 2);
	}
	assert_int_equal(pop(f), 0);
}

static void vq_indirect(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, true);
	/* The WRITE flag on the descriptor naming the table is ignored. */
	put_desc(f, DESC, 1, INDIR, 3 * 16, I | W, 0);
	put_desc(f, INDIR, 0, BUF, 10, R | N, 2);
	put_desc(f, INDIR, 2, BUF + 0x100, 20, R | N, 1);
	put_desc(f, INDIR, 1, BUF + 0x200, 30, W, 0);
	offer(f, 1);

	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.head, 1);
	assert_int_equal(f->c.n_readable, 2);
	assert_int_equal(f->c.n_writable, 1);
	assert_int_equal(f->c.readable_bytes, 30);
	assert_int_equal(f->c.writable_bytes, 30);
	assert_iov(f, 0, BUF, 10);
	assert_iov(f, 1, BUF + 0x100, 20);
	assert_iov(f, 2, BUF + 0x200, 30);
	virtq_push(&f->q, 1, 30);
	assert_used(f, 0, 1, 30);
}

static void vq_indirect_after_direct(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, true);
	/* Direct descriptors, then one naming an unaligned table of the largest allowed size. */
	put_desc(f, DESC, 0, BUF, 16, R | N, 7);
	put_desc(f, DESC, 7, INDIR + 8, VIRTQ_MAX_IOV * 16 - 16 * 1, I, 0);
	for (uint16_t i = 0; i < VIRTQ_MAX_IOV - 1; i++)
		put_desc(f, INDIR + 8, i, BUF + 0x1000 + i, 1, W | (i + 2u < VIRTQ_MAX_IOV ? N : 0), (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.n_readable, 1);
	assert_int_equal(f->c.n_writable, VIRTQ_MAX_IOV - 1);
	assert_int_equal(f->c.writable_bytes, VIRTQ_MAX_IOV - 1);
	assert_iov(f, VIRTQ_MAX_IOV - 1, BUF + 0x1000 + VIRTQ_MAX_IOV - 2, 1);
}

static void vq_ring_wraps(void **state)
{
	struct fixture *f = *state;
	/* Past 65536 requests both free-running indices wrap. */
	qinit(f, 4, true, false);
	put_desc(f, DESC, 3, BUF, 64, W, 0);
	for (uint32_t n = 1; n <= 70000; n++) {
		offer(f, 3);
		assert_int_equal(pop(f), 1);
		assert_int_equal(f->c.head, 3);
		set_used_event(f, f->q.used_idx);
		virtq_push(&f->q, 3, n);
		assert_int_equal(used_idx(f), (uint16_t)n);
		assert_true(virtq_should_notify(&f->q));
		assert_int_equal(pop(f), 0);
		assert_int_equal(avail_event(f), (uint16_t)n);
	}
	assert_used(f, (uint16_t)69999, 3, 70000);
	assert_int_equal(f->q.last_avail, (uint16_t)70000);
}

static void vq_rewrite_between_pops(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 64, R | N, 1);
	put_desc(f, DESC, 1, BUF + 64, 64, W, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);

	/* The driver rewrites the chain to reach past RAM and to loop; the chain the device
	 * holds still describes what was checked. */
	put_desc(f, DESC, 0, MEM_SIZE - 8, 64, R | N, 1);
	put_desc(f, DESC, 1, BUF + 64, 0xffffffff, W | N, 0);
	assert_iov(f, 0, BUF, 64);
	assert_iov(f, 1, BUF + 64, 64);
	assert_int_equal(f->c.n_readable + f->c.n_writable, 2);
	virtq_push(&f->q, 0, 64);

	/* Offered again, the rewritten chain is refused. */
	offer(f, 0);
	assert_broken(f, "not inside guest RAM");
}

/* A driver thread rewrites descriptors as fast as it can while the device pops: every chain the
 * device takes must describe guest RAM, whatever mix of old and new words it saw. */
struct rewriter {
	struct fixture *f;
	bool stop;
};

static void *rewriter_run(void *arg)
{
	struct rewriter *rw = arg;
	uint8_t *table = guest_mem_ptr(&rw->f->mem, DESC, 16 * 4);
	uint8_t *indir = guest_mem_ptr(&rw->f->mem, INDIR, 16 * 4);
	static const uint64_t addrs[] = {BUF, MEM_SIZE - 32, ~0ull - 16, INDIR, 0};
	static const uint32_t lens[] = {32, 64, 0, 0xffffffff, 16, 48};
	static const uint16_t flags[] = {R, W, R | N, W | N, I, I | N};
	uint32_t x = 12345;
	while (!__atomic_load_n(&rw->stop, __ATOMIC_RELAXED)) {
		x = x * 1103515245 + 12345;
		uint8_t *t = (x >> 31) ? indir : table;
		uint8_t *d = t + 16 * ((x >> 8) & 3);
		__atomic_store_n((uint64_t *)d, addrs[(x >> 12) % 5], __ATOMIC_RELAXED);
		__atomic_store_n((uint32_t *)(d + 8), lens[(x >> 16) % 6], __ATOMIC_RELAXED);
		__atomic_store_n((uint16_t *)(d + 12), flags[(x >> 20) % 6], __ATOMIC_RELAXED);
		__atomic_store_n((uint16_t *)(d + 14), (x >> 24) & 7, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void vq_concurrent_rewrites(void **state)
{
	struct fixture *f = *state;
	struct rewriter rw = {.f = f};
	pthread_t t;
	unsigned ok = 0, broken = 0;
	uint8_t *lo = f->mem.host, *hi = f->mem.host + MEM_SIZE;

	qinit(f, 4, true, true);
	assert_int_equal(pthread_create(&t, NULL, rewriter_run, &rw), 0);
	for (int n = 0; n < 200000; n++) {
		offer(f, (uint16_t)(n & 3));
		int r = pop(f);
		if (r == 1) {
			ok++;
			unsigned k = f->c.n_readable + f->c.n_writable;
			assert_true(k >= 1 && k <= VIRTQ_MAX_IOV);
			for (unsigned i = 0; i < k; i++) {
				uint8_t *b = f->c.iov[i].base;
				assert_true(f->c.iov[i].len > 0);
				assert_true(b >= lo && b < hi);
				assert_true(f->c.iov[i].len <= (uint64_t)(hi - b));
			}
			virtq_push(&f->q, f->c.head, 0);
		} else {
			assert_int_equal(r, -1);
			assert_true(f->q.broken);
			broken++;
			qinit(f, 4, true, true);
		}
	}
	__atomic_store_n(&rw.stop, true, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	print_message("rewrites: %u chains taken, %u refused\n", ok, broken);
	assert_int_equal(ok + broken, 200000);
}

/* ---- notifications ---- */

static void vq_notify_empty(void **state)
{
	struct fixture *f = *state;
	/* Nothing pushed: no notification, whatever the driver asks for. */
	qinit(f, 8, false, false);
	set_avail_flags(f, 0);
	assert_int_equal(pop(f), 0);
	assert_false(virtq_should_notify(&f->q));
	qinit(f, 8, true, false);
	set_used_event(f, 0);
	assert_int_equal(pop(f), 0);
	assert_false(virtq_should_notify(&f->q));
	/* After one notification, none again until something more is pushed. */
	put_desc(f, DESC, 0, BUF, 8, W, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	virtq_push(&f->q, 0, 8);
	assert_true(virtq_should_notify(&f->q));
	assert_false(virtq_should_notify(&f->q));
	/* An unset-up queue has nothing to say either. */
	virtq_reset(&f->q);
	assert_false(virtq_should_notify(&f->q));
	assert_int_equal(pop(f), -1);
	assert_contains(f->e.msg, "not set up");
}

static void vq_no_interrupt(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, W, 0);

	set_avail_flags(f, VRING_AVAIL_F_NO_INTERRUPT);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	virtq_push(&f->q, 0, 8);
	assert_false(virtq_should_notify(&f->q));

	set_avail_flags(f, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	virtq_push(&f->q, 0, 8);
	assert_true(virtq_should_notify(&f->q));

	/* With EVENT_IDX the flag is ignored and used_event decides. */
	qinit(f, 8, true, false);
	set_avail_flags(f, VRING_AVAIL_F_NO_INTERRUPT);
	set_used_event(f, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	virtq_push(&f->q, 0, 8);
	assert_true(virtq_should_notify(&f->q));
}

static void push_one(struct fixture *f)
{
	put_desc(f, DESC, 0, BUF, 8, W, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	virtq_push(&f->q, 0, 8);
}

static void vq_event_idx(void **state)
{
	struct fixture *f = *state;
	qinit(f, 16, true, false);
	/* init asks the driver to notify for its first buffer. */
	assert_int_equal(avail_event(f), 0);

	set_used_event(f, 0);
	push_one(f); /* used idx 1: entry 0 written, as asked */
	assert_true(virtq_should_notify(&f->q));
	push_one(f); /* 2 */
	assert_false(virtq_should_notify(&f->q));

	/* A batch that passes used_event notifies once. */
	set_used_event(f, 4);
	push_one(f);
	push_one(f);
	assert_false(virtq_should_notify(&f->q)); /* 4: entry 4 not written yet */
	push_one(f);
	push_one(f);
	assert_true(virtq_should_notify(&f->q)); /* 6 */
	push_one(f);
	assert_false(virtq_should_notify(&f->q));

	/* A used_event the device already passed long ago asks for nothing. */
	set_used_event(f, 2);
	push_one(f);
	assert_false(virtq_should_notify(&f->q));

	/* Popping until empty publishes avail_event as the next entry to come. */
	assert_int_equal(pop(f), 0);
	assert_int_equal(avail_event(f), f->q.last_avail);
	assert_int_equal(f->q.last_avail, 8);
	/* Without EVENT_IDX nothing is written there. */
	qinit(f, 16, false, false);
	put16(f, USED + 4 + 8 * 16, 0x1234);
	assert_int_equal(pop(f), 0);
	assert_int_equal(avail_event(f), 0x1234);
}

static void vq_event_idx_wrap(void **state)
{
	struct fixture *f = *state;
	qinit(f, 16, true, false);
	/* As if 65534 buffers had been used and signalled. */
	f->q.used_idx = f->q.signalled_used = 65534;
	f->q.last_avail = f->avail_idx = 65534;
	put16(f, AVAIL + 2, f->avail_idx);

	set_used_event(f, 65535);
	push_one(f); /* used idx 65535 */
	assert_false(virtq_should_notify(&f->q));
	push_one(f); /* 0: entry 65535 written */
	assert_int_equal(used_idx(f), 0);
	assert_true(virtq_should_notify(&f->q));

	set_used_event(f, 0);
	push_one(f); /* 1 */
	assert_true(virtq_should_notify(&f->q));

	/* A batch across the wrap. */
	f->q.used_idx = f->q.signalled_used = 65535;
	set_used_event(f, 0);
	push_one(f);
	push_one(f); /* 65535 -> 1 */
	assert_true(virtq_should_notify(&f->q));

	f->q.used_idx = f->q.signalled_used = 65534;
	set_used_event(f, 65000);
	push_one(f);
	push_one(f);
	push_one(f);
	push_one(f); /* 65534 -> 2, event long behind */
	assert_false(virtq_should_notify(&f->q));

	f->q.used_idx = f->q.signalled_used = 65530;
	set_used_event(f, 65533);
	push_one(f);
	push_one(f);
	push_one(f);
	assert_false(virtq_should_notify(&f->q)); /* 65533 */
	push_one(f);
	assert_true(virtq_should_notify(&f->q)); /* 65534 */
}

/* ---- malformed driver input ---- */

static void vq_bad_head(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	offer(f, 8);
	assert_broken(f, "head 8 is outside the queue");
}

static void vq_bad_next(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, R | N, 8);
	offer(f, 0);
	assert_broken(f, "next index 8");
}

static void vq_loop(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, R | N, 1);
	put_desc(f, DESC, 1, BUF, 8, R | N, 0);
	offer(f, 0);
	assert_broken(f, "loops");
}

static void vq_self_loop(void **state)
{
	struct fixture *f = *state;
	qinit(f, 1, false, false);
	put_desc(f, DESC, 0, BUF, 8, W | N, 0);
	offer(f, 0);
	assert_broken(f, "loops");
}

static void vq_longer_than_queue(void **state)
{
	struct fixture *f = *state;
	qinit(f, 4, false, false);
	for (uint16_t i = 0; i < 4; i++)
		put_desc(f, DESC, i, BUF, 8, R | N, (uint16_t)((i + 1) & 3));
	offer(f, 2);
	assert_broken(f, "longer than its queue (4)");
}

static void vq_zero_length(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, R | N, 1);
	put_desc(f, DESC, 1, BUF, 0, W, 0);
	offer(f, 0);
	assert_broken(f, "zero-length");
}

static void vq_outside_ram(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, MEM_SIZE, 1, R, 0);
	offer(f, 0);
	assert_broken(f, "not inside guest RAM");

	/* Crossing the end of RAM. */
	qinit(f, 8, false, false);
	put_desc(f, DESC, 1, MEM_SIZE - 16, 17, W, 0);
	offer(f, 1);
	assert_broken(f, "not inside guest RAM");

	/* The last byte of RAM is fine. */
	qinit(f, 8, false, false);
	put_desc(f, DESC, 1, MEM_SIZE - 1, 1, W, 0);
	offer(f, 1);
	assert_int_equal(pop(f), 1);
	assert_iov(f, 0, MEM_SIZE - 1, 1);
}

static void vq_address_overflow(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, 0xfffffffffffff000ull, 0x2000, W, 0);
	offer(f, 0);
	assert_broken(f, "not inside guest RAM");

	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, ~0ull, 0xffffffff, R, 0);
	offer(f, 0);
	assert_broken(f, "not inside guest RAM");
}

static void vq_indirect_not_negotiated(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, INDIR, 16, I, 0);
	put_desc(f, INDIR, 0, BUF, 8, R, 0);
	offer(f, 0);
	assert_broken(f, "indirect descriptor not negotiated");
}

static void indirect_table_case(struct fixture *f, uint64_t addr, uint32_t len, const char *needle)
{
	qinit(f, 8, false, true);
	for (uint16_t i = 0; i < 4; i++)
		put_desc(f, INDIR, i, BUF, 8, R, 0);
	put_desc(f, DESC, 3, addr, len, I, 0);
	offer(f, 3);
	assert_broken(f, needle);
}

static void vq_indirect_bad_table(void **state)
{
	struct fixture *f = *state;
	indirect_table_case(f, INDIR, 0, "indirect table of 0 bytes");
	indirect_table_case(f, INDIR, 24, "indirect table of 24 bytes");
	indirect_table_case(f, INDIR, 15, "indirect table of 15 bytes");
	indirect_table_case(f, INDIR, (VIRTQ_MAX_IOV + 1) * 16, "indirect table of 16400 bytes");
	indirect_table_case(f, MEM_SIZE - 16, 32, "not inside guest RAM");
	indirect_table_case(f, ~0ull - 15, 32, "not inside guest RAM");
}

static void vq_indirect_nested(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, true);
	put_desc(f, DESC, 0, INDIR, 32, I, 0);
	put_desc(f, INDIR, 0, BUF, 8, R | N, 1);
	put_desc(f, INDIR, 1, INDIR2, 16, I, 0);
	put_desc(f, INDIR2, 0, BUF, 8, R, 0);
	offer(f, 0);
	assert_broken(f, "indirect descriptor in an indirect table");
}

static void vq_indirect_with_next(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, true);
	put_desc(f, DESC, 0, INDIR, 16, I | N, 1);
	put_desc(f, DESC, 1, BUF, 8, W, 0);
	put_desc(f, INDIR, 0, BUF, 8, R, 0);
	offer(f, 0);
	assert_broken(f, "indirect descriptor with NEXT");
}

static void vq_indirect_bad_next(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, true);
	/* The table holds 2 entries; next must stay below 2 though the queue holds 8. */
	put_desc(f, DESC, 0, INDIR, 32, I, 0);
	put_desc(f, INDIR, 0, BUF, 8, R | N, 2);
	put_desc(f, INDIR, 2, BUF, 8, R, 0);
	offer(f, 0);
	assert_broken(f, "next index 2 is outside its indirect table (2)");
}

static void vq_indirect_loop(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, true);
	put_desc(f, DESC, 0, INDIR, 48, I, 0);
	put_desc(f, INDIR, 0, BUF, 8, R | N, 1);
	put_desc(f, INDIR, 1, BUF, 8, R | N, 2);
	put_desc(f, INDIR, 2, BUF, 8, R | N, 1);
	offer(f, 0);
	assert_broken(f, "loops or is longer than its indirect table (3)");
}

static void vq_readable_after_writable(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, W | N, 1);
	put_desc(f, DESC, 1, BUF, 8, R, 0);
	offer(f, 0);
	assert_broken(f, "readable buffer after a writable one");

	/* Also when the writable one is direct and the readable one indirect. */
	qinit(f, 8, false, true);
	put_desc(f, DESC, 0, BUF, 8, W | N, 1);
	put_desc(f, DESC, 1, INDIR, 16, I, 0);
	put_desc(f, INDIR, 0, BUF, 8, R, 0);
	offer(f, 0);
	assert_broken(f, "readable buffer after a writable one");
}

static void vq_too_many_buffers(void **state)
{
	struct fixture *f = *state;
	/* More than the caller's iov array. */
	struct virtq_iov small[2];
	virtq_chain_init(&f->c, small, 2);
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, R | N, 1);
	put_desc(f, DESC, 1, BUF, 8, R | N, 2);
	put_desc(f, DESC, 2, BUF, 8, W, 0);
	offer(f, 0);
	assert_broken(f, "more than 2 buffers");
	virtq_chain_init(&f->c, f->iov, VIRTQ_MAX_IOV);

	/* More than VIRTQ_MAX_IOV: a direct one and a full indirect table. */
	qinit(f, 8, false, true);
	put_desc(f, DESC, 0, BUF, 8, R | N, 1);
	put_desc(f, DESC, 1, INDIR, VIRTQ_MAX_IOV * 16, I, 0);
	for (uint16_t i = 0; i < VIRTQ_MAX_IOV; i++)
		put_desc(f, INDIR, i, BUF, 1, W | (i + 1u < VIRTQ_MAX_IOV ? N : 0), (uint16_t)(i + 1));
	offer(f, 0);
	assert_broken(f, "more than 1024 buffers");

	/* The full table alone is fine. */
	qinit(f, 8, false, true);
	offer(f, 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.n_writable, VIRTQ_MAX_IOV);
}

static void vq_avail_runaway(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, R, 0);
	/* A full ring is fine ... */
	for (int i = 0; i < 8; i++)
		offer(f, 0);
	assert_int_equal(pop(f), 1);
	/* ... but idx may not run more than size entries ahead of the device. */
	f->avail_idx = (uint16_t)(f->q.last_avail + 9);
	put16(f, AVAIL + 2, f->avail_idx);
	assert_broken(f, "9 entries past 1, queue size 8");

	/* Going backwards looks the same. */
	qinit(f, 8, false, false);
	put16(f, AVAIL + 2, 0xffff);
	assert_broken(f, "65535 entries past 0");
}

static void vq_reinit_clears_broken(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	offer(f, 9);
	assert_int_equal(pop(f), -1);
	assert_true(f->q.broken);
	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, BUF, 8, R, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
}

/* ---- ring set-up ---- */

static void expect_init_fails(struct fixture *f, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
			      const char *needle)
{
	f->e.msg[0] = '\0';
	assert_int_equal(virtq_init(&f->q, &f->mem, size, desc, avail, used, true, true, &f->e), -1);
	assert_contains(f->e.msg, needle);
	assert_true(f->q.broken);
	assert_int_equal(pop(f), -1);
	virtq_push(&f->q, 0, 0);
	assert_false(virtq_should_notify(&f->q));
}

static void vq_init_checks(void **state)
{
	struct fixture *f = *state;
	expect_init_fails(f, 0, DESC, AVAIL, USED, "size 0");
	expect_init_fails(f, 3, DESC, AVAIL, USED, "size 3");
	expect_init_fails(f, 48, DESC, AVAIL, USED, "size 48");
	expect_init_fails(f, 65535, DESC, AVAIL, USED, "size 65535");

	expect_init_fails(f, 8, DESC + 8, AVAIL, USED, "descriptor table at 0x10008 is not 16-byte");
	expect_init_fails(f, 8, DESC, AVAIL + 1, USED, "available ring at 0x20001 is not 2-byte");
	expect_init_fails(f, 8, DESC, AVAIL, USED + 2, "used ring at 0x30002 is not 4-byte");

	/* Each ring must fit whole, event words included. */
	expect_init_fails(f, 8, MEM_SIZE - 16 * 8 + 16, AVAIL, USED, "descriptor table");
	expect_init_fails(f, 8, MEM_SIZE, AVAIL, USED, "descriptor table");
	expect_init_fails(f, 8, DESC, MEM_SIZE - (6 + 2 * 8) + 2, USED, "available ring");
	expect_init_fails(f, 8, DESC, AVAIL, MEM_SIZE - (6 + 8 * 8) + 2, "used ring");
	expect_init_fails(f, 8, DESC, AVAIL, ~0ull - 3, "used ring at 0xfffffffffffffffc");
	expect_init_fails(f, 32768, 0x100000, AVAIL, 0x1c0000, "used ring");

	/* Exactly fitting, and the largest size. */
	assert_int_equal(virtq_init(&f->q, &f->mem, 8, MEM_SIZE - 16 * 8, AVAIL, USED, true, true, &f->e), 0);
	assert_int_equal(virtq_init(&f->q, &f->mem, 8, DESC, MEM_SIZE - (6 + 2 * 8), USED, true, true, &f->e), 0);
	assert_int_equal(virtq_init(&f->q, &f->mem, 16, DESC, AVAIL, MEM_SIZE - (6 + 8 * 16) - 2, true, true, &f->e),
			 0);
	assert_int_equal(virtq_init(&f->q, &f->mem, 32768, 0x100000, AVAIL, 0x180000, true, true, &f->e), 0);
	assert_int_equal(f->q.size, 32768);
	assert_false(f->q.broken);
	assert_int_equal(pop(f), 0);
}

/* ---- a guest with RAM above 4 GiB ---- */

static void vq_big_guest(void **state)
{
	struct fixture *f = *state;
	qinit(f, 8, false, false);
	/* RAM above 4 GiB is fine; a buffer running into the PCI hole is not. */
	put_desc(f, DESC, 0, 4 * GIB + 0x1000, 4096, W, 0);
	offer(f, 0);
	assert_int_equal(pop(f), 1);
	assert_ptr_equal(f->c.iov[0].base, guest_mem_ptr(&f->mem, 4 * GIB + 0x1000, 4096));

	/* Exactly 4 GiB in all is the most a chain may describe. */
	put_desc(f, DESC, 1, 0, 0x80000000u, R | N, 2);
	put_desc(f, DESC, 2, 4 * GIB, 0x80000000u, W, 0);
	offer(f, 1);
	assert_int_equal(pop(f), 1);
	assert_int_equal(f->c.readable_bytes + f->c.writable_bytes, 4 * GIB);
	put_desc(f, DESC, 2, 4 * GIB, 0x80000000u, W | N, 3);
	put_desc(f, DESC, 3, 4 * GIB, 1, W, 0);
	offer(f, 1);
	assert_broken(f, "more than 4294967296 bytes");

	qinit(f, 8, false, false);
	put_desc(f, DESC, 0, 3 * GIB - 0x800, 0x1000, W, 0);
	offer(f, 0);
	assert_broken(f, "not inside guest RAM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(vq_readable_writable, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_three_descriptors, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_rewind, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_full_length_chain, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_after_direct, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_ring_wraps, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_rewrite_between_pops, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_concurrent_rewrites, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_notify_empty, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_no_interrupt, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_event_idx, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_event_idx_wrap, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_bad_head, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_bad_next, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_loop, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_self_loop, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_longer_than_queue, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_zero_length, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_outside_ram, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_address_overflow, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_not_negotiated, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_bad_table, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_nested, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_with_next, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_bad_next, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_indirect_loop, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_readable_after_writable, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_too_many_buffers, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_avail_runaway, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_reinit_clears_broken, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_init_checks, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(vq_big_guest, fixture_setup_big, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* virtqueue: split virtqueue device side (see virtqueue.h). The driver may rewrite the rings and
 * descriptors at any moment, so each guest word is loaded once into a local and only that copy
 * is checked and used; the three rings are bounds-checked once by virtq_init, and every buffer
 * and indirect table through guest_mem_ptr with its length. */
#include "virtqueue.h"

#include <stddef.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

#define DESC_SIZE ((uint32_t)sizeof(struct vring_desc))

/* Offsets in the rings (struct vring_avail and vring_used, then the event words). */
#define AVAIL_IDX  (offsetof(struct vring_avail, idx) / 2)  /* in uint16_t: flags, idx, */
#define AVAIL_RING (offsetof(struct vring_avail, ring) / 2) /* ring[size], used_event */
#define USED_IDX   offsetof(struct vring_used, idx)         /* in bytes: flags, idx, */
#define USED_RING  offsetof(struct vring_used, ring)        /* {id, len}[size], avail_event */
#define USED_ELEM  sizeof(struct vring_used_elem)

/* Stops the compiler from reloading guest memory in place of a local copy made before it. */
#define vq_barrier() __asm__ __volatile__("" ::: "memory")

static uint64_t ring_bytes_desc(uint16_t size)
{
	return (uint64_t)size * DESC_SIZE;
}
/* Each ring with its trailing event word. */
static uint64_t ring_bytes_avail(uint16_t size)
{
	return 2 * (AVAIL_RING + (uint64_t)size + 1);
}
static uint64_t ring_bytes_used(uint16_t size)
{
	return USED_RING + USED_ELEM * (uint64_t)size + 2;
}

/* One descriptor, read once whatever its alignment (indirect tables need not be aligned). */
static struct vring_desc desc_read(const uint8_t *p)
{
	struct vring_desc d;
	memcpy(&d, p, sizeof(d));
	vq_barrier();
	return d;
}

static uint16_t *used_event_word(const struct virtq *q)
{
	return &q->avail[AVAIL_RING + q->size];
}

static uint16_t *avail_event_word(const struct virtq *q)
{
	return (uint16_t *)(q->used + USED_RING + USED_ELEM * (uint64_t)q->size);
}

/* Marks the queue broken and fills e; returns -1. */
#define vq_fail(q, e, ...) ((q)->broken = true, err_set((e), __VA_ARGS__))

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

static void *ring_map(const struct guest_mem *mem, const char *what, uint64_t gpa, uint64_t len, uint64_t align,
		      struct err *e)
{
	if (gpa & (align - 1)) {
		err_set(e, "%s at 0x%llx is not %llu-byte aligned", what, (unsigned long long)gpa,
			(unsigned long long)align);
		return NULL;
	}
	void *p = guest_mem_ptr(mem, gpa, len);
	if (!p)
		err_set(e, "%s at 0x%llx (%llu bytes) is not inside guest RAM", what, (unsigned long long)gpa,
			(unsigned long long)len);
	return p;
}

int virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
	       uint64_t used_gpa, bool event_idx, bool indirect, struct err *e)
{
	virtq_reset(q);
	q->broken = true;
	if (size == 0 || (size & (size - 1)) || size > VIRTQ_MAX_SIZE)
		return err_set(e, "virtqueue size %u is not a power of two from 1 to %u", size, VIRTQ_MAX_SIZE);
	uint8_t *desc = ring_map(mem, "descriptor table", desc_gpa, ring_bytes_desc(size), VRING_DESC_ALIGN_SIZE, e);
	if (!desc)
		return -1;
	uint16_t *avail = ring_map(mem, "available ring", avail_gpa, ring_bytes_avail(size), VRING_AVAIL_ALIGN_SIZE, e);
	if (!avail)
		return -1;
	uint8_t *used = ring_map(mem, "used ring", used_gpa, ring_bytes_used(size), VRING_USED_ALIGN_SIZE, e);
	if (!used)
		return -1;
	*q = (struct virtq){
		.size = size,
		.desc_gpa = desc_gpa,
		.avail_gpa = avail_gpa,
		.used_gpa = used_gpa,
		.event_idx = event_idx,
		.indirect = indirect,
		.mem = mem,
		.desc = desc,
		.avail = avail,
		.used = used,
	};
	/* Device-owned words that steer the driver's notifications: notify us for the first
	 * buffer. The driver reads them only once the queue is live. */
	__atomic_store_n((uint16_t *)used, 0, __ATOMIC_RELAXED);
	if (event_idx)
		__atomic_store_n(avail_event_word(q), 0, __ATOMIC_RELAXED);
	return 0;
}

/* Appends one buffer to the chain after checking it against RAM and the chain's limits. */
static int chain_add(struct virtq *q, struct virtq_chain *c, const struct vring_desc *d, unsigned limit, struct err *e)
{
	if (d->len == 0)
		return vq_fail(q, e, "chain %u: zero-length buffer", c->head);
	void *p = guest_mem_ptr(q->mem, d->addr, d->len);
	if (!p)
		return vq_fail(q, e, "chain %u: buffer at 0x%llx (%u bytes) is not inside guest RAM", c->head,
			       (unsigned long long)d->addr, d->len);
	unsigned n = c->n_readable + c->n_writable;
	if (n >= limit)
		return vq_fail(q, e, "chain %u: more than %u buffers", c->head, limit);
	if (c->readable_bytes + c->writable_bytes + d->len > VIRTQ_MAX_CHAIN_BYTES)
		return vq_fail(q, e, "chain %u: more than %llu bytes", c->head,
			       (unsigned long long)VIRTQ_MAX_CHAIN_BYTES);
	if (d->flags & VRING_DESC_F_WRITE) {
		c->n_writable++;
		c->writable_bytes += d->len;
	} else {
		if (c->n_writable)
			return vq_fail(q, e, "chain %u: readable buffer after a writable one", c->head);
		c->n_readable++;
		c->readable_bytes += d->len;
	}
	c->iov[n] = (struct virtq_iov){p, d->len};
	return 0;
}

/* Walks the chain from head: the descriptor table, then at most one indirect table, which ends
 * the chain. No table is walked for more steps than it has entries, which bounds the work and
 * catches loops. */
static int chain_walk(struct virtq *q, struct virtq_chain *c, struct err *e)
{
	unsigned limit = c->iov_cap < VIRTQ_MAX_IOV ? c->iov_cap : VIRTQ_MAX_IOV;
	const uint8_t *table = q->desc;
	uint32_t entries = q->size;
	bool in_indirect = false;
	uint32_t visited = 0;
	uint16_t i = c->head;

	for (;;) {
		if (visited++ == entries)
			return vq_fail(q, e, "chain %u: loops or is longer than its %s (%u)", c->head,
				       in_indirect ? "indirect table" : "queue", entries);
		struct vring_desc d = desc_read(table + (uint64_t)i * DESC_SIZE);

		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!q->indirect)
				return vq_fail(q, e, "chain %u: indirect descriptor not negotiated", c->head);
			if (in_indirect)
				return vq_fail(q, e, "chain %u: indirect descriptor in an indirect table", c->head);
			if (d.flags & VRING_DESC_F_NEXT)
				return vq_fail(q, e, "chain %u: indirect descriptor with NEXT", c->head);
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > VIRTQ_MAX_IOV)
				return vq_fail(q, e, "chain %u: indirect table of %u bytes", c->head, d.len);
			table = guest_mem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return vq_fail(q, e,
					       "chain %u: indirect table at 0x%llx (%u bytes) is not "
					       "inside guest RAM",
					       c->head, (unsigned long long)d.addr, d.len);
			entries = d.len / DESC_SIZE;
			in_indirect = true;
			visited = 0;
			i = 0;
			continue;
		}
		if (chain_add(q, c, &d, limit, e) < 0)
			return -1;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= entries)
			return vq_fail(q, e, "chain %u: next index %u is outside its %s (%u)", c->head, d.next,
				       in_indirect ? "indirect table" : "queue", entries);
		i = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *chain, struct err *e)
{
	if (q->broken)
		return vq_fail(q, e, "queue is broken and needs a reset");
	if (!q->size)
		return vq_fail(q, e, "queue is not set up");

	/* Acquire: the ring entries and descriptors the driver wrote before idx are visible. */
	uint16_t avail_idx = __atomic_load_n(&q->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
	if (avail_idx == q->last_avail) {
		if (!q->event_idx)
			return 0;
		/* Ask for a notification for the next entry, then look again: the driver stores
		 * idx and then loads avail_event, we store avail_event and then load idx, and the
		 * full fences on both sides mean one of us sees the other's store. */
		__atomic_store_n(avail_event_word(q), q->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = __atomic_load_n(&q->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
		if (avail_idx == q->last_avail)
			return 0;
	}
	uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending > q->size)
		return vq_fail(q, e, "available index %u is %u entries past %u, queue size %u", avail_idx, pending,
			       q->last_avail, q->size);

	uint16_t slot = q->last_avail & (q->size - 1);
	uint16_t head = __atomic_load_n(&q->avail[AVAIL_RING + slot], __ATOMIC_RELAXED);
	if (head >= q->size)
		return vq_fail(q, e, "available entry %u: head %u is outside the queue (%u)", q->last_avail, head,
			       q->size);

	chain->head = head;
	chain->n_readable = chain->n_writable = 0;
	chain->readable_bytes = chain->writable_bytes = 0;
	if (chain_walk(q, chain, e) < 0)
		return -1;
	q->last_avail++;
	return 1;
}

void virtq_rewind(struct virtq *q, uint16_t n)
{
	uint16_t in_flight = (uint16_t)(q->last_avail - q->used_idx);
	q->last_avail = (uint16_t)(q->last_avail - (n < in_flight ? n : in_flight));
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (q->broken || !q->size)
		return;
	uint8_t *elem = q->used + USED_RING + USED_ELEM * (uint64_t)(q->used_idx & (q->size - 1));
	uint32_t id = head;
	__atomic_store_n((uint32_t *)(elem + offsetof(struct vring_used_elem, id)), id, __ATOMIC_RELAXED);
	__atomic_store_n((uint32_t *)(elem + offsetof(struct vring_used_elem, len)), written, __ATOMIC_RELAXED);
	q->used_idx++;
	/* Release: the entry (and the data written to the buffers) before the index. */
	__atomic_store_n((uint16_t *)(q->used + USED_IDX), q->used_idx, __ATOMIC_RELEASE);
}

/* The driver asked to be notified when used->idx passes event; it went from old to new. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_should_notify(struct virtq *q)
{
	if (!q->size)
		return false;
	uint16_t old = q->signalled_used, new_idx = q->used_idx;
	if (old == new_idx)
		return false;
	q->signalled_used = new_idx;
	/* Our used->idx store before the load of used_event or flags: pairs with the driver's
	 * fence between writing those and re-reading used->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx)
		return need_event(__atomic_load_n(used_event_word(q), __ATOMIC_RELAXED), new_idx, old);
	uint16_t flags = __atomic_load_n(&q->avail[0], __ATOMIC_RELAXED);
	return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
}

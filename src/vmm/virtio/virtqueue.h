/* virtqueue: the device side of one virtio 1.x split virtqueue (spec 2.7), with no KVM in it:
 * checks the ring addresses the driver gives, takes descriptor chains from the available ring
 * as host iovecs into guest RAM, returns them through the used ring, and decides when the
 * driver wants a used-buffer notification (VIRTIO_F_EVENT_IDX or avail->flags). Everything it
 * reads from the rings is guest-controlled and read once; any malformed input marks the queue
 * broken until virtq_init or virtq_reset, and the device should then set DEVICE_NEEDS_RESET.
 * One thread at a time may use a queue. */
#ifndef SHOJI_VMM_VIRTIO_VIRTQUEUE_H
#define SHOJI_VMM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_ring.h> /* ring layout and VRING_DESC_F_*, VRING_AVAIL_F_* flags */

#include "../../common/err.h"
#include "../memory.h"

#define VIRTQ_MAX_SIZE 32768u
/* Most buffers one chain may have, direct and indirect together, and most entries an indirect
 * table may hold (what QEMU and Linux's vhost allow). A longer chain breaks the queue. */
#define VIRTQ_MAX_IOV 1024u
/* Most bytes one chain may describe (the driver's limit in spec 2.7.5.1). */
#define VIRTQ_MAX_CHAIN_BYTES (1ull << 32)

struct virtq {
	uint16_t size; /* queue size: a power of two, 1..32768; 0 while not set up */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;          /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;           /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t last_avail;     /* free-running index of the next available entry to take */
	uint16_t used_idx;       /* shadow of used->idx, which only the device writes */
	uint16_t signalled_used; /* used_idx when virtq_should_notify last ran */
	bool broken;             /* malformed input seen: pop fails and push does nothing */
	const struct guest_mem *mem;
	/* Host addresses of the three rings, checked whole by virtq_init. */
	uint8_t *desc;
	uint16_t *avail; /* flags, idx, ring[size], used_event */
	uint8_t *used;   /* flags, idx, {id, len}[size], avail_event */
};

/* One buffer of a chain: a host pointer to len bytes of guest RAM (len > 0). */
struct virtq_iov {
	void *base;
	uint32_t len;
};

/* One request. The caller owns iov and sets iov and iov_cap (virtq_chain_init) once; virtq_pop
 * fills iov[0, n_readable) with the device-readable buffers (driver to device) and then
 * iov[n_readable, n_readable + n_writable) with the device-writable ones. A chain with more
 * than min(iov_cap, VIRTQ_MAX_IOV) buffers breaks the queue: give VIRTQ_MAX_IOV entries unless
 * the device has told the driver a smaller limit (as virtio-blk's seg_max does). The pointers
 * stay valid as long as guest RAM does, whatever the driver writes to the descriptors later. */
struct virtq_chain {
	uint16_t head; /* descriptor index to hand back to virtq_push */
	struct virtq_iov *iov;
	unsigned iov_cap;
	unsigned n_readable, n_writable;
	uint64_t readable_bytes, writable_bytes;
};

static inline void virtq_chain_init(struct virtq_chain *c, struct virtq_iov *iov, unsigned cap)
{
	*c = (struct virtq_chain){.iov = iov, .iov_cap = cap};
}

static inline struct virtq_iov *virtq_chain_writable(const struct virtq_chain *c)
{
	return c->iov + c->n_readable;
}

/* Sets the queue up from what the driver wrote to the transport: checks that size is a power
 * of two no larger than 32768, that the rings are aligned (descriptor table 16, available ring
 * 2, used ring 4) and that each lies entirely in guest RAM, including the used_event and
 * avail_event words. Starts at index 0 with nothing signalled. On failure the queue is left
 * broken and -1 is returned with e filled. */
int virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t size, uint64_t desc_gpa, uint64_t avail_gpa,
	       uint64_t used_gpa, bool event_idx, bool indirect, struct err *e);

/* Forgets the queue (device reset or queue disabled): size 0, not broken. */
void virtq_reset(struct virtq *q);

/* Takes the next available chain. Returns 1 with *chain filled, 0 when none is pending, -1 with
 * e filled and the queue broken when the queue was broken already or the driver's input is
 * malformed: avail->idx more than size entries ahead, a head or next index out of the table, a
 * chain that loops or is longer than the queue, a zero-length buffer or one not inside guest RAM,
 * a readable buffer after a writable one, more buffers than the caller's iov or VIRTQ_MAX_IOV,
 * more than VIRTQ_MAX_CHAIN_BYTES in all, or an indirect descriptor that is not negotiated,
 * also has NEXT, lies in an indirect table, or points at a table that is empty, not a multiple
 * of 16 bytes, larger than VIRTQ_MAX_IOV entries or not in RAM. Work is bounded by
 * size + VIRTQ_MAX_IOV descriptors. With EVENT_IDX, returning 0 first publishes avail_event so
 * that the driver notifies for the next buffer, and looks once more: a device may sleep until
 * the next notification after a 0. A device that stops popping before a 0 (a work budget) must
 * come back to the queue by itself: with EVENT_IDX the driver is not asked to notify again for
 * buffers it has already made available. */
int virtq_pop(struct virtq *q, struct virtq_chain *chain, struct err *e);

/* Gives back the last n chains popped and not pushed, to be popped again later (a device that
 * found too few buffers for a whole packet). Never goes back past what is in flight. */
void virtq_rewind(struct virtq *q, uint16_t n);
/* Returns a chain to the driver: a used ring entry {head, written} (the bytes the device wrote
 * into the writable buffers), then used->idx with release ordering. Nothing on a broken queue. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* Whether the driver wants a used-buffer notification for what was pushed since the last call:
 * false when nothing was; with EVENT_IDX, when used->idx went past used_event; otherwise unless
 * avail->flags has NO_INTERRUPT. Call it after each batch of pushes (fewer than 65536), and
 * send the interrupt when it returns true. */
bool virtq_should_notify(struct virtq *q);

#endif

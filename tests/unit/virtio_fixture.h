/* virtio_fixture: a virtio device bound to the PCI transport on a PCI bus over 16 MiB of guest
 * RAM, with helpers to drive BAR 0, bring queue 0 up, place descriptors and run the queue as the
 * I/O thread would. */
#ifndef SHOJI_TESTS_VIRTIO_FIXTURE_H
#define SHOJI_TESTS_VIRTIO_FIXTURE_H

#include "fake_machine.h"
#include "vmm/pci/pci.h"
#include "vmm/virtio/virtio_pci.h"

#define VFX_DESC         0x10000ull
#define VFX_AVAIL        0x11000ull
#define VFX_USED         0x12000ull
#define VFX_QUEUE_SIZE   8
#define VFX_QUEUE_STRIDE 0x4000ull

struct vfx {
	struct fake_machine fm;
	struct guest_mem mem;
	struct pci_bus bus;
	struct virtio_dev *vdev;
	struct virtio_pci vp; /* the transport vfx_attach binds vdev to */
	uint16_t avail_idx_q[VIRTIO_MAX_QUEUES];
};

/* Sets up RAM and the bus; the test then creates its device and calls vfx_attach. */
int vfx_init(struct vfx *f);
/* Binds the device to the fixture's PCI transport and puts it on the bus. */
int vfx_attach(struct vfx *f, struct virtio_dev *vdev);
/* Destroys the transport, bus and RAM; after the test destroyed its device. */
void vfx_destroy(struct vfx *f);

uint64_t vfx_rd(struct vfx *f, uint64_t off, uint32_t len);
void vfx_wr(struct vfx *f, uint64_t off, uint64_t v, uint32_t len);
void vfx_cfg_wr(struct vfx *f, uint32_t off, uint32_t v, uint32_t len);
/* Negotiates VERSION_1 (plus `features`) and enables queue 0 at VFX_DESC/AVAIL/USED. */
void vfx_bring_up(struct vfx *f, uint64_t features);
/* The same with queues 0..nqueues-1, queue q's rings VFX_QUEUE_STRIDE * q above queue 0's. */
void vfx_bring_up_queues(struct vfx *f, uint64_t features, unsigned nqueues);
/* For the fuzz targets: resets the device, fills `window` bytes of guest RAM from VFX_DESC with
 * data (zeros past its end) and brings queues 0..nqueues-1 up again, the fixture's avail indexes
 * back at 0 so that the rings are where the data put them. */
void vfx_restart(struct vfx *f, const uint8_t *data, size_t size, size_t window, uint64_t features, unsigned nqueues);
/* The queue-0 helpers below, for queue q. */
void vfx_desc_q(struct vfx *f, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
void vfx_offer_q(struct vfx *f, unsigned q, uint16_t head);
void vfx_run_q(struct vfx *f, unsigned q);
/* The device's timer, now, if it asked for one (as its I/O thread runs it when the time comes). */
void vfx_run_timer(struct vfx *f);
uint32_t vfx_used_len_q(struct vfx *f, unsigned q, unsigned i);
uint16_t vfx_used_idx_q(struct vfx *f, unsigned q);
/* Writes descriptor i and makes `head` available. */
void vfx_desc(struct vfx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
void vfx_offer(struct vfx *f, uint16_t head);
void vfx_run(struct vfx *f);
/* Used ring entry i: the length the device wrote. */
uint32_t vfx_used_len(struct vfx *f, unsigned i);
uint16_t vfx_used_idx(struct vfx *f);

#endif

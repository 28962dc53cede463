/* virtio_fixture: driving a virtio device through its PCI transport from tests (see
 * virtio_fixture.h). */
#include "virtio_fixture.h"

#include <string.h>

#include "vmm/boot/layout.h"

int vfx_init(struct vfx *f)
{
	struct err e;
	memset(f, 0, sizeof(*f));
	fake_machine_init(&f->fm);
	if (guest_mem_init(&f->mem, 16u << 20, &e) < 0)
		return -1;
	pci_bus_init(&f->bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	return 0;
}

int vfx_attach(struct vfx *f, struct virtio_dev *vdev)
{
	struct err e;
	f->vdev = vdev;
	if (virtio_pci_init(&f->vp, vdev, &e) < 0)
		return -1;
	return pci_bus_add(&f->bus, &f->vp.pci, &e);
}

void vfx_destroy(struct vfx *f)
{
	virtio_pci_destroy(&f->vp);
	pci_bus_destroy(&f->bus);
	guest_mem_free(&f->mem);
}

uint64_t vfx_rd(struct vfx *f, uint64_t off, uint32_t len)
{
	uint64_t v = 0;
	f->vp.pci.ops->bar_io(&f->vp.pci, 0, off, (uint8_t *)&v, len, false);
	return v;
}

void vfx_wr(struct vfx *f, uint64_t off, uint64_t v, uint32_t len)
{
	f->vp.pci.ops->bar_io(&f->vp.pci, 0, off, (uint8_t *)&v, len, true);
}

void vfx_cfg_wr(struct vfx *f, uint32_t off, uint32_t v, uint32_t len)
{
	pci_cfg_access(&f->bus, f->vp.pci.slot, 0, off, (uint8_t *)&v, len, true);
}

/* Queue q's rings: queue 0 at VFX_DESC/AVAIL/USED, each further one VFX_QUEUE_STRIDE higher. */
static uint64_t qbase(unsigned q)
{
	return VFX_QUEUE_STRIDE * q;
}

void vfx_bring_up_queues(struct vfx *f, uint64_t features, unsigned nqueues)
{
	features |= VIRTIO_BIT(VIRTIO_F_VERSION_1);
	vfx_wr(f, 0x14, 1 | 2, 1);
	vfx_wr(f, 0x08, 0, 4);
	vfx_wr(f, 0x0c, (uint32_t)features, 4);
	vfx_wr(f, 0x08, 1, 4);
	vfx_wr(f, 0x0c, features >> 32, 4);
	vfx_wr(f, 0x14, 1 | 2 | 8, 1);
	for (unsigned q = 0; q < nqueues; q++) {
		vfx_wr(f, 0x16, q, 2);
		vfx_wr(f, 0x18, VFX_QUEUE_SIZE, 2);
		vfx_wr(f, 0x20, VFX_DESC + qbase(q), 4);
		vfx_wr(f, 0x24, 0, 4);
		vfx_wr(f, 0x28, VFX_AVAIL + qbase(q), 8);
		vfx_wr(f, 0x30, VFX_USED + qbase(q), 4);
		vfx_wr(f, 0x34, 0, 4);
		vfx_wr(f, 0x1c, 1, 2);
	}
	vfx_wr(f, 0x14, 1 | 2 | 8 | 4, 1);
}

void vfx_restart(struct vfx *f, const uint8_t *data, size_t size, size_t window, uint64_t features, unsigned nqueues)
{
	uint8_t *w = guest_mem_ptr(&f->mem, VFX_DESC, window);
	memset(w, 0, window);
	memcpy(w, data, size < window ? size : window);
	vfx_wr(f, 0x14, 0, 1); /* reset */
	memset(f->avail_idx_q, 0, sizeof(f->avail_idx_q));
	vfx_bring_up_queues(f, features, nqueues);
}

void vfx_bring_up(struct vfx *f, uint64_t features)
{
	vfx_bring_up_queues(f, features, 1);
}

void vfx_desc_q(struct vfx *f, unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = guest_mem_ptr(&f->mem, VFX_DESC + qbase(q) + 16ull * i, 16);
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

void vfx_desc(struct vfx *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	vfx_desc_q(f, 0, i, addr, len, flags, next);
}

void vfx_offer_q(struct vfx *f, unsigned q, uint16_t head)
{
	uint16_t *avail = guest_mem_ptr(&f->mem, VFX_AVAIL + qbase(q), 4 + 2 * VFX_QUEUE_SIZE);
	avail[2 + f->avail_idx_q[q] % VFX_QUEUE_SIZE] = head;
	avail[1] = ++f->avail_idx_q[q];
}

void vfx_offer(struct vfx *f, uint16_t head)
{
	vfx_offer_q(f, 0, head);
}

void vfx_run_q(struct vfx *f, unsigned q)
{
	pthread_mutex_lock(&f->vdev->lock);
	f->vdev->ops->queue_notify(f->vdev, q);
	pthread_mutex_unlock(&f->vdev->lock);
}

void vfx_run_timer(struct vfx *f)
{
	if (f->vdev->timer_at)
		virtio_timer_fire(f->vdev);
}

uint32_t vfx_used_len_q(struct vfx *f, unsigned q, unsigned i)
{
	uint32_t len;
	memcpy(&len, (uint8_t *)guest_mem_ptr(&f->mem, VFX_USED + qbase(q) + 4 + 8ull * i + 4, 4), 4);
	return len;
}

uint16_t vfx_used_idx_q(struct vfx *f, unsigned q)
{
	uint16_t idx;
	memcpy(&idx, guest_mem_ptr(&f->mem, VFX_USED + qbase(q) + 2, 2), 2);
	return idx;
}

void vfx_run(struct vfx *f)
{
	vfx_run_q(f, 0);
}

uint32_t vfx_used_len(struct vfx *f, unsigned i)
{
	return vfx_used_len_q(f, 0, i);
}

uint16_t vfx_used_idx(struct vfx *f)
{
	return vfx_used_idx_q(f, 0);
}

/* virtio_pci: the modern virtio PCI transport (see virtio_pci.h). Register layout per virtio
 * 1.x section 4.1.4, as <linux/virtio_pci.h> defines it; every offset, length, queue index and
 * vector the guest writes is checked. */
#include "virtio_pci.h"

#include <errno.h>
#include <linux/virtio_pci.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../common/log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio registers are little-endian");

/* BAR 0 layout. */
#define BAR_SIZE       0x8000u
#define COMMON_OFF     0x0000u
#define COMMON_LEN     ((uint32_t)sizeof(struct virtio_pci_common_cfg))
#define ISR_OFF        0x1000u
#define DEVICE_OFF     0x2000u
#define DEVICE_LEN     0x1000u
#define NOTIFY_OFF     0x3000u
#define NOTIFY_MULT    4u
#define MSIX_TABLE_OFF 0x4000u
#define MSIX_PBA_OFF   0x5000u

/* PCI capability IDs and MSI-X control bits (PCI Local Bus 3.0 section 6.8.2; pci.h does not
 * name them). */
#define PCI_CAP_VENDOR    0x09
#define PCI_CAP_MSIX      0x11
#define MSIX_CTRL_ENABLE  0x8000u
#define MSIX_CTRL_MASKALL 0x4000u
#define MSIX_ENTRY_MASKED 1u

/* A modern virtio function's PCI IDs (virtio 1.x section 4.1.2), which no UAPI header names:
 * Red Hat's vendor ID, device ID 0x1040 plus the virtio device type. */
#define VIRTIO_PCI_VENDOR 0x1af4
/* Non-transitional devices should have a subsystem ID of 0x40 or more (virtio 1.x 4.1.2.1), so
 * that no legacy driver takes them; OVMF's Virtio10Dxe refuses a device below it. 0x1100: the
 * value QEMU gives its modern devices, so guests' tables see the same. */
#define VIRTIO_PCI_SUBSYSTEM_ID 0x1100
#define VIRTIO_PCI_DEVICE_BASE  0x1040

static void put(uint8_t *p, uint32_t off, uint64_t v, uint32_t len)
{
	memcpy(p + off, &v, len);
}

static uint64_t get(const uint8_t *p, uint32_t off, uint32_t len)
{
	uint64_t v = 0;
	memcpy(&v, p + off, len);
	return v;
}

static struct virtio_pci *pci_of(struct virtio_dev *vdev)
{
	return vdev->transport;
}
static const char *name(const struct virtio_pci *vp)
{
	return vp->vdev->ops->name;
}
static struct machine *machine(const struct virtio_pci *vp)
{
	return vp->vdev->machine;
}
static unsigned nqueues(const struct virtio_pci *vp)
{
	return vp->vdev->num_queues;
}
static unsigned nvectors(const struct virtio_pci *vp)
{
	return nqueues(vp) + 1u;
}

/* The PCI class a virtio device type presents. */
static uint32_t class_code(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET: return 0x020000;   /* network controller, Ethernet */
	case VIRTIO_ID_BLOCK: return 0x018000; /* mass storage, other */
	case VIRTIO_ID_CONSOLE:
	case VIRTIO_ID_VSOCK: return 0x078000; /* communication controller, other */
	case VIRTIO_ID_GPU: return 0x038000;   /* display controller, other */
	case VIRTIO_ID_INPUT: return 0x098000; /* input device, other */
	default: return 0xff0000;              /* "other" (the entropy device) */
	}
}

/* One of the virtio vendor capabilities: struct virtio_pci_cap, or the notify and PCI_CFG ones
 * that extend it by a word. */
static void add_vendor_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len)
{
	uint8_t size = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(struct virtio_pci_notify_cap)
		: type == VIRTIO_PCI_CAP_PCI_CFG         ? sizeof(struct virtio_pci_cfg_cap)
							 : sizeof(struct virtio_pci_cap);
	uint8_t at = pci_device_add_cap(&vp->pci, PCI_CAP_VENDOR, size);
	if (type == VIRTIO_PCI_CAP_PCI_CFG)
		vp->pci_cfg_cap = at;
	uint8_t *c = vp->pci.cfg + at;
	c[VIRTIO_PCI_CAP_LEN] = size;
	c[VIRTIO_PCI_CAP_CFG_TYPE] = type;
	c[VIRTIO_PCI_CAP_BAR] = 0;
	put(c, VIRTIO_PCI_CAP_OFFSET, off, 4);
	put(c, VIRTIO_PCI_CAP_LENGTH, len, 4);
	if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
		put(c, VIRTIO_PCI_NOTIFY_CAP_MULT, NOTIFY_MULT, 4);
}

/* --- interrupts --------------------------------------------------------------------------- */

/* The MSI-X vector of interrupt source i: queue i, or the configuration change at num_queues. */
static uint16_t source_vector(const struct virtio_pci *vp, unsigned i)
{
	return i < nqueues(vp) ? vp->queue_vector[i] : vp->msix_config;
}

static bool vector_masked(const struct virtio_pci *vp, unsigned v)
{
	uint16_t ctrl = (uint16_t)get(vp->pci.cfg, vp->msix_cap + 2u, 2);
	return !(ctrl & MSIX_CTRL_ENABLE) || (ctrl & MSIX_CTRL_MASKALL) || (vp->msix[v].ctrl & MSIX_ENTRY_MASKED);
}

/* Programs vector v's MSI route from its table entry. */
static void vector_route(struct virtio_pci *vp, unsigned v)
{
	const struct msix_entry *en = &vp->msix[v];
	uint64_t addr = ((uint64_t)en->addr_hi << 32) | en->addr_lo;
	if (machine(vp)->msi_route(machine(vp), &vp->msix_gsi[v], addr, en->data) < 0)
		log_warn("%s: cannot route MSI-X vector %u", name(vp), v);
}

/* Binds interrupt source i's eventfd, as an irqfd, to vector v's GSI (routing v first when it
 * has no route yet). Lock held. */
static int irq_bind(struct virtio_pci *vp, unsigned i, unsigned v)
{
	struct machine *m = machine(vp);
	if (!vp->msix_gsi[v])
		vector_route(vp, v);
	struct virtio_irq *irq = &vp->irqs[i];
	if (!vp->msix_gsi[v])
		return -1;
	if (irq->bound_gsi == vp->msix_gsi[v])
		return 0;
	if (irq->bound_gsi)
		m->irqfd(m, irq->fd, irq->bound_gsi, false);
	irq->bound_gsi = 0;
	if (m->irqfd(m, irq->fd, vp->msix_gsi[v], true) < 0) {
		log_warn("%s: cannot bind an irqfd to MSI-X vector %u", name(vp), v);
		return -1;
	}
	irq->bound_gsi = vp->msix_gsi[v];
	return 0;
}

static int pci_queue_call_fd(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_pci *vp = pci_of(vdev);
	uint16_t v = vp->queue_vector[q];
	if (v >= nvectors(vp) || irq_bind(vp, q, v) < 0)
		return -1;
	return vp->irqs[q].fd;
}

/* Raises interrupt source i through its irqfd when its vector is routed and unmasked, else
 * marks the vector pending. Lock held. */
static void raise_irq(struct virtio_pci *vp, unsigned i)
{
	uint16_t v = source_vector(vp, i);
	if (v >= nvectors(vp))
		return; /* no vector: shoji offers no INTx, so the event has nowhere to go */
	if (vector_masked(vp, v)) {
		vp->msix_pending |= 1ull << v;
		return;
	}
	if (irq_bind(vp, i, v) < 0)
		return;
	uint64_t one = 1;
	if (write(vp->irqs[i].fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: cannot signal an interrupt: %s", name(vp), strerror(errno));
}

static void pci_interrupt(struct virtio_dev *vdev, unsigned source)
{
	struct virtio_pci *vp = pci_of(vdev);
	if (source == VIRTIO_IRQ_CONFIG) {
		vp->isr |= VIRTIO_PCI_ISR_CONFIG;
		raise_irq(vp, nqueues(vp));
	} else if (source < nqueues(vp)) {
		raise_irq(vp, source);
	}
}

/* Delivers what became pending on vector v while it was masked. Lock held. */
static void vector_unmasked(struct virtio_pci *vp, unsigned v)
{
	vector_route(vp, v);
	if (!(vp->msix_pending & (1ull << v)))
		return;
	vp->msix_pending &= ~(1ull << v);
	for (unsigned i = 0; i < nvectors(vp); i++)
		if (source_vector(vp, i) == v)
			raise_irq(vp, i);
}

static void msix_table_io(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (len == 8 && off % 8 == 0) { /* a QWORD access is two DWORD ones */
		msix_table_io(vp, off, data, 4, is_write);
		msix_table_io(vp, off + 4, data + 4, 4, is_write);
		return;
	}
	unsigned v = off / 16, field = (off % 16) / 4;
	if (v >= nvectors(vp) || len != 4 || off % 4) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	uint32_t *f = &vp->msix[v].addr_lo + field;
	if (!is_write) {
		put(data, 0, *f, 4);
		return;
	}
	bool was_masked = vector_masked(vp, v);
	*f = (uint32_t)get(data, 0, 4);
	if (field == 3)
		vp->msix[v].ctrl &= MSIX_ENTRY_MASKED;
	if (!vector_masked(vp, v)) {
		if (was_masked)
			vector_unmasked(vp, v);
		else if (field < 3)
			vector_route(vp, v);
	}
}

/* --- notifications ------------------------------------------------------------------------ */

static uint64_t notify_addr(const struct virtio_pci *vp, unsigned q)
{
	return vp->pci.bars[0].addr + NOTIFY_OFF + NOTIFY_MULT * q;
}

static void kick_unregister(struct virtio_pci *vp, unsigned q)
{
	struct machine *m = machine(vp);
	if (vp->kick_addr[q])
		m->ioeventfd(m, vp->vdev->queues[q].kick_fd, vp->kick_addr[q], 2, false);
	vp->kick_addr[q] = 0;
}

/* Registers queue q's kick eventfd as an ioeventfd at its notification address (again, when
 * BAR 0 moved). */
static void kick_register(struct virtio_pci *vp, unsigned q)
{
	struct machine *m = machine(vp);
	uint64_t addr = notify_addr(vp, q);
	if (vp->kick_addr[q] == addr)
		return;
	kick_unregister(vp, q);
	if (m->ioeventfd(m, vp->vdev->queues[q].kick_fd, addr, 2, true) == 0)
		vp->kick_addr[q] = addr; /* else notifications take the slower MMIO exit */
}

/* The device was reset: the transport's registers too. */
static void pci_reset(struct virtio_dev *vdev)
{
	struct virtio_pci *vp = pci_of(vdev);
	for (unsigned q = 0; q < nqueues(vp); q++) {
		kick_unregister(vp, q);
		vp->queue_vector[q] = VIRTIO_MSI_NO_VECTOR;
	}
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	vp->msix_pending = 0;
}

static const struct virtio_transport_ops pci_transport_ops = {.interrupt = pci_interrupt,
							      .queue_call_fd = pci_queue_call_fd,
							      .reset = pci_reset};

/* --- common configuration ----------------------------------------------------------------- */

static void common_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	const struct virtio_dev *vdev = vp->vdev;
	struct virtio_pci_common_cfg c = {
		.device_feature_select = vp->dfselect,
		.device_feature = virtio_device_features_word(vdev, vp->dfselect),
		.guest_feature_select = vp->gfselect,
		.guest_feature = virtio_driver_features_word(vdev, vp->gfselect),
		.msix_config = vp->msix_config,
		.num_queues = vdev->num_queues,
		.device_status = vdev->status,
		.config_generation = vdev->config_generation,
		.queue_select = vp->queue_select,
	};
	unsigned q = vp->queue_select;
	if (q < nqueues(vp)) {
		const struct virtio_queue *vq = &vdev->queues[q];
		c.queue_size = vq->size;
		c.queue_msix_vector = vp->queue_vector[q];
		c.queue_enable = vq->enabled;
		c.queue_notify_off = (uint16_t)q; /* one slot a queue */
		c.queue_desc_lo = (uint32_t)vq->desc;
		c.queue_desc_hi = (uint32_t)(vq->desc >> 32);
		c.queue_avail_lo = (uint32_t)vq->avail;
		c.queue_avail_hi = (uint32_t)(vq->avail >> 32);
		c.queue_used_lo = (uint32_t)vq->used;
		c.queue_used_hi = (uint32_t)(vq->used >> 32);
	}
	memcpy(data, (uint8_t *)&c + off, len);
}

/* A queue's ring address, written whole or as two 32-bit halves, while the queue is being set
 * up; anything but the six address registers does nothing. */
static void queue_addr_write(struct virtio_pci *vp, uint32_t off, uint64_t v, uint32_t len)
{
	struct virtio_queue *vq = virtio_queue_setup(vp->vdev, vp->queue_select);
	if (!vq || off % 4 || off < VIRTIO_PCI_COMMON_Q_DESCLO || off > VIRTIO_PCI_COMMON_Q_USEDHI)
		return;
	uint64_t *field = off < VIRTIO_PCI_COMMON_Q_AVAILLO ? &vq->desc
		: off < VIRTIO_PCI_COMMON_Q_USEDLO          ? &vq->avail
							    : &vq->used;
	if (len == 8)
		*field = v;
	else if ((off - VIRTIO_PCI_COMMON_Q_DESCLO) % 8 == 0)
		*field = (*field & 0xffffffff00000000ull) | (uint32_t)v;
	else
		*field = (*field & 0xffffffffull) | (v << 32);
}

static uint16_t vector_or_none(const struct virtio_pci *vp, uint64_t v)
{
	return v < nvectors(vp) ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
}

static void common_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_dev *vdev = vp->vdev;
	uint64_t v = get(data, 0, len);
	unsigned q = vp->queue_select;
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: vp->dfselect = (uint32_t)v; break;
	case VIRTIO_PCI_COMMON_GFSELECT: vp->gfselect = (uint32_t)v; break;
	case VIRTIO_PCI_COMMON_GF: virtio_set_driver_features_word(vdev, vp->gfselect, (uint32_t)v); break;
	case VIRTIO_PCI_COMMON_MSIX: vp->msix_config = vector_or_none(vp, v); break;
	case VIRTIO_PCI_COMMON_STATUS: virtio_set_status(vdev, (uint8_t)v); break;
	case VIRTIO_PCI_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; break;
	case VIRTIO_PCI_COMMON_Q_SIZE: virtio_set_queue_size(vdev, q, v); break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (q < nqueues(vp))
			vp->queue_vector[q] = vector_or_none(vp, v);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (v == 1 && virtio_enable_queue(vdev, q) == 0)
			kick_register(vp, q);
		break;
	default:
		queue_addr_write(vp, off, v, len); /* or a read-only field or odd offset: nothing */
		break;
	}
}

/* --- BAR 0 -------------------------------------------------------------------------------- */

/* An access inside BAR 0; lock held. */
static void bar0_io(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULT * nqueues(vp)) {
		if (is_write) /* a notification that did not go through the ioeventfd */
			virtio_kick(vp->vdev, (unsigned)((off - NOTIFY_OFF) / NOTIFY_MULT));
		else
			memset(data, 0, len);
	} else if (off < COMMON_OFF + COMMON_LEN && len <= COMMON_LEN - off) {
		if (is_write)
			common_write(vp, (uint32_t)off, data, len);
		else
			common_read(vp, (uint32_t)off, data, len);
	} else if (off == ISR_OFF) {
		if (!is_write) {
			memset(data, 0, len);
			data[0] = vp->isr;
			vp->isr = 0; /* reading the ISR clears it */
		}
	} else if (off >= DEVICE_OFF && off < DEVICE_OFF + DEVICE_LEN) {
		virtio_config_access(vp->vdev, off - DEVICE_OFF, data, len, is_write);
	} else if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + 16u * nvectors(vp)) {
		msix_table_io(vp, (uint32_t)(off - MSIX_TABLE_OFF), data, len, is_write);
	} else if (off >= MSIX_PBA_OFF && off < MSIX_PBA_OFF + 8 && !is_write) {
		uint64_t pba = vp->msix_pending >> (8 * (off - MSIX_PBA_OFF));
		memcpy(data, &pba, len <= 8 ? len : 8);
	} else if (!is_write) {
		memset(data, 0, len);
	}
}

static void bar_io(struct pci_device *d, int bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	if (bar != 0) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&vp->vdev->lock);
	bar0_io(vp, off, data, len, is_write);
	pthread_mutex_unlock(&vp->vdev->lock);
}

/* --- configuration space ------------------------------------------------------------------ */

/* The VIRTIO_PCI_CAP_PCI_CFG window: the driver names a BAR, offset and length (1, 2 or 4) in
 * the capability, then reads or writes its data field. Anything else does nothing. */
static bool pci_cfg_window(struct virtio_pci *vp, uint64_t *off, uint32_t *len)
{
	const uint8_t *c = vp->pci.cfg + vp->pci_cfg_cap;
	uint32_t o = (uint32_t)get(c, VIRTIO_PCI_CAP_OFFSET, 4);
	uint32_t l = (uint32_t)get(c, VIRTIO_PCI_CAP_LENGTH, 4);
	if (c[VIRTIO_PCI_CAP_BAR] != 0 || (l != 1 && l != 2 && l != 4) || o % l || o >= BAR_SIZE || l > BAR_SIZE - o)
		return false;
	*off = o;
	*len = l;
	return true;
}

#define WINDOW_DATA offsetof(struct virtio_pci_cfg_cap, pci_cfg_data)

static bool touches_window_data(const struct virtio_pci *vp, uint32_t off, uint32_t len)
{
	uint32_t data = vp->pci_cfg_cap + (uint32_t)WINDOW_DATA;
	return vp->pci_cfg_cap && off < data + 4 && off + len > data;
}

static void cfg_reading(struct pci_device *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	uint64_t bar_off;
	uint32_t l;
	if (!touches_window_data(vp, off, len) || !pci_cfg_window(vp, &bar_off, &l))
		return;
	uint8_t v[4] = {0};
	bar_io(d, 0, bar_off, v, l, false);
	memcpy(vp->pci.cfg + vp->pci_cfg_cap + WINDOW_DATA, v, 4);
}

static void cfg_written(struct pci_device *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	uint64_t bar_off;
	uint32_t l;
	if (touches_window_data(vp, off, len) && pci_cfg_window(vp, &bar_off, &l))
		bar_io(d, 0, bar_off, vp->pci.cfg + vp->pci_cfg_cap + WINDOW_DATA, l, true); /* locks */
	pthread_mutex_lock(&vp->vdev->lock);
	if (off <= vp->msix_cap + 3u && off + len > vp->msix_cap + 2u) {
		for (unsigned v = 0; v < nvectors(vp); v++)
			if (!vector_masked(vp, v))
				vector_unmasked(vp, v);
	}
	if (off < PCI_BAR0 + 8 && off + len > PCI_BAR0) /* BAR 0 moved: move the doorbells */
		for (unsigned q = 0; q < nqueues(vp); q++)
			if (vp->kick_addr[q])
				kick_register(vp, q);
	pthread_mutex_unlock(&vp->vdev->lock);
}

static const struct pci_device_ops virtio_pci_ops = {.bar_io = bar_io,
						     .cfg_written = cfg_written,
						     .cfg_reading = cfg_reading};

/* --- set-up ------------------------------------------------------------------------------- */

/* The vendor capabilities describing BAR 0, and the MSI-X capability with every entry masked. */
static void caps_init(struct virtio_pci *vp)
{
	const struct virtio_device_ops *ops = vp->vdev->ops;
	add_vendor_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFF, COMMON_LEN);
	add_vendor_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFF, NOTIFY_MULT * vp->vdev->num_queues);
	add_vendor_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, 1);
	if (ops->config_size)
		add_vendor_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, DEVICE_OFF, ops->config_size);
	add_vendor_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0);
	uint8_t *w = vp->pci.wmask + vp->pci_cfg_cap;
	w[VIRTIO_PCI_CAP_BAR] = 0xff;
	memset(w + VIRTIO_PCI_CAP_OFFSET, 0xff, 12); /* offset, length, data */
	vp->msix_cap = pci_device_add_cap(&vp->pci, PCI_CAP_MSIX, 12);
	put(vp->pci.cfg, vp->msix_cap + 2u, nvectors(vp) - 1, 2);
	put(vp->pci.wmask, vp->msix_cap + 2u, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL, 2);
	put(vp->pci.cfg, vp->msix_cap + 4u, MSIX_TABLE_OFF, 4); /* BIR 0 */
	put(vp->pci.cfg, vp->msix_cap + 8u, MSIX_PBA_OFF, 4);
	for (unsigned v = 0; v < nvectors(vp); v++)
		vp->msix[v].ctrl = MSIX_ENTRY_MASKED;
}

int virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *vdev, struct err *e)
{
	const struct virtio_device_ops *ops = vdev->ops;
	memset(vp, 0, sizeof(*vp));
	for (unsigned i = 0; i < VIRTIO_PCI_VECTORS; i++)
		vp->irqs[i].fd = -1;
	vp->vdev = vdev;
	if (ops->config_size > DEVICE_LEN)
		return err_set(e, "%s: unsupported configuration size", ops->name);
	pci_device_init(&vp->pci, ops->name, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
			class_code(ops->device_id), 1, VIRTIO_PCI_VENDOR, VIRTIO_PCI_SUBSYSTEM_ID);
	vp->pci.ops = &virtio_pci_ops;
	vp->pci.opaque = vp;
	/* A 32-bit BAR: a firmware (OVMF) puts 64-bit ones in a window at the top of the physical
	 * address space that the DSDT does not describe, and Linux would then move them all. */
	if (pci_device_add_bar(&vp->pci, 0, BAR_SIZE, false, e) < 0)
		return -1;
	caps_init(vp);
	for (unsigned i = 0; i < nvectors(vp); i++) {
		vp->irqs[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->irqs[i].fd < 0)
			return err_errno(e, errno, "%s: cannot create an eventfd", ops->name);
	}
	vdev->transport = vp;
	vdev->transport_ops = &pci_transport_ops;
	pci_reset(vdev);
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp->vdev)
		return;
	for (unsigned i = 0; i < VIRTIO_PCI_VECTORS; i++)
		if (vp->irqs[i].fd >= 0)
			close(vp->irqs[i].fd);
	vp->vdev = NULL;
}

/* virtio_pci: the modern virtio PCI transport (see virtio_pci.h). Register layout per virtio
 * 1.x section 4.1.4; every offset, length, queue index and vector the guest writes is checked. */
#include "virtio_pci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/thread.h"

/* BAR 0 layout. */
#define BAR_SIZE 0x8000u
#define COMMON_OFF 0x0000u
#define COMMON_LEN 0x38u
#define ISR_OFF 0x1000u
#define DEVICE_OFF 0x2000u
#define DEVICE_LEN 0x1000u
#define NOTIFY_OFF 0x3000u
#define NOTIFY_MULT 4u
#define MSIX_TABLE_OFF 0x4000u
#define MSIX_PBA_OFF 0x5000u

#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX 0x11
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4
#define CAP_PCI_CFG 5 /* a window onto the BARs through configuration space */

#define MSIX_CTRL_ENABLE 0x8000u
#define MSIX_CTRL_MASKALL 0x4000u
#define MSIX_ENTRY_MASKED 1u

#define VIRTIO_PCI_VENDOR 0x1af4
#define TRANSPORT_FEATURES                                                                         \
	(VIRTIO_FEATURE_VERSION_1 | VIRTIO_FEATURE_INDIRECT_DESC | VIRTIO_FEATURE_EVENT_IDX)

static void put(uint8_t *p, uint32_t off, uint64_t v, uint32_t len) { memcpy(p + off, &v, len); }

static uint64_t get(const uint8_t *p, uint32_t off, uint32_t len)
{
	uint64_t v = 0;
	memcpy(&v, p + off, len);
	return v;
}

static uint64_t offered(const struct virtio_pci *vp) { return vp->device_features; }
static unsigned nvectors(const struct virtio_pci *vp) { return vp->ops->num_queues + 1u; }

static void add_vendor_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len)
{
	uint8_t extra = type == CAP_NOTIFY || type == CAP_PCI_CFG ? 4 : 0;
	uint8_t at = pci_device_add_cap(&vp->pci, PCI_CAP_VENDOR, (uint8_t)(16 + extra));
	if (type == CAP_PCI_CFG)
		vp->pci_cfg_cap = at;
	uint8_t *c = vp->pci.cfg + at;
	c[2] = (uint8_t)(16 + extra);
	c[3] = type;
	c[4] = 0; /* BAR 0 */
	put(c, 8, off, 4);
	put(c, 12, len, 4);
	if (type == CAP_NOTIFY)
		put(c, 16, NOTIFY_MULT, 4);
}

/* --- interrupts --------------------------------------------------------------------------- */

static bool vector_masked(const struct virtio_pci *vp, unsigned v)
{
	uint16_t ctrl = (uint16_t)get(vp->pci.cfg, vp->msix_cap + 2u, 2);
	return !(ctrl & MSIX_CTRL_ENABLE) || (ctrl & MSIX_CTRL_MASKALL) ||
	       (vp->msix[v].ctrl & MSIX_ENTRY_MASKED);
}

/* Programs vector v's MSI route from its table entry. */
static void vector_route(struct virtio_pci *vp, unsigned v)
{
	const struct msix_entry *en = &vp->msix[v];
	uint64_t addr = ((uint64_t)en->addr_hi << 32) | en->addr_lo;
	if (vp->machine->msi_route(vp->machine, &vp->msix_gsi[v], addr, en->data) < 0)
		log_warn("%s: cannot route MSI-X vector %u", vp->ops->name, v);
}

/* Binds interrupt source i's eventfd, as an irqfd, to vector v's GSI (routing v first when it
 * has no route yet). Lock held. */
static int irq_bind(struct virtio_pci *vp, unsigned i, unsigned v)
{
	if (!vp->msix_gsi[v])
		vector_route(vp, v);
	struct virtio_irq *irq = &vp->irqs[i];
	if (!vp->msix_gsi[v])
		return -1;
	if (irq->bound_gsi == vp->msix_gsi[v])
		return 0;
	if (irq->bound_gsi)
		vp->machine->irqfd(vp->machine, irq->fd, irq->bound_gsi, false);
	irq->bound_gsi = 0;
	if (vp->machine->irqfd(vp->machine, irq->fd, vp->msix_gsi[v], true) < 0) {
		log_warn("%s: cannot bind an irqfd to MSI-X vector %u", vp->ops->name, v);
		return -1;
	}
	irq->bound_gsi = vp->msix_gsi[v];
	return 0;
}

int virtio_pci_queue_call_fd(struct virtio_pci *vp, unsigned q)
{
	uint16_t v = vp->queues[q].msix_vector;
	if (v >= nvectors(vp) || irq_bind(vp, q, v) < 0)
		return -1;
	return vp->irqs[q].fd;
}

/* Raises interrupt source i (queue i, or the configuration change when i == num_queues):
 * through its irqfd when its vector is routed and unmasked, else marked pending. Lock held. */
static void raise_irq(struct virtio_pci *vp, unsigned i)
{
	uint16_t v = i < vp->ops->num_queues ? vp->queues[i].msix_vector : vp->msix_config;
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
		log_warn("%s: cannot signal an interrupt: %s", vp->ops->name, strerror(errno));
}

/* Delivers what became pending on vector v while it was masked. Lock held. */
static void vector_unmasked(struct virtio_pci *vp, unsigned v)
{
	vector_route(vp, v);
	if (!(vp->msix_pending & (1ull << v)))
		return;
	vp->msix_pending &= ~(1ull << v);
	for (unsigned i = 0; i <= vp->ops->num_queues; i++) {
		uint16_t qv = i < vp->ops->num_queues ? vp->queues[i].msix_vector : vp->msix_config;
		if (qv == v)
			raise_irq(vp, i);
	}
}

static void msix_table_io(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len,
			  bool is_write)
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

/* --- queues ------------------------------------------------------------------------------- */

static uint64_t notify_addr(const struct virtio_pci *vp, unsigned q)
{
	return vp->pci.bars[0].addr + NOTIFY_OFF + NOTIFY_MULT * q;
}

static void kick_register(struct virtio_pci *vp, unsigned q)
{
	struct virtio_queue *vq = &vp->queues[q];
	uint64_t addr = notify_addr(vp, q);
	if (vq->kick_addr == addr)
		return;
	if (vq->kick_addr)
		vp->machine->ioeventfd(vp->machine, vq->kick_fd, vq->kick_addr, 2, false);
	vq->kick_addr = 0;
	if (vp->machine->ioeventfd(vp->machine, vq->kick_fd, addr, 2, true) == 0)
		vq->kick_addr = addr; /* else notifications take the slower MMIO exit */
}

static void kick_unregister(struct virtio_pci *vp, unsigned q)
{
	struct virtio_queue *vq = &vp->queues[q];
	if (vq->kick_addr)
		vp->machine->ioeventfd(vp->machine, vq->kick_fd, vq->kick_addr, 2, false);
	vq->kick_addr = 0;
}

static void queue_enable(struct virtio_pci *vp, unsigned q)
{
	struct virtio_queue *vq = &vp->queues[q];
	struct err e;
	if (virtq_init(&vq->vq, vp->mem, vq->size, vq->desc, vq->avail, vq->used,
		       vp->driver_features & VIRTIO_FEATURE_EVENT_IDX,
		       vp->driver_features & VIRTIO_FEATURE_INDIRECT_DESC, &e) < 0) {
		log_guest(LOG_WARN, "%s: queue %u: %s", vp->ops->name, q, e.msg);
		virtio_pci_set_needs_reset(vp);
		return;
	}
	vq->enabled = true;
	kick_register(vp, q);
}

static void device_reset(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->ops->num_queues; q++) {
		struct virtio_queue *vq = &vp->queues[q];
		kick_unregister(vp, q);
		virtq_reset(&vq->vq);
		vq->enabled = false;
		vq->size = vp->ops->queue_max_size;
		vq->msix_vector = VIRTIO_MSI_NO_VECTOR;
		vq->desc = vq->avail = vq->used = 0;
	}
	vp->status = 0;
	vp->driver_features = 0;
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->isr = 0;
	vp->msix_pending = 0;
	if (vp->ops->reset)
		vp->ops->reset(vp);
}

static void status_write(struct virtio_pci *vp, uint8_t v)
{
	if (v == 0) {
		device_reset(vp);
		return;
	}
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t f = vp->driver_features;
		if ((f & ~offered(vp)) || !(f & VIRTIO_FEATURE_VERSION_1))
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* refused: the driver sees it clear */
	}
	bool going_live = (v & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_DRIVER_OK);
	vp->status = (uint8_t)(v | (vp->status & VIRTIO_STATUS_NEEDS_RESET));
	if (going_live && vp->ops->driver_ok)
		vp->ops->driver_ok(vp);
}

/* --- common configuration ----------------------------------------------------------------- */

static void common_read(struct virtio_pci *vp, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t c[COMMON_LEN] = {0};
	uint64_t feat = offered(vp);
	put(c, 0x00, vp->dfselect, 4);
	put(c, 0x04, vp->dfselect == 0 ? (uint32_t)feat : vp->dfselect == 1 ? (uint32_t)(feat >> 32) : 0, 4);
	put(c, 0x08, vp->gfselect, 4);
	put(c, 0x0c, vp->gfselect == 0 ? (uint32_t)vp->driver_features
			 : vp->gfselect == 1 ? (uint32_t)(vp->driver_features >> 32) : 0, 4);
	put(c, 0x10, vp->msix_config, 2);
	put(c, 0x12, vp->ops->num_queues, 2);
	c[0x14] = vp->status;
	c[0x15] = vp->config_generation;
	put(c, 0x16, vp->queue_select, 2);
	if (vp->queue_select < vp->ops->num_queues) {
		const struct virtio_queue *vq = &vp->queues[vp->queue_select];
		put(c, 0x18, vq->size, 2);
		put(c, 0x1a, vq->msix_vector, 2);
		put(c, 0x1c, vq->enabled, 2);
		put(c, 0x1e, vp->queue_select, 2); /* notify offset: one slot a queue */
		put(c, 0x20, vq->desc, 8);
		put(c, 0x28, vq->avail, 8);
		put(c, 0x30, vq->used, 8);
	}
	memcpy(data, c + off, len);
}

/* A 64-bit queue address written whole or as two 32-bit halves. */
static void addr_write(uint64_t *field, uint32_t half_off, uint64_t v, uint32_t len)
{
	if (len == 8)
		*field = v;
	else if (half_off == 0)
		*field = (*field & 0xffffffff00000000ull) | (uint32_t)v;
	else
		*field = (*field & 0xffffffffull) | (v << 32);
}

static void common_write(struct virtio_pci *vp, uint32_t off, const uint8_t *data, uint32_t len)
{
	uint64_t v = get(data, 0, len);
	struct virtio_queue *vq =
		vp->queue_select < vp->ops->num_queues ? &vp->queues[vp->queue_select] : NULL;
	bool queue_locked = !vq || vq->enabled;
	switch (off) {
	case 0x00: vp->dfselect = (uint32_t)v; break;
	case 0x08: vp->gfselect = (uint32_t)v; break;
	case 0x0c:
		if (vp->status & VIRTIO_STATUS_FEATURES_OK)
			break;
		if (vp->gfselect == 0)
			vp->driver_features = (vp->driver_features & ~0xffffffffull) | (uint32_t)v;
		else if (vp->gfselect == 1)
			vp->driver_features = (vp->driver_features & 0xffffffffull) | (v << 32);
		break;
	case 0x10: vp->msix_config = v < nvectors(vp) ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR; break;
	case 0x14: status_write(vp, (uint8_t)v); break;
	case 0x16: vp->queue_select = (uint16_t)v; break;
	case 0x18:
		if (!queue_locked && v && !(v & (v - 1)) && v <= vp->ops->queue_max_size)
			vq->size = (uint16_t)v;
		break;
	case 0x1a:
		if (vq)
			vq->msix_vector = v < nvectors(vp) ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case 0x1c:
		if (vq && v == 1 && !vq->enabled)
			queue_enable(vp, vp->queue_select);
		break;
	case 0x20: case 0x24:
		if (!queue_locked) addr_write(&vq->desc, off - 0x20, v, len);
		break;
	case 0x28: case 0x2c:
		if (!queue_locked) addr_write(&vq->avail, off - 0x28, v, len);
		break;
	case 0x30: case 0x34:
		if (!queue_locked) addr_write(&vq->used, off - 0x30, v, len);
		break;
	default:
		break; /* read-only fields and odd offsets */
	}
}

/* --- BAR 0 -------------------------------------------------------------------------------- */

static void bar_io(struct pci_device *d, int bar, uint64_t off, uint8_t *data, uint32_t len,
		   bool is_write)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	if (bar != 0) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&vp->lock);
	if (off >= NOTIFY_OFF && off < NOTIFY_OFF + NOTIFY_MULT * vp->ops->num_queues) {
		/* A notification that did not go through the ioeventfd. */
		if (is_write) {
			uint64_t one = 1;
			if (write(vp->queues[(off - NOTIFY_OFF) / NOTIFY_MULT].kick_fd, &one, 8) < 0)
				log_debug("%s: kick lost: %s", vp->ops->name, strerror(errno));
		} else {
			memset(data, 0, len);
		}
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
	} else if (off >= DEVICE_OFF && off - DEVICE_OFF < vp->ops->config_size &&
		   len <= vp->ops->config_size - (off - DEVICE_OFF)) {
		if (is_write && vp->ops->config_write)
			vp->ops->config_write(vp, (uint32_t)(off - DEVICE_OFF), data, len);
		else if (!is_write && vp->ops->config_read)
			vp->ops->config_read(vp, (uint32_t)(off - DEVICE_OFF), data, len);
		else if (!is_write)
			memset(data, 0, len);
	} else if (off >= MSIX_TABLE_OFF && off < MSIX_TABLE_OFF + 16u * nvectors(vp)) {
		msix_table_io(vp, (uint32_t)(off - MSIX_TABLE_OFF), data, len, is_write);
	} else if (off >= MSIX_PBA_OFF && off < MSIX_PBA_OFF + 8 && !is_write) {
		uint64_t pba = vp->msix_pending >> (8 * (off - MSIX_PBA_OFF));
		memcpy(data, &pba, len <= 8 ? len : 8);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* The VIRTIO_PCI_CAP_PCI_CFG window: the driver names a BAR, offset and length (1, 2 or 4) in
 * the capability, then reads or writes its data field. Anything else does nothing. */
static bool pci_cfg_window(struct virtio_pci *vp, uint64_t *off, uint32_t *len)
{
	const uint8_t *c = vp->pci.cfg + vp->pci_cfg_cap;
	uint32_t o = (uint32_t)get(c, 8, 4), l = (uint32_t)get(c, 12, 4);
	if (c[4] != 0 || (l != 1 && l != 2 && l != 4) || o % l || o >= BAR_SIZE || l > BAR_SIZE - o)
		return false;
	*off = o;
	*len = l;
	return true;
}

static bool touches_window_data(const struct virtio_pci *vp, uint32_t off, uint32_t len)
{
	uint32_t data = vp->pci_cfg_cap + 16u;
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
	memcpy(vp->pci.cfg + vp->pci_cfg_cap + 16, v, 4);
}

static void cfg_written(struct pci_device *d, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = (struct virtio_pci *)d;
	uint64_t bar_off;
	uint32_t l;
	if (touches_window_data(vp, off, len) && pci_cfg_window(vp, &bar_off, &l))
		bar_io(d, 0, bar_off, vp->pci.cfg + vp->pci_cfg_cap + 16, l, true); /* takes the lock */
	pthread_mutex_lock(&vp->lock);
	if (off <= vp->msix_cap + 3u && off + len > vp->msix_cap + 2u) {
		for (unsigned v = 0; v < nvectors(vp); v++)
			if (!vector_masked(vp, v))
				vector_unmasked(vp, v);
	}
	if (off < PCI_BAR0 + 8 && off + len > PCI_BAR0) /* BAR 0 moved: move the doorbells */
		for (unsigned q = 0; q < vp->ops->num_queues; q++)
			if (vp->queues[q].kick_addr)
				kick_register(vp, q);
	pthread_mutex_unlock(&vp->lock);
}

static const struct pci_device_ops virtio_pci_ops = {
	.bar_io = bar_io, .cfg_written = cfg_written, .cfg_reading = cfg_reading};

#define WATCH_TOKEN_BASE 0x10000u

static int watch(struct virtio_pci *vp, int fd, unsigned token, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = WATCH_TOKEN_BASE + token};
	if (epoll_ctl(vp->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return errno == EEXIST ? 0 : -1;
}

int virtio_pci_watch(struct virtio_pci *vp, int fd, unsigned token) { return watch(vp, fd, token, EPOLLIN); }

int virtio_pci_watch_writable(struct virtio_pci *vp, int fd, unsigned token)
{
	return watch(vp, fd, token, EPOLLOUT);
}

void virtio_pci_unwatch(struct virtio_pci *vp, int fd)
{
	epoll_ctl(vp->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* --- the I/O thread ----------------------------------------------------------------------- */

static void *io_thread(void *arg)
{
	struct virtio_pci *vp = arg;
	char name[16];
	snprintf(name, sizeof(name), "io-%s", vp->ops->name);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		struct epoll_event ev[VIRTIO_PCI_MAX_QUEUES + 1];
		int n = epoll_wait(vp->epoll_fd, ev, VIRTIO_PCI_MAX_QUEUES + 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			unsigned q = ev[i].data.u32;
			if (q == UINT32_MAX)
				return NULL; /* stop */
			if (q >= WATCH_TOKEN_BASE) {
				pthread_mutex_lock(&vp->lock);
				if (vp->ops->fd_ready)
					vp->ops->fd_ready(vp, q - WATCH_TOKEN_BASE);
				pthread_mutex_unlock(&vp->lock);
				continue;
			}
			uint64_t count;
			if (read(vp->queues[q].kick_fd, &count, sizeof(count)) < 0)
				continue;
			pthread_mutex_lock(&vp->lock);
			if ((vp->status & VIRTIO_STATUS_DRIVER_OK) && vp->queues[q].enabled &&
			    !(vp->status & VIRTIO_STATUS_NEEDS_RESET))
				vp->ops->queue_notify(vp, q);
			pthread_mutex_unlock(&vp->lock);
		}
	}
	return NULL;
}

/* --- set-up ------------------------------------------------------------------------------- */

int virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *device,
		    struct machine *m, const struct guest_mem *mem, struct err *e)
{
	memset(vp, 0, sizeof(*vp));
	vp->epoll_fd = vp->stop_fd = -1;
	for (unsigned i = 0; i <= VIRTIO_PCI_MAX_QUEUES; i++) {
		vp->irqs[i].fd = -1;
		if (i < VIRTIO_PCI_MAX_QUEUES)
			vp->queues[i].kick_fd = -1;
	}
	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_PCI_MAX_QUEUES || ops->config_size > DEVICE_LEN)
		return err_set(e, "%s: unsupported queue count or configuration size", ops->name);
	vp->ops = ops;
	vp->device_features = ops->features | TRANSPORT_FEATURES;
	vp->device = device;
	vp->machine = m;
	vp->mem = mem;
	pthread_mutex_init(&vp->lock, NULL);
	pci_device_init(&vp->pci, ops->name, VIRTIO_PCI_VENDOR, (uint16_t)(0x1040 + ops->device_id),
			ops->class_code, 1, VIRTIO_PCI_VENDOR, ops->device_id);
	vp->pci.ops = &virtio_pci_ops;
	vp->pci.opaque = vp;
	if (pci_device_add_bar(&vp->pci, 0, BAR_SIZE, true, e) < 0)
		return -1;
	add_vendor_cap(vp, CAP_COMMON, COMMON_OFF, COMMON_LEN);
	add_vendor_cap(vp, CAP_NOTIFY, NOTIFY_OFF, NOTIFY_MULT * ops->num_queues);
	add_vendor_cap(vp, CAP_ISR, ISR_OFF, 1);
	if (ops->config_size)
		add_vendor_cap(vp, CAP_DEVICE, DEVICE_OFF, ops->config_size);
	add_vendor_cap(vp, CAP_PCI_CFG, 0, 0);
	uint8_t *w = vp->pci.wmask + vp->pci_cfg_cap;
	w[4] = 0xff;                                  /* bar */
	memset(w + 8, 0xff, 12);                      /* offset, length, data */
	vp->msix_cap = pci_device_add_cap(&vp->pci, PCI_CAP_MSIX, 12);
	put(vp->pci.cfg, vp->msix_cap + 2u, nvectors(vp) - 1, 2);
	put(vp->pci.wmask, vp->msix_cap + 2u, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL, 2);
	put(vp->pci.cfg, vp->msix_cap + 4u, MSIX_TABLE_OFF, 4); /* BIR 0 */
	put(vp->pci.cfg, vp->msix_cap + 8u, MSIX_PBA_OFF, 4);
	for (unsigned v = 0; v < nvectors(vp); v++)
		vp->msix[v].ctrl = MSIX_ENTRY_MASKED;

	vp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	vp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vp->epoll_fd < 0 || vp->stop_fd < 0)
		return err_errno(e, errno, "%s: cannot create the I/O thread's descriptors", ops->name);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	epoll_ctl(vp->epoll_fd, EPOLL_CTL_ADD, vp->stop_fd, &ev);
	for (unsigned i = 0; i <= ops->num_queues; i++) {
		vp->irqs[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->irqs[i].fd < 0)
			return err_errno(e, errno, "%s: cannot create an eventfd", ops->name);
		if (i == ops->num_queues)
			break;
		vp->queues[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = i};
		if (vp->queues[i].kick_fd < 0 ||
		    (!ops->kernel_queues && epoll_ctl(vp->epoll_fd, EPOLL_CTL_ADD, vp->queues[i].kick_fd, &ev) < 0))
			return err_errno(e, errno, "%s: cannot set up queue %u's notification", ops->name, i);
	}
	device_reset(vp);
	return 0;
}

int virtio_pci_start(struct virtio_pci *vp, struct err *e)
{
	int r = thread_start(&vp->thread, io_thread, vp);
	if (r)
		return err_errno(e, r, "%s: cannot start its I/O thread", vp->ops->name);
	vp->thread_started = true;
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp->ops)
		return;
	if (vp->thread_started) {
		uint64_t one = 1;
		if (write(vp->stop_fd, &one, sizeof(one)) < 0)
			log_warn("%s: cannot stop the I/O thread", vp->ops->name);
		pthread_join(vp->thread, NULL);
		vp->thread_started = false;
	}
	for (unsigned i = 0; i <= VIRTIO_PCI_MAX_QUEUES; i++) {
		if (vp->irqs[i].fd >= 0)
			close(vp->irqs[i].fd);
		if (i < VIRTIO_PCI_MAX_QUEUES && vp->queues[i].kick_fd >= 0)
			close(vp->queues[i].kick_fd);
	}
	if (vp->epoll_fd >= 0)
		close(vp->epoll_fd);
	if (vp->stop_fd >= 0)
		close(vp->stop_fd);
	pthread_mutex_destroy(&vp->lock);
	vp->ops = NULL;
}

void virtio_pci_notify_queue(struct virtio_pci *vp, unsigned q)
{
	if (q < vp->ops->num_queues && virtq_should_notify(&vp->queues[q].vq))
		raise_irq(vp, q);
}

void virtio_pci_serve_queue(struct virtio_pci *vp, unsigned q, struct virtq_iov *iov, unsigned cap,
			    virtio_serve_fn serve)
{
	struct virtq *vq = &vp->queues[q].vq;
	struct virtq_chain chain;
	struct err e;
	virtq_chain_init(&chain, iov, cap);
	for (unsigned budget = vp->queues[q].size;; budget--) {
		if (budget == 0) {
			virtio_pci_requeue(vp, q); /* more may be waiting: come back after the others */
			break;
		}
		int r = virtq_pop(vq, &chain, &e);
		if (r == 0)
			break;
		if (r < 0) {
			log_guest(LOG_WARN, "%s: queue %u: %s", vp->ops->name, q, e.msg);
			virtio_pci_set_needs_reset(vp);
			return;
		}
		uint32_t written = serve(vp, &chain);
		if (written == VIRTIO_SERVE_LATER) {
			virtq_rewind(vq, 1);
			break;
		}
		virtq_push(vq, chain.head, written);
	}
	virtio_pci_notify_queue(vp, q);
}

void virtio_pci_requeue(struct virtio_pci *vp, unsigned q)
{
	uint64_t one = 1;
	if (q < vp->ops->num_queues && write(vp->queues[q].kick_fd, &one, sizeof(one)) < 0)
		log_warn("%s: cannot requeue queue %u: %s", vp->ops->name, q, strerror(errno));
}

void virtio_pci_config_changed(struct virtio_pci *vp)
{
	vp->config_generation++;
	vp->isr |= 2;
	raise_irq(vp, vp->ops->num_queues);
}

void virtio_pci_set_needs_reset(struct virtio_pci *vp)
{
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_pci_config_changed(vp);
}

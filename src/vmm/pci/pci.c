/* pci: host bridge, configuration space and BAR decoding (see pci.h). */
#include "pci.h"

#include <string.h>

#include "../../common/log.h"

#define CF8_ENABLE         0x80000000u
#define HOST_BRIDGE_VENDOR 0x1b36 /* Red Hat: the generic PCIe host bridge of virtual machines */
#define HOST_BRIDGE_DEVICE 0x0008
#define CLASS_HOST_BRIDGE  0x060000

static void put(uint8_t *p, uint32_t off, uint32_t v, uint32_t len)
{
	memcpy(p + off, &v, len);
}

static uint32_t get(const uint8_t *p, uint32_t off, uint32_t len)
{
	uint32_t v = 0;
	memcpy(&v, p + off, len);
	return v;
}

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(d, 0, sizeof(*d));
	d->name = name;
	put(d->cfg, PCI_VENDOR_ID, vendor, 2);
	put(d->cfg, PCI_DEVICE_ID, device, 2);
	put(d->cfg, PCI_CLASS_REVISION, (class_code << 8) | revision, 4);
	put(d->cfg, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor, 2);
	put(d->cfg, PCI_SUBSYSTEM_ID, subsys_id, 2);
	put(d->wmask, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | 0x400 /* INTx off */, 2);
	d->wmask[0x3c] = 0xff; /* interrupt line: scratch for the OS */
	d->cap_end = 0x40;
}

int pci_device_add_bar(struct pci_device *d, int bar, uint64_t size, bool mem64, struct err *e)
{
	if (bar < 0 || bar + (mem64 ? 1 : 0) >= PCI_BARS || size < 4096 || (size & (size - 1)) ||
	    (!mem64 && size > (1ull << 31)))
		return err_set(e, "%s: bad BAR %d of 0x%llx bytes", d->name, bar, (unsigned long long)size);
	d->bars[bar] = (struct pci_bar){.size = size, .mem64 = mem64};
	uint32_t off = PCI_BAR0 + 4 * (uint32_t)bar;
	put(d->cfg, off, mem64 ? 0x4 : 0x0, 4); /* memory BAR, 64- or 32-bit, not prefetchable */
	put(d->wmask, off, (uint32_t) ~(size - 1) & ~0xfu, 4);
	if (mem64)
		put(d->wmask, off + 4, (uint32_t)(~(size - 1) >> 32), 4);
	return 0;
}

uint8_t pci_device_add_cap(struct pci_device *d, uint8_t id, uint8_t len)
{
	uint32_t at = (d->cap_end + 3u) & ~3u;
	if (len < 2 || at + len > PCI_CFG_SIZE)
		return 0;
	d->cfg[at] = id;
	d->cfg[at + 1] = d->cfg[PCI_CAPABILITY_LIST]; /* push on the front of the list */
	d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)at;
	put(d->cfg, PCI_STATUS, get(d->cfg, PCI_STATUS, 2) | PCI_STATUS_CAP_LIST, 2);
	d->cap_end = (uint8_t)(at + len < PCI_CFG_SIZE ? at + len : PCI_CFG_SIZE - 1);
	return (uint8_t)at;
}

void pci_bus_init(struct pci_bus *bus, uint64_t window_base, uint64_t window_size)
{
	memset(bus, 0, sizeof(*bus));
	pthread_mutex_init(&bus->lock, NULL);
	bus->window_base = bus->window_next = window_base;
	bus->window_size = window_size;
	pci_device_init(&bus->host_bridge, "host bridge", HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE, CLASS_HOST_BRIDGE, 0,
			HOST_BRIDGE_VENDOR, 0x1100);
	bus->devs[0][0] = &bus->host_bridge;
}

void pci_bus_set_host_bridge(struct pci_bus *bus, uint16_t vendor, uint16_t device, uint8_t revision)
{
	struct pci_device *h = &bus->host_bridge;
	put(h->cfg, PCI_VENDOR_ID, vendor, 2);
	put(h->cfg, PCI_DEVICE_ID, device, 2);
	put(h->cfg, PCI_CLASS_REVISION, (CLASS_HOST_BRIDGE << 8) | revision, 4);
	put(h->cfg, PCI_SUBSYSTEM_VENDOR_ID, 0, 4);
}

void pci_bus_destroy(struct pci_bus *bus)
{
	pthread_mutex_destroy(&bus->lock);
}

static void bar_program(struct pci_device *d, int bar, uint64_t addr)
{
	uint32_t off = PCI_BAR0 + 4 * (uint32_t)bar;
	put(d->cfg, off, (uint32_t)addr | (d->bars[bar].mem64 ? 0x4 : 0x0), 4);
	if (d->bars[bar].mem64)
		put(d->cfg, off + 4, (uint32_t)(addr >> 32), 4);
	d->bars[bar].addr = addr;
}

static int place_bars(struct pci_bus *bus, struct pci_device *d, struct err *e)
{
	uint64_t next = bus->window_next;
	for (int i = 0; i < PCI_BARS; i++) {
		uint64_t size = d->bars[i].size;
		if (!size)
			continue;
		uint64_t at = (next + size - 1) & ~(size - 1);
		if (at + size > bus->window_base + bus->window_size)
			return err_set(e, "PCI MMIO window full placing %s", d->name);
		bar_program(d, i, at);
		next = at + size;
	}
	bus->window_next = next;
	return 0;
}

int pci_bus_add_at(struct pci_bus *bus, struct pci_device *d, unsigned slot, unsigned fn, struct err *e)
{
	if (slot >= PCI_SLOTS || fn >= PCI_FUNCS || bus->devs[slot][fn])
		return err_set(e, "PCI %02x.%u for %s is taken or does not exist", slot, fn, d->name);
	if (place_bars(bus, d, e) < 0)
		return -1;
	d->slot = (uint8_t)slot;
	d->fn = (uint8_t)fn;
	if (d->bars[0].size || d->bars[1].size || d->bars[2].size) /* decoding on, as firmware leaves it */
		put(d->cfg, PCI_COMMAND, get(d->cfg, PCI_COMMAND, 2) | PCI_COMMAND_MEMORY, 2);
	bus->devs[slot][fn] = d;
	for (int i = 0; i < PCI_BARS; i++)
		if (d->bars[i].size) {
			bus->bar_devs[bus->nbar_devs++] = d;
			break;
		}
	if (fn > 0 && bus->devs[slot][0])
		bus->devs[slot][0]->cfg[PCI_HEADER_TYPE] |= 0x80; /* multi-function */
	if (fn == 0)
		for (unsigned f = 1; f < PCI_FUNCS; f++)
			if (bus->devs[slot][f])
				d->cfg[PCI_HEADER_TYPE] |= 0x80;
	return 0;
}

int pci_bus_add(struct pci_bus *bus, struct pci_device *d, struct err *e)
{
	unsigned slot = 1;
	while (slot < PCI_SLOTS && bus->devs[slot][0])
		slot++;
	if (slot == PCI_SLOTS)
		return err_set(e, "no free PCI slot for %s (at most %d devices)", d->name, PCI_SLOTS - 1);
	return pci_bus_add_at(bus, d, slot, 0, e);
}

/* BAR address registers recompute the BAR's address from what the guest wrote. */
static void bar_update(struct pci_device *d, uint32_t offset)
{
	for (int i = 0; i < PCI_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint32_t off = PCI_BAR0 + 4 * (uint32_t)i;
		if (!b->size || offset < off || offset >= off + (b->mem64 ? 8u : 4u))
			continue;
		uint64_t lo = get(d->cfg, off, 4) & ~0xfu;
		uint64_t hi = b->mem64 ? get(d->cfg, off + 4, 4) : 0;
		b->addr = (hi << 32) | lo;
	}
}

void pci_cfg_access(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t offset, uint8_t *data, uint32_t len,
		    bool is_write)
{
	struct pci_device *d = slot < PCI_SLOTS && fn < PCI_FUNCS ? bus->devs[slot][fn] : NULL;
	if (!d || offset >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - offset) {
		/* No such function, or the extended space: reads float (vendor 0xffff) or are zero. */
		if (!is_write)
			memset(data, d ? 0x00 : 0xff, len);
		return;
	}
	if (!is_write) {
		if (d->ops && d->ops->cfg_reading)
			d->ops->cfg_reading(d, offset, len);
		memcpy(data, d->cfg + offset, len);
		return;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint8_t m = d->wmask[offset + i];
		d->cfg[offset + i] = (uint8_t)((d->cfg[offset + i] & ~m) | (data[i] & m));
	}
	bar_update(d, offset);
	if (d->ops && d->ops->cfg_written)
		d->ops->cfg_written(d, offset, len);
}

void pci_conf1_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;
	pthread_mutex_lock(&bus->lock);
	if (offset == 0 && len == 4) {
		if (is_write)
			bus->cf8 = get(data, 0, 4) & 0x80fffffcu;
		else
			put(data, 0, bus->cf8, 4);
	} else if (offset >= 4) {
		uint32_t a = bus->cf8;
		unsigned busno = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 0x7;
		uint32_t reg = (a & 0xfc) + (uint32_t)(offset - 4);
		if ((a & CF8_ENABLE) && busno == 0)
			pci_cfg_access(bus, slot, fn, reg, data, len, is_write);
		else if (!is_write)
			memset(data, 0xff, len);
	} else if (offset == 1 && len == 1 && bus->reset_control) {
		bus->reset_control(bus->reset_control_opaque, data, is_write);
	} else if (!is_write) {
		memset(data, 0xff, len); /* byte access to 0xCF8-0xCFB: not the address register */
	}
	pthread_mutex_unlock(&bus->lock);
}

void pci_ecam_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;
	unsigned slot = (unsigned)(offset >> 15) & 0x1f, fn = (unsigned)(offset >> 12) & 0x7;
	uint32_t reg = (uint32_t)(offset & 0xfff);
	pthread_mutex_lock(&bus->lock);
	if (len <= 4 && (reg & (len - 1)) == 0)
		pci_cfg_access(bus, slot, fn, reg, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len); /* unaligned or 8-byte configuration accesses are undefined */
	pthread_mutex_unlock(&bus->lock);
}

bool pci_mmio_io(void *opaque, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *bus = opaque;
	struct pci_device *hit = NULL;
	int bar = -1;
	uint64_t bar_off = 0;
	pthread_mutex_lock(&bus->lock);
	for (unsigned s = 0; s < bus->nbar_devs && !hit; s++) {
		struct pci_device *d = bus->bar_devs[s];
		if (!(get(d->cfg, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
			continue;
		for (int i = 0; i < PCI_BARS; i++) {
			const struct pci_bar *b = &d->bars[i];
			if (b->size && addr >= b->addr && addr - b->addr < b->size &&
			    len <= b->size - (addr - b->addr)) {
				hit = d;
				bar = i;
				bar_off = addr - b->addr;
				break;
			}
		}
	}
	pthread_mutex_unlock(&bus->lock);
	if (hit && hit->ops && hit->ops->bar_io) {
		hit->ops->bar_io(hit, bar, bar_off, data, len, is_write);
		return true;
	}
	if (!is_write)
		memset(data, 0xff, len);
	return hit != NULL;
}

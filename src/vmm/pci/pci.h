/* pci: the PCI bus of the machine: a host bridge, configuration space through mechanism #1
 * (ports 0xCF8/0xCFC) and ECAM (described in the ACPI MCFG), device models (up to 8 functions
 * a slot) with memory BARs and capabilities, and the decoding of a memory address to the device
 * BAR that claims it. BARs are placed by the monitor in its window (as firmware would); the
 * guest, or a firmware that places them itself, may size and move them anywhere: every MMIO
 * access no platform device claims comes here (subtractive decode, as on a PC), so a moved BAR
 * keeps working. Every configuration or BAR access from the guest is bounds-checked here. */
#ifndef SHOJI_VMM_PCI_PCI_H
#define SHOJI_VMM_PCI_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"

#define PCI_SLOTS    32
#define PCI_FUNCS    8
#define PCI_CFG_SIZE 256 /* conventional space; ECAM's extended space reads as zero */
#define PCI_BARS     6

/* Configuration header offsets and bits used by the bus. */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_CLASS_REVISION      0x08
#define PCI_HEADER_TYPE         0x0e
#define PCI_BAR0                0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_PIN       0x3d
#define PCI_COMMAND_IO          0x1
#define PCI_COMMAND_MEMORY      0x2
#define PCI_COMMAND_MASTER      0x4
#define PCI_STATUS_CAP_LIST     0x10

struct pci_device;

struct pci_device_ops {
	/* An access to BAR `bar` at `offset`; len is 1, 2, 4 or 8 and offset+len fits the BAR. */
	void (*bar_io)(struct pci_device *d, int bar, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
	/* Called after the guest wrote configuration bytes [offset, offset+len). */
	void (*cfg_written)(struct pci_device *d, uint32_t offset, uint32_t len);
	/* Called before the guest reads configuration bytes [offset, offset+len), for registers
	 * whose value the device computes (may be NULL). */
	void (*cfg_reading)(struct pci_device *d, uint32_t offset, uint32_t len);
};

struct pci_bar {
	uint64_t size; /* 0: no BAR; otherwise a power of two, at least 4 KiB */
	uint64_t addr; /* as the guest last programmed it */
	bool mem64;
};

struct pci_device {
	const char *name;
	const struct pci_device_ops *ops;
	void *opaque;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change */
	struct pci_bar bars[PCI_BARS];
	uint8_t slot, fn;
	uint8_t cap_end; /* where the next capability goes */
};

struct pci_bus {
	pthread_mutex_t lock;
	uint32_t cf8;
	struct pci_device *devs[PCI_SLOTS][PCI_FUNCS];
	/* The functions with a BAR, in the order added: what pci_mmio_io searches on every access. */
	struct pci_device *bar_devs[PCI_SLOTS * PCI_FUNCS];
	unsigned nbar_devs;
	struct pci_device host_bridge;
	/* A byte at 0xCF9 is not the address register but the chipset's reset control register:
	 * handed to this (under the bus lock), or ignored when NULL. */
	void (*reset_control)(void *opaque, uint8_t *data, bool is_write);
	void *reset_control_opaque;
	uint64_t window_base, window_size; /* 32-bit MMIO window for BARs */
	uint64_t window_next;
};

void pci_bus_init(struct pci_bus *bus, uint64_t window_base, uint64_t window_size);
void pci_bus_destroy(struct pci_bus *bus);

/* Fills the header of a type-0 device. */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code,
		     uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declares memory BAR `bar` of `size` bytes (a power of two); mem64 takes two BAR slots. */
int pci_device_add_bar(struct pci_device *d, int bar, uint64_t size, bool mem64, struct err *e);
/* Appends a capability of `len` bytes with ID `id` to the list; returns its offset (0: full). */
uint8_t pci_device_add_cap(struct pci_device *d, uint8_t id, uint8_t len);

/* Gives the host bridge (slot 0) another identity: the chipset a firmware looks for. */
void pci_bus_set_host_bridge(struct pci_bus *bus, uint16_t vendor, uint16_t device, uint8_t revision);

/* Puts d in the next free slot (function 0) and places its BARs in the window. */
int pci_bus_add(struct pci_bus *bus, struct pci_device *d, struct err *e);
/* Puts d at slot/fn (free, fn < 8); function 0 of a slot with more functions says so in its
 * header type. Chipset functions go here, before pci_bus_add fills the other slots. */
int pci_bus_add_at(struct pci_bus *bus, struct pci_device *d, unsigned slot, unsigned fn, struct err *e);

/* Configuration access to bus 0, device `slot`, function `fn` (len 1, 2 or 4). */
void pci_cfg_access(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t offset, uint8_t *data, uint32_t len,
		    bool is_write);

/* Bus handlers (vCPU threads; each takes the bus lock): ports 0xCF8-0xCFF, the ECAM region. */
void pci_conf1_io(void *bus, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void pci_ecam_io(void *bus, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* A memory access at guest-physical `addr` that no platform device claimed (the MMIO bus's
 * fallback): handed to the enabled BAR that holds it; false when none does. */
bool pci_mmio_io(void *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif

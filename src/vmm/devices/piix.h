/* piix: the PC chipset functions a firmware looks for, and only those: the i440FX identity of
 * the host bridge (00:00.0), the PIIX3 PCI-to-ISA bridge (00:01.0, under which OVMF finds the
 * serial port and the PS/2 keyboard), the PIIX4 power-management function (00:01.3) with its
 * I/O block (PM1 status, enable and control with S5, the 24-bit ACPI PM timer), the reset
 * control register at 0xCF9 and port 0x92's fast reset and A20 bit.
 *
 * Why i440FX rather than Q35: OVMF needs fewer registers from it (no PCIEXBAR, no TSEG or SMRAM
 * control, no LPC bridge with its root-complex block) and reaches configuration space through
 * ports 0xCF8/0xCFC, so the chipset here stays a few hundred lines; the guest OS gets shoji's
 * own ACPI tables either way (hardware-reduced, with MCFG for ECAM), so it loses nothing. Secure
 * Boot would need SMM, which OVMF supports only on Q35: that choice is revisited with it.
 *
 * The PM I/O block decodes at PIIX_PM_PORT only (where OVMF and SeaBIOS put it): a guest that
 * programs another base gets a warning and no block. No SMBus, IDE, USB or APM. Threads: vCPU
 * threads call the handlers; configuration accesses hold the PCI bus lock, the rest is atomic. */
#ifndef SHOJI_VMM_DEVICES_PIIX_H
#define SHOJI_VMM_DEVICES_PIIX_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../io/bus.h"
#include "../machine.h"
#include "../pci/pci.h"

#define PIIX_PM_PORT     0xb000 /* the PM I/O block, 64 bytes */
#define PIIX_PM_LEN      0x40
#define PIIX_PORT_A      0x92 /* System Control Port A */
#define PIIX_SLOT        1
#define PIIX_ISA_FN      0
#define PIIX_PM_FN       3
#define PIIX_PM_TIMER_HZ 3579545u

struct piix {
	struct pci_device isa, pm; /* first: the PCI callbacks get these */
	struct machine *m;
	uint64_t (*now_ns)(void); /* the monotonic clock; replaceable in tests */
	uint16_t pm_base;         /* where the PM block decodes now; 0: off (atomic) */
	uint16_t pm1_enable, pm1_control;
	uint8_t reset_control, port_a;
};

void piix_init(struct piix *p, struct machine *m);
/* Gives the host bridge its i440FX identity, puts the two functions on the bus and claims the
 * ports (before any vCPU runs). */
int piix_attach(struct piix *p, struct pci_bus *bus, struct io_bus *pio, struct err *e);

/* Port handlers (vCPU threads): the PM block at PIIX_PM_PORT and port 0x92. */
void piix_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void piix_port_a_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif

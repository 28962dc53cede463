/* piix: i440FX/PIIX3/PIIX4 functions for the firmware (see piix.h; register layouts from
 * Intel's 82371AB PIIX4 datasheet, sections on the PCI-ISA bridge and power management). */
#include "piix.h"

#include <stddef.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"

#define I440FX_DEVICE   0x1237
#define PIIX3_DEVICE    0x7000
#define PIIX4_PM_DEVICE 0x7113
#define INTEL           0x8086

#define ISA_PIRQ_ROUTE 0x60 /* four PIRQ route control bytes; 0x80: routing off */
#define PM_PMBA        0x40 /* PM base address: bits 15:6, bit 0 reads 1 (I/O space) */
#define PM_PMREGMISC   0x80 /* bit 0: PM I/O space enable */
#define PMIOSE         0x01

#define PM1_STATUS  0x00
#define PM1_ENABLE  0x02
#define PM1_CONTROL 0x04
#define PM_TIMER    0x08
#define SCI_EN      0x0001
#define SLP_TYP(v)  (((v) >> 10) & 0x7)
#define SLP_EN      0x2000
#define SLP_TYP_S5  0 /* the value of \_S5 that OVMF and QEMU's tables use for PIIX4 */

#define RCR_SYS_RST  0x02 /* reset control: hard reset */
#define RCR_RST_CPU  0x04 /* reset control: the reset, on a 0-to-1 transition */
#define PORT_A_RESET 0x01
#define PORT_A_A20   0x02

static uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pm_cfg_written(struct pci_device *d, uint32_t offset, uint32_t len)
{
	struct piix *p = (struct piix *)((char *)d - offsetof(struct piix, pm));
	(void)offset;
	(void)len;
	uint16_t base = (uint16_t)((d->cfg[PM_PMBA] | d->cfg[PM_PMBA + 1] << 8) & 0xffc0);
	bool on = d->cfg[PM_PMREGMISC] & PMIOSE;
	if (on && base != PIIX_PM_PORT)
		log_warn("guest put the PIIX4 PM block at port 0x%x: only 0x%x decodes", base, PIIX_PM_PORT);
	__atomic_store_n(&p->pm_base, on && base == PIIX_PM_PORT ? base : 0, __ATOMIC_RELEASE);
}

static const struct pci_device_ops pm_ops = {.cfg_written = pm_cfg_written};

void piix_init(struct piix *p, struct machine *m)
{
	memset(p, 0, sizeof(*p));
	p->m = m;
	p->now_ns = monotonic_ns;
	p->port_a = PORT_A_A20;
	pci_device_init(&p->isa, "PIIX3 ISA bridge", INTEL, PIIX3_DEVICE, 0x060100, 0, 0, 0);
	p->isa.wmask[0x04] |= PCI_COMMAND_IO;
	for (unsigned i = 0; i < 4; i++) {
		p->isa.cfg[ISA_PIRQ_ROUTE + i] = 0x80;
		p->isa.wmask[ISA_PIRQ_ROUTE + i] = 0x8f;
	}
	pci_device_init(&p->pm, "PIIX4 power management", INTEL, PIIX4_PM_DEVICE, 0x068000, 3, 0, 0);
	p->pm.ops = &pm_ops;
	p->pm.wmask[0x04] |= PCI_COMMAND_IO;
	p->pm.cfg[PCI_INTERRUPT_PIN] = 1; /* SCI on INTA#, as on the part */
	p->pm.cfg[PM_PMBA] = 0x01;
	p->pm.wmask[PM_PMBA] = 0xc0;
	p->pm.wmask[PM_PMBA + 1] = 0xff;
	p->pm.wmask[PM_PMREGMISC] = PMIOSE;
}

/* The reset control register at 0xCF9 (under the PCI bus lock). */
static void reset_control(void *opaque, uint8_t *data, bool is_write)
{
	struct piix *p = opaque;
	if (!is_write) {
		*data = p->reset_control;
		return;
	}
	bool reset = (*data & RCR_RST_CPU) && !(p->reset_control & RCR_RST_CPU);
	p->reset_control = *data & (RCR_SYS_RST | RCR_RST_CPU);
	if (reset)
		p->m->request_exit(p->m, MACHINE_REBOOT, "guest reset the machine (reset control register 0xCF9)");
}

int piix_attach(struct piix *p, struct pci_bus *bus, struct io_bus *pio, struct err *e)
{
	pci_bus_set_host_bridge(bus, INTEL, I440FX_DEVICE, 2);
	bus->reset_control = reset_control;
	bus->reset_control_opaque = p;
	if (pci_bus_add_at(bus, &p->isa, PIIX_SLOT, PIIX_ISA_FN, e) < 0 ||
	    pci_bus_add_at(bus, &p->pm, PIIX_SLOT, PIIX_PM_FN, e) < 0 ||
	    io_bus_register(pio, PIIX_PM_PORT, PIIX_PM_LEN, piix_pm_io, p, "PIIX4 PM", e) < 0 ||
	    io_bus_register(pio, PIIX_PORT_A, 1, piix_port_a_io, p, "port A (0x92)", e) < 0)
		return -1;
	return 0;
}

/* The 24-bit PM timer: 3.579545 MHz from the monotonic clock. */
static uint32_t pm_timer(const struct piix *p)
{
	uint64_t ns = p->now_ns();
	uint64_t ticks = (ns / 1000000000u) * PIIX_PM_TIMER_HZ + (ns % 1000000000u) * PIIX_PM_TIMER_HZ / 1000000000u;
	return (uint32_t)ticks & 0xffffff;
}

static void pm1_control_written(struct piix *p, uint16_t v)
{
	__atomic_store_n(&p->pm1_control, (uint16_t)(v & ~SLP_EN), __ATOMIC_RELAXED);
	if (!(v & SLP_EN))
		return;
	if (SLP_TYP(v) == SLP_TYP_S5)
		p->m->request_exit(p->m, MACHINE_POWEROFF, "guest powered off (ACPI S5, PIIX4 PM)");
	else
		log_warn("guest asked for sleep type %u: only S5 (power off) is supported, ignored", SLP_TYP(v));
}

void piix_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct piix *p = opaque;
	if (!__atomic_load_n(&p->pm_base, __ATOMIC_ACQUIRE)) {
		if (!is_write)
			memset(data, 0xff, len); /* the block is off: nothing decodes */
		return;
	}
	uint8_t regs[12] = {0}; /* status reads 0: no event is ever pending */
	uint16_t en = __atomic_load_n(&p->pm1_enable, __ATOMIC_RELAXED);
	uint16_t ctl = __atomic_load_n(&p->pm1_control, __ATOMIC_RELAXED);
	/* The clock only for a read of the timer: the firmware polls it, and every access exits. */
	uint32_t tmr = !is_write && offset < PM_TIMER + 4 && offset + len > PM_TIMER ? pm_timer(p) : 0;
	memcpy(regs + PM1_ENABLE, &en, 2);
	memcpy(regs + PM1_CONTROL, &ctl, 2);
	memcpy(regs + PM_TIMER, &tmr, 4);
	if (!is_write) {
		memset(data, 0, len);
		if (offset < sizeof(regs))
			memcpy(data, regs + offset, len < sizeof(regs) - offset ? len : sizeof(regs) - offset);
		return;
	}
	if (offset == PM1_ENABLE && len == 2)
		__atomic_store_n(&p->pm1_enable, (uint16_t)(data[0] | data[1] << 8), __ATOMIC_RELAXED);
	else if (offset == PM1_CONTROL && len >= 2)
		pm1_control_written(p, (uint16_t)(data[0] | data[1] << 8));
	else if (offset == PM1_CONTROL && len == 1)
		pm1_control_written(p, (uint16_t)((ctl & 0xff00) | data[0]));
	else if (offset == PM1_CONTROL + 1 && len == 1) /* the byte with SLP_TYP and SLP_EN */
		pm1_control_written(p, (uint16_t)((ctl & 0xff) | data[0] << 8));
	/* status bits are write-one-to-clear and none is ever set; the timer is read-only */
}

void piix_port_a_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct piix *p = opaque;
	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		data[0] = __atomic_load_n(&p->port_a, __ATOMIC_RELAXED);
		return;
	}
	__atomic_store_n(&p->port_a, (uint8_t)(data[0] & PORT_A_A20), __ATOMIC_RELAXED);
	if (data[0] & PORT_A_RESET)
		p->m->request_exit(p->m, MACHINE_REBOOT, "guest reset the machine (port 0x92)");
}

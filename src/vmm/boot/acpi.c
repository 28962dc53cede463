/* acpi: ACPI table construction (see acpi.h). Field offsets follow ACPI 6.x chapter 5; the MCFG
 * follows the PCI Firmware specification 3.x. */
#include "acpi.h"

#include <string.h>

#include "../platform.h"
#include "aml.h"
#include "layout.h"

#define OEM_ID    "SHOJI "
#define OEM_TABLE "SHOJIVMM"

#define FADT_SIZE            276
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED    (1u << 20)
#define FADT_F_PWR_BUTTON    (1u << 4)
#define FADT_F_SLP_BUTTON    (1u << 5)
#define FADT_BOOT_NO_VGA     (1u << 2)

#define ACPI_GAS_IO 1

uint8_t acpi_checksum(const uint8_t *data, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + data[i]);
	return sum;
}

struct out {
	uint8_t *buf;
	size_t size, len;
	uint64_t base;
};

static void put(uint8_t *p, size_t off, uint64_t v, size_t width)
{
	memcpy(p + off, &v, width);
}

/* Reserves `len` zeroed bytes, 16-byte aligned; returns the offset or SIZE_MAX. */
static size_t reserve(struct out *o, size_t len)
{
	size_t off = (o->len + 15) & ~(size_t)15;
	if (off > o->size || len > o->size - off)
		return SIZE_MAX;
	memset(o->buf + off, 0, len);
	o->len = off + len;
	return off;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put(t, 4, len, 4);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE, 8);
	put(t, 24, 1, 4);          /* OEM revision */
	memcpy(t + 28, "SHOJ", 4); /* creator */
	put(t, 32, 1, 4);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = (uint8_t)(0 - acpi_checksum(t, len));
}

static void gas_io(uint8_t *p, uint16_t port)
{
	p[0] = ACPI_GAS_IO;
	p[1] = 8; /* bit width */
	p[2] = 0;
	p[3] = 1; /* byte access */
	put(p, 4, port, 8);
}

/* Device(NAME){ Name(_HID, hid) Name(_UID, 0) Name(_CRS, io [+ irq]) } */
static void legacy_device(struct aml *scope, const char *name, const char *hid, int eisa, uint16_t port, uint8_t len,
			  int irq)
{
	struct aml dev = {0}, v = {0};
	if (eisa)
		aml_eisa_id(&v, hid);
	else
		aml_string(&v, hid);
	aml_name_decl(&dev, "_HID", &v);
	v.len = 0;
	aml_integer(&v, 0);
	aml_name_decl(&dev, "_UID", &v);
	v.len = 0;
	aml_io_resource(&v, port, len, irq);
	aml_name_decl(&dev, "_CRS", &v);
	aml_device(scope, name, &dev);
}

/* PCI0: the host bridge of bus 0, its configuration ports and its MMIO window. */
static void pci_host_bridge(struct aml *scope)
{
	struct aml dev = {0}, v = {0}, rt = {0};
	aml_eisa_id(&v, "PNP0A08"); /* PCI Express root bridge */
	aml_name_decl(&dev, "_HID", &v);
	v.len = 0;
	aml_eisa_id(&v, "PNP0A03"); /* PCI root bridge */
	aml_name_decl(&dev, "_CID", &v);
	v.len = 0;
	aml_integer(&v, 0);
	aml_name_decl(&dev, "_SEG", &v);
	aml_name_decl(&dev, "_BBN", &v);
	aml_name_decl(&dev, "_UID", &v);
	aml_rt_bus_numbers(&rt, 0, 0);
	aml_rt_io(&rt, PORT_PCI_CONFIG, 8);
	aml_rt_memory32(&rt, (uint32_t)LAYOUT_PCI_WINDOW, (uint32_t)LAYOUT_PCI_WINDOW_SIZE);
	v.len = 0;
	aml_resource_template(&v, &rt);
	aml_name_decl(&dev, "_CRS", &v);
	aml_device(scope, "PCI0", &dev);
}

/* The power button: PWRB (PNP0C0C, which Linux's button driver turns into KEY_POWER) and the
 * Generic Event Device GED0 (ACPI0013) whose interrupt's _EVT notifies it, since a
 * hardware-reduced machine has no fixed power button. The monitor presses it by an edge on
 * GSI_POWER_BUTTON (vm_power_button). */
static void power_button(struct aml *scope)
{
	struct aml dev = {0}, v = {0}, rt = {0}, evt = {0};
	aml_eisa_id(&v, "PNP0C0C");
	aml_name_decl(&dev, "_HID", &v);
	v.len = 0;
	aml_integer(&v, 0);
	aml_name_decl(&dev, "_UID", &v);
	aml_device(scope, "PWRB", &dev);

	dev.len = v.len = 0;
	aml_string(&v, "ACPI0013");
	aml_name_decl(&dev, "_HID", &v);
	v.len = 0;
	aml_integer(&v, 0);
	aml_name_decl(&dev, "_UID", &v);
	aml_rt_interrupt(&rt, GSI_POWER_BUTTON);
	v.len = 0;
	aml_resource_template(&v, &rt);
	aml_name_decl(&dev, "_CRS", &v);
	aml_notify(&evt, "\\_SB_.PWRB", 0x80); /* 0x80: the button was pressed */
	aml_method(&dev, "_EVT", 1, &evt);
	aml_device(scope, "GED0", &dev);
}

/* The DSDT: \_S5 for power-off, and the legacy devices with their ports and interrupts, so
 * that a hardware-reduced guest (which has no ISA interrupt defaults) can route them. */
static size_t build_dsdt(struct out *o)
{
	struct aml body = {0}, v = {0};
	uint64_t s5[] = {PM_SLEEP_TYPE_S5, PM_SLEEP_TYPE_S5, 0, 0};
	aml_package_ints(&v, s5, 4);
	aml_name_decl(&body, "_S5_", &v);

	struct aml sb = {0};
	legacy_device(&sb, "COM1", "PNP0501", 1, PORT_COM1, 8, IRQ_COM1);
	legacy_device(&sb, "RTC_", "PNP0B00", 1, PORT_RTC, 2, IRQ_RTC);
	/* "QEMU0001": the pvpanic device that Linux's pvpanic-mmio binds to. */
	legacy_device(&sb, "PEVT", "QEMU0001", 0, PORT_PVPANIC, 1, -1);
	pci_host_bridge(&sb);
	power_button(&sb);
	aml_scope(&body, "\\_SB_", &sb);
	if (body.overflow)
		return SIZE_MAX;

	uint32_t len = (uint32_t)(36 + body.len);
	size_t off = reserve(o, len);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = o->buf + off;
	header(t, "DSDT", len, 2);
	memcpy(t + 36, body.buf, body.len);
	finish(t, len);
	return off;
}

static size_t build_fadt(struct out *o, uint64_t dsdt_gpa)
{
	size_t off = reserve(o, FADT_SIZE);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = o->buf + off;
	header(t, "FACP", FADT_SIZE, 6);
	put(t, 40, dsdt_gpa, 4);
	put(t, 109, FADT_BOOT_NO_VGA, 2); /* no VGA, no i8042 to probe, CMOS RTC present */
	put(t, 112, FADT_F_HW_REDUCED | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON, 4);
	gas_io(t + 116, PORT_PM_RESET);
	t[128] = PM_RESET_VALUE;
	t[131] = 0; /* FADT minor version */
	put(t, 140, dsdt_gpa, 8);
	gas_io(t + 244, PORT_PM_SLEEP_CONTROL);
	gas_io(t + 256, PORT_PM_SLEEP_STATUS);
	memcpy(t + 268, "SHOJIVMM", 8); /* hypervisor vendor identity */
	finish(t, FADT_SIZE);
	return off;
}

static size_t build_madt(struct out *o, unsigned ncpus)
{
	uint32_t len = 44 + 8 * ncpus + 12 + 6;
	size_t off = reserve(o, len);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = o->buf + off;
	header(t, "APIC", len, 5);
	put(t, 36, LAYOUT_LAPIC, 4);
	put(t, 40, 1, 4); /* PCAT_COMPAT: there is a dual 8259 */
	uint8_t *p = t + 44;
	for (unsigned i = 0; i < ncpus; i++, p += 8) {
		p[0] = 0; /* processor local APIC */
		p[1] = 8;
		p[2] = (uint8_t)i; /* ACPI processor UID */
		p[3] = (uint8_t)i; /* APIC ID */
		put(p, 4, 1, 4);   /* enabled */
	}
	p[0] = 1; /* I/O APIC */
	p[1] = 12;
	p[2] = 0; /* I/O APIC ID */
	put(p, 4, LAYOUT_IOAPIC, 4);
	put(p, 8, 0, 4); /* GSI base */
	p += 12;
	p[0] = 4; /* local APIC NMI */
	p[1] = 6;
	p[2] = 0xff; /* all processors */
	put(p, 3, 0, 2);
	p[5] = 1; /* LINT1 */
	finish(t, len);
	return off;
}

static size_t build_mcfg(struct out *o)
{
	const uint32_t len = 44 + 16;
	size_t off = reserve(o, len);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = o->buf + off;
	header(t, "MCFG", len, 1);
	put(t, 44, LAYOUT_PCI_ECAM, 8);                           /* ECAM base */
	put(t, 52, 0, 2);                                         /* segment */
	t[54] = 0;                                                /* first bus */
	t[55] = (uint8_t)(LAYOUT_PCI_ECAM_SIZE / (1u << 20) - 1); /* last bus: 1 MiB a bus */
	finish(t, len);
	return off;
}

int acpi_build(uint8_t *buf, size_t size, uint64_t base_gpa, unsigned ncpus, size_t *used, struct err *e)
{
	if (ncpus == 0 || ncpus > ACPI_MAX_CPUS)
		return err_set(e, "ACPI tables describe 1 to %d vCPUs, not %u", ACPI_MAX_CPUS, ncpus);
	struct out o = {.buf = buf, .size = size, .base = base_gpa};
	size_t rsdp = reserve(&o, 36);
	size_t dsdt = build_dsdt(&o);
	size_t fadt = dsdt == SIZE_MAX ? SIZE_MAX : build_fadt(&o, base_gpa + dsdt);
	size_t madt = build_madt(&o, ncpus);
	size_t mcfg = build_mcfg(&o);
	const size_t tables[] = {fadt, madt, mcfg};
	const unsigned ntables = sizeof(tables) / sizeof(tables[0]);
	size_t xsdt = reserve(&o, 36 + 8 * ntables);
	if (rsdp == SIZE_MAX || dsdt == SIZE_MAX || fadt == SIZE_MAX || madt == SIZE_MAX || mcfg == SIZE_MAX ||
	    xsdt == SIZE_MAX)
		return err_set(e, "ACPI tables for %u vCPUs do not fit in %zu bytes", ncpus, size);

	uint8_t *x = buf + xsdt;
	header(x, "XSDT", (uint32_t)(36 + 8 * ntables), 1);
	for (unsigned i = 0; i < ntables; i++)
		put(x, 36 + 8 * i, base_gpa + tables[i], 8);
	finish(x, (uint32_t)(36 + 8 * ntables));

	uint8_t *r = buf + rsdp;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2; /* ACPI 2.0+: use the XSDT */
	put(r, 20, 36, 4);
	put(r, 24, base_gpa + xsdt, 8);
	r[8] = (uint8_t)(0 - acpi_checksum(r, 20));
	r[32] = (uint8_t)(0 - acpi_checksum(r, 36));
	*used = o.len;
	return 0;
}

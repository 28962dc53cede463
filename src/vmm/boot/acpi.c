/* acpi: ACPI table construction and placement (see acpi.h). Field offsets follow ACPI 6.x
 * chapter 5; the MCFG follows the PCI Firmware specification 3.x. */
#include "acpi.h"

#include <stdbool.h>
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

static void put(uint8_t *p, size_t off, uint64_t v, size_t width)
{
	memcpy(p + off, &v, width);
}

/* Reserves `len` zeroed bytes for a table, ACPI_BLOB_ALIGN-aligned, and records it; returns its
 * offset, or SIZE_MAX when it does not fit. */
static size_t reserve(struct acpi_blob *b, size_t len)
{
	size_t off = (b->len + ACPI_BLOB_ALIGN - 1) & ~(size_t)(ACPI_BLOB_ALIGN - 1);
	if (off > b->size || len > b->size - off || b->ntables == ACPI_BLOB_MAX_TABLES)
		return SIZE_MAX;
	memset(b->buf + off, 0, len);
	b->len = off + len;
	b->tables[b->ntables++] = (struct acpi_blob_table){(uint32_t)off, (uint32_t)len};
	return off;
}

/* Writes the offset `target` into the pointer field at `field` and records the field. */
static void pointer(struct acpi_blob *b, size_t field, size_t target, uint8_t size)
{
	put(b->buf, field, target, size);
	if (b->npointers < ACPI_BLOB_MAX_POINTERS)
		b->pointers[b->npointers] = (struct acpi_blob_pointer){(uint32_t)field, size};
	b->npointers++; /* more than the array holds: acpi_build_tables fails */
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
static void pci_host_bridge(struct aml *scope, const struct acpi_params *p)
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
	aml_rt_memory32(&rt, p->pci_window_base, p->pci_window_size);
	v.len = 0;
	aml_resource_template(&v, &rt);
	aml_name_decl(&dev, "_CRS", &v);
	aml_device(scope, "PCI0", &dev);
}

/* MRES: the ECAM of bus 0, as a motherboard resource that nobody may reassign. */
static void ecam_resource(struct aml *scope, uint64_t ecam_base)
{
	struct aml dev = {0}, v = {0}, rt = {0};
	aml_eisa_id(&v, "PNP0C02");
	aml_name_decl(&dev, "_HID", &v);
	v.len = 0;
	aml_integer(&v, 1);
	aml_name_decl(&dev, "_UID", &v);
	aml_rt_memory32_fixed(&rt, (uint32_t)ecam_base, (uint32_t)LAYOUT_PCI_ECAM_SIZE);
	v.len = 0;
	aml_resource_template(&v, &rt);
	aml_name_decl(&dev, "_CRS", &v);
	aml_device(scope, "MRES", &dev);
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
static size_t build_dsdt(struct acpi_blob *b, const struct acpi_params *p)
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
	pci_host_bridge(&sb, p);
	if (p->ecam_motherboard_resource)
		ecam_resource(&sb, p->ecam_base);
	power_button(&sb);
	aml_scope(&body, "\\_SB_", &sb);
	if (body.overflow)
		return SIZE_MAX;

	uint32_t len = (uint32_t)(36 + body.len);
	size_t off = reserve(b, len);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = b->buf + off;
	header(t, "DSDT", len, 2);
	memcpy(t + 36, body.buf, body.len);
	return off;
}

static size_t build_fadt(struct acpi_blob *b, size_t dsdt)
{
	size_t off = reserve(b, FADT_SIZE);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = b->buf + off;
	header(t, "FACP", FADT_SIZE, 6);
	pointer(b, off + 40, dsdt, 4);
	put(t, 109, FADT_BOOT_NO_VGA, 2); /* no VGA, no i8042 to probe, CMOS RTC present */
	put(t, 112, FADT_F_HW_REDUCED | FADT_F_RESET_REG_SUP | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON, 4);
	gas_io(t + 116, PORT_PM_RESET);
	t[128] = PM_RESET_VALUE;
	t[131] = 0; /* FADT minor version */
	pointer(b, off + 140, dsdt, 8);
	gas_io(t + 244, PORT_PM_SLEEP_CONTROL);
	gas_io(t + 256, PORT_PM_SLEEP_STATUS);
	memcpy(t + 268, "SHOJIVMM", 8); /* hypervisor vendor identity */
	return off;
}

static size_t build_madt(struct acpi_blob *b, unsigned ncpus)
{
	uint32_t len = 44 + 8 * ncpus + 12 + 6;
	size_t off = reserve(b, len);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = b->buf + off;
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
	return off;
}

static size_t build_mcfg(struct acpi_blob *b, uint64_t ecam_base)
{
	const uint32_t len = 44 + 16;
	size_t off = reserve(b, len);
	if (off == SIZE_MAX)
		return off;
	uint8_t *t = b->buf + off;
	header(t, "MCFG", len, 1);
	put(t, 44, ecam_base, 8);                                 /* ECAM base */
	put(t, 52, 0, 2);                                         /* segment */
	t[54] = 0;                                                /* first bus */
	t[55] = (uint8_t)(LAYOUT_PCI_ECAM_SIZE / (1u << 20) - 1); /* last bus: 1 MiB a bus */
	return off;
}

static size_t build_xsdt(struct acpi_blob *b, const size_t *tables, unsigned n)
{
	size_t off = reserve(b, 36 + 8 * n);
	if (off == SIZE_MAX)
		return off;
	header(b->buf + off, "XSDT", (uint32_t)(36 + 8 * n), 1);
	for (unsigned i = 0; i < n; i++)
		pointer(b, off + 36 + 8 * i, tables[i], 8);
	return off;
}

static void build_rsdp(uint8_t *r, size_t xsdt)
{
	memset(r, 0, ACPI_RSDP_SIZE);
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, OEM_ID, 6);
	r[15] = 2; /* ACPI 2.0+: use the XSDT */
	put(r, 20, ACPI_RSDP_SIZE, 4);
	put(r, ACPI_RSDP_XSDT, xsdt, 8);
}

void acpi_params_direct(struct acpi_params *p, unsigned ncpus)
{
	*p = (struct acpi_params){
		.ncpus = ncpus,
		.ecam_base = LAYOUT_PCI_ECAM,
		.pci_window_base = (uint32_t)LAYOUT_PCI_WINDOW,
		.pci_window_size = (uint32_t)LAYOUT_PCI_WINDOW_SIZE,
	};
}

static int check_params(const struct acpi_params *p, struct err *e)
{
	if (p->ncpus == 0 || p->ncpus > ACPI_MAX_CPUS)
		return err_set(e, "ACPI tables describe 1 to %d vCPUs, not %u", ACPI_MAX_CPUS, p->ncpus);
	if (p->ecam_motherboard_resource && p->ecam_base > LAYOUT_4G - LAYOUT_PCI_ECAM_SIZE)
		return err_set(e, "ECAM at 0x%llx is not below 4 GiB", (unsigned long long)p->ecam_base);
	if (p->pci_window_size == 0 || p->pci_window_base + (uint64_t)p->pci_window_size > LAYOUT_4G)
		return err_set(e, "PCI window 0x%x+0x%x is not below 4 GiB", p->pci_window_base, p->pci_window_size);
	return 0;
}

int acpi_build_tables(const struct acpi_params *p, uint8_t *buf, size_t size, struct acpi_blob *b, struct err *e)
{
	if (check_params(p, e) < 0)
		return -1;
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->size = size;
	size_t dsdt = build_dsdt(b, p);
	size_t fadt = dsdt == SIZE_MAX ? SIZE_MAX : build_fadt(b, dsdt);
	size_t madt = build_madt(b, p->ncpus);
	size_t mcfg = build_mcfg(b, p->ecam_base);
	const size_t tables[] = {fadt, madt, mcfg};
	size_t xsdt = build_xsdt(b, tables, sizeof(tables) / sizeof(tables[0]));
	if (dsdt == SIZE_MAX || fadt == SIZE_MAX || madt == SIZE_MAX || mcfg == SIZE_MAX || xsdt == SIZE_MAX ||
	    b->npointers > ACPI_BLOB_MAX_POINTERS)
		return err_set(e, "ACPI tables for %u vCPUs do not fit in %zu bytes", p->ncpus, size);
	build_rsdp(b->rsdp, xsdt);
	return 0;
}

/* Adds base to the `size`-byte little-endian value at p; false when the sum does not fit. */
static bool relocate(uint8_t *p, uint8_t size, uint64_t base)
{
	uint64_t v = 0;
	memcpy(&v, p, size);
	v += base;
	if (size < 8 && v >> (8 * size))
		return false;
	put(p, 0, v, size);
	return true;
}

static void fill_checksum(uint8_t *data, size_t len, size_t at)
{
	data[at] = 0;
	data[at] = (uint8_t)(0 - acpi_checksum(data, len));
}

int acpi_blob_place(struct acpi_blob *b, uint64_t tables_gpa, struct err *e)
{
	for (unsigned i = 0; i < b->npointers; i++) {
		const struct acpi_blob_pointer *ptr = &b->pointers[i];
		if (!relocate(b->buf + ptr->offset, ptr->size, tables_gpa))
			return err_set(e, "ACPI tables at 0x%llx: a %u-byte pointer cannot reach them",
				       (unsigned long long)tables_gpa, ptr->size);
	}
	relocate(b->rsdp + ACPI_RSDP_XSDT, 8, tables_gpa);
	for (unsigned i = 0; i < b->ntables; i++)
		fill_checksum(b->buf + b->tables[i].offset, b->tables[i].len, ACPI_HEADER_CSUM);
	fill_checksum(b->rsdp, ACPI_RSDP_V1_LEN, ACPI_RSDP_CSUM);
	fill_checksum(b->rsdp, ACPI_RSDP_SIZE, ACPI_RSDP_EXT_CSUM);
	return 0;
}

int acpi_build(uint8_t *buf, size_t size, uint64_t base_gpa, unsigned ncpus, size_t *used, struct err *e)
{
	/* The RSDP first, at base_gpa, then the blob at the next ACPI_BLOB_ALIGN boundary. */
	const size_t head = (ACPI_RSDP_SIZE + ACPI_BLOB_ALIGN - 1) & ~(size_t)(ACPI_BLOB_ALIGN - 1);
	struct acpi_params p;
	acpi_params_direct(&p, ncpus);
	if (check_params(&p, e) < 0)
		return -1;
	if (size < head)
		return err_set(e, "ACPI tables for %u vCPUs do not fit in %zu bytes", ncpus, size);
	struct acpi_blob b;
	if (acpi_build_tables(&p, buf + head, size - head, &b, e) < 0 || acpi_blob_place(&b, base_gpa + head, e) < 0)
		return -1;
	memset(buf, 0, head);
	memcpy(buf, b.rsdp, ACPI_RSDP_SIZE);
	*used = head + b.len;
	return 0;
}

/* acpi: the ACPI tables that describe the machine to the guest: RSDP, XSDT, a hardware-reduced
 * FADT (sleep and reset registers), a DSDT (\_S5, COM1, RTC, pvpanic, the PCI host bridge,
 * optionally the ECAM as a motherboard resource), a
 * MADT (one local APIC per vCPU, the I/O APIC) and an MCFG (ECAM of PCI bus 0).
 *
 * One builder, acpi_build_tables, lays the tables out in a blob whose pointer fields hold the
 * offset of their target inside the blob and whose checksums are zero, and lists where those
 * pointer fields and checksums are. Two loaders use it:
 *   - acpi_build (direct kernel boot): the monitor places the RSDP and the blob at a guest
 *     address itself (acpi_blob_place: absolute pointers, checksums filled);
 *   - the firmware boot: boot/acpi_loader.c turns the lists into the commands of fw_cfg's
 *     "etc/table-loader", which the firmware runs on its own copy of the blob.
 * All functions run on the thread that builds the machine, before any vCPU runs. */
#ifndef SHOJI_VMM_BOOT_ACPI_H
#define SHOJI_VMM_BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../../common/limits.h"

#define ACPI_MAX_CPUS SHOJI_MAX_CPUS

/* What the tables say that differs between machines. */
struct acpi_params {
	unsigned ncpus;           /* 1 .. ACPI_MAX_CPUS */
	uint64_t ecam_base;       /* MCFG: configuration space of PCI bus 0 (1 MiB) */
	uint32_t pci_window_base; /* PCI0._CRS: the 32-bit MMIO window for BARs */
	uint32_t pci_window_size;
	/* Also list the ECAM in the DSDT as a motherboard resource (PNP0C02): Linux uses the MCFG
	 * only where that or an E820/UEFI map entry reserves it, and OVMF on i440FX knows no ECAM. */
	bool ecam_motherboard_resource;
};

/* The RSDP (ACPI 2.0+, 36 bytes): its XSDT address and its two checksums. */
#define ACPI_RSDP_SIZE         36
#define ACPI_RSDP_CSUM         8 /* checksum of the first ACPI_RSDP_V1_LEN bytes */
#define ACPI_RSDP_V1_LEN       20
#define ACPI_RSDP_XSDT         24 /* 8 bytes */
#define ACPI_RSDP_EXT_CSUM     32 /* checksum of all 36 bytes */
#define ACPI_HEADER_CSUM       9  /* a table's checksum byte, covering its whole length */
#define ACPI_BLOB_ALIGN        16 /* every table starts at a multiple of this in the blob */
#define ACPI_BLOB_MAX_TABLES   8
#define ACPI_BLOB_MAX_POINTERS 8

struct acpi_blob_table {
	uint32_t offset, len; /* in the blob; the signature is the first four bytes */
};

/* A pointer field: `size` bytes (4 or 8) at `offset` in the blob, holding the offset in the blob
 * of the table pointed to. */
struct acpi_blob_pointer {
	uint32_t offset;
	uint8_t size;
};

struct acpi_blob {
	uint8_t *buf; /* the tables, back to back; the caller's buffer */
	size_t size, len;
	uint8_t rsdp[ACPI_RSDP_SIZE]; /* its XSDT field holds the XSDT's offset in buf */
	struct acpi_blob_table tables[ACPI_BLOB_MAX_TABLES];
	unsigned ntables;
	struct acpi_blob_pointer pointers[ACPI_BLOB_MAX_POINTERS];
	unsigned npointers;
};

/* The parameters of the direct-boot machine (boot/layout.h: ECAM and PCI window). */
void acpi_params_direct(struct acpi_params *p, unsigned ncpus);

/* Builds the tables into buf (size bytes) in relative form (see above) and fills b. */
int acpi_build_tables(const struct acpi_params *p, uint8_t *buf, size_t size, struct acpi_blob *b, struct err *e);

/* Turns b into its final form for tables at guest address tables_gpa: adds tables_gpa to every
 * pointer field (the RSDP's too) and fills every checksum. Once per blob. Fails when a 4-byte
 * pointer cannot hold the address. */
int acpi_blob_place(struct acpi_blob *b, uint64_t tables_gpa, struct err *e);

/* Direct boot: writes the RSDP at buf and the tables after it, for buf seen by the guest at
 * base_gpa, with the parameters of acpi_params_direct. *used receives the bytes written. */
int acpi_build(uint8_t *buf, size_t size, uint64_t base_gpa, unsigned ncpus, size_t *used, struct err *e);

/* The byte sum of data, as ACPI checksums want it to be: zero. */
uint8_t acpi_checksum(const uint8_t *data, size_t n);

#endif

/* acpi: the ACPI tables that describe the machine to the guest: RSDP, XSDT, a hardware-reduced
 * FADT (sleep and reset registers), a DSDT (\_S5, COM1, RTC, pvpanic, the PCI host bridge), a
 * MADT (one local APIC per vCPU, the I/O APIC) and an MCFG (ECAM of PCI bus 0). */
#ifndef SHOJI_VMM_BOOT_ACPI_H
#define SHOJI_VMM_BOOT_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../../common/limits.h"

#define ACPI_MAX_CPUS SHOJI_MAX_CPUS

/* Writes the tables into buf, which the guest sees at base_gpa; the RSDP comes first, at
 * base_gpa. *used receives the bytes written. */
int acpi_build(uint8_t *buf, size_t size, uint64_t base_gpa, unsigned ncpus, size_t *used, struct err *e);

/* The byte sum of data, as ACPI checksums want it to be: zero. */
uint8_t acpi_checksum(const uint8_t *data, size_t n);

#endif

/* acpi_loader: the linker/loader script ("etc/table-loader") that makes a firmware place the
 * ACPI blob of acpi_build_tables (acpi.h) itself: the same commands QEMU writes for SeaBIOS and
 * OVMF, written here from the command layout (OVMF's QemuLoader.h) since no library provides it.
 * The firmware gets three fw_cfg files: ACPI_LOADER_TABLES (the blob), ACPI_LOADER_RSDP (the
 * RSDP, its XSDT address relative to the blob) and ACPI_LOADER_SCRIPT, which holds:
 *   ALLOCATE the tables (zone HIGH, 64-byte aligned) and the RSDP (zone FSEG, 16-byte aligned);
 *   per table, in blob order: ADD_POINTER for each pointer field in it (the field holds an
 *     offset into the blob; the firmware adds the blob's address), then ADD_CHECKSUM over it;
 *   ADD_POINTER for the RSDP's XSDT address, ADD_CHECKSUM of its first 20 bytes, then of all 36.
 * The checksum bytes are zero in the files, as ADD_CHECKSUM sums the range including them.
 *
 * What OVMF (2022.11, AcpiPlatformDxe's QemuFwCfgAcpi.c) does with it: it downloads each
 * ALLOCATEd file into its own AcpiNVS pages (the zone is ignored; a file that a pointer of fewer
 * than 8 bytes points into is kept below 4 GiB: here the tables, through the FADT's 32-bit
 * DSDT field; alignment must be at most 4 KiB), then runs the pointer and checksum commands in
 * order. In a second pass over the ADD_POINTER commands it looks at each distinct address
 * pointed to: a FACS, or a table whose length fits its blob and whose checksum is right, is
 * installed through EFI_ACPI_TABLE_PROTOCOL (which copies it), except the RSDT and XSDT, which
 * the protocol builds itself along with its own RSDP. Then it frees the blobs that held only
 * tables. So our tables fare thus:
 *   DSDT  installed (pointed to by the FADT; the protocol points its FADT copy at its DSDT copy)
 *   FACP  installed (pointed to by the XSDT)
 *   APIC  installed (pointed to by the XSDT)
 *   MCFG  installed (pointed to by the XSDT)
 *   XSDT  skipped (pointed to by the RSDP): the protocol's own XSDT lists the tables above
 *   RSDP  never a pointee, never installed: the OS gets the protocol's RSDP (EFI config table)
 * A table that no pointer reaches would be silently left out; none is (tests/unit check it).
 * The functions run on the thread that builds the machine. */
#ifndef SHOJI_VMM_BOOT_ACPI_LOADER_H
#define SHOJI_VMM_BOOT_ACPI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"
#include "acpi.h"

#define ACPI_LOADER_SCRIPT "etc/table-loader"
#define ACPI_LOADER_TABLES "etc/acpi/tables"
#define ACPI_LOADER_RSDP   "etc/acpi/rsdp"

/* The commands: each ACPI_LOADER_ENTRY_SIZE bytes, a little-endian 32-bit type first, then
 *   ALLOCATE:     file[56], alignment (32 bits), zone (8 bits)
 *   ADD_POINTER:  pointer file[56], pointee file[56], offset (32 bits), size (8 bits)
 *   ADD_CHECKSUM: file[56], result offset (32 bits), start (32 bits), length (32 bits) */
#define ACPI_LOADER_ENTRY_SIZE   128
#define ACPI_LOADER_FNAME_SIZE   56
#define ACPI_LOADER_ALLOCATE     1
#define ACPI_LOADER_ADD_POINTER  2
#define ACPI_LOADER_ADD_CHECKSUM 3
#define ACPI_LOADER_ZONE_HIGH    1
#define ACPI_LOADER_ZONE_FSEG    2
#define ACPI_LOADER_MAX_ENTRIES  (2 + ACPI_BLOB_MAX_POINTERS + ACPI_BLOB_MAX_TABLES + 3)

/* Writes the script for blob b (as acpi_build_tables left it) into out, which has room for
 * ACPI_LOADER_MAX_ENTRIES entries; returns its length in bytes, or -1 when a pointer field lies
 * in no table. */
long acpi_loader_script(const struct acpi_blob *b, uint8_t out[ACPI_LOADER_MAX_ENTRIES * ACPI_LOADER_ENTRY_SIZE],
			struct err *e);

#endif

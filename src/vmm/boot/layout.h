/* layout: where the monitor puts things in guest-physical memory, and how RAM is split around
 * the 32-bit PCI hole. Everything the boot code writes below 1 MiB is listed here. */
#ifndef SHOJI_VMM_BOOT_LAYOUT_H
#define SHOJI_VMM_BOOT_LAYOUT_H

#include <stdint.h>

#include "../../common/limits.h"

#define LAYOUT_GDT             0x500ull
#define LAYOUT_ZERO_PAGE       0x7000ull /* struct boot_params */
#define LAYOUT_BOOT_STACK      0x8ff0ull
#define LAYOUT_PML4            0x9000ull
#define LAYOUT_PDPT            0xa000ull
#define LAYOUT_PD              0xb000ull /* four page directories: identity map of 4 GiB */
#define LAYOUT_CMDLINE         0x20000ull
#define LAYOUT_CMDLINE_MAX     0x10000ull /* bytes, with the terminating NUL */
#define LAYOUT_EBDA            0x9fc00ull /* from here to 1 MiB: reserved, as on a PC */
#define LAYOUT_ACPI            0xe0000ull /* RSDP and ACPI tables (the RSDP search area) */
#define LAYOUT_ACPI_SIZE       0x20000ull
#define LAYOUT_RESET_VECTOR    0xffff0ull /* F000:FFF0, where a real-mode restart jumps */
#define LAYOUT_HIGH_MEM        0x100000ull
#define LAYOUT_PCI_HOLE        0xc0000000ull /* RAM above this moves above 4 GiB */
#define LAYOUT_PCI_WINDOW      0xc0000000ull /* 32-bit MMIO window where the monitor places BARs */
#define LAYOUT_PCI_WINDOW_SIZE 0x20000000ull
#define LAYOUT_PCI_ECAM        0xfe000000ull /* configuration space of bus 0, above any BAR window */
#define LAYOUT_PCI_ECAM_SIZE   0x100000ull
#define LAYOUT_4G              0x100000000ull
#define LAYOUT_IOAPIC          0xfec00000ull
#define LAYOUT_LAPIC           0xfee00000ull
#define LAYOUT_TSS_ADDR        0xfeffd000ull /* three pages KVM needs on VMX without unrestricted guest */
#define LAYOUT_FIRMWARE_TOP    LAYOUT_4G     /* firmware flash ends here (devices/pflash.c) */
#define LAYOUT_FIRMWARE_MAX    0x1000000ull  /* at most 16 MiB of it: 0xff000000 and up */

#define LAYOUT_MIN_MEM_MIB SHOJI_MIN_MEMORY_MIB

struct ram_region {
	uint64_t gpa;
	uint64_t size;
};

/* Splits `mem_size` bytes of RAM into at most two regions: below the PCI hole and above 4 GiB.
 * Returns the number of regions. */
int layout_ram_regions(uint64_t mem_size, struct ram_region out[2]);
/* How much of `mem_size` bytes of RAM lies below 4 GiB, and above. */
uint64_t layout_below_4g(uint64_t mem_size);
uint64_t layout_above_4g(uint64_t mem_size);

#endif

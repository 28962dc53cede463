/* e820: the BIOS-style memory map: handed to the kernel in boot_params (direct boot), and to
 * the firmware as fw_cfg's "etc/e820" (firmware boot). Both come from the RAM regions of
 * boot/layout.h, the ones guest_mem is made of. */
#ifndef SHOJI_VMM_BOOT_E820_H
#define SHOJI_VMM_BOOT_E820_H

#include <stdint.h>

#include "layout.h"

#define E820_RAM      1
#define E820_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

#define E820_MAX_ENTRIES 128 /* what boot_params has room for */

/* Fills `out` (room for `max` entries) for a guest with `mem_size` bytes of RAM; returns the
 * number of entries, or -1 when mem_size is below the 1 MiB the map needs. */
int e820_build(uint64_t mem_size, struct e820_entry *out, int max);

/* The RAM regions themselves, one E820_RAM entry each and nothing reserved: what a firmware is
 * told (it reserves what it places itself). Returns the number of entries, or -1 when they do
 * not fit in `max`. */
int e820_ram_map(const struct ram_region *regions, int nregions, struct e820_entry *out, int max);

#endif

/* loader: puts a bzImage, its initrd and command line, boot_params with the E820 map, the ACPI
 * tables, an identity page table and a GDT into guest memory, and says where the boot vCPU
 * enters (the Linux x86 64-bit boot protocol). */
#ifndef SHOJI_VMM_BOOT_LOADER_H
#define SHOJI_VMM_BOOT_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../memory.h"

struct boot_config {
	const uint8_t *kernel;
	size_t kernel_size;
	const char *kernel_path;
	const uint8_t *initrd; /* may be NULL */
	size_t initrd_size;
	const char *initrd_path;
	const char *cmdline;
	unsigned ncpus;
};

struct boot_entry {
	uint64_t rip, rsi, rsp, cr3;
	uint64_t gdt_base;
	uint16_t gdt_limit;
	uint64_t kernel_addr, initrd_addr;
};

/* GDT selectors the 64-bit boot protocol asks for. */
#define BOOT_CS  0x10
#define BOOT_DS  0x18
#define BOOT_TSS 0x20

int boot_load(struct guest_mem *m, const struct boot_config *c, struct boot_entry *out, struct err *e);

#endif

/* vmlinux: parsing and validation of an uncompressed x86-64 Linux kernel, the ELF vmlinux, which
 * the loader boots straight at its 64-bit entry (startup_64) as Firecracker and cloud-hypervisor
 * do. No decompressor runs in the guest, so the boot skips unpacking the kernel; and since the
 * decompressor is what picks a random base, such a guest runs without KASLR. Pure functions over
 * a byte buffer, so that corrupt images can be tested. */
#ifndef SHOJI_VMM_BOOT_VMLINUX_H
#define SHOJI_VMM_BOOT_VMLINUX_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"

#define VMLINUX_MAX_SEGMENTS 16
#define VMLINUX_MAX_PHDRS    64
#define VMLINUX_KERNEL_MAP   0xffffffff80000000ull /* x86-64 Linux's code is linked from here up */

/* One PT_LOAD: filesz bytes from data at paddr, then zeroes up to memsz. */
struct vmlinux_segment {
	uint64_t paddr;
	uint64_t vaddr;
	const uint8_t *data;
	uint64_t filesz;
	uint64_t memsz;
};

struct vmlinux {
	struct vmlinux_segment seg[VMLINUX_MAX_SEGMENTS];
	unsigned nseg;
	uint64_t entry;      /* guest-physical address of startup_64 (e_entry) */
	uint64_t start, end; /* the lowest and one past the highest address a segment fills */
};

/* Whether `image` starts with the ELF magic. */
int vmlinux_is_elf(const uint8_t *image, size_t size);

/* Validates `image` (size bytes) as an x86-64 ELF executable whose segments lie between 1 MiB and
 * the PCI hole and whose entry lies in one of them, linked at the kernel's addresses (so that a
 * user program is refused by name), and fills *vl. `path` is used in messages. */
int vmlinux_parse(const uint8_t *image, size_t size, const char *path, struct vmlinux *vl, struct err *e);

#endif

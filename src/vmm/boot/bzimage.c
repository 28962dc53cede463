/* bzimage: setup-header parsing and validation (see bzimage.h). */
#include "bzimage.h"

#include <string.h>

#include "layout.h"
#include "vmlinux.h"

static uint32_t rd(const uint8_t *p, size_t off, size_t width)
{
	uint32_t v = 0;
	memcpy(&v, p + off, width);
	return v;
}

static uint64_t rd64(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, sizeof(v));
	return v;
}

/* The boot signature and what shoji-vmm needs of the protocol: 2.12 or later, loaded high,
 * a 64-bit entry point. */
static int check_protocol(const uint8_t *image, size_t size, const char *path, struct bzimage *bz, struct err *e)
{
	if (vmlinux_is_elf(image, size))
		return err_set(e, "kernel '%s' is an ELF file, not a bzImage (boot_load takes it as a vmlinux)", path);
	if (size < BZ_MIN_FILE)
		return err_set(e,
			       "kernel '%s' is not a bzImage: only %zu bytes, too short for a Linux "
			       "setup header",
			       path, size);
	if (rd(image, BZ_BOOT_FLAG, 2) != BZ_MAGIC_BOOT_FLAG || rd(image, BZ_HEADER, 4) != BZ_MAGIC_HDRS)
		return err_set(e,
			       "kernel '%s' is not a bzImage: no Linux boot signature (0xAA55, "
			       "'HdrS'); give arch/x86/boot/bzImage or /boot/vmlinuz-*",
			       path);
	bz->version = (uint16_t)rd(image, BZ_VERSION, 2);
	if (bz->version < 0x020c)
		return err_set(e,
			       "kernel '%s' speaks boot protocol %u.%02u; shoji-vmm needs 2.12 or "
			       "later (Linux 3.8+) for the 64-bit entry point",
			       path, bz->version >> 8, bz->version & 0xff);
	if (!(rd(image, BZ_LOADFLAGS, 1) & BZ_LOADED_HIGH))
		return err_set(e, "kernel '%s' is a zImage that loads below 1 MiB; give a bzImage", path);
	if (!(rd(image, BZ_XLOADFLAGS, 2) & BZ_XLF_KERNEL_64))
		return err_set(e, "kernel '%s' has no 64-bit entry point; build it for x86-64", path);
	return 0;
}

/* Where the setup code ends and the kernel (the payload) begins, checked against the file. */
static int find_payload(const uint8_t *image, size_t size, const char *path, struct bzimage *bz, struct err *e)
{
	size_t sects = rd(image, BZ_SETUP_SECTS, 1);
	if (sects == 0)
		sects = 4;
	bz->setup_size = (sects + 1) * 512;
	bz->header_end = BZ_JUMP + 2 + rd(image, BZ_JUMP + 1, 1);
	if (bz->header_end < BZ_MIN_FILE || bz->header_end > bz->setup_size)
		return err_set(e,
			       "kernel '%s' is corrupt: setup header ends at 0x%zx, outside the "
			       "0x%zx-byte setup area",
			       path, bz->header_end, bz->setup_size);
	if (bz->setup_size >= size)
		return err_set(e,
			       "kernel '%s' is truncated: %zu bytes, but its setup code alone takes "
			       "%zu",
			       path, size, bz->setup_size);
	bz->payload = image + bz->setup_size;
	bz->payload_size = size - bz->setup_size;
	uint64_t syssize = (uint64_t)rd(image, BZ_SYSSIZE, 4) * 16;
	if (syssize == 0 || syssize > bz->payload_size)
		return err_set(e,
			       "kernel '%s' is truncated or corrupt: header says %llu bytes of "
			       "kernel, the file holds %zu",
			       path, (unsigned long long)syssize, bz->payload_size);
	return 0;
}

/* What the kernel asks of its placement: its size once running, its alignment, where it
 * would like to be. */
static int read_placement(const uint8_t *image, const char *path, struct bzimage *bz, struct err *e)
{
	bz->init_size = rd(image, BZ_INIT_SIZE, 4);
	bz->kernel_alignment = rd(image, BZ_KERNEL_ALIGNMENT, 4);
	bz->initrd_addr_max = rd(image, BZ_INITRD_ADDR_MAX, 4);
	bz->cmdline_size = rd(image, BZ_CMDLINE_SIZE, 4);
	bz->pref_address = rd64(image, BZ_PREF_ADDRESS);
	bz->relocatable = rd(image, BZ_RELOCATABLE, 1) != 0;
	if (bz->init_size < bz->payload_size)
		return err_set(e,
			       "kernel '%s' is corrupt: init_size %u is smaller than the %zu-byte "
			       "kernel",
			       path, bz->init_size, bz->payload_size);
	if (bz->kernel_alignment == 0 || (bz->kernel_alignment & (bz->kernel_alignment - 1)))
		return err_set(e, "kernel '%s' is corrupt: kernel_alignment 0x%x is not a power of two", path,
			       bz->kernel_alignment);
	uint64_t load = bzimage_load_address(bz);
	if (load + bz->init_size > LAYOUT_PCI_HOLE)
		return err_set(e,
			       "kernel '%s' is corrupt: it asks for %u bytes at 0x%llx, beyond "
			       "3 GiB",
			       path, bz->init_size, (unsigned long long)load);
	return 0;
}

int bzimage_parse(const uint8_t *image, size_t size, const char *path, struct bzimage *bz, struct err *e)
{
	memset(bz, 0, sizeof(*bz));
	if (check_protocol(image, size, path, bz, e) < 0 || find_payload(image, size, path, bz, e) < 0)
		return -1;
	return read_placement(image, path, bz, e);
}

uint64_t bzimage_load_address(const struct bzimage *bz)
{
	/* The preferred address spares a relocatable kernel from moving itself. */
	if (bz->pref_address >= LAYOUT_HIGH_MEM && bz->pref_address < LAYOUT_PCI_HOLE &&
	    bz->pref_address % bz->kernel_alignment == 0)
		return bz->pref_address;
	return LAYOUT_HIGH_MEM;
}

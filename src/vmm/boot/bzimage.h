/* bzimage: parsing and validation of a Linux x86 bzImage's setup header (boot protocol 2.12+,
 * 64-bit entry). Pure functions over a byte buffer, so that corrupt images can be tested. */
#ifndef SHOJI_VMM_BOOT_BZIMAGE_H
#define SHOJI_VMM_BOOT_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/err.h"

/* Offsets in the image (and in boot_params) of the setup header fields used here. */
#define BZ_SETUP_HEADER     0x1f1
#define BZ_SETUP_SECTS      0x1f1
#define BZ_ROOT_FLAGS       0x1f2
#define BZ_SYSSIZE          0x1f4
#define BZ_VID_MODE         0x1fa
#define BZ_BOOT_FLAG        0x1fe
#define BZ_JUMP             0x200
#define BZ_HEADER           0x202
#define BZ_VERSION          0x206
#define BZ_TYPE_OF_LOADER   0x210
#define BZ_LOADFLAGS        0x211
#define BZ_CODE32_START     0x214
#define BZ_RAMDISK_IMAGE    0x218
#define BZ_RAMDISK_SIZE     0x21c
#define BZ_CMD_LINE_PTR     0x228
#define BZ_INITRD_ADDR_MAX  0x22c
#define BZ_KERNEL_ALIGNMENT 0x230
#define BZ_RELOCATABLE      0x234
#define BZ_XLOADFLAGS       0x236
#define BZ_CMDLINE_SIZE     0x238
#define BZ_PREF_ADDRESS     0x258
#define BZ_INIT_SIZE        0x260
#define BZ_MIN_FILE         0x264 /* every field read here lies below this offset */

#define BZ_MAGIC_BOOT_FLAG 0xaa55
#define BZ_MAGIC_HDRS      0x53726448 /* "HdrS" */
#define BZ_LOADED_HIGH     0x01
#define BZ_CAN_USE_HEAP    0x80
#define BZ_XLF_KERNEL_64   0x01
#define BZ_ROOT_RDONLY     0x01

struct bzimage {
	uint16_t version;       /* boot protocol, e.g. 0x020f */
	size_t setup_size;      /* bytes of real-mode setup before the protected-mode kernel */
	size_t header_end;      /* end of the setup header (offset in the image) */
	const uint8_t *payload; /* the protected-mode kernel */
	size_t payload_size;
	uint32_t init_size; /* memory the kernel needs from its load address while booting */
	uint32_t kernel_alignment;
	uint32_t initrd_addr_max; /* highest address the initrd may end at (inclusive) */
	uint32_t cmdline_size;    /* longest command line, without the NUL */
	uint64_t pref_address;
	int relocatable;
};

/* Validates `image` (size bytes) and fills *bz. `path` is used in messages only. */
int bzimage_parse(const uint8_t *image, size_t size, const char *path, struct bzimage *bz, struct err *e);

/* Where the protected-mode kernel is loaded. */
uint64_t bzimage_load_address(const struct bzimage *bz);

#endif

/* synth_bzimage: construction of the synthetic bzImage (see synth_bzimage.h). */
#include "synth_bzimage.h"

#include <string.h>

#include "vmm/boot/bzimage.h"

void synth_put(uint8_t *buf, size_t off, uint64_t v, size_t width)
{
	for (size_t i = 0; i < width; i++)
		buf[off + i] = (uint8_t)(v >> (8 * i));
}

uint8_t synth_payload_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

void synth_bzimage(uint8_t *buf)
{
	memset(buf, 0, SYNTH_SIZE);
	synth_put(buf, BZ_SETUP_SECTS, SYNTH_SETUP_SECTS, 1);
	synth_put(buf, BZ_SYSSIZE, SYNTH_PAYLOAD_SIZE / 16, 4);
	synth_put(buf, BZ_BOOT_FLAG, BZ_MAGIC_BOOT_FLAG, 2);
	buf[BZ_JUMP] = 0xeb; /* short jump over the header */
	buf[BZ_JUMP + 1] = SYNTH_HEADER_END - (BZ_JUMP + 2);
	synth_put(buf, BZ_HEADER, BZ_MAGIC_HDRS, 4);
	synth_put(buf, BZ_VERSION, SYNTH_VERSION, 2);
	synth_put(buf, BZ_LOADFLAGS, BZ_LOADED_HIGH | BZ_CAN_USE_HEAP, 1);
	synth_put(buf, BZ_CODE32_START, 0x100000, 4);
	synth_put(buf, BZ_INITRD_ADDR_MAX, SYNTH_INITRD_ADDR_MAX, 4);
	synth_put(buf, BZ_KERNEL_ALIGNMENT, SYNTH_ALIGNMENT, 4);
	synth_put(buf, BZ_RELOCATABLE, 1, 1);
	synth_put(buf, BZ_XLOADFLAGS, BZ_XLF_KERNEL_64, 2);
	synth_put(buf, BZ_CMDLINE_SIZE, SYNTH_CMDLINE_SIZE, 4);
	synth_put(buf, BZ_PREF_ADDRESS, SYNTH_PREF_ADDRESS, 8);
	synth_put(buf, BZ_INIT_SIZE, SYNTH_INIT_SIZE, 4);
	for (size_t i = 0; i < SYNTH_PAYLOAD_SIZE; i++)
		buf[SYNTH_SETUP_SIZE + i] = synth_payload_byte(i);
}

/* synth_bzimage: a small synthetic but valid bzImage (boot protocol 2.15, 64-bit entry), built
 * in memory for the bzImage, loader and fuzz tests. */
#ifndef SHOJI_TESTS_SYNTH_BZIMAGE_H
#define SHOJI_TESTS_SYNTH_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#define SYNTH_SETUP_SECTS     4
#define SYNTH_SETUP_SIZE      ((SYNTH_SETUP_SECTS + 1) * 512)
#define SYNTH_PAYLOAD_SIZE    4096 /* a multiple of 16: syssize is exact */
#define SYNTH_SIZE            (SYNTH_SETUP_SIZE + SYNTH_PAYLOAD_SIZE)
#define SYNTH_VERSION         0x020f
#define SYNTH_HEADER_END      0x268        /* jump byte 0x66 at 0x201 */
#define SYNTH_PREF_ADDRESS    0x1000000ull /* 16 MiB */
#define SYNTH_ALIGNMENT       0x200000u
#define SYNTH_INIT_SIZE       0x400000u /* 4 MiB */
#define SYNTH_CMDLINE_SIZE    2047u
#define SYNTH_INITRD_ADDR_MAX 0x7fffffffu

/* Fills buf (SYNTH_SIZE bytes) with the image; the payload holds a recognisable pattern. */
void synth_bzimage(uint8_t *buf);

/* Stores the low `width` bytes of v little-endian at buf + off. */
void synth_put(uint8_t *buf, size_t off, uint64_t v, size_t width);

/* The payload byte at offset i, as synth_bzimage writes it. */
uint8_t synth_payload_byte(size_t i);

#endif

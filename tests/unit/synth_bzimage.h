/* synth_bzimage: a small synthetic but valid bzImage (boot protocol 2.15, 64-bit entry), and a
 * small ELF vmlinux, built in memory for the bzImage, vmlinux, loader and fuzz tests. */
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

/* The vmlinux: an ELF header, three program headers (text, a segment whose last bytes are zeroes
 * that are not in the file, a note), then the two segments' bytes (the payload pattern). */
#define SYNTH_ELF_PHOFF       64
#define SYNTH_ELF_TEXT_OFF    0x1000
#define SYNTH_ELF_TEXT_SIZE   4096
#define SYNTH_ELF_TEXT_PADDR  0x1000000ull /* 16 MiB, the entry */
#define SYNTH_ELF_DATA_OFF    0x2000
#define SYNTH_ELF_DATA_FILESZ 512
#define SYNTH_ELF_DATA_MEMSZ  0x20000
#define SYNTH_ELF_DATA_PADDR  0x1200000ull
#define SYNTH_ELF_SIZE        (SYNTH_ELF_DATA_OFF + SYNTH_ELF_DATA_FILESZ)
/* Offsets of the second program header's fields (Elf64_Phdr). */
#define SYNTH_ELF_PHDR(i) (SYNTH_ELF_PHOFF + 56 * (i))

/* Fills buf (SYNTH_ELF_SIZE bytes) with the vmlinux. */
void synth_vmlinux(uint8_t *buf);

#endif

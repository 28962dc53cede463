/* synth_bzimage: construction of the synthetic bzImage and vmlinux (see synth_bzimage.h). */
#include "synth_bzimage.h"

#include <elf.h>
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

static void synth_phdr(uint8_t *buf, int i, uint32_t type, uint64_t off, uint64_t paddr, uint64_t filesz,
		       uint64_t memsz)
{
	Elf64_Phdr p = {
		.p_type = type,
		.p_flags = PF_R | PF_W | PF_X,
		.p_offset = off,
		.p_vaddr = paddr + 0xffffffff80000000ull,
		.p_paddr = paddr,
		.p_filesz = filesz,
		.p_memsz = memsz,
		.p_align = 0x200000,
	};
	memcpy(buf + SYNTH_ELF_PHDR(i), &p, sizeof(p));
}

void synth_vmlinux(uint8_t *buf)
{
	memset(buf, 0, SYNTH_ELF_SIZE);
	Elf64_Ehdr h = {
		.e_type = ET_EXEC,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_entry = SYNTH_ELF_TEXT_PADDR,
		.e_phoff = SYNTH_ELF_PHOFF,
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = 3,
	};
	memcpy(h.e_ident, ELFMAG, SELFMAG);
	h.e_ident[EI_CLASS] = ELFCLASS64;
	h.e_ident[EI_DATA] = ELFDATA2LSB;
	h.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &h, sizeof(h));
	synth_phdr(buf, 0, PT_LOAD, SYNTH_ELF_TEXT_OFF, SYNTH_ELF_TEXT_PADDR, SYNTH_ELF_TEXT_SIZE, SYNTH_ELF_TEXT_SIZE);
	synth_phdr(buf, 1, PT_LOAD, SYNTH_ELF_DATA_OFF, SYNTH_ELF_DATA_PADDR, SYNTH_ELF_DATA_FILESZ,
		   SYNTH_ELF_DATA_MEMSZ);
	synth_phdr(buf, 2, PT_NOTE, SYNTH_ELF_TEXT_OFF, SYNTH_ELF_TEXT_PADDR, 16, 16);
	for (size_t i = SYNTH_ELF_TEXT_OFF; i < SYNTH_ELF_SIZE; i++)
		buf[i] = synth_payload_byte(i);
}

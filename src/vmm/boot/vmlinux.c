/* vmlinux: ELF vmlinux parsing and validation (see vmlinux.h). Only what the loader needs is read:
 * the ELF header and the program headers; sections and notes are not looked at. */
#include "vmlinux.h"

#include <elf.h>
#include <string.h>

#include "layout.h"

int vmlinux_is_elf(const uint8_t *image, size_t size)
{
	return size >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0;
}

/* Copies the ELF header out of image into *h and checks it. */
static int read_header(const uint8_t *image, size_t size, const char *path, Elf64_Ehdr *h, struct err *e)
{
	if (size < sizeof(*h))
		return err_set(e, "kernel '%s' is a truncated ELF file: %zu bytes, too short for its header", path,
			       size);
	memcpy(h, image, sizeof(*h));
	if (memcmp(h->e_ident, ELFMAG, SELFMAG) != 0)
		return err_set(e, "kernel '%s' is not an ELF file", path);
	if (h->e_ident[EI_CLASS] != ELFCLASS64 || h->e_ident[EI_DATA] != ELFDATA2LSB || h->e_machine != EM_X86_64)
		return err_set(e, "kernel '%s' is an ELF file, but not for x86-64; give an x86-64 vmlinux or bzImage",
			       path);
	if (h->e_type != ET_EXEC)
		return err_set(e,
			       "kernel '%s' is an ELF file, but not an executable (type %u); give vmlinux, not a "
			       "module or an object file",
			       path, h->e_type);
	if (h->e_phentsize != sizeof(Elf64_Phdr) || h->e_phnum == 0 || h->e_phnum > VMLINUX_MAX_PHDRS)
		return err_set(e, "kernel '%s' is a corrupt ELF file: %u program headers of %u bytes", path, h->e_phnum,
			       h->e_phentsize);
	if (h->e_phoff > size || (size - h->e_phoff) / sizeof(Elf64_Phdr) < h->e_phnum)
		return err_set(e, "kernel '%s' is a truncated ELF file: its program headers end beyond its %zu bytes",
			       path, size);
	return 0;
}

static int add_segment(struct vmlinux *vl, const Elf64_Phdr *p, const uint8_t *image, size_t size, const char *path,
		       struct err *e)
{
	if (p->p_filesz > p->p_memsz || p->p_offset > size || size - p->p_offset < p->p_filesz)
		return err_set(e,
			       "kernel '%s' is a corrupt or truncated ELF file: a segment of %llu bytes at offset "
			       "0x%llx does not lie in its %zu bytes",
			       path, (unsigned long long)p->p_filesz, (unsigned long long)p->p_offset, size);
	if (p->p_paddr < LAYOUT_HIGH_MEM || p->p_paddr >= LAYOUT_PCI_HOLE || p->p_memsz > LAYOUT_PCI_HOLE - p->p_paddr)
		return err_set(e,
			       "kernel '%s' asks for %llu bytes at 0x%llx; a vmlinux must load between 1 MiB "
			       "and 3 GiB",
			       path, (unsigned long long)p->p_memsz, (unsigned long long)p->p_paddr);
	if (vl->nseg == VMLINUX_MAX_SEGMENTS)
		return err_set(e, "kernel '%s' has more than %d loadable segments; it is not a Linux vmlinux", path,
			       VMLINUX_MAX_SEGMENTS);
	vl->seg[vl->nseg++] = (struct vmlinux_segment){
		.paddr = p->p_paddr,
		.vaddr = p->p_vaddr,
		.data = image + p->p_offset,
		.filesz = p->p_filesz,
		.memsz = p->p_memsz,
	};
	if (p->p_paddr < vl->start)
		vl->start = p->p_paddr;
	if (p->p_paddr + p->p_memsz > vl->end)
		vl->end = p->p_paddr + p->p_memsz;
	return 0;
}

int vmlinux_parse(const uint8_t *image, size_t size, const char *path, struct vmlinux *vl, struct err *e)
{
	memset(vl, 0, sizeof(*vl));
	Elf64_Ehdr h;
	if (read_header(image, size, path, &h, e) < 0)
		return -1;
	vl->start = UINT64_MAX;
	for (unsigned i = 0; i < h.e_phnum; i++) {
		Elf64_Phdr p;
		memcpy(&p, image + h.e_phoff + (size_t)i * sizeof(p), sizeof(p));
		if (p.p_type == PT_LOAD && p.p_memsz && add_segment(vl, &p, image, size, path, e) < 0)
			return -1;
	}
	if (vl->nseg == 0)
		return err_set(e, "kernel '%s' is an ELF file with nothing to load; give a Linux vmlinux", path);
	for (unsigned i = 0; i < vl->nseg; i++)
		if (h.e_entry >= vl->seg[i].paddr && h.e_entry - vl->seg[i].paddr < vl->seg[i].filesz) {
			if (vl->seg[i].vaddr < VMLINUX_KERNEL_MAP)
				return err_set(e,
					       "kernel '%s' is an x86-64 program, not a Linux kernel: its code is linked at "
					       "0x%llx, below the kernel's 0x%llx",
					       path, (unsigned long long)vl->seg[i].vaddr,
					       (unsigned long long)VMLINUX_KERNEL_MAP);
			vl->entry = h.e_entry;
			return 0;
		}
	return err_set(e,
		       "kernel '%s' enters at 0x%llx, outside what it loads; give a Linux vmlinux (its entry "
		       "is the physical address of startup_64)",
		       path, (unsigned long long)h.e_entry);
}

/* loader: guest memory set-up for the 64-bit Linux boot protocol (see loader.h and
 * Documentation/arch/x86/boot.rst), for a bzImage or an ELF vmlinux. */
#include "loader.h"

#include <string.h>

#include "../platform.h"
#include "acpi.h"
#include "bzimage.h"
#include "e820.h"
#include "layout.h"
#include "vmlinux.h"

#define ZP_ACPI_RSDP_ADDR 0x070
#define ZP_E820_ENTRIES   0x1e8
#define ZP_E820_TABLE     0x2d0
#define ZP_SIZE           4096

/* x86's COMMAND_LINE_SIZE, less the NUL: the limit for a vmlinux, which has no setup header. */
#define VMLINUX_CMDLINE_MAX 2047
/* What x86-64 Linux is built for (CONFIG_PHYSICAL_ALIGN), written as other loaders do. */
#define VMLINUX_ALIGNMENT 0x200000u
/* The boot protocol's default for a kernel that does not say (protocol 2.03+). */
#define VMLINUX_INITRD_ADDR_MAX 0x7fffffffu

#define PAGE 4096ull
#define MIB  (1ull << 20)

static void put(uint8_t *p, size_t off, uint64_t v, size_t width)
{
	memcpy(p + off, &v, width);
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static void write_page_tables(struct guest_mem *m)
{
	uint64_t *pml4 = guest_mem_ptr(m, LAYOUT_PML4, PAGE);
	uint64_t *pdpt = guest_mem_ptr(m, LAYOUT_PDPT, PAGE);
	uint64_t *pd = guest_mem_ptr(m, LAYOUT_PD, 4 * PAGE);
	memset(pml4, 0, PAGE);
	memset(pdpt, 0, PAGE);
	pml4[0] = LAYOUT_PDPT | 0x3; /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * PAGE) | 0x3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
}

static void write_gdt(struct guest_mem *m, struct boot_entry *out)
{
	static const uint64_t gdt[] = {
		0,
		0,
		0x00af9b000000ffffull, /* 0x10: 64-bit code, DPL 0 */
		0x00cf93000000ffffull, /* 0x18: flat data */
		0x0000890000000067ull, /* 0x20: TSS (lower half) */
		0,                     /*        TSS (upper half) */
	};
	memcpy(guest_mem_ptr(m, LAYOUT_GDT, sizeof(gdt)), gdt, sizeof(gdt));
	out->gdt_base = LAYOUT_GDT;
	out->gdt_limit = sizeof(gdt) - 1;
}

/* What firmware would do at the reset vector: reset the machine. Linux jumps here when it
 * reboots through the BIOS, which it does on hardware-reduced ACPI machines without EFI. */
static void write_reset_stub(struct guest_mem *m)
{
	const uint8_t stub[] = {
		0xba,
		(uint8_t)PORT_PM_RESET,
		(uint8_t)(PORT_PM_RESET >> 8), /* mov dx, PORT_PM_RESET */
		0xb0,
		PM_RESET_VALUE, /* mov al, PM_RESET_VALUE */
		0xee,           /* out dx, al */
		0xf4,           /* hlt */
		0xeb,
		0xfd, /* jmp hlt */
	};
	memcpy(guest_mem_ptr(m, LAYOUT_RESET_VECTOR, sizeof(stub)), stub, sizeof(stub));
}

/* Either kind of kernel, as the rest of the loader sees it. */
struct kernel {
	int elf;
	struct bzimage bz;        /* when !elf */
	struct vmlinux vl;        /* when elf */
	uint64_t start;           /* lowest address it fills */
	uint64_t end;             /* one past the memory it needs while booting, page-aligned */
	uint64_t entry;           /* 64-bit entry point */
	uint32_t initrd_addr_max; /* highest address the initrd may end at (inclusive) */
	size_t cmdline_max;       /* longest command line, without the NUL */
};

static int kernel_parse(const struct boot_config *c, struct kernel *k, struct err *e)
{
	memset(k, 0, sizeof(*k));
	k->elf = vmlinux_is_elf(c->kernel, c->kernel_size);
	if (k->elf) {
		if (vmlinux_parse(c->kernel, c->kernel_size, c->kernel_path, &k->vl, e) < 0)
			return -1;
		k->start = k->vl.start;
		k->end = round_up(k->vl.end, PAGE);
		k->entry = k->vl.entry;
		k->initrd_addr_max = VMLINUX_INITRD_ADDR_MAX;
		k->cmdline_max = VMLINUX_CMDLINE_MAX;
		return 0;
	}
	if (bzimage_parse(c->kernel, c->kernel_size, c->kernel_path, &k->bz, e) < 0)
		return -1;
	k->start = bzimage_load_address(&k->bz);
	k->end = round_up(k->start + k->bz.init_size, PAGE);
	k->entry = k->start + 0x200; /* 64-bit entry: startup_64 */
	k->initrd_addr_max = k->bz.initrd_addr_max;
	k->cmdline_max = k->bz.cmdline_size;
	return 0;
}

/* Copies the kernel into guest memory: the bzImage's protected-mode part at its load address, or
 * each of the vmlinux's segments at its physical address, zero-filled past its file bytes (memory
 * is not fresh on a reboot). */
static void kernel_copy(struct guest_mem *m, const struct kernel *k)
{
	if (!k->elf) {
		memcpy(guest_mem_ptr(m, k->start, k->bz.payload_size), k->bz.payload, k->bz.payload_size);
		return;
	}
	for (unsigned i = 0; i < k->vl.nseg; i++) {
		const struct vmlinux_segment *s = &k->vl.seg[i];
		uint8_t *dst = guest_mem_ptr(m, s->paddr, s->memsz);
		memcpy(dst, s->data, s->filesz);
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
}

/* The setup header in boot_params: the bzImage's own, or for a vmlinux the fields Linux reads
 * once it runs (as Firecracker writes them). */
static void write_setup_header(uint8_t *zp, const struct kernel *k, const struct boot_config *c)
{
	if (!k->elf) {
		memcpy(zp + BZ_SETUP_HEADER, c->kernel + BZ_SETUP_HEADER, k->bz.header_end - BZ_SETUP_HEADER);
		return;
	}
	put(zp, BZ_ROOT_FLAGS, BZ_ROOT_RDONLY, 2); /* as a bzImage's header has it: root mounted ro */
	put(zp, BZ_BOOT_FLAG, BZ_MAGIC_BOOT_FLAG, 2);
	put(zp, BZ_HEADER, BZ_MAGIC_HDRS, 4);
	put(zp, BZ_VERSION, 0x020f, 2);
	put(zp, BZ_LOADFLAGS, BZ_LOADED_HIGH, 1);
	put(zp, BZ_KERNEL_ALIGNMENT, VMLINUX_ALIGNMENT, 4);
	put(zp, BZ_INITRD_ADDR_MAX, k->initrd_addr_max, 4);
	put(zp, BZ_CMDLINE_SIZE, k->cmdline_max, 4);
}

static int place_initrd(const struct guest_mem *m, const struct kernel *k, const struct boot_config *c,
			uint64_t *addr_out, struct err *e)
{
	const uint64_t kernel_end = k->end;
	uint64_t top = m->regions[0].size;
	if ((uint64_t)k->initrd_addr_max + 1 < top)
		top = (uint64_t)k->initrd_addr_max + 1;
	uint64_t size = round_up(c->initrd_size, PAGE);
	if (size > top || (top - size) / PAGE * PAGE < kernel_end) {
		uint64_t free_mib = top > kernel_end ? (top - kernel_end) / MIB : 0;
		if (kernel_end + size > (uint64_t)k->initrd_addr_max + 1)
			return err_set(e,
				       "initrd '%s' (%zu MiB) does not fit: this kernel accepts an "
				       "initrd only below %u MiB, and %llu MiB are free there",
				       c->initrd_path, c->initrd_size >> 20,
				       (unsigned)(((uint64_t)k->initrd_addr_max + 1) >> 20),
				       (unsigned long long)free_mib);
		uint64_t need = round_up(kernel_end + size, MIB) / MIB + 16;
		return err_set(e,
			       "initrd '%s' (%zu MiB) does not fit in guest memory: %llu MiB are "
			       "free above the kernel; use --memory %llu or more",
			       c->initrd_path, c->initrd_size >> 20, (unsigned long long)free_mib,
			       (unsigned long long)need);
	}
	*addr_out = (top - size) / PAGE * PAGE;
	return 0;
}

static void write_zero_page(struct guest_mem *m, const struct kernel *k, const struct boot_config *c,
			    uint64_t initrd_addr, const struct e820_entry *map, int nmap)
{
	uint8_t *zp = guest_mem_ptr(m, LAYOUT_ZERO_PAGE, ZP_SIZE);
	memset(zp, 0, ZP_SIZE);
	write_setup_header(zp, k, c);
	put(zp, BZ_VID_MODE, 0xffff, 2); /* "normal" text mode */
	put(zp, BZ_TYPE_OF_LOADER, 0xff, 1);
	put(zp, BZ_CMD_LINE_PTR, LAYOUT_CMDLINE, 4);
	put(zp, BZ_RAMDISK_IMAGE, initrd_addr, 4);
	put(zp, BZ_RAMDISK_SIZE, c->initrd ? c->initrd_size : 0, 4);
	if (k->elf || k->bz.version >= 0x020e)
		put(zp, ZP_ACPI_RSDP_ADDR, LAYOUT_ACPI, 8);
	zp[ZP_E820_ENTRIES] = (uint8_t)nmap;
	memcpy(zp + ZP_E820_TABLE, map, sizeof(map[0]) * (size_t)nmap);
}

int boot_load(struct guest_mem *m, const struct boot_config *c, struct boot_entry *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	struct kernel k;
	if (kernel_parse(c, &k, e) < 0)
		return -1;
	if (k.end + MIB > m->regions[0].size)
		return err_set(e,
			       "--memory %llu MiB is too small for kernel '%s', which needs %llu MiB "
			       "from its load address; use --memory %llu or more",
			       (unsigned long long)(m->size >> 20), c->kernel_path, (unsigned long long)(k.end >> 20),
			       (unsigned long long)(k.end / MIB + 32));

	size_t cmdlen = strlen(c->cmdline);
	size_t cmdmax = k.cmdline_max < LAYOUT_CMDLINE_MAX - 1 ? k.cmdline_max : LAYOUT_CMDLINE_MAX - 1;
	if (cmdlen > cmdmax)
		return err_set(e, "--cmdline is %zu bytes; kernel '%s' accepts at most %zu", cmdlen, c->kernel_path,
			       cmdmax);

	uint64_t initrd_addr = 0;
	if (c->initrd && place_initrd(m, &k, c, &initrd_addr, e) < 0)
		return -1;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = e820_build(m->size, map, E820_MAX_ENTRIES);
	if (n < 0)
		return err_set(e, "guest memory of %llu bytes is too small for a memory map",
			       (unsigned long long)m->size);

	uint8_t *acpi = guest_mem_ptr(m, LAYOUT_ACPI, LAYOUT_ACPI_SIZE);
	size_t acpi_used;
	if (acpi_build(acpi, LAYOUT_ACPI_SIZE, LAYOUT_ACPI, c->ncpus, &acpi_used, e) < 0)
		return -1;

	kernel_copy(m, &k);
	if (c->initrd)
		memcpy(guest_mem_ptr(m, initrd_addr, c->initrd_size), c->initrd, c->initrd_size);
	memcpy(guest_mem_ptr(m, LAYOUT_CMDLINE, cmdlen + 1), c->cmdline, cmdlen + 1);
	write_zero_page(m, &k, c, initrd_addr, map, n);
	write_page_tables(m);
	write_gdt(m, out);
	write_reset_stub(m);
	out->cr3 = LAYOUT_PML4;
	out->rip = k.entry;
	out->rsi = LAYOUT_ZERO_PAGE;
	out->rsp = LAYOUT_BOOT_STACK;
	out->kernel_addr = k.start;
	out->initrd_addr = initrd_addr;
	return 0;
}

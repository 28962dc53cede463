/* test_loader: boot_load of a synthetic bzImage, and of a synthetic ELF vmlinux, into guest
 * memory: entry state, zero page, initrd placement, and the errors for what does not fit. */
#include "unit.h"

#include <elf.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "synth_bzimage.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/loader.h"
#include "vmm/memory.h"

#define MIB         (1ull << 20)
#define PAGE        4096ull
#define INITRD_SIZE 10000u
#define CMDLINE     "console=ttyS0 panic=-1 quiet"

struct fixture {
	struct guest_mem mem;
	uint8_t kernel[SYNTH_SIZE];
	uint8_t initrd[INITRD_SIZE];
	struct boot_config cfg;
	struct boot_entry entry;
	struct err e;
};

static int fixture_setup_size(void **state, uint64_t mem_size)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (guest_mem_init(&f->mem, mem_size, &f->e) < 0) {
		free(f);
		return -1;
	}
	synth_bzimage(f->kernel);
	for (size_t i = 0; i < INITRD_SIZE; i++)
		f->initrd[i] = (uint8_t)(i ^ 0x5a);
	f->cfg = (struct boot_config){
		.kernel = f->kernel,
		.kernel_size = SYNTH_SIZE,
		.kernel_path = "vmlinuz",
		.initrd = f->initrd,
		.initrd_size = INITRD_SIZE,
		.initrd_path = "initrd.img",
		.cmdline = CMDLINE,
		.ncpus = 2,
	};
	*state = f;
	return 0;
}

static int fixture_setup(void **state)
{
	return fixture_setup_size(state, 64 * MIB);
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	guest_mem_free(&f->mem);
	free(f);
	return 0;
}

static const uint8_t *gpa(struct fixture *f, uint64_t addr, uint64_t len)
{
	const uint8_t *p = guest_mem_ptr(&f->mem, addr, len);
	assert_non_null(p);
	return p;
}

static uint64_t get(const uint8_t *p, size_t off, size_t width)
{
	uint64_t v = 0;
	memcpy(&v, p + off, width);
	return v;
}

/* Asserts that the loader wrote nothing: low memory and the kernel's place are still zero. */
static void assert_untouched(struct fixture *f)
{
	const uint8_t *low = gpa(f, 0, MIB);
	for (uint64_t i = 0; i < MIB; i++)
		if (low[i])
			fail_msg("guest byte 0x%llx written by a failed load", (unsigned long long)i);
	const uint8_t *k = gpa(f, SYNTH_PREF_ADDRESS, SYNTH_PAYLOAD_SIZE);
	for (uint64_t i = 0; i < SYNTH_PAYLOAD_SIZE; i++)
		assert_int_equal(k[i], 0);
}

static void boot_load_valid(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);

	struct boot_entry *b = &f->entry;
	assert_int_equal(b->kernel_addr, SYNTH_PREF_ADDRESS);
	assert_int_equal(b->rip, SYNTH_PREF_ADDRESS + 0x200);
	assert_int_equal(b->rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(b->rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(b->cr3, LAYOUT_PML4);
	assert_int_equal(b->gdt_base, LAYOUT_GDT);
	assert_int_equal(b->gdt_limit, 6 * 8 - 1);

	/* The protected-mode kernel, at its load address. */
	assert_memory_equal(gpa(f, SYNTH_PREF_ADDRESS, SYNTH_PAYLOAD_SIZE), f->kernel + SYNTH_SETUP_SIZE,
			    SYNTH_PAYLOAD_SIZE);
	/* The command line, NUL-terminated. */
	assert_string_equal((const char *)gpa(f, LAYOUT_CMDLINE, sizeof(CMDLINE)), CMDLINE);
	/* The 64-bit code segment and the identity map. */
	assert_int_equal(get(gpa(f, LAYOUT_GDT, 48), BOOT_CS, 8), 0x00af9b000000ffffull);
	assert_int_equal(get(gpa(f, LAYOUT_PML4, 8), 0, 8), LAYOUT_PDPT | 3);
	assert_int_equal(get(gpa(f, LAYOUT_PDPT, 32), 24, 8), (LAYOUT_PD + 3 * PAGE) | 3);
	assert_int_equal(get(gpa(f, LAYOUT_PD, 4 * PAGE), 8 * 2047, 8), (2047ull << 21) | 0x83);
	/* The ACPI tables, RSDP first. */
	assert_memory_equal(gpa(f, LAYOUT_ACPI, 8), "RSD PTR ", 8);
	/* The reset vector: mov dx, 0x602; mov al, 1; out dx, al (a real-mode restart resets). */
	static const uint8_t reset_stub[] = {0xba, 0x02, 0x06, 0xb0, 0x01, 0xee};
	assert_memory_equal(gpa(f, LAYOUT_RESET_VECTOR, sizeof(reset_stub)), reset_stub, sizeof(reset_stub));
}

static void boot_load_zero_page(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	const uint8_t *zp = gpa(f, LAYOUT_ZERO_PAGE, PAGE);

	/* The setup header is copied from the image. */
	assert_int_equal(get(zp, BZ_HEADER, 4), BZ_MAGIC_HDRS);
	assert_int_equal(get(zp, BZ_VERSION, 2), SYNTH_VERSION);
	assert_int_equal(get(zp, BZ_INIT_SIZE, 4), SYNTH_INIT_SIZE);
	/* What the loader fills in. */
	assert_int_equal(get(zp, BZ_TYPE_OF_LOADER, 1), 0xff);
	assert_int_equal(get(zp, BZ_VID_MODE, 2), 0xffff);
	assert_int_equal(get(zp, BZ_CMD_LINE_PTR, 4), LAYOUT_CMDLINE);
	assert_int_equal(get(zp, BZ_RAMDISK_IMAGE, 4), f->entry.initrd_addr);
	assert_int_equal(get(zp, BZ_RAMDISK_SIZE, 4), INITRD_SIZE);
	assert_int_equal(get(zp, 0x070, 8), LAYOUT_ACPI); /* acpi_rsdp_addr, protocol 2.14+ */
	/* Nothing before the setup header but the RSDP address and the E820 map. */
	assert_int_equal(get(zp, 0, 8), 0);

	struct e820_entry want[E820_MAX_ENTRIES];
	int n = e820_build(64 * MIB, want, E820_MAX_ENTRIES);
	assert_int_equal(n, 5);
	assert_int_equal(zp[0x1e8], n);
	assert_memory_equal(zp + 0x2d0, want, sizeof(want[0]) * (size_t)n);
	struct e820_entry last;
	memcpy(&last, zp + 0x2d0 + 3 * sizeof(last), sizeof(last));
	assert_int_equal(last.addr, 0x100000);
	assert_int_equal(last.size, 63 * MIB);
	assert_int_equal(last.type, E820_RAM);
}

static void boot_load_old_protocol_no_rsdp(void **state)
{
	struct fixture *f = *state;
	/* Protocol 2.12 has no acpi_rsdp_addr field: the guest finds the RSDP by scanning. */
	synth_put(f->kernel, BZ_VERSION, 0x020c, 2);
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	const uint8_t *zp = gpa(f, LAYOUT_ZERO_PAGE, PAGE);
	assert_int_equal(get(zp, 0x070, 8), 0);
	assert_memory_equal(gpa(f, LAYOUT_ACPI, 8), "RSD PTR ", 8);
}

static void boot_load_initrd_placement(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	uint64_t addr = f->entry.initrd_addr;
	uint64_t kernel_end = SYNTH_PREF_ADDRESS + SYNTH_INIT_SIZE;
	assert_int_equal(addr % PAGE, 0);
	assert_true(addr >= kernel_end);
	assert_true(addr + INITRD_SIZE <= 64 * MIB);
	/* As high as it goes: the page-rounded initrd ends at the top of RAM. */
	assert_int_equal(addr, 64 * MIB - 3 * PAGE);
	assert_memory_equal(gpa(f, addr, INITRD_SIZE), f->initrd, INITRD_SIZE);
}

static void boot_load_initrd_addr_max(void **state)
{
	struct fixture *f = *state;
	/* The kernel takes initrds ending at or below 32 MiB - 1. */
	synth_put(f->kernel, BZ_INITRD_ADDR_MAX, 32 * MIB - 1, 4);
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	uint64_t addr = f->entry.initrd_addr;
	assert_int_equal(addr % PAGE, 0);
	assert_true(addr >= SYNTH_PREF_ADDRESS + SYNTH_INIT_SIZE);
	assert_true(addr + INITRD_SIZE <= 32 * MIB);
	assert_int_equal(addr, 32 * MIB - 3 * PAGE);
	assert_memory_equal(gpa(f, addr, INITRD_SIZE), f->initrd, INITRD_SIZE);
}

static void boot_load_no_initrd(void **state)
{
	struct fixture *f = *state;
	f->cfg.initrd = NULL;
	f->cfg.initrd_size = 0;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	const uint8_t *zp = gpa(f, LAYOUT_ZERO_PAGE, PAGE);
	assert_int_equal(f->entry.initrd_addr, 0);
	assert_int_equal(get(zp, BZ_RAMDISK_IMAGE, 4), 0);
	assert_int_equal(get(zp, BZ_RAMDISK_SIZE, 4), 0);
}

/* An anonymous mapping of `size` bytes that costs nothing until touched. */
static uint8_t *big_buffer(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(p != MAP_FAILED);
	return p;
}

static void boot_load_initrd_too_big_for_memory(void **state)
{
	struct fixture *f = *state;
	size_t size = 60 * MIB;
	f->cfg.initrd = big_buffer(size);
	f->cfg.initrd_size = size;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "initrd.img");
	assert_contains(f->e.msg, "does not fit");
	/* 20 MiB of kernel, 60 of initrd, and 16 to spare. */
	assert_contains(f->e.msg, "--memory 96 ");
	assert_untouched(f);
	munmap((void *)f->cfg.initrd, size);
}

static void boot_load_initrd_too_big_for_kernel(void **state)
{
	struct fixture *f = *state;
	size_t size = 20 * MIB;
	synth_put(f->kernel, BZ_INITRD_ADDR_MAX, 32 * MIB - 1, 4);
	f->cfg.initrd = big_buffer(size);
	f->cfg.initrd_size = size;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "does not fit");
	assert_contains(f->e.msg, "below 32 MiB");
	assert_untouched(f);
	munmap((void *)f->cfg.initrd, size);
}

static void boot_load_initrd_just_fits(void **state)
{
	struct fixture *f = *state;
	/* Exactly the room between the kernel's end (20 MiB) and the top of RAM. */
	size_t size = 44 * MIB;
	uint8_t *big = big_buffer(size);
	f->cfg.initrd = big;
	f->cfg.initrd_size = size;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	assert_int_equal(f->entry.initrd_addr, 20 * MIB);
	f->cfg.initrd_size = size + 1;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "does not fit");
	munmap(big, size);
}

static void boot_load_memory_too_small(void **state)
{
	struct fixture *f = *state;
	guest_mem_free(&f->mem);
	/* The kernel needs 16 MiB + 4 MiB of init_size, plus 1 MiB. */
	assert_int_equal(guest_mem_init(&f->mem, 21 * MIB - PAGE, &f->e), 0);
	f->cfg.initrd = NULL;
	f->cfg.initrd_size = 0;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "--memory");
	assert_contains(f->e.msg, "vmlinuz");
	assert_untouched(f);

	guest_mem_free(&f->mem);
	assert_int_equal(guest_mem_init(&f->mem, 21 * MIB, &f->e), 0);
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
}

static void boot_load_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	char line[64];
	synth_put(f->kernel, BZ_CMDLINE_SIZE, 16, 4);
	memset(line, 'x', sizeof(line));
	line[16] = '\0';
	f->cfg.cmdline = line;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	assert_string_equal((const char *)gpa(f, LAYOUT_CMDLINE, 17), line);

	guest_mem_free(&f->mem);
	assert_int_equal(guest_mem_init(&f->mem, 64 * MIB, &f->e), 0);
	line[16] = 'x';
	line[17] = '\0';
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "--cmdline");
	assert_contains(f->e.msg, "at most 16");
	assert_untouched(f);
}

static void boot_load_cmdline_monitor_limit(void **state)
{
	struct fixture *f = *state;
	/* A kernel that takes any length is still held to the monitor's 64 KiB area. */
	synth_put(f->kernel, BZ_CMDLINE_SIZE, 0xffffffff, 4);
	char *line = malloc(LAYOUT_CMDLINE_MAX + 1);
	assert_non_null(line);
	memset(line, 'y', LAYOUT_CMDLINE_MAX);
	line[LAYOUT_CMDLINE_MAX] = '\0';
	f->cfg.cmdline = line;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "--cmdline");
	line[LAYOUT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	assert_int_equal(*gpa(f, LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX - 1, 1), 0);
	free(line);
}

static void boot_load_bad_ncpus(void **state)
{
	struct fixture *f = *state;
	f->cfg.ncpus = 0;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "vCPUs");
}

static void boot_load_corrupt_kernel(void **state)
{
	struct fixture *f = *state;
	synth_put(f->kernel, BZ_BOOT_FLAG, 0, 2);
	f->entry.rip = 1234;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "not a bzImage");
	assert_int_equal(f->entry.rip, 0);
	assert_untouched(f);
}

/* The synthetic vmlinux in place of the bzImage, over memory a previous boot left dirty. */
static void use_vmlinux(struct fixture *f, uint8_t *elf)
{
	synth_vmlinux(elf);
	f->cfg.kernel = elf;
	f->cfg.kernel_size = SYNTH_ELF_SIZE;
	f->cfg.kernel_path = "vmlinux";
	memset(guest_mem_ptr(&f->mem, SYNTH_ELF_DATA_PADDR, SYNTH_ELF_DATA_MEMSZ), 0xee, SYNTH_ELF_DATA_MEMSZ);
}

static void boot_load_vmlinux(void **state)
{
	struct fixture *f = *state;
	static uint8_t elf[SYNTH_ELF_SIZE];
	use_vmlinux(f, elf);
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);

	struct boot_entry *b = &f->entry;
	assert_int_equal(b->rip, SYNTH_ELF_TEXT_PADDR); /* e_entry: startup_64 itself */
	assert_int_equal(b->kernel_addr, SYNTH_ELF_TEXT_PADDR);
	assert_int_equal(b->rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(b->cr3, LAYOUT_PML4);
	/* Each segment at its physical address; past its file bytes, zeroes. */
	assert_memory_equal(gpa(f, SYNTH_ELF_TEXT_PADDR, SYNTH_ELF_TEXT_SIZE), elf + SYNTH_ELF_TEXT_OFF,
			    SYNTH_ELF_TEXT_SIZE);
	const uint8_t *data = gpa(f, SYNTH_ELF_DATA_PADDR, SYNTH_ELF_DATA_MEMSZ);
	assert_memory_equal(data, elf + SYNTH_ELF_DATA_OFF, SYNTH_ELF_DATA_FILESZ);
	for (size_t i = SYNTH_ELF_DATA_FILESZ; i < SYNTH_ELF_DATA_MEMSZ; i++)
		if (data[i])
			fail_msg("byte 0x%zx of the vmlinux's bss is not zero", i);
	/* The initrd above all of it. */
	assert_true(b->initrd_addr >= SYNTH_ELF_DATA_PADDR + SYNTH_ELF_DATA_MEMSZ);
	assert_memory_equal(gpa(f, b->initrd_addr, INITRD_SIZE), f->initrd, INITRD_SIZE);

	/* The setup header Linux reads, written by the loader since the file has none. */
	const uint8_t *zp = gpa(f, LAYOUT_ZERO_PAGE, PAGE);
	assert_int_equal(get(zp, BZ_BOOT_FLAG, 2), BZ_MAGIC_BOOT_FLAG);
	assert_int_equal(get(zp, BZ_HEADER, 4), BZ_MAGIC_HDRS);
	assert_int_equal(get(zp, BZ_VERSION, 2), 0x020f);
	assert_int_equal(get(zp, BZ_ROOT_FLAGS, 2), BZ_ROOT_RDONLY);
	assert_int_equal(get(zp, BZ_LOADFLAGS, 1), BZ_LOADED_HIGH); /* no KASLR flag: none was done */
	assert_int_equal(get(zp, BZ_KERNEL_ALIGNMENT, 4), 0x200000);
	assert_int_equal(get(zp, BZ_CMDLINE_SIZE, 4), 2047);
	assert_int_equal(get(zp, BZ_TYPE_OF_LOADER, 1), 0xff);
	assert_int_equal(get(zp, BZ_CMD_LINE_PTR, 4), LAYOUT_CMDLINE);
	assert_int_equal(get(zp, BZ_RAMDISK_IMAGE, 4), b->initrd_addr);
	assert_int_equal(get(zp, BZ_RAMDISK_SIZE, 4), INITRD_SIZE);
	assert_int_equal(get(zp, 0x070, 8), LAYOUT_ACPI); /* acpi_rsdp_addr */
	assert_true(zp[0x1e8] > 0);                       /* the E820 map */
	assert_string_equal((const char *)gpa(f, LAYOUT_CMDLINE, sizeof(CMDLINE)), CMDLINE);
}

static void boot_load_vmlinux_limits(void **state)
{
	struct fixture *f = *state;
	static uint8_t elf[SYNTH_ELF_SIZE];
	static char cmdline[2049];
	use_vmlinux(f, elf);
	memset(cmdline, 'a', 2047);
	f->cfg.cmdline = cmdline;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), 0);
	cmdline[2047] = 'a';
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "accepts at most 2047");
}

static void boot_load_vmlinux_refused(void **state)
{
	struct fixture *f = *state;
	static uint8_t elf[SYNTH_ELF_SIZE];
	synth_vmlinux(elf);
	f->cfg.kernel = elf;
	f->cfg.kernel_size = SYNTH_ELF_SIZE;
	f->cfg.kernel_path = "vmlinux";
	/* A corrupt vmlinux is refused by name, before anything is written. */
	elf[offsetof(Elf64_Ehdr, e_machine)] = 0;
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "'vmlinux' is an ELF file, but not for x86-64");
	assert_untouched(f);
	/* One that needs memory beyond the guest's: refused, with the size to give. */
	synth_vmlinux(elf);
	uint64_t far = 0x8000000; /* 128 MiB, in a 64 MiB guest */
	memcpy(elf + SYNTH_ELF_PHDR(1) + offsetof(Elf64_Phdr, p_paddr), &far, sizeof(far));
	assert_int_equal(boot_load(&f->mem, &f->cfg, &f->entry, &f->e), -1);
	assert_contains(f->e.msg, "use --memory");
	assert_untouched(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(boot_load_valid),
		T(boot_load_zero_page),
		T(boot_load_old_protocol_no_rsdp),
		T(boot_load_initrd_placement),
		T(boot_load_initrd_addr_max),
		T(boot_load_no_initrd),
		T(boot_load_initrd_too_big_for_memory),
		T(boot_load_initrd_too_big_for_kernel),
		T(boot_load_initrd_just_fits),
		T(boot_load_memory_too_small),
		T(boot_load_cmdline_too_long),
		T(boot_load_cmdline_monitor_limit),
		T(boot_load_bad_ncpus),
		T(boot_load_corrupt_kernel),
		T(boot_load_vmlinux),
		T(boot_load_vmlinux_limits),
		T(boot_load_vmlinux_refused),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

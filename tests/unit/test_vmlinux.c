/* test_vmlinux: vmlinux_parse on a synthetic ELF vmlinux: a valid one, each kind of corruption,
 * and every truncation. */
#include "unit.h"

#include <elf.h>

#include "synth_bzimage.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/vmlinux.h"

static uint8_t image[SYNTH_ELF_SIZE];

static int image_setup(void **state)
{
	(void)state;
	synth_vmlinux(image);
	return 0;
}

static void expect_accepted(void)
{
	struct vmlinux vl;
	struct err e;
	if (vmlinux_parse(image, SYNTH_ELF_SIZE, "vmlinux", &vl, &e) < 0)
		fail_msg("refused: %s", e.msg);
}

static void expect_refused(size_t size, const char *needle)
{
	struct vmlinux vl;
	struct err e;
	assert_int_equal(vmlinux_parse(image, size, "vmlinux", &vl, &e), -1);
	assert_non_null(strstr(e.msg, needle));
	assert_non_null(strstr(e.msg, "'vmlinux'"));
}

static void put_phdr_field(int i, size_t field, uint64_t v)
{
	memcpy(image + SYNTH_ELF_PHDR(i) + field, &v, sizeof(v));
}

static void vmlinux_parse_valid(void **state)
{
	(void)state;
	struct vmlinux vl;
	struct err e;
	assert_true(vmlinux_is_elf(image, SYNTH_ELF_SIZE));
	assert_int_equal(vmlinux_parse(image, SYNTH_ELF_SIZE, "vmlinux", &vl, &e), 0);
	assert_int_equal(vl.nseg, 2); /* the note is not loaded */
	assert_int_equal(vl.entry, SYNTH_ELF_TEXT_PADDR);
	assert_int_equal(vl.start, SYNTH_ELF_TEXT_PADDR);
	assert_int_equal(vl.end, SYNTH_ELF_DATA_PADDR + SYNTH_ELF_DATA_MEMSZ);
	assert_ptr_equal(vl.seg[0].data, image + SYNTH_ELF_TEXT_OFF);
	assert_int_equal(vl.seg[1].filesz, SYNTH_ELF_DATA_FILESZ);
	assert_int_equal(vl.seg[1].memsz, SYNTH_ELF_DATA_MEMSZ);
}

static void vmlinux_parse_not_x86_64(void **state)
{
	(void)state;
	image[EI_CLASS] = ELFCLASS32;
	expect_refused(SYNTH_ELF_SIZE, "not for x86-64");
	synth_vmlinux(image);
	image[offsetof(Elf64_Ehdr, e_machine)] = EM_AARCH64;
	expect_refused(SYNTH_ELF_SIZE, "not for x86-64");
}

static void vmlinux_parse_not_executable(void **state)
{
	(void)state;
	image[offsetof(Elf64_Ehdr, e_type)] = ET_REL;
	expect_refused(SYNTH_ELF_SIZE, "not an executable");
}

static void vmlinux_parse_bad_phdrs(void **state)
{
	(void)state;
	image[offsetof(Elf64_Ehdr, e_phnum)] = 0;
	expect_refused(SYNTH_ELF_SIZE, "program headers");
	synth_vmlinux(image);
	image[offsetof(Elf64_Ehdr, e_phnum)] = VMLINUX_MAX_PHDRS + 1;
	expect_refused(SYNTH_ELF_SIZE, "program headers");
	synth_vmlinux(image);
	image[offsetof(Elf64_Ehdr, e_phentsize)] = 32;
	expect_refused(SYNTH_ELF_SIZE, "program headers");
	synth_vmlinux(image);
	uint64_t far = UINT64_MAX - 8;
	memcpy(image + offsetof(Elf64_Ehdr, e_phoff), &far, sizeof(far));
	expect_refused(SYNTH_ELF_SIZE, "truncated");
}

static void vmlinux_parse_segment_outside_file(void **state)
{
	(void)state;
	put_phdr_field(1, offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 100);
	expect_refused(SYNTH_ELF_SIZE, "does not lie in");
	synth_vmlinux(image);
	put_phdr_field(1, offsetof(Elf64_Phdr, p_filesz), SYNTH_ELF_DATA_FILESZ + 1);
	expect_refused(SYNTH_ELF_SIZE, "does not lie in");
	synth_vmlinux(image);
	put_phdr_field(0, offsetof(Elf64_Phdr, p_memsz), SYNTH_ELF_TEXT_SIZE - 1); /* filesz > memsz */
	expect_refused(SYNTH_ELF_SIZE, "does not lie in");
}

static void vmlinux_parse_segment_misplaced(void **state)
{
	(void)state;
	put_phdr_field(1, offsetof(Elf64_Phdr, p_paddr), 0x9000);
	expect_refused(SYNTH_ELF_SIZE, "between 1 MiB");
	synth_vmlinux(image);
	put_phdr_field(1, offsetof(Elf64_Phdr, p_paddr), LAYOUT_PCI_HOLE - 0x1000);
	expect_refused(SYNTH_ELF_SIZE, "between 1 MiB");
	synth_vmlinux(image);
	put_phdr_field(1, offsetof(Elf64_Phdr, p_memsz), UINT64_MAX - 0x1000);
	expect_refused(SYNTH_ELF_SIZE, "between 1 MiB");
}

static void vmlinux_parse_segment_edges(void **state)
{
	(void)state;
	put_phdr_field(1, offsetof(Elf64_Phdr, p_paddr), LAYOUT_HIGH_MEM); /* from 1 MiB exactly */
	expect_accepted();
	put_phdr_field(1, offsetof(Elf64_Phdr, p_paddr), LAYOUT_PCI_HOLE - SYNTH_ELF_DATA_MEMSZ); /* to 3 GiB */
	expect_accepted();
	put_phdr_field(1, offsetof(Elf64_Phdr, p_paddr), LAYOUT_PCI_HOLE - SYNTH_ELF_DATA_MEMSZ + 1);
	expect_refused(SYNTH_ELF_SIZE, "between 1 MiB");
}

static void vmlinux_parse_big_endian(void **state)
{
	(void)state;
	image[EI_DATA] = ELFDATA2MSB;
	expect_refused(SYNTH_ELF_SIZE, "not for x86-64");
}

static void vmlinux_parse_too_many_segments(void **state)
{
	(void)state;
	/* Program headers after the first three, each a copy of the first: 17 loadable in all. */
	static uint8_t big[SYNTH_ELF_TEXT_OFF + SYNTH_ELF_TEXT_SIZE];
	memcpy(big, image, sizeof(big));
	uint16_t n = VMLINUX_MAX_SEGMENTS + 2;
	memcpy(big + offsetof(Elf64_Ehdr, e_phnum), &n, sizeof(n));
	for (int i = 3; i < n; i++)
		memcpy(big + SYNTH_ELF_PHDR(i), big + SYNTH_ELF_PHDR(0), sizeof(Elf64_Phdr));
	assert_true(SYNTH_ELF_PHDR(n) <= SYNTH_ELF_TEXT_OFF);
	memcpy(big + SYNTH_ELF_PHDR(1), big + SYNTH_ELF_PHDR(0), sizeof(Elf64_Phdr)); /* no data segment */
	struct vmlinux vl;
	struct err e;
	assert_int_equal(vmlinux_parse(big, sizeof(big), "vmlinux", &vl, &e), -1);
	assert_non_null(strstr(e.msg, "more than 16 loadable segments"));
}

static void vmlinux_parse_user_program(void **state)
{
	(void)state;
	/* A static program linked at 4 MiB is an x86-64 executable that loads there, not a kernel. */
	put_phdr_field(0, offsetof(Elf64_Phdr, p_vaddr), 0x400000);
	expect_refused(SYNTH_ELF_SIZE, "not a Linux kernel");
}

static void vmlinux_parse_entry_outside(void **state)
{
	(void)state;
	uint64_t entry = SYNTH_ELF_DATA_PADDR + SYNTH_ELF_DATA_FILESZ; /* in memory, past the file bytes */
	memcpy(image + offsetof(Elf64_Ehdr, e_entry), &entry, sizeof(entry));
	expect_refused(SYNTH_ELF_SIZE, "enters at 0x1200200");
	entry = SYNTH_ELF_TEXT_PADDR - 1; /* just below the text */
	memcpy(image + offsetof(Elf64_Ehdr, e_entry), &entry, sizeof(entry));
	expect_refused(SYNTH_ELF_SIZE, "enters at 0xffffff");
}

static void vmlinux_parse_nothing_to_load(void **state)
{
	(void)state;
	put_phdr_field(0, offsetof(Elf64_Phdr, p_type), PT_NOTE);
	put_phdr_field(1, offsetof(Elf64_Phdr, p_memsz), 0);
	put_phdr_field(1, offsetof(Elf64_Phdr, p_filesz), 0);
	expect_refused(SYNTH_ELF_SIZE, "nothing to load");
}

static void vmlinux_parse_every_truncation(void **state)
{
	(void)state;
	for (size_t len = 0; len < SYNTH_ELF_SIZE; len++) {
		uint8_t *copy = test_malloc(len ? len : 1);
		memcpy(copy, image, len);
		struct vmlinux vl;
		struct err e;
		if (vmlinux_parse(copy, len, "vmlinux", &vl, &e) != -1)
			fail_msg("a vmlinux cut to %zu bytes was accepted", len);
		if (!strstr(e.msg, "'vmlinux'"))
			fail_msg("a vmlinux cut to %zu bytes: the error does not name it: %s", len, e.msg);
		test_free(copy);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(vmlinux_parse_valid, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_not_x86_64, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_not_executable, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_bad_phdrs, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_segment_outside_file, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_segment_misplaced, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_segment_edges, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_big_endian, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_too_many_segments, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_user_program, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_entry_outside, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_nothing_to_load, image_setup),
		cmocka_unit_test_setup(vmlinux_parse_every_truncation, image_setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_bzimage: bzimage_parse on synthetic images: a valid one, each kind of corruption, and
 * every truncation. */
#include "unit.h"

#include <stdlib.h>

#include "synth_bzimage.h"
#include "vmm/boot/bzimage.h"

static uint8_t image[SYNTH_SIZE];

static int image_setup(void **state)
{
	(void)state;
	synth_bzimage(image);
	return 0;
}

/* Parses `image` (size bytes), expects failure and a message containing `word`. */
static void expect_refused(size_t size, const char *word)
{
	struct bzimage bz;
	struct err e = {{0}};
	assert_int_equal(bzimage_parse(image, size, "vmlinuz", &bz, &e), -1);
	assert_contains(e.msg, word);
	assert_contains(e.msg, "vmlinuz");
}

static void bzimage_parse_valid(void **state)
{
	(void)state;
	struct bzimage bz;
	struct err e = {{0}};
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, &e), 0);
	assert_int_equal(bz.version, SYNTH_VERSION);
	assert_int_equal(bz.setup_size, SYNTH_SETUP_SIZE);
	assert_int_equal(bz.header_end, SYNTH_HEADER_END);
	assert_ptr_equal(bz.payload, image + SYNTH_SETUP_SIZE);
	assert_int_equal(bz.payload_size, SYNTH_PAYLOAD_SIZE);
	assert_int_equal(bz.init_size, SYNTH_INIT_SIZE);
	assert_int_equal(bz.kernel_alignment, SYNTH_ALIGNMENT);
	assert_int_equal(bz.initrd_addr_max, SYNTH_INITRD_ADDR_MAX);
	assert_int_equal(bz.cmdline_size, SYNTH_CMDLINE_SIZE);
	assert_int_equal(bz.pref_address, SYNTH_PREF_ADDRESS);
	assert_true(bz.relocatable);
	assert_int_equal(bzimage_load_address(&bz), SYNTH_PREF_ADDRESS);
}

static void bzimage_parse_setup_sects_zero(void **state)
{
	(void)state;
	/* setup_sects 0 means 4, as for ancient kernels. */
	image[BZ_SETUP_SECTS] = 0;
	struct bzimage bz;
	struct err e = {{0}};
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, &e), 0);
	assert_int_equal(bz.setup_size, 5 * 512);
}

static void bzimage_load_address_fallback(void **state)
{
	(void)state;
	struct bzimage bz;
	struct err e = {{0}};
	/* A preferred address that is not aligned, or below 1 MiB, is not used. */
	synth_put(image, BZ_PREF_ADDRESS, SYNTH_PREF_ADDRESS + 0x1000, 8);
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, &e), 0);
	assert_int_equal(bzimage_load_address(&bz), 0x100000);
	synth_put(image, BZ_PREF_ADDRESS, 0x80000, 8);
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, &e), 0);
	assert_int_equal(bzimage_load_address(&bz), 0x100000);
}

static void bzimage_parse_elf(void **state)
{
	(void)state;
	memcpy(image,
	       "\x7f"
	       "ELF",
	       4);
	expect_refused(SYNTH_SIZE, "ELF");
	expect_refused(4, "ELF");
}

static void bzimage_parse_too_short(void **state)
{
	(void)state;
	expect_refused(BZ_MIN_FILE - 1, "too short");
	expect_refused(0, "too short");
}

static void bzimage_parse_no_boot_flag(void **state)
{
	(void)state;
	synth_put(image, BZ_BOOT_FLAG, 0x55aa, 2);
	expect_refused(SYNTH_SIZE, "0xAA55");
}

static void bzimage_parse_no_hdrs(void **state)
{
	(void)state;
	memcpy(image + BZ_HEADER, "HdrT", 4);
	expect_refused(SYNTH_SIZE, "HdrS");
}

static void bzimage_parse_old_protocol(void **state)
{
	(void)state;
	synth_put(image, BZ_VERSION, 0x020b, 2);
	expect_refused(SYNTH_SIZE, "protocol 2.11");
	/* 2.12 is the oldest accepted. */
	synth_put(image, BZ_VERSION, 0x020c, 2);
	struct bzimage bz;
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, NULL), 0);
}

static void bzimage_parse_not_loaded_high(void **state)
{
	(void)state;
	image[BZ_LOADFLAGS] &= (uint8_t)~BZ_LOADED_HIGH;
	expect_refused(SYNTH_SIZE, "zImage");
}

static void bzimage_parse_no_64bit(void **state)
{
	(void)state;
	synth_put(image, BZ_XLOADFLAGS, 0x2, 2);
	expect_refused(SYNTH_SIZE, "64-bit");
}

static void bzimage_parse_setup_truncated(void **state)
{
	(void)state;
	/* The file ends exactly where the setup code does: no kernel at all. */
	expect_refused(SYNTH_SETUP_SIZE, "truncated");
	/* setup_sects claims more sectors than the file holds. */
	image[BZ_SETUP_SECTS] = 200;
	expect_refused(SYNTH_SIZE, "truncated");
}

static void bzimage_parse_syssize_too_big(void **state)
{
	(void)state;
	synth_put(image, BZ_SYSSIZE, SYNTH_PAYLOAD_SIZE / 16 + 1, 4);
	expect_refused(SYNTH_SIZE, "truncated");
	synth_put(image, BZ_SYSSIZE, 0, 4);
	expect_refused(SYNTH_SIZE, "truncated");
}

static void bzimage_parse_init_size_small(void **state)
{
	(void)state;
	synth_put(image, BZ_INIT_SIZE, SYNTH_PAYLOAD_SIZE - 1, 4);
	expect_refused(SYNTH_SIZE, "init_size");
}

static void bzimage_parse_bad_alignment(void **state)
{
	(void)state;
	synth_put(image, BZ_KERNEL_ALIGNMENT, 0x300000, 4);
	expect_refused(SYNTH_SIZE, "power of two");
	synth_put(image, BZ_KERNEL_ALIGNMENT, 0, 4);
	expect_refused(SYNTH_SIZE, "power of two");
}

static void bzimage_parse_header_end(void **state)
{
	(void)state;
	/* Ends before the fields this parser reads (0x202 + 0x10 < BZ_MIN_FILE). */
	image[BZ_JUMP + 1] = 0x10;
	expect_refused(SYNTH_SIZE, "setup header ends");
	image[BZ_JUMP + 1] = BZ_MIN_FILE - (BZ_JUMP + 2) - 1;
	expect_refused(SYNTH_SIZE, "setup header ends");
	/* The jump byte can place the end at 0x301 at most, and the smallest setup area is two
	 * sectors: the farthest end, with the smallest area, is accepted. */
	image[BZ_SETUP_SECTS] = 1;
	image[BZ_JUMP + 1] = 0xff;
	struct bzimage bz;
	struct err e = {{0}};
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, &e), 0);
	assert_int_equal(bz.header_end, 0x301);
	assert_int_equal(bz.setup_size, 1024);
}

static void bzimage_parse_beyond_3g(void **state)
{
	(void)state;
	synth_put(image, BZ_PREF_ADDRESS, 0xbfe00000, 8);
	expect_refused(SYNTH_SIZE, "3 GiB");
}

static void bzimage_parse_every_truncation(void **state)
{
	(void)state;
	/* Each prefix in its own allocation, so that ASan sees any read past its end. */
	for (size_t len = 0; len < SYNTH_SIZE; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		assert_non_null(copy);
		memcpy(copy, image, len);
		struct bzimage bz;
		struct err e = {{0}};
		if (bzimage_parse(copy, len, "vmlinuz", &bz, &e) != -1)
			fail_msg("image truncated to %zu bytes was accepted", len);
		assert_true(e.msg[0] != '\0');
		free(copy);
	}
	struct bzimage bz;
	assert_int_equal(bzimage_parse(image, SYNTH_SIZE, "vmlinuz", &bz, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(bzimage_parse_valid, image_setup),
		cmocka_unit_test_setup(bzimage_parse_setup_sects_zero, image_setup),
		cmocka_unit_test_setup(bzimage_load_address_fallback, image_setup),
		cmocka_unit_test_setup(bzimage_parse_elf, image_setup),
		cmocka_unit_test_setup(bzimage_parse_too_short, image_setup),
		cmocka_unit_test_setup(bzimage_parse_no_boot_flag, image_setup),
		cmocka_unit_test_setup(bzimage_parse_no_hdrs, image_setup),
		cmocka_unit_test_setup(bzimage_parse_old_protocol, image_setup),
		cmocka_unit_test_setup(bzimage_parse_not_loaded_high, image_setup),
		cmocka_unit_test_setup(bzimage_parse_no_64bit, image_setup),
		cmocka_unit_test_setup(bzimage_parse_setup_truncated, image_setup),
		cmocka_unit_test_setup(bzimage_parse_syssize_too_big, image_setup),
		cmocka_unit_test_setup(bzimage_parse_init_size_small, image_setup),
		cmocka_unit_test_setup(bzimage_parse_bad_alignment, image_setup),
		cmocka_unit_test_setup(bzimage_parse_header_end, image_setup),
		cmocka_unit_test_setup(bzimage_parse_beyond_3g, image_setup),
		cmocka_unit_test_setup(bzimage_parse_every_truncation, image_setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

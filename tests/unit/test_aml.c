/* test_aml: the AML encoder's byte output: integers, names, PkgLength, EISA IDs, methods,
 * Notify, interrupt descriptors, overflow. */
#include "unit.h"

#include <stdlib.h>

#include "vmm/boot/aml.h"

#define assert_aml(a, ...)                                                                                             \
	do {                                                                                                           \
		static const uint8_t want_[] = {__VA_ARGS__};                                                          \
		assert_false((a)->overflow);                                                                           \
		assert_int_equal((a)->len, sizeof(want_));                                                             \
		assert_memory_equal((a)->buf, want_, sizeof(want_));                                                   \
	} while (0)

static struct aml *aml_new(void)
{
	struct aml *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	return a;
}

static void aml_integer_encodings(void **state)
{
	(void)state;
	struct aml *a = aml_new();
	aml_integer(a, 0);
	assert_aml(a, 0x00); /* ZeroOp */
	a->len = 0;
	aml_integer(a, 1);
	assert_aml(a, 0x01); /* OneOp */
	a->len = 0;
	aml_integer(a, 2);
	assert_aml(a, 0x0a, 0x02);
	a->len = 0;
	aml_integer(a, 0xff);
	assert_aml(a, 0x0a, 0xff);
	a->len = 0;
	aml_integer(a, 0x100);
	assert_aml(a, 0x0b, 0x00, 0x01);
	a->len = 0;
	aml_integer(a, 0xffff);
	assert_aml(a, 0x0b, 0xff, 0xff);
	a->len = 0;
	aml_integer(a, 0x10000);
	assert_aml(a, 0x0c, 0x00, 0x00, 0x01, 0x00);
	a->len = 0;
	aml_integer(a, 0xffffffffull);
	assert_aml(a, 0x0c, 0xff, 0xff, 0xff, 0xff);
	a->len = 0;
	aml_integer(a, 1ull << 32);
	assert_aml(a, 0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
	free(a);
}

static void aml_name_encodings(void **state)
{
	(void)state;
	struct aml *a = aml_new();
	aml_name(a, "\\_SB_");
	assert_aml(a, '\\', '_', 'S', 'B', '_');
	a->len = 0;
	/* Short segments are padded with '_'; two segments take DualNamePrefix. */
	aml_name(a, "A.B");
	assert_aml(a, 0x2e, 'A', '_', '_', '_', 'B', '_', '_', '_');
	a->len = 0;
	aml_name(a, "\\_SB_.PCI0.ISA_");
	assert_aml(a, '\\', 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_');
	a->len = 0;
	aml_name(a, "COM1");
	assert_aml(a, 'C', 'O', 'M', '1');
	a->len = 0;
	aml_name(a, "");
	assert_aml(a, 0x00); /* NullName */
	free(a);
}

static void aml_string_encoding(void **state)
{
	(void)state;
	struct aml *a = aml_new();
	aml_string(a, "QEMU0001");
	assert_aml(a, 0x0d, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0x00);
	free(a);
}

/* Scope("\_SB_") around `n` bytes of body; returns the encoder for the caller to inspect. */
static struct aml *scope_of(size_t n)
{
	struct aml *body = aml_new(), *a = aml_new();
	memset(body->buf, 0xa5, n);
	body->len = n;
	aml_scope(a, "\\_SB_", body);
	free(body);
	return a;
}

static void aml_pkg_length_1byte(void **state)
{
	(void)state;
	/* 5 bytes of name + 10 of body + 1 of PkgLength = 16. */
	struct aml *a = scope_of(10);
	assert_false(a->overflow);
	assert_int_equal(a->len, 1 + 1 + 5 + 10);
	assert_int_equal(a->buf[0], 0x10); /* ScopeOp */
	assert_int_equal(a->buf[1], 16);
	assert_memory_equal(a->buf + 2, "\\_SB_", 5);
	assert_int_equal(a->buf[7], 0xa5);
	free(a);
	/* The largest one-byte length is 63. */
	a = scope_of(57);
	assert_int_equal(a->buf[1], 63);
	free(a);
	a = scope_of(58);
	assert_int_equal(a->buf[1], 0x40 | (65 & 0xf));
	assert_int_equal(a->buf[2], 65 >> 4);
	free(a);
}

static void aml_pkg_length_2byte(void **state)
{
	(void)state;
	/* 5 + 100 + 2 = 107 = 0x6b: low nibble in byte 0 with ByteData count 1, then 0x6. */
	struct aml *a = scope_of(100);
	assert_false(a->overflow);
	assert_int_equal(a->len, 1 + 2 + 5 + 100);
	assert_int_equal(a->buf[1], 0x4b);
	assert_int_equal(a->buf[2], 0x06);
	assert_memory_equal(a->buf + 3, "\\_SB_", 5);
	free(a);
}

static void aml_pkg_length_3byte(void **state)
{
	(void)state;
	/* 5 + 4090 + 3 = 4098 = 0x1002: 0x82, 0x00, 0x01. The whole scope (4099 bytes) cannot
	 * fit in one 4096-byte encoder, so the result is marked overflowed; the opcode and
	 * PkgLength, written first, show the encoding. */
	struct aml *a = scope_of(4090);
	assert_true(a->overflow);
	assert_int_equal(a->buf[0], 0x10);
	assert_int_equal(a->buf[1], 0x82);
	assert_int_equal(a->buf[2], 0x00);
	assert_int_equal(a->buf[3], 0x01);
	free(a);
	/* 5 + 4089 + 3 = 4097 = 0x1001: the smallest length that needs three bytes. */
	a = scope_of(4089);
	assert_int_equal(a->buf[1], 0x81);
	assert_int_equal(a->buf[2], 0x00);
	assert_int_equal(a->buf[3], 0x01);
	free(a);
	/* 5 + 4088 + 2 = 4095 = 0xfff, the largest two-byte length; the scope fills the
	 * encoder exactly. */
	a = scope_of(4088);
	assert_false(a->overflow);
	assert_int_equal(a->len, 4096);
	assert_int_equal(a->buf[1], 0x4f);
	assert_int_equal(a->buf[2], 0xff);
	free(a);
}

static void aml_eisa_id_pnp0501(void **state)
{
	(void)state;
	struct aml *a = aml_new();
	aml_eisa_id(a, "PNP0501");
	assert_aml(a, 0x0c, 0x41, 0xd0, 0x05, 0x01);
	a->len = 0;
	aml_eisa_id(a, "PNP0B00");
	assert_aml(a, 0x0c, 0x41, 0xd0, 0x0b, 0x00);
	free(a);
}

static void aml_device_encoding(void **state)
{
	(void)state;
	struct aml *a = aml_new(), *body = aml_new();
	aml_integer(body, 0);
	aml_device(a, "COM1", body);
	/* ExtOpPrefix DeviceOp PkgLength(1 + 4 + 1) "COM1" ZeroOp */
	assert_aml(a, 0x5b, 0x82, 0x06, 'C', 'O', 'M', '1', 0x00);
	free(body);
	free(a);
}

static void aml_io_resource_encoding(void **state)
{
	(void)state;
	struct aml *a = aml_new();
	aml_io_resource(a, 0x3f8, 8, 4);
	/* Buffer(13){ IO(Decode16, 0x3f8, 0x3f8, 1, 8), IRQNoFlags(){4}, EndTag } */
	assert_aml(a, 0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79,
		   0x00);
	a->len = 0;
	aml_io_resource(a, 0x505, 1, -1);
	assert_aml(a, 0x11, 0x0d, 0x0a, 0x0a, 0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00);
	free(a);
}

static void aml_overflow(void **state)
{
	(void)state;
	struct aml *a = aml_new();
	static const uint8_t chunk[4096];
	for (int i = 0; i < 4; i++)
		aml_bytes(a, chunk, 1000);
	assert_false(a->overflow);
	aml_bytes(a, chunk, 96);
	assert_false(a->overflow);
	assert_int_equal(a->len, 4096);
	aml_byte(a, 0x42);
	assert_true(a->overflow);
	assert_int_equal(a->len, 4096);
	free(a);

	/* An append that does not fit is not written in part, and nothing fits after it. */
	a = aml_new();
	aml_bytes(a, chunk, 4000);
	aml_bytes(a, chunk, 100);
	assert_true(a->overflow);
	assert_int_equal(a->len, 4000);
	aml_byte(a, 1);
	assert_int_equal(a->len, 4000);
	free(a);

	/* Overflow propagates from a nested body. */
	struct aml *body = aml_new();
	body->overflow = 1;
	a = aml_new();
	aml_device(a, "DEV0", body);
	assert_true(a->overflow);
	free(body);
	free(a);
}

static void aml_method_notify_encoding(void **state)
{
	(void)state;
	struct aml *a = aml_new(), *body = aml_new();
	aml_notify(body, "\\_SB_.PWRB", 0x80);
	assert_aml(body, 0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'W', 'R', 'B', 0x0a, 0x80);
	aml_method(a, "_EVT", 1, body);
	/* MethodOp, PkgLength (1 + 4 name + 1 flags + 13 body), name, flags: one argument */
	assert_aml(a, 0x14, 19, '_', 'E', 'V', 'T', 0x01, 0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'W', 'R', 'B',
		   0x0a, 0x80);
	free(a);
	free(body);
}

static void aml_interrupt_encoding(void **state)
{
	(void)state;
	struct aml *rt = aml_new();
	aml_rt_interrupt(rt, 16);
	/* Extended interrupt: length 6, consumer + edge + active high + exclusive, one GSI */
	assert_aml(rt, 0x89, 0x06, 0x00, 0x03, 0x01, 16, 0, 0, 0);
	free(rt);
}

static void aml_memory32_fixed_encoding(void **state)
{
	(void)state;
	struct aml *rt = aml_new();
	aml_rt_memory32_fixed(rt, 0xfe000000, 0x100000);
	/* Memory32Fixed: length 9, read-write, base, length */
	assert_aml(rt, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xfe, 0x00, 0x00, 0x10, 0x00);
	free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(aml_integer_encodings),       cmocka_unit_test(aml_name_encodings),
		cmocka_unit_test(aml_string_encoding),         cmocka_unit_test(aml_pkg_length_1byte),
		cmocka_unit_test(aml_pkg_length_2byte),        cmocka_unit_test(aml_pkg_length_3byte),
		cmocka_unit_test(aml_eisa_id_pnp0501),         cmocka_unit_test(aml_device_encoding),
		cmocka_unit_test(aml_io_resource_encoding),    cmocka_unit_test(aml_overflow),
		cmocka_unit_test(aml_method_notify_encoding),  cmocka_unit_test(aml_interrupt_encoding),
		cmocka_unit_test(aml_memory32_fixed_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

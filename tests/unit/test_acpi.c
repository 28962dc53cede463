/* test_acpi: the ACPI tables acpi_build writes for 1, 2 and 254 vCPUs: RSDP, XSDT, FADT, MADT,
 * DSDT contents and checksums, and the refusals. */
#include "unit.h"

#include <stdlib.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/layout.h"
#include "vmm/platform.h"

#define BASE     0xe0000ull
#define BUF_SIZE (128 * 1024)

static uint8_t buf[BUF_SIZE];

static uint64_t get(const uint8_t *p, size_t off, size_t width)
{
	uint64_t v = 0;
	memcpy(&v, p + off, width);
	return v;
}

/* The table at guest address gpa, after checking that it lies in the buffer and sums to 0. */
static const uint8_t *table_at(uint64_t gpa, const char *sig, size_t used)
{
	assert_true(gpa >= BASE && gpa - BASE + 36 <= used);
	const uint8_t *t = buf + (gpa - BASE);
	assert_memory_equal(t, sig, 4);
	uint32_t len = (uint32_t)get(t, 4, 4);
	assert_true(len >= 36 && gpa - BASE + len <= used);
	assert_int_equal(acpi_checksum(t, len), 0);
	assert_memory_equal(t + 10, "SHOJI ", 6);
	return t;
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

/* Checks a generic address structure for one byte of I/O port space. */
static void assert_gas_io(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1); /* system I/O */
	assert_int_equal(g[1], 8);
	assert_int_equal(g[3], 1); /* byte access */
	assert_int_equal(get(g, 4, 8), port);
}

static void check_tables(unsigned ncpus)
{
	size_t used = 0;
	struct err e = {{0}};
	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, ncpus, &used, &e), 0);
	assert_true(used > 36 && used <= sizeof(buf));

	/* RSDP: ACPI 2.0, both checksums. */
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(buf[15], 2);
	assert_int_equal(get(buf, 20, 4), 36);
	assert_int_equal(acpi_checksum(buf, 20), 0);
	assert_int_equal(acpi_checksum(buf, 36), 0);

	/* XSDT: the FADT, the MADT and the MCFG. */
	const uint8_t *xsdt = table_at(get(buf, 24, 8), "XSDT", used);
	assert_int_equal(get(xsdt, 4, 4), 36 + 3 * 8);
	const uint8_t *fadt = table_at(get(xsdt, 36, 8), "FACP", used);
	const uint8_t *madt = table_at(get(xsdt, 44, 8), "APIC", used);
	const uint8_t *mcfg = table_at(get(xsdt, 52, 8), "MCFG", used);

	/* MCFG: ECAM of bus 0 only. */
	assert_int_equal(get(mcfg, 4, 4), 60);
	assert_int_equal(get(mcfg, 44, 8), LAYOUT_PCI_ECAM);
	assert_int_equal(mcfg[54], 0);
	assert_int_equal(mcfg[55], 0);

	/* FADT: hardware-reduced, with reset and sleep registers, and the DSDT. */
	assert_int_equal(get(fadt, 4, 4), 276);
	uint32_t flags = (uint32_t)get(fadt, 112, 4);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	assert_gas_io(fadt + 116, PORT_PM_RESET);
	assert_int_equal(fadt[128], PM_RESET_VALUE);
	assert_gas_io(fadt + 244, PORT_PM_SLEEP_CONTROL);
	assert_gas_io(fadt + 256, PORT_PM_SLEEP_STATUS);
	assert_int_equal(get(fadt, 40, 4), get(fadt, 140, 8));
	const uint8_t *dsdt = table_at(get(fadt, 140, 8), "DSDT", used);

	/* MADT: one enabled local APIC per vCPU, APIC IDs 0..N-1, then the I/O APIC. */
	uint32_t mlen = (uint32_t)get(madt, 4, 4);
	assert_int_equal(get(madt, 36, 4), 0xfee00000);
	unsigned nlapic = 0, nioapic = 0;
	for (uint32_t off = 44; off < mlen;) {
		const uint8_t *s = madt + off;
		assert_true(s[1] >= 2 && off + s[1] <= mlen);
		if (s[0] == 0) {
			assert_int_equal(s[1], 8);
			assert_int_equal(s[3], nlapic); /* APIC ID */
			assert_int_equal(s[2], nlapic); /* processor UID */
			assert_int_equal(get(s, 4, 4) & 1, 1);
			nlapic++;
		} else if (s[0] == 1) {
			assert_int_equal(get(s, 4, 4), 0xfec00000);
			nioapic++;
		}
		off += s[1];
	}
	assert_int_equal(nlapic, ncpus);
	assert_int_equal(nioapic, 1);

	/* DSDT: \_S5 = Package(){5, 5, 0, 0}, COM1 by EISA ID, pvpanic by string. */
	uint32_t dlen = (uint32_t)get(dsdt, 4, 4);
	static const uint8_t s5[] = {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00};
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, s5, sizeof(s5)));
	static const uint8_t pnp0501[] = {0x0c, 0x41, 0xd0, 0x05, 0x01};
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, pnp0501, sizeof(pnp0501)));
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, "QEMU0001", 9));
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, "\\_SB_", 5));
	/* The power button: PWRB (PNP0C0C) and the Generic Event Device whose _EVT notifies it. */
	static const uint8_t pnp0c0c[] = {0x0c, 0x41, 0xd0, 0x0c, 0x0c};
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, pnp0c0c, sizeof(pnp0c0c)));
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, "ACPI0013", 9));
	static const uint8_t ged_irq[] = {0x89, 0x06, 0x00, 0x03, 0x01, GSI_POWER_BUTTON, 0, 0, 0};
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, ged_irq, sizeof(ged_irq)));
	static const uint8_t notify[] = {0x86, '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'W', 'R', 'B', 0x0a, 0x80};
	assert_non_null(find_bytes(dsdt + 36, dlen - 36, notify, sizeof(notify)));
	/* Nothing is written past *used. */
	for (size_t i = used; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xcc);
}

static void acpi_build_1cpu(void **state)
{
	(void)state;
	check_tables(1);
}

static void acpi_build_2cpus(void **state)
{
	(void)state;
	check_tables(2);
}

static void acpi_build_254cpus(void **state)
{
	(void)state;
	check_tables(254);
}

static void acpi_build_bad_ncpus(void **state)
{
	(void)state;
	size_t used = 0;
	struct err e = {{0}};
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, 0, &used, &e), -1);
	assert_contains(e.msg, "vCPUs");
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, 255, &used, &e), -1);
	assert_contains(e.msg, "255");
}

static void acpi_build_too_small(void **state)
{
	(void)state;
	size_t used = 0;
	struct err e = {{0}};
	assert_int_equal(acpi_build(buf, sizeof(buf), BASE, 4, &used, &e), 0);
	size_t need = used;
	/* Every smaller buffer, each its own allocation so that ASan sees any overrun. */
	for (size_t size = 0; size < need; size++) {
		uint8_t *small = malloc(size ? size : 1);
		assert_non_null(small);
		if (acpi_build(small, size, BASE, 4, &used, &e) != -1)
			fail_msg("tables of %zu bytes fit in %zu", need, size);
		free(small);
	}
	assert_contains(e.msg, "do not fit");
	uint8_t *exact = malloc(need);
	assert_non_null(exact);
	assert_int_equal(acpi_build(exact, need, BASE, 4, &used, &e), 0);
	assert_int_equal(used, need);
	free(exact);
}

static void acpi_checksum_sum(void **state)
{
	(void)state;
	static const uint8_t data[] = {0x01, 0x02, 0xff, 0x80, 0x80};
	assert_int_equal(acpi_checksum(data, 0), 0);
	assert_int_equal(acpi_checksum(data, 2), 3);
	assert_int_equal(acpi_checksum(data, 3), 2);
	assert_int_equal(acpi_checksum(data, 5), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(acpi_build_1cpu),      cmocka_unit_test(acpi_build_2cpus),
		cmocka_unit_test(acpi_build_254cpus),   cmocka_unit_test(acpi_build_bad_ncpus),
		cmocka_unit_test(acpi_build_too_small), cmocka_unit_test(acpi_checksum_sum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

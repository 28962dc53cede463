/* test_rtc: the CMOS clock against a fixed host time: BCD and binary reads, status registers,
 * setting the time, CMOS RAM and odd-sized accesses. */
#include "unit.h"

#include <stdlib.h>

#include "vmm/devices/rtc.h"

#define T0 1795662245 /* 2026-11-26 03:04:05 UTC, a Thursday */

enum {
	SEC = 0x00,
	MIN = 0x02,
	HOUR = 0x04,
	WDAY = 0x06,
	MDAY = 0x07,
	MON = 0x08,
	YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
	CENTURY = 0x32
};

static time_t fixed_now;

static time_t fake_now(void)
{
	return fixed_now;
}

static int rtc_setup(void **state)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	rtc_init(r);
	r->now = fake_now;
	fixed_now = T0;
	*state = r;
	return 0;
}

static int rtc_teardown(void **state)
{
	rtc_destroy(*state);
	free(*state);
	return 0;
}

static uint8_t cmos_read(struct rtc *r, uint8_t index)
{
	uint8_t v = index;
	rtc_io(r, 0, &v, 1, true);
	v = 0xee;
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static void cmos_write(struct rtc *r, uint8_t index, uint8_t value)
{
	rtc_io(r, 0, &index, 1, true);
	rtc_io(r, 1, &value, 1, true);
}

static void rtc_read_bcd(void **state)
{
	struct rtc *r = *state;
	assert_int_equal(cmos_read(r, SEC), 0x05);
	assert_int_equal(cmos_read(r, MIN), 0x04);
	assert_int_equal(cmos_read(r, HOUR), 0x03);
	assert_int_equal(cmos_read(r, WDAY), 0x05); /* Sunday is 1 */
	assert_int_equal(cmos_read(r, MDAY), 0x26);
	assert_int_equal(cmos_read(r, MON), 0x11);
	assert_int_equal(cmos_read(r, YEAR), 0x26);
	assert_int_equal(cmos_read(r, CENTURY), 0x20);
	/* The clock follows the host's. */
	fixed_now = T0 + 3600 * 21 + 60 * 55 + 59; /* 2026-11-27 01:00:04 */
	assert_int_equal(cmos_read(r, SEC), 0x04);
	assert_int_equal(cmos_read(r, MIN), 0x00);
	assert_int_equal(cmos_read(r, HOUR), 0x01);
	assert_int_equal(cmos_read(r, MDAY), 0x27);
}

static void rtc_read_binary(void **state)
{
	struct rtc *r = *state;
	assert_int_equal(cmos_read(r, REG_B) & 0x04, 0);
	cmos_write(r, REG_B, 0x02 | 0x04);
	assert_int_equal(cmos_read(r, REG_B), 0x06);
	assert_int_equal(cmos_read(r, SEC), 5);
	assert_int_equal(cmos_read(r, MIN), 4);
	assert_int_equal(cmos_read(r, HOUR), 3);
	assert_int_equal(cmos_read(r, WDAY), 5);
	assert_int_equal(cmos_read(r, MDAY), 26);
	assert_int_equal(cmos_read(r, MON), 11);
	assert_int_equal(cmos_read(r, YEAR), 26);
	assert_int_equal(cmos_read(r, CENTURY), 20);
}

static void rtc_status_registers(void **state)
{
	struct rtc *r = *state;
	assert_int_equal(cmos_read(r, REG_A) & 0x80, 0); /* UIP clear */
	/* UIP cannot be set by the guest; the other bits are kept. */
	cmos_write(r, REG_A, 0xa6);
	assert_int_equal(cmos_read(r, REG_A), 0x26);
	assert_int_equal(cmos_read(r, REG_B) & 0x02, 0x02); /* 24-hour mode */
	assert_int_equal(cmos_read(r, REG_D), 0x80);        /* valid RAM and time */
	cmos_write(r, REG_D, 0x00);
	assert_int_equal(cmos_read(r, REG_D), 0x80);
	assert_int_equal(cmos_read(r, REG_C), 0x00);
	cmos_write(r, REG_C, 0xf0);
	assert_int_equal(cmos_read(r, REG_C), 0x00);
}

static void rtc_set_year(void **state)
{
	struct rtc *r = *state;
	cmos_write(r, YEAR, 0x27);
	assert_int_equal(cmos_read(r, YEAR), 0x27);
	assert_int_equal(cmos_read(r, MON), 0x11);
	assert_int_equal(cmos_read(r, MDAY), 0x26);
	assert_int_equal(cmos_read(r, CENTURY), 0x20);
	assert_int_equal(cmos_read(r, WDAY), 0x06); /* 2027-11-26 is a Friday */
	assert_int_equal(r->offset, 365 * 86400);
	/* The offset is kept as the host clock moves on. */
	fixed_now = T0 + 60;
	assert_int_equal(cmos_read(r, YEAR), 0x27);
	assert_int_equal(cmos_read(r, MIN), 0x05);
}

static void rtc_set_time_binary(void **state)
{
	struct rtc *r = *state;
	cmos_write(r, REG_B, 0x06);
	cmos_write(r, HOUR, 23);
	cmos_write(r, MIN, 59);
	assert_int_equal(cmos_read(r, HOUR), 23);
	assert_int_equal(cmos_read(r, MIN), 59);
	assert_int_equal(cmos_read(r, SEC), 5);
	assert_int_equal(cmos_read(r, MDAY), 26);
	assert_int_equal(r->offset, (23 - 3) * 3600 + (59 - 4) * 60);
	cmos_write(r, CENTURY, 21);
	assert_int_equal(cmos_read(r, CENTURY), 21);
	assert_int_equal(cmos_read(r, YEAR), 26);
}

/* Linux's order (year, month, day) under REG_B.SET: no invalid date in between, so setting
 * 2026-02-28 from 2026-01-31 must not roll over into March. */
static void rtc_set_date_under_set_bit(void **state)
{
	struct rtc *r = *state;
	fixed_now = 1769817600 + 3600; /* 2026-01-31 01:00:00 UTC */
	cmos_write(r, REG_B, 0x82);    /* SET, 24-hour, BCD */
	cmos_write(r, YEAR, 0x26);
	cmos_write(r, MON, 0x02);
	assert_int_equal(cmos_read(r, MON), 0x02); /* staged, not applied */
	cmos_write(r, MDAY, 0x28);
	cmos_write(r, HOUR, 0x12);
	cmos_write(r, MIN, 0x00);
	cmos_write(r, SEC, 0x00);
	cmos_write(r, REG_B, 0x02); /* clear SET: the new time applies */
	assert_int_equal(cmos_read(r, MON), 0x02);
	assert_int_equal(cmos_read(r, MDAY), 0x28);
	assert_int_equal(cmos_read(r, HOUR), 0x12);
	assert_int_equal(cmos_read(r, YEAR), 0x26);
}

static void rtc_twelve_hour_mode(void **state)
{
	struct rtc *r = *state;
	fixed_now = T0 + 12 * 3600; /* 15:04:05 */
	cmos_write(r, REG_B, 0x00); /* 12-hour, BCD */
	assert_int_equal(cmos_read(r, HOUR), 0x80 | 0x03);
	fixed_now = T0 - 3 * 3600; /* 00:04:05 is 12 AM */
	assert_int_equal(cmos_read(r, HOUR), 0x12);
	cmos_write(r, HOUR, 0x80 | 0x11); /* 11 PM */
	cmos_write(r, REG_B, 0x02);
	assert_int_equal(cmos_read(r, HOUR), 0x23);
}

static void rtc_cmos_ram(void **state)
{
	struct rtc *r = *state;
	cmos_write(r, 0x40, 0x5a);
	cmos_write(r, 0x7f, 0xa5);
	assert_int_equal(cmos_read(r, 0x40), 0x5a);
	assert_int_equal(cmos_read(r, 0x7f), 0xa5);
	/* Bit 7 of the index is the NMI mask, not part of the address. */
	cmos_write(r, 0x80 | 0x41, 0x33);
	assert_int_equal(cmos_read(r, 0x41), 0x33);
	assert_int_equal(cmos_read(r, 0x80 | 0x40), 0x5a);
	/* The index port itself reads as 0xff. */
	uint8_t v = 0;
	rtc_io(r, 0, &v, 1, false);
	assert_int_equal(v, 0xff);
}

static void rtc_wide_access(void **state)
{
	struct rtc *r = *state;
	uint8_t v[4] = {0, 0, 0, 0};
	rtc_io(r, 0, v, 2, false);
	assert_int_equal(v[0], 0xff);
	assert_int_equal(v[1], 0xff);
	assert_int_equal(v[2], 0);
	memset(v, 0, sizeof(v));
	rtc_io(r, 1, v, 4, false);
	assert_int_equal(v[3], 0xff);
	/* A wide write changes neither the index nor the RAM. */
	cmos_write(r, 0x40, 0x11);
	uint8_t w[2] = {0x41, 0x99};
	rtc_io(r, 0, w, 2, true);
	rtc_io(r, 1, w, 2, true);
	v[0] = 0;
	rtc_io(r, 1, v, 1, false);
	assert_int_equal(v[0], 0x11);
}

/* The RAM sizes a firmware reads: 3 GiB below 4 GiB and 5 GiB above, and a machine too big
 * for the 16-bit fields, which saturate. */
static void rtc_memory_sizes(void **state)
{
	struct rtc *r = *state;
	rtc_set_memory(r, 3ull << 30, 5ull << 30);
	assert_int_equal(cmos_read(r, 0x15) | cmos_read(r, 0x16) << 8, 640);
	assert_int_equal(cmos_read(r, 0x17) | cmos_read(r, 0x18) << 8, 0xffff);
	assert_int_equal(cmos_read(r, 0x34) | cmos_read(r, 0x35) << 8, ((3u << 30) - (16u << 20)) >> 16);
	assert_int_equal(cmos_read(r, 0x5b) | cmos_read(r, 0x5c) << 8 | cmos_read(r, 0x5d) << 16, (5ull << 30) >> 16);
	rtc_set_memory(r, 32u << 20, 0);
	assert_int_equal(cmos_read(r, 0x17) | cmos_read(r, 0x18) << 8, 31 * 1024);
	assert_int_equal(cmos_read(r, 0x34) | cmos_read(r, 0x35) << 8, 256);
	assert_int_equal(cmos_read(r, 0x5b), 0);
	rtc_set_memory(r, 3ull << 30, 1ull << 50);
	assert_int_equal(cmos_read(r, 0x5b) | cmos_read(r, 0x5c) << 8 | cmos_read(r, 0x5d) << 16, 0xffffff);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, rtc_setup, rtc_teardown)
	const struct CMUnitTest tests[] = {
		T(rtc_read_bcd),         T(rtc_read_binary),     T(rtc_status_registers),
		T(rtc_set_year),         T(rtc_set_time_binary), T(rtc_set_date_under_set_bit),
		T(rtc_twelve_hour_mode), T(rtc_cmos_ram),        T(rtc_wide_access),
		T(rtc_memory_sizes),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

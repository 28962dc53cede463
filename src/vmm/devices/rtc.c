/* rtc: CMOS clock model (see rtc.h). */
#include "rtc.h"

#include <string.h>

enum {
	RTC_SECONDS = 0x00,
	RTC_MINUTES = 0x02,
	RTC_HOURS = 0x04,
	RTC_WEEKDAY = 0x06,
	RTC_DAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_CENTURY = 0x32,
};

#define REG_B_SET    0x80
#define REG_B_BINARY 0x04
#define REG_B_24H    0x02
#define REG_D_VRT    0x80

static time_t host_now(void)
{
	return time(NULL);
}

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->now = host_now;
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate, no update in progress */
	r->cmos[RTC_REG_B] = REG_B_24H;
	r->cmos[RTC_REG_D] = REG_D_VRT;
}

static void put_le(uint8_t *at, uint64_t v, unsigned bytes, uint64_t max)
{
	if (v > max)
		v = max;
	for (unsigned i = 0; i < bytes; i++)
		at[i] = (uint8_t)(v >> (8 * i));
}

void rtc_set_memory(struct rtc *r, uint64_t below_4g, uint64_t above_4g)
{
	const uint64_t mib = 1u << 20;
	uint64_t ext_kib = below_4g > mib ? (below_4g - mib) >> 10 : 0;
	put_le(&r->cmos[0x15], 640, 2, 0xffff);
	put_le(&r->cmos[0x17], ext_kib, 2, 0xffff);
	put_le(&r->cmos[0x30], ext_kib, 2, 0xffff);
	put_le(&r->cmos[0x34], below_4g > 16 * mib ? (below_4g - 16 * mib) >> 16 : 0, 2, 0xffff);
	put_le(&r->cmos[0x5b], above_4g >> 16, 3, 0xffffff);
}

void rtc_destroy(struct rtc *r)
{
	pthread_mutex_destroy(&r->lock);
}

static bool is_clock_reg(uint8_t i)
{
	return i == RTC_SECONDS || i == RTC_MINUTES || i == RTC_HOURS || i == RTC_WEEKDAY || i == RTC_DAY ||
		i == RTC_MONTH || i == RTC_YEAR || i == RTC_CENTURY;
}

static uint8_t to_reg(const struct rtc *r, int v)
{
	if (r->cmos[RTC_REG_B] & REG_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

static int from_reg(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f);
}

/* Hours in 24-hour form, or 1-12 with bit 7 for PM when REG_B asks for 12-hour mode. */
static uint8_t hours_to_reg(const struct rtc *r, int h)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return to_reg(r, h);
	int h12 = h % 12 == 0 ? 12 : h % 12;
	return (uint8_t)(to_reg(r, h12) | (h >= 12 ? 0x80 : 0));
}

static int hours_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return from_reg(r, v);
	int h = from_reg(r, v & 0x7f) % 12;
	return (v & 0x80) ? h + 12 : h;
}

/* Fills the clock registers of cmos[] with the guest's current time. */
static void clock_snapshot(struct rtc *r)
{
	time_t t = r->now() + r->offset;
	struct tm tm;
	gmtime_r(&t, &tm);
	r->cmos[RTC_SECONDS] = to_reg(r, tm.tm_sec);
	r->cmos[RTC_MINUTES] = to_reg(r, tm.tm_min);
	r->cmos[RTC_HOURS] = hours_to_reg(r, tm.tm_hour);
	r->cmos[RTC_WEEKDAY] = to_reg(r, tm.tm_wday + 1);
	r->cmos[RTC_DAY] = to_reg(r, tm.tm_mday);
	r->cmos[RTC_MONTH] = to_reg(r, tm.tm_mon + 1);
	r->cmos[RTC_YEAR] = to_reg(r, tm.tm_year % 100);
	r->cmos[RTC_CENTURY] = to_reg(r, (tm.tm_year + 1900) / 100);
}

/* The guest has set the clock registers: keep their time as an offset from the host's. */
static void clock_commit(struct rtc *r)
{
	struct tm tm = {
		.tm_sec = from_reg(r, r->cmos[RTC_SECONDS]),
		.tm_min = from_reg(r, r->cmos[RTC_MINUTES]),
		.tm_hour = hours_from_reg(r, r->cmos[RTC_HOURS]),
		.tm_mday = from_reg(r, r->cmos[RTC_DAY]),
		.tm_mon = from_reg(r, r->cmos[RTC_MONTH]) - 1,
		.tm_year = from_reg(r, r->cmos[RTC_CENTURY]) * 100 + from_reg(r, r->cmos[RTC_YEAR]) - 1900,
	};
	time_t set = timegm(&tm);
	if (set != (time_t)-1)
		r->offset = (int64_t)set - (int64_t)r->now();
}

static uint8_t clock_read(struct rtc *r, uint8_t i)
{
	if (!(r->cmos[RTC_REG_B] & REG_B_SET))
		clock_snapshot(r); /* the clock runs; while SET is on it holds what was written */
	return r->cmos[i];
}

/* While REG_B.SET is on, writes only stage the new time; clearing SET applies it (the
 * sequence Linux uses). A lone write with SET off applies at once. */
static void clock_write(struct rtc *r, uint8_t i, uint8_t v)
{
	bool frozen = r->cmos[RTC_REG_B] & REG_B_SET;
	if (!frozen)
		clock_snapshot(r);
	r->cmos[i] = v;
	if (!frozen)
		clock_commit(r);
}

static void reg_b_write(struct rtc *r, uint8_t v)
{
	uint8_t old = r->cmos[RTC_REG_B];
	if (!(old & REG_B_SET) && (v & REG_B_SET))
		clock_snapshot(r);
	r->cmos[RTC_REG_B] = v;
	if ((old & REG_B_SET) && !(v & REG_B_SET))
		clock_commit(r);
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;
	if (len != 1) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		if (is_write)
			r->index = data[0] & 0x7f; /* bit 7 masks NMIs */
		else
			data[0] = 0xff;
	} else if (is_write) {
		uint8_t i = r->index;
		if (is_clock_reg(i))
			clock_write(r, i, data[0]);
		else if (i == RTC_REG_B)
			reg_b_write(r, data[0]);
		else if (i == RTC_REG_A)
			r->cmos[i] = data[0] & 0x7f; /* UIP is read-only */
		else if (i != RTC_REG_C && i != RTC_REG_D)
			r->cmos[i] = data[0];
	} else {
		uint8_t i = r->index;
		data[0] = is_clock_reg(i) ? clock_read(r, i) : r->cmos[i];
		if (i == RTC_REG_C)
			r->cmos[i] = 0; /* reading C acknowledges the flags */
	}
	pthread_mutex_unlock(&r->lock);
}

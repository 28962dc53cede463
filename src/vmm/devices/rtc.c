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

#define REG_B_SET 0x80
#define REG_B_BINARY 0x04
#define REG_B_24H 0x02
#define REG_D_VRT 0x80

static time_t host_now(void) { return time(NULL); }

void rtc_init(struct rtc *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	r->now = host_now;
	r->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate, no update in progress */
	r->cmos[RTC_REG_B] = REG_B_24H;
	r->cmos[RTC_REG_D] = REG_D_VRT;
}

void rtc_destroy(struct rtc *r) { pthread_mutex_destroy(&r->lock); }

static bool is_clock_reg(uint8_t i)
{
	return i == RTC_SECONDS || i == RTC_MINUTES || i == RTC_HOURS || i == RTC_WEEKDAY ||
	       i == RTC_DAY || i == RTC_MONTH || i == RTC_YEAR || i == RTC_CENTURY;
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

static uint8_t clock_read(struct rtc *r, uint8_t i)
{
	time_t t = r->now() + r->offset;
	struct tm tm;
	gmtime_r(&t, &tm);
	switch (i) {
	case RTC_SECONDS: return to_reg(r, tm.tm_sec);
	case RTC_MINUTES: return to_reg(r, tm.tm_min);
	case RTC_HOURS: return to_reg(r, tm.tm_hour);
	case RTC_WEEKDAY: return to_reg(r, tm.tm_wday + 1);
	case RTC_DAY: return to_reg(r, tm.tm_mday);
	case RTC_MONTH: return to_reg(r, tm.tm_mon + 1);
	case RTC_YEAR: return to_reg(r, tm.tm_year % 100);
	default: return to_reg(r, (tm.tm_year + 1900) / 100);
	}
}

/* The guest sets the clock: keep the new time as an offset from the host's. */
static void clock_write(struct rtc *r, uint8_t i, uint8_t v)
{
	time_t t = r->now() + r->offset;
	struct tm tm;
	gmtime_r(&t, &tm);
	int n = from_reg(r, v);
	switch (i) {
	case RTC_SECONDS: tm.tm_sec = n; break;
	case RTC_MINUTES: tm.tm_min = n; break;
	case RTC_HOURS: tm.tm_hour = n; break;
	case RTC_DAY: tm.tm_mday = n; break;
	case RTC_MONTH: tm.tm_mon = n - 1; break;
	case RTC_YEAR: tm.tm_year = (tm.tm_year / 100) * 100 + n; break;
	case RTC_CENTURY: tm.tm_year = (n - 19) * 100 + tm.tm_year % 100; break;
	default: return; /* the weekday follows from the date */
	}
	time_t set = timegm(&tm);
	if (set != (time_t)-1)
		r->offset = (int64_t)set - (int64_t)r->now();
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

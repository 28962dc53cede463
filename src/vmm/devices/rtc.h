/* rtc: the MC146818 CMOS real-time clock at ports 0x70/0x71: the host's UTC date and time in
 * BCD or binary, 24- or 12-hour mode, and 128 bytes of CMOS RAM. The guest may set its own time
 * (REG_B.SET, write, clear SET): the difference from the host's clock is kept as an offset. No
 * alarm, periodic or update interrupts are raised. */
#ifndef SHOJI_VMM_DEVICES_RTC_H
#define SHOJI_VMM_DEVICES_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	int64_t offset;      /* guest time minus host time, seconds */
	time_t (*now)(void); /* the host clock; replaceable in tests */
};

void rtc_init(struct rtc *r);
void rtc_destroy(struct rtc *r);
/* Writes the RAM sizes firmware reads from CMOS (before any vCPU runs): base memory (0x15),
 * extended memory above 1 MiB in KiB (0x17, 0x30), above 16 MiB in 64 KiB units (0x34) and
 * above 4 GiB in 64 KiB units (0x5b), each capped at what its bytes hold. */
void rtc_set_memory(struct rtc *r, uint64_t below_4g, uint64_t above_4g);
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif

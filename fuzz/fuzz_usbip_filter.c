/* fuzz_usbip_filter: libFuzzer target: arbitrary bytes as what a hostile guest sends on its
 * USB/IP connection, fed to usbip_filter in pieces whose sizes the input's first bytes choose.
 * Nothing may crash or read out of bounds, and every message that passes keeps the rules the
 * kernel's usbip-host relies on: a known command, this device, a buffer within bounds, and the
 * message's length what its header says. */
#include <stdint.h>
#include <string.h>

#include "usb/usbip_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct usbip_filter f;
	static const uint8_t configs[] = {1};
	struct err e;
	if (size < 2 || usbip_filter_init(&f, 0x10002, configs, 1) < 0)
		return 0;
	size_t piece = 1 + data[0] % 64, at = 2;
	while (at < size) {
		size_t used, n = size - at < piece ? size - at : piece;
		enum usbip_feed r = usbip_filter_feed(&f, data + at, n, &used, &e);
		check(used <= n);
		at += used;
		if (r == USBIP_FEED_ERROR)
			break;
		if (r == USBIP_FEED_MSG) {
			const uint8_t *m = f.msg;
			check(f.have >= USBIP_HEADER_SIZE && f.have <= USBIP_FILTER_MAX_MSG);
			check(be32(m) == 1 || be32(m) == 2);
			check(be32(m + 8) == 0x10002 && be32(m + 12) <= 1 && be32(m + 16) <= 15);
			check(be32(m) == 2 || be32(m + 24) <= USBIP_FILTER_MAX_XFER);
			usbip_filter_next(&f);
		}
		piece = 1 + (piece * 7 + data[1]) % 97;
	}
	usbip_filter_free(&f);
	return 0;
}

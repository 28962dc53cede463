/* fuzz_usbip_export: libFuzzer target: arbitrary bytes as what a hostile guest sends on its
 * USB/IP connection, fed to the exporter (usbip_export, with usbip_filter framing it) in pieces
 * whose sizes the input's first two bytes choose, against a stand-in device that completes the
 * transfers in an order and with counts (some beyond their buffers, as a broken backend might
 * give) that the input chooses too. Nothing may crash or read out of bounds; every message the
 * filter passes keeps its rules; in-flight transfers stay within the exporter's bounds; and each
 * completion adds exactly one reply of the size its transfer calls for. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "usb/usbip_export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static struct usbip_urb *held[USBIP_EXPORT_MAX_URBS];
static unsigned nheld;
static uint32_t rnd;

static uint32_t next_rnd(void)
{
	rnd = rnd * 1103515245u + 12345u;
	return rnd >> 8;
}

static int f_submit(void *ctx, struct usbip_urb *u)
{
	(void)ctx;
	if (next_rnd() % 16 == 0)
		return -ENOENT; /* an endpoint the device lacks */
	check(nheld < USBIP_EXPORT_MAX_URBS);
	check(u->type != USBIP_XFER_ISO || (u->npackets && u->iso));
	held[nheld++] = u;
	return 0;
}

static void f_cancel(void *ctx, struct usbip_urb *u)
{
	(void)ctx;
	check(u->unlinking);
}

static int f_ok(void *ctx, uint8_t v)
{
	(void)ctx;
	return v == 1 ? 0 : -EPIPE;
}

static int f_iface(void *ctx, uint8_t i, uint8_t alt)
{
	(void)ctx;
	return i == 0 && alt < 2 ? 0 : -EINVAL;
}

static const struct usbip_backend ops = {f_submit, f_cancel, f_ok, f_iface, f_ok};

/* Completes one held transfer, chosen by the input's randomness, and checks its reply's size. */
static void complete_one(struct usbip_export *x)
{
	unsigned k = next_rnd() % nheld;
	struct usbip_urb *u = held[k];
	held[k] = held[--nheld];
	u->actual = next_rnd() % (u->len + 64);
	size_t data = 0;
	for (uint32_t i = 0; i < u->npackets; i++) {
		u->iso[i].actual = next_rnd() % (u->iso[i].length + 8);
		u->iso[i].status = next_rnd() % 4 ? 0 : -EXDEV;
		data += u->iso[i].actual < u->iso[i].length ? u->iso[i].actual : u->iso[i].length;
	}
	if (u->type != USBIP_XFER_ISO)
		data = u->actual < u->len ? u->actual : u->len;
	size_t want = USBIP_HEADER_SIZE + (u->unlinking ? 0 : (u->in ? data : 0) + 16u * u->npackets), before, after;
	usbip_export_output(x, &before);
	usbip_export_complete(x, u, next_rnd() % 3 ? 0 : -EPIPE);
	usbip_export_output(x, &after);
	check(after == before + want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct usbip_export x;
	static const uint8_t configs[] = {1};
	struct err e;
	if (size < 2 || usbip_export_init(&x, 0x10002, configs, 1, &ops, NULL) < 0)
		return 0;
	nheld = 0;
	rnd = data[1];
	size_t piece = 1 + data[0] % 64, at = 2;
	while (at < size) {
		size_t used, n = size - at < piece ? size - at : piece;
		int r = usbip_export_feed(&x, data + at, n, &used, &e);
		check(used <= n);
		check(x.nurbs <= USBIP_EXPORT_MAX_URBS && x.nurbs == nheld);
		at += used;
		if (r < 0)
			break;
		while (nheld && (used < n || next_rnd() % 2)) {
			complete_one(&x);
			used = n; /* room again: go on reading */
		}
		size_t out;
		usbip_export_output(&x, &out);
		usbip_export_consumed(&x, next_rnd() % 2 ? out : out / 2);
		piece = 1 + (piece * 7 + data[1]) % 97;
	}
	while (nheld)
		complete_one(&x);
	usbip_export_free(&x);
	return 0;
}

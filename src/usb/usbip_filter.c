/* usbip_filter: the checks of the guest's USB/IP messages (usbip_filter.h). Written here because
 * no library checks USB/IP: the kernel's usbip-host is the only parser of it on the host. */
#include "usbip_filter.h"

#include <stdlib.h>
#include <string.h>

#define CMD_SUBMIT 1u
#define CMD_UNLINK 2u
/* The URB flags vhci-hcd passes on: SHORT_NOT_OK, ISO_ASAP, NO_TRANSFER_DMA_MAP, ZERO_PACKET,
 * NO_INTERRUPT, FREE_BUFFER, DIR_IN; and the guest kernel's own DMA-mapping state (DMA_MAP_*,
 * SETUP_MAP_*, ALIGNED_TEMP_BUFFER), which it sends as they are and which mean nothing on the
 * host: those are cleared before the message goes on. */
#define URB_FLAGS_KNOWN     0x3ffu
#define URB_FLAGS_GUEST_DMA 0xff0000u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int usbip_filter_init(struct usbip_filter *f, uint32_t devid, const uint8_t *configs, unsigned n)
{
	*f = (struct usbip_filter){.devid = devid, .want = USBIP_HEADER_SIZE};
	for (unsigned i = 0; i < n && f->nconfigs < sizeof(f->configs); i++)
		f->configs[f->nconfigs++] = configs[i];
	f->msg = malloc(USBIP_FILTER_MAX_MSG);
	return f->msg ? 0 : -1;
}

void usbip_filter_free(struct usbip_filter *f)
{
	free(f->msg);
	f->msg = NULL;
}

/* A control transfer's setup packet against the message: its length, its direction, and the
 * configuration a SET_CONFIGURATION chooses. */
static int check_setup(const struct usbip_filter *f, const uint8_t *m, uint32_t len, struct err *e)
{
	const uint8_t *s = m + 40;
	unsigned type = s[0], request = s[1], value = s[2] | s[3] << 8, wlength = s[6] | s[7] << 8;
	bool in = be32(m + 12) == 1;
	if (wlength != len)
		return err_set(e, "a control transfer's setup says %u bytes and its buffer %u", wlength, len);
	/* the host kernel takes a transfer of no bytes as out, whatever its setup says */
	bool setup_in = wlength && (type & 0x80);
	if (setup_in != in)
		return err_set(e, "a control transfer's setup says %s and the message %s", setup_in ? "in" : "out",
			       in ? "in" : "out");
	if ((type & 0x7f) == 0x00 && request == 9 /* SET_CONFIGURATION, whatever its direction bit */ && value != 0) {
		bool known = false;
		for (unsigned i = 0; i < f->nconfigs; i++)
			known |= f->configs[i] == value;
		if (!known)
			return err_set(e, "the guest chose configuration %u, which was not judged", value);
	}
	return 0;
}

/* The header's rules; sets f->want to the whole message's length. */
static int check_header(struct usbip_filter *f, struct err *e)
{
	const uint8_t *m = f->msg;
	uint32_t cmd = be32(m), dir = be32(m + 12), ep = be32(m + 16);
	if (cmd != CMD_SUBMIT && cmd != CMD_UNLINK)
		return err_set(e, "command %u is not one a guest sends", cmd);
	if (be32(m + 8) != f->devid)
		return err_set(e, "a message for device %u, not %u", be32(m + 8), f->devid);
	if (dir > 1 || ep > 15)
		return err_set(e, "direction %u or endpoint %u is out of range", dir, ep);
	if (cmd == CMD_UNLINK)
		return 0;
	uint32_t flags = be32(m + 20), len = be32(m + 24), packets = be32(m + 32);
	if (flags & ~(URB_FLAGS_KNOWN | URB_FLAGS_GUEST_DMA))
		return err_set(e, "transfer flags %#x are not ones vhci-hcd sends", flags);
	f->msg[21] = 0; /* the guest's DMA-mapping bits, 0xff0000 */
	if (len > USBIP_FILTER_MAX_XFER)
		return err_set(e, "a transfer of %u bytes is over %u", len, USBIP_FILTER_MAX_XFER);
	if (packets > USBIP_FILTER_MAX_ISO && packets != 0xffffffffu)
		return err_set(e, "%u ISO packets are over %u", packets, USBIP_FILTER_MAX_ISO);
	if (packets == 0xffffffffu) /* -1: not ISO, as vhci-hcd says it */
		packets = 0;
	if (ep == 0 && check_setup(f, m, len, e) < 0)
		return -1;
	f->want = USBIP_HEADER_SIZE + (dir == 0 ? len : 0) + 16u * packets;
	return 0;
}

/* The ISO descriptors' ranges within the buffer. */
static int check_iso(const struct usbip_filter *f, struct err *e)
{
	const uint8_t *m = f->msg;
	uint32_t len = be32(m + 24), packets = be32(m + 32);
	if (be32(m) != CMD_SUBMIT || packets == 0xffffffffu)
		return 0;
	const uint8_t *d = m + USBIP_HEADER_SIZE + (be32(m + 12) == 0 ? len : 0);
	for (uint32_t i = 0; i < packets; i++, d += 16) {
		uint64_t off = be32(d), plen = be32(d + 4);
		if (off + plen > len)
			return err_set(e, "ISO packet %u lies outside the transfer's %u bytes", i, len);
	}
	return 0;
}

enum usbip_feed usbip_filter_feed(struct usbip_filter *f, const uint8_t *data, size_t n, size_t *used, struct err *e)
{
	*used = 0;
	if (f->failed)
		return err_set(e, "the connection already broke a rule"), USBIP_FEED_ERROR;
	while (*used < n) {
		size_t take = f->want - f->have < n - *used ? f->want - f->have : n - *used;
		memcpy(f->msg + f->have, data + *used, take);
		f->have += take;
		*used += take;
		if (f->have < f->want)
			return USBIP_FEED_MORE;
		if (f->have == USBIP_HEADER_SIZE && check_header(f, e) < 0) {
			f->failed = true;
			return USBIP_FEED_ERROR;
		}
		if (f->have == f->want) {
			if (check_iso(f, e) < 0) {
				f->failed = true;
				return USBIP_FEED_ERROR;
			}
			f->passed++;
			return USBIP_FEED_MSG;
		}
	}
	return USBIP_FEED_MORE;
}

void usbip_filter_next(struct usbip_filter *f)
{
	f->have = 0;
	f->want = USBIP_HEADER_SIZE;
}

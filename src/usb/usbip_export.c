/* usbip_export: the device side of USB/IP (usbip_export.h). */
#include "usbip_export.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CMD_SUBMIT 1u
#define CMD_UNLINK 2u
#define RET_SUBMIT 3u
#define RET_UNLINK 4u
#define NOT_ISO                                                                                                        \
	0xffffffffu /* number_of_packets as some USB/IP clients send it for a transfer that is not ISO (Linux's        \
		       vhci-hcd sends 0) */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

int usbip_export_init(struct usbip_export *x, uint32_t devid, const uint8_t *configs, unsigned n,
		      const struct usbip_backend *ops, void *ctx)
{
	*x = (struct usbip_export){.ops = ops, .ctx = ctx};
	return usbip_filter_init(&x->filter, devid, configs, n);
}

static void urb_free(struct usbip_urb *u)
{
	free(u->buf);
	free(u->iso);
	free(u);
}

static void free_list(struct usbip_urb **list)
{
	while (*list) {
		struct usbip_urb *u = *list;
		*list = u->next;
		urb_free(u);
	}
}

void usbip_export_free(struct usbip_export *x)
{
	free_list(&x->inflight);
	free_list(&x->waiting);
	x->waiting_tail = NULL;
	usbip_filter_free(&x->filter);
	free(x->out);
	x->out = NULL;
	x->out_start = x->out_len = x->out_cap = 0;
}

bool usbip_export_can_take(const struct usbip_export *x)
{
	return x->nwaiting < USBIP_EXPORT_MAX_WAITING && x->waiting_bytes < USBIP_EXPORT_MAX_BYTES &&
		x->out_len - x->out_start < USBIP_EXPORT_MAX_BYTES;
}

/* Room for n more bytes of replies; NULL when out of memory. */
static uint8_t *out_room(struct usbip_export *x, size_t n)
{
	if (x->out_start && x->out_len + n > x->out_cap) { /* what was written goes first */
		memmove(x->out, x->out + x->out_start, x->out_len - x->out_start);
		x->out_len -= x->out_start;
		x->out_start = 0;
	}
	if (x->out_len + n > x->out_cap) {
		size_t cap = x->out_cap ? x->out_cap : 64u << 10;
		while (cap < x->out_len + n)
			cap *= 2;
		uint8_t *p = realloc(x->out, cap);
		if (!p)
			return NULL;
		x->out = p;
		x->out_cap = cap;
	}
	uint8_t *at = x->out + x->out_len;
	x->out_len += n;
	return at;
}

/* A reply's 48-byte header: command, seqnum, then words[0..nwords) from byte 20; the rest 0. */
static uint8_t *reply(struct usbip_export *x, uint32_t cmd, uint32_t seqnum, const uint32_t *words, unsigned nwords,
		      size_t more)
{
	uint8_t *h = out_room(x, USBIP_HEADER_SIZE + more);
	if (!h)
		return NULL;
	memset(h, 0, USBIP_HEADER_SIZE);
	put32(h, cmd);
	put32(h + 4, seqnum);
	for (unsigned i = 0; i < nwords; i++)
		put32(h + 20 + 4 * i, words[i]);
	return h + USBIP_HEADER_SIZE;
}

static void ret_unlink(struct usbip_export *x, uint32_t seqnum, int status)
{
	uint32_t w[1] = {(uint32_t)status};
	reply(x, RET_UNLINK, seqnum, w, 1, 0); /* out of memory: the guest's own unlink times out */
}

/* The data a RET_SUBMIT carries: what was read, and for ISO each packet's actual bytes. */
static size_t data_back(const struct usbip_urb *u)
{
	if (!u->in)
		return 0;
	if (u->type != USBIP_XFER_ISO)
		return u->actual;
	size_t n = 0;
	for (uint32_t i = 0; i < u->npackets; i++)
		n += u->iso[i].actual;
	return n;
}

static void ret_submit(struct usbip_export *x, const struct usbip_urb *u, int status)
{
	bool iso = u->type == USBIP_XFER_ISO;
	size_t data = data_back(u);
	uint32_t errors = 0, actual = iso ? (uint32_t)data : u->actual;
	for (uint32_t i = 0; iso && i < u->npackets; i++)
		errors += u->iso[i].status != 0;
	if (iso && !u->in) { /* written: each packet's own count */
		actual = 0;
		for (uint32_t i = 0; i < u->npackets; i++)
			actual += u->iso[i].actual;
	}
	uint32_t w[5] = {(uint32_t)status, actual, (uint32_t)u->start_frame,
			 iso ? u->npackets : (uint32_t)u->packets_sent, errors};
	uint8_t *p = reply(x, RET_SUBMIT, u->seqnum, w, 5, data + (iso ? 16u * u->npackets : 0));
	if (!p)
		return; /* out of memory: the guest's URB waits until it unlinks it */
	for (uint32_t i = 0; iso && u->in && i < u->npackets; i++) {
		memcpy(p, u->buf + u->iso[i].offset, u->iso[i].actual);
		p += u->iso[i].actual;
	}
	if (!iso && data)
		memcpy(p, u->buf, data), p += data;
	for (uint32_t i = 0; iso && i < u->npackets; i++, p += 16) {
		put32(p, u->iso[i].offset);
		put32(p + 4, u->iso[i].length);
		put32(p + 8, u->iso[i].actual);
		put32(p + 12, (uint32_t)u->iso[i].status);
	}
}

static void start_waiting(struct usbip_export *x);

void usbip_export_complete(struct usbip_export *x, struct usbip_urb *u, int status)
{
	for (struct usbip_urb **p = &x->inflight; *p; p = &(*p)->next) {
		if (*p == u) {
			*p = u->next;
			x->nurbs--;
			x->bytes -= u->len;
			break;
		}
	}
	if (u->actual > u->len)
		u->actual = u->len; /* the backend's count, kept within the buffer all the same */
	for (uint32_t i = 0; i < u->npackets; i++)
		if (u->iso[i].actual > u->iso[i].length)
			u->iso[i].actual = u->iso[i].length;
	if (u->unlinking)
		ret_unlink(x, u->unlink_seqnum, status ? status : -ECONNRESET);
	else
		ret_submit(x, u, status);
	urb_free(u);
	start_waiting(x); /* room again */
}

/* The standard requests the host kernel must hear of, run by the backend's calls of their
 * names: 1 with *status when s is one, else 0. */
static int special(struct usbip_export *x, const uint8_t *s, int *status)
{
	unsigned value = s[2] | s[3] << 8, index = s[4] | s[5] << 8, type = s[0] & 0x7f; /* either direction */
	if (type == 0x00 && s[1] == 9)                                                   /* SET_CONFIGURATION */
		*status = x->ops->set_configuration(x->ctx, (uint8_t)value);
	else if (type == 0x01 && s[1] == 11) /* SET_INTERFACE */
		*status = x->ops->set_interface(x->ctx, (uint8_t)index, (uint8_t)value);
	else if (type == 0x02 && s[1] == 1 && value == 0) /* CLEAR_FEATURE(ENDPOINT_HALT) */
		*status = x->ops->clear_halt(x->ctx, (uint8_t)index);
	else
		return 0;
	return 1;
}

/* A CMD_SUBMIT (m: the whole message, as usbip_filter passed it) made a transfer. */
static struct usbip_urb *urb_of(const uint8_t *m)
{
	struct usbip_urb *u = calloc(1, sizeof(*u));
	uint32_t len = be32(m + 24), packets = be32(m + 32);
	if (!u)
		return NULL;
	*u = (struct usbip_urb){.seqnum = be32(m + 4),
				.in = be32(m + 12) == 1,
				.ep = (uint8_t)be32(m + 16),
				.flags = be32(m + 20),
				.len = len,
				.start_frame = (int32_t)be32(m + 28),
				.packets_sent = (int32_t)packets,
				.interval = (int32_t)be32(m + 36)};
	memcpy(u->setup, m + 40, 8);
	u->npackets = packets == NOT_ISO ? 0 : packets;
	u->type = u->ep == 0 ? USBIP_XFER_CONTROL : u->npackets ? USBIP_XFER_ISO : USBIP_XFER_BULK;
	u->buf = malloc(len ? len : 1);
	u->iso = u->npackets ? calloc(u->npackets, sizeof(*u->iso)) : NULL;
	if (!u->buf || (u->npackets && !u->iso)) {
		urb_free(u);
		return NULL;
	}
	const uint8_t *d = m + USBIP_HEADER_SIZE;
	if (!u->in) {
		memcpy(u->buf, d, len);
		d += len;
	}
	for (uint32_t i = 0; i < u->npackets; i++, d += 16) /* within the buffer: usbip_filter's rule */
		u->iso[i] = (struct usbip_iso_packet){.offset = be32(d), .length = be32(d + 4)};
	return u;
}

static bool room_in_flight(const struct usbip_export *x)
{
	return x->nurbs < USBIP_EXPORT_MAX_URBS && x->bytes < USBIP_EXPORT_MAX_BYTES;
}

/* Starts u: the exporter's own answer for what it answers itself, else the backend's transfer;
 * what cannot start is answered with its status at once. */
static void start(struct usbip_export *x, struct usbip_urb *u)
{
	int status;
	if (u->type == USBIP_XFER_CONTROL && u->npackets) {
		status = -EINVAL; /* ISO packets on the control endpoint */
	} else if (u->type == USBIP_XFER_CONTROL && special(x, u->setup, &status)) {
	} else if ((status = x->ops->submit(x->ctx, u)) == 0) {
		u->next = x->inflight;
		x->inflight = u;
		x->nurbs++;
		x->bytes += u->len;
		return;
	}
	ret_submit(x, u, status);
	urb_free(u);
}

/* The transfers that waited for room, in the order they came, while there is room. */
static void start_waiting(struct usbip_export *x)
{
	while (x->waiting && room_in_flight(x)) {
		struct usbip_urb *u = x->waiting;
		if (!(x->waiting = u->next))
			x->waiting_tail = NULL;
		x->nwaiting--;
		x->waiting_bytes -= u->len;
		u->next = NULL;
		start(x, u);
	}
}

static int take_submit(struct usbip_export *x, const uint8_t *m, struct err *e)
{
	struct usbip_urb *u = urb_of(m);
	if (!u)
		return err_set(e, "out of memory for a transfer");
	if (!x->waiting && room_in_flight(x)) {
		start(x, u);
		return 0;
	}
	if (x->waiting_tail) /* in order behind the others */
		x->waiting_tail->next = u;
	else
		x->waiting = u;
	x->waiting_tail = u;
	x->nwaiting++;
	x->waiting_bytes += u->len;
	return 0;
}

/* An unlink of a transfer still waiting: it goes unstarted, answered as cancelled. */
static bool unlink_waiting(struct usbip_export *x, uint32_t seqnum, uint32_t target)
{
	struct usbip_urb *prev = NULL;
	for (struct usbip_urb *u = x->waiting; u; prev = u, u = u->next) {
		if (u->seqnum != target)
			continue;
		if (prev)
			prev->next = u->next;
		else
			x->waiting = u->next;
		if (x->waiting_tail == u)
			x->waiting_tail = prev;
		x->nwaiting--;
		x->waiting_bytes -= u->len;
		urb_free(u);
		ret_unlink(x, seqnum, -ECONNRESET);
		return true;
	}
	return false;
}

static void take_unlink(struct usbip_export *x, const uint8_t *m)
{
	uint32_t seqnum = be32(m + 4), target = be32(m + 20);
	if (unlink_waiting(x, seqnum, target))
		return;
	for (struct usbip_urb *u = x->inflight; u; u = u->next) {
		if (u->seqnum == target && !u->unlinking) {
			u->unlinking = true;
			u->unlink_seqnum = seqnum;
			x->ops->cancel(x->ctx, u); /* its completion answers the unlink */
			return;
		}
	}
	ret_unlink(x, seqnum, 0); /* done already (or never sent): nothing to cancel */
}

int usbip_export_feed(struct usbip_export *x, const uint8_t *data, size_t n, size_t *used, struct err *e)
{
	*used = 0;
	while (*used < n && usbip_export_can_take(x)) {
		size_t took;
		enum usbip_feed r = usbip_filter_feed(&x->filter, data + *used, n - *used, &took, e);
		*used += took;
		if (r == USBIP_FEED_ERROR)
			return -1;
		if (r == USBIP_FEED_MORE)
			continue;
		const uint8_t *m = x->filter.msg;
		if (be32(m) == CMD_SUBMIT) {
			if (take_submit(x, m, e) < 0)
				return -1;
		} else {
			take_unlink(x, m);
		}
		usbip_filter_next(&x->filter);
	}
	return 0;
}

const uint8_t *usbip_export_output(const struct usbip_export *x, size_t *n)
{
	*n = x->out_len - x->out_start;
	return x->out ? x->out + x->out_start : NULL;
}

void usbip_export_consumed(struct usbip_export *x, size_t n)
{
	x->out_start += n < x->out_len - x->out_start ? n : x->out_len - x->out_start;
	if (x->out_start == x->out_len)
		x->out_start = x->out_len = 0;
}

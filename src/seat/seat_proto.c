/* seat_proto: checks monitor packets and builds seat packets (see seat_proto.h). */
#include "seat_proto.h"

#include <fcntl.h>
#include <string.h>

static const char *type_name(uint32_t t)
{
	switch (t) {
	case DISPLAY_MSG_HELLO: return "HELLO";
	case DISPLAY_MSG_SURFACE: return "SURFACE";
	case DISPLAY_MSG_DAMAGE: return "DAMAGE";
	case DISPLAY_MSG_DISABLE: return "DISABLE";
	case DISPLAY_MSG_CURSOR: return "CURSOR";
	case DISPLAY_MSG_CURSOR_MOVE: return "CURSOR_MOVE";
	default: return "unknown";
	}
}

static size_t body_size(uint32_t t)
{
	switch (t) {
	case DISPLAY_MSG_HELLO: return sizeof(struct display_hello);
	case DISPLAY_MSG_SURFACE: return sizeof(struct display_surface);
	case DISPLAY_MSG_DAMAGE: return sizeof(struct display_damage);
	case DISPLAY_MSG_DISABLE: return 0;
	case DISPLAY_MSG_CURSOR: return sizeof(struct display_cursor);
	case DISPLAY_MSG_CURSOR_MOVE: return sizeof(struct display_cursor_move);
	default: return (size_t)-1;
	}
}

/* The most a surface may span: twice the largest picture, for generous strides. A larger one
 * would only serve to make the seat map (address space for) a huge sparse file. */
#define SURFACE_MAX_BYTES (2ull * DISPLAY_MAX_WIDTH * DISPLAY_MAX_HEIGHT * 4)

static int check_surface(const struct display_surface *s, struct err *e)
{
	if (s->width == 0 || s->height == 0 || s->width > DISPLAY_MAX_WIDTH || s->height > DISPLAY_MAX_HEIGHT)
		return err_set(e, "surface %ux%u is outside 1x1..%ux%u", s->width, s->height, DISPLAY_MAX_WIDTH,
			       DISPLAY_MAX_HEIGHT);
	if (s->format != DISPLAY_FORMAT_XRGB8888)
		return err_set(e, "surface format 0x%08x is not XRGB8888", s->format);
	if (s->stride < s->width * 4u || s->stride % 4)
		return err_set(e, "surface stride %u does not hold %u pixels in whole words", s->stride, s->width);
	/* Every row inside [0, size): offset + stride * (height - 1) + width * 4 <= size, with no
	 * overflow (stride <= 2^32, height <= 8192, so the product fits in 45 bits). */
	uint64_t last = (uint64_t)s->stride * (s->height - 1) + (uint64_t)s->width * 4;
	if (s->offset > s->size || last > s->size - s->offset)
		return err_set(e, "surface rows run past its size (%llu bytes at offset %llu)",
			       (unsigned long long)s->size, (unsigned long long)s->offset);
	if (s->offset % 4)
		return err_set(e, "surface offset %llu is not word-aligned", (unsigned long long)s->offset);
	if (s->size > SURFACE_MAX_BYTES)
		return err_set(e, "surface size %llu is over the %llu bytes any display needs",
			       (unsigned long long)s->size, SURFACE_MAX_BYTES);
	return 0;
}

int seat_proto_parse(const uint8_t *buf, size_t len, bool has_fd, struct seat_msg *out, struct err *e)
{
	struct display_msg_header h;
	memset(out, 0, sizeof(*out));
	if (len < sizeof(h))
		return err_set(e, "a packet of %zu bytes is shorter than a header", len);
	if (len > DISPLAY_MSG_MAX)
		return err_set(e, "a packet of %zu bytes is over the %d-byte limit", len, DISPLAY_MSG_MAX);
	memcpy(&h, buf, sizeof(h));
	if (h.len != len - sizeof(h))
		return err_set(e, "a %s packet says %u body bytes but has %zu", type_name(h.type), h.len,
			       len - sizeof(h));
	size_t want = body_size(h.type);
	if (want == (size_t)-1)
		return err_set(e, "unknown packet type %u", h.type);
	const uint8_t *body = buf + sizeof(h);
	size_t extra = h.type == DISPLAY_MSG_CURSOR ? (size_t)DISPLAY_CURSOR_SIZE * DISPLAY_CURSOR_SIZE * 4 : 0;
	if (h.type == DISPLAY_MSG_CURSOR) {
		if (h.len != want && h.len != want + extra)
			return err_set(e, "a CURSOR packet of %u body bytes (want %zu or %zu)", h.len, want,
				       want + extra);
	} else if (h.len != want) {
		return err_set(e, "a %s packet of %u body bytes (want %zu)", type_name(h.type), h.len, want);
	}
	if (has_fd != (h.type == DISPLAY_MSG_SURFACE))
		return err_set(e, "a %s packet %s a descriptor", type_name(h.type), has_fd ? "carries" : "lacks");
	out->type = h.type;
	memcpy(&out->u, body, want);
	switch (h.type) {
	case DISPLAY_MSG_HELLO:
		if (out->u.hello.version != DISPLAY_PROTO_VERSION)
			return err_set(e, "display protocol version %u (the seat speaks %d)", out->u.hello.version,
				       DISPLAY_PROTO_VERSION);
		break;
	case DISPLAY_MSG_SURFACE: return check_surface(&out->u.surface, e);
	case DISPLAY_MSG_DAMAGE: break; /* clipped against the current surface when used */
	case DISPLAY_MSG_CURSOR:
		if (out->u.cursor.hot_x >= DISPLAY_CURSOR_SIZE || out->u.cursor.hot_y >= DISPLAY_CURSOR_SIZE)
			return err_set(e, "cursor hot spot %u,%u outside 64x64", out->u.cursor.hot_x,
				       out->u.cursor.hot_y);
		if (out->u.cursor.visible && h.len != want + extra)
			return err_set(e, "a visible cursor without its pixels");
		if (h.len == want + extra)
			out->cursor_pixels = body + want;
		break;
	default: break;
	}
	return 0;
}

int seat_proto_check_memfd(const struct display_surface *s, uint64_t file_size, int seals, struct err *e)
{
	if (s->size > file_size)
		return err_set(e, "surface size %llu is beyond its memfd (%llu bytes)", (unsigned long long)s->size,
			       (unsigned long long)file_size);
	if (!(seals & F_SEAL_SHRINK))
		return err_set(e, "the surface memfd is not sealed against shrinking");
	return check_surface(s, e);
}

bool seat_proto_clip(const struct display_damage *d, uint32_t width, uint32_t height, uint32_t out[4])
{
	if (d->x >= width || d->y >= height || d->width == 0 || d->height == 0)
		return false;
	out[0] = d->x;
	out[1] = d->y;
	out[2] = d->width > width - d->x ? width - d->x : d->width;
	out[3] = d->height > height - d->y ? height - d->y : d->height;
	return true;
}

void seat_rect_union(uint32_t acc[4], const uint32_t r[4])
{
	if (r[2] == 0 || r[3] == 0)
		return;
	if (acc[2] == 0 || acc[3] == 0) {
		memcpy(acc, r, 4 * sizeof(uint32_t));
		return;
	}
	uint64_t x0 = acc[0] < r[0] ? acc[0] : r[0], y0 = acc[1] < r[1] ? acc[1] : r[1];
	uint64_t x1 = (uint64_t)acc[0] + acc[2], y1 = (uint64_t)acc[1] + acc[3];
	uint64_t rx1 = (uint64_t)r[0] + r[2], ry1 = (uint64_t)r[1] + r[3];
	x1 = x1 > rx1 ? x1 : rx1;
	y1 = y1 > ry1 ? y1 : ry1;
	acc[0] = (uint32_t)x0;
	acc[1] = (uint32_t)y0;
	acc[2] = (uint32_t)(x1 - x0);
	acc[3] = (uint32_t)(y1 - y0);
}

static size_t put(uint8_t *buf, uint32_t type, const void *body, size_t len)
{
	struct display_msg_header h = {.type = type, .len = (uint32_t)len};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	return sizeof(h) + len;
}

size_t seat_proto_ack(uint8_t *buf, uint32_t seq)
{
	struct display_ack a = {.seq = seq};
	return put(buf, DISPLAY_MSG_ACK, &a, sizeof(a));
}

size_t seat_proto_size(uint8_t *buf, uint32_t width, uint32_t height)
{
	struct display_size s = {.width = width, .height = height};
	return put(buf, DISPLAY_MSG_PREFERRED_SIZE, &s, sizeof(s));
}

size_t seat_proto_input(uint8_t *buf, uint32_t device, const struct display_input_event *ev, uint32_t count)
{
	struct display_input in = {.device = device, .count = count};
	size_t n = put(buf, DISPLAY_MSG_INPUT, &in, sizeof(in));
	memcpy(buf + n, ev, count * sizeof(*ev));
	n += count * sizeof(*ev);
	struct display_msg_header h = {.type = DISPLAY_MSG_INPUT, .len = (uint32_t)(n - sizeof(h))};
	memcpy(buf, &h, sizeof(h));
	return n;
}

/* seat_proto: the seat's side of the display channel (src/common/display_proto.h): checking
 * every packet a monitor sends before anything else looks at it, checking a surface against the
 * memfd that carries it, and building the packets the seat sends. Pure: no I/O, so a hostile
 * monitor's bytes can be unit-tested and fuzzed here. */
#ifndef SHOJI_SEAT_PROTO_H
#define SHOJI_SEAT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/display_proto.h"
#include "../common/err.h"

/* One checked monitor -> seat packet. */
struct seat_msg {
	uint32_t type;
	union {
		struct display_hello hello;
		struct display_surface surface;
		struct display_damage damage;
		struct display_cursor cursor;
		struct display_cursor_move move;
	} u;
	const uint8_t *cursor_pixels; /* CURSOR: 64*64*4 bytes inside the packet, or NULL */
};

/* Checks one packet of len bytes. has_fd: a descriptor came with it (only SURFACE may carry
 * one, and SURFACE must). Sizes, dimensions and formats are checked here; a SURFACE's fit in
 * its memfd is checked by seat_proto_check_memfd. Unknown types are errors. */
int seat_proto_parse(const uint8_t *buf, size_t len, bool has_fd, struct seat_msg *out, struct err *e);

/* A surface against its memfd: size no larger than the file (file_size, from fstat), the
 * shrink seal present (seals, from F_GET_SEALS), and every pixel row inside [0, size). */
int seat_proto_check_memfd(const struct display_surface *s, uint64_t file_size, int seals, struct err *e);

/* A damage rectangle clipped to the surface; false when nothing is left. */
bool seat_proto_clip(const struct display_damage *d, uint32_t width, uint32_t height, uint32_t out[4]);

/* Grows the rectangle acc ({x, y, w, h}; w == 0: empty) to cover r. */
void seat_rect_union(uint32_t acc[4], const uint32_t r[4]);

/* Packets the seat sends; each returns the packet's length (buf holds at least
 * DISPLAY_MSG_MAX bytes). */
size_t seat_proto_ack(uint8_t *buf, uint32_t seq);
size_t seat_proto_size(uint8_t *buf, uint32_t width, uint32_t height);
/* count events (1..DISPLAY_INPUT_MAX) for device. */
size_t seat_proto_input(uint8_t *buf, uint32_t device, const struct display_input_event *ev, uint32_t count);

#endif

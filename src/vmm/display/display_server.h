/* display_server: the monitor's end of the display channel (src/common/display_proto.h). It
 * owns the listening SOCK_SEQPACKET socket (made before the jail, outliving guest reboots), the
 * one seat connection (a new connection replaces the old one), the surface memfd shared with
 * that seat, and damage flow control: at most DISPLAY_DAMAGE_WINDOW (one) DAMAGE message waits
 * for the seat's ACK, which the seat sends once it has copied the damage out, so the surface is
 * never written while the seat may read it (no torn frames); damage meanwhile is merged into one
 * pending rectangle, sent on the ACK. Pixels are copied into the surface only when a DAMAGE
 * message is about to go, through the owner's `fill` callback, so a flood of flushes costs one
 * copy per acknowledged frame and nothing at all while no seat is connected (the memfd exists only while one is).
 * Nothing here ever blocks: sends use MSG_DONTWAIT and a seat that lets its socket fill up is dropped. Used from one
 * thread at a time (the GPU device's I/O thread while a VM exists). */
#ifndef SHOJI_VMM_DISPLAY_DISPLAY_SERVER_H
#define SHOJI_VMM_DISPLAY_DISPLAY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/display_proto.h"
#include "../../common/err.h"

#define DISPLAY_DEFAULT_WIDTH  1024
#define DISPLAY_DEFAULT_HEIGHT 768

#define DISPLAY_LATENCY_SAMPLES 1024

struct display_rect {
	uint32_t x, y, w, h;
};

/* What the seat asks of the monitor, and what the server asks of the device. */
struct display_handler {
	/* A seat connected (after HELLO): send it the current surface and cursor. */
	void (*connected)(void *opaque);
	/* One INPUT message's events, checked for size and device. */
	void (*input)(void *opaque, uint32_t device, const struct display_input_event *ev, unsigned n);
	void (*preferred_size)(void *opaque, uint32_t width, uint32_t height);
	/* Copy rectangle r of the scanout into the surface at pixels (rows `stride` apart). */
	void (*fill)(void *opaque, struct display_rect r, uint8_t *pixels, uint32_t stride);
};

struct display_server {
	const char *path;
	int listen_fd, client_fd;
	uint32_t width, height; /* the preferred mode from --display */
	/* The surface shared with the connected seat. */
	int memfd;
	uint8_t *map;
	uint64_t map_size;
	uint32_t surf_w, surf_h, surf_stride;
	bool surface_on;
	/* Damage flow control. */
	uint32_t seq_sent, seq_acked;
	bool pending;
	bool prefilled; /* the pending damage is a new surface, filled before it was sent */
	struct display_rect damage;
	/* Statistics: DAMAGE messages, flushes merged into a pending one, and the time from the
	 * flush that made damage pending to its DAMAGE message (the last DISPLAY_LATENCY_SAMPLES). */
	uint64_t damage_sent, damage_merged;
	uint64_t pending_since_ns;
	uint32_t latency_us[DISPLAY_LATENCY_SAMPLES];
	unsigned nlatency;
	const struct display_handler *handler;
	void *opaque;
};

/* Parses `socket:PATH[,size=WxH]` (the --display option's value) into path, width, height; the
 * string is cut in place. */
int display_parse_option(char *arg, const char **path, uint32_t *width, uint32_t *height, struct err *e);

/* Listens on path (mode 0600; a stale socket there is replaced). */
int display_server_open(struct display_server *ds, const char *path, uint32_t width, uint32_t height, struct err *e);
void display_server_close(struct display_server *ds);
/* The device serving the channel now (NULL when none: input is then dropped). */
void display_server_set_handler(struct display_server *ds, const struct display_handler *h, void *opaque);

/* The listening socket is readable: accepts the seat, replacing any other, and greets it. */
void display_server_accept(struct display_server *ds);
/* The seat's socket is readable: serves its messages; drops a seat that hung up or sent
 * something malformed. */
void display_server_receive(struct display_server *ds);
bool display_server_connected(const struct display_server *ds);

/* The scanout is now w x h (a fresh surface, all damaged), or off (w == 0). */
void display_server_surface(struct display_server *ds, uint32_t w, uint32_t h);
/* The guest flushed r (surface coordinates). */
void display_server_damage(struct display_server *ds, struct display_rect r);
void display_server_cursor(struct display_server *ds, const struct display_cursor *c, const uint8_t *pixels);
void display_server_cursor_move(struct display_server *ds, int32_t x, int32_t y);

/* One line of statistics (damage messages, merged flushes, median flush-to-damage time). */
void display_server_stats(const struct display_server *ds, char *buf, size_t len);

#endif

/* display_server: the display channel's monitor side (see display_server.h). */
#include "display_server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdpass.h"
#include "../../common/log.h"
#include "../../common/unix_socket.h"

#define MIN_SIDE       64u
#define RECEIVE_BUDGET 256 /* messages served per readiness, so one seat cannot hold the thread */

int display_parse_option(char *arg, const char **path, uint32_t *width, uint32_t *height, struct err *e)
{
	*width = DISPLAY_DEFAULT_WIDTH, *height = DISPLAY_DEFAULT_HEIGHT;
	if (strncmp(arg, "socket:", 7) || !arg[7])
		return err_set(e, "--display takes socket:PATH[,size=WxH], not '%s'", arg);
	char *size = strstr(arg + 7, ",size=");
	if (size) {
		*size = '\0';
		char *x, *end;
		unsigned long w = strtoul(size + 6, &x, 10), h = 0;
		if (x != size + 6 && *x == 'x')
			h = strtoul(x + 1, &end, 10);
		if (x == size + 6 || *x != 'x' || end == x + 1 || *end || w < MIN_SIDE || h < MIN_SIDE ||
		    w > DISPLAY_MAX_WIDTH || h > DISPLAY_MAX_HEIGHT)
			return err_set(e, "--display size= takes WIDTHxHEIGHT from %ux%u to %ux%u, not '%s'", MIN_SIDE,
				       MIN_SIDE, DISPLAY_MAX_WIDTH, DISPLAY_MAX_HEIGHT, size + 6);
		*width = (uint32_t)w, *height = (uint32_t)h;
	}
	*path = arg + 7;
	return 0;
}

int display_server_open(struct display_server *ds, const char *path, uint32_t width, uint32_t height, struct err *e)
{
	memset(ds, 0, sizeof(*ds));
	ds->listen_fd = ds->client_fd = ds->memfd = -1;
	ds->path = path;
	ds->width = width, ds->height = height;
	return unix_socket_listen_type(path, "display socket", SOCK_SEQPACKET, 1, &ds->listen_fd, e);
}

static void surface_unmap(struct display_server *ds)
{
	if (ds->map)
		munmap(ds->map, ds->map_size);
	if (ds->memfd >= 0)
		close(ds->memfd);
	ds->map = NULL;
	ds->map_size = 0;
	ds->memfd = -1;
}

static void disconnect(struct display_server *ds)
{
	if (ds->client_fd < 0)
		return;
	close(ds->client_fd); /* also leaves the I/O thread's epoll */
	ds->client_fd = -1;
	surface_unmap(ds); /* the next seat gets its own memfd: no old one sees its frames */
}

void display_server_close(struct display_server *ds)
{
	disconnect(ds);
	if (ds->listen_fd >= 0) {
		close(ds->listen_fd);
		unlink(ds->path);
	}
	ds->listen_fd = -1;
}

void display_server_set_handler(struct display_server *ds, const struct display_handler *h, void *opaque)
{
	ds->handler = h;
	ds->opaque = opaque;
}

bool display_server_connected(const struct display_server *ds)
{
	return ds->client_fd >= 0;
}

/* Sends one message (header, body, optional descriptor). A seat whose socket is full is dropped
 * unless `droppable`, in which case the message is. Returns whether it went. */
static bool send_msg(struct display_server *ds, uint32_t type, const void *body, uint32_t len, const void *extra,
		     uint32_t extra_len, int fd, bool droppable)
{
	if (ds->client_fd < 0)
		return false;
	struct display_msg_header h = {.type = type, .len = len + extra_len};
	struct iovec iov[3] = {{&h, sizeof(h)}, {(void *)body, len}, {(void *)extra, extra_len}};
	ssize_t n = fdpass_sendv(ds->client_fd, iov, 3, &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT);
	if (n >= 0)
		return true;
	if (droppable && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	log_warn("display: dropping the seat: %s", errno == EAGAIN ? "it stopped reading" : strerror(errno));
	disconnect(ds);
	return false;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void display_server_stats(const struct display_server *ds, char *buf, size_t len)
{
	uint32_t sorted[DISPLAY_LATENCY_SAMPLES];
	unsigned n = ds->nlatency < DISPLAY_LATENCY_SAMPLES ? ds->nlatency : DISPLAY_LATENCY_SAMPLES;
	memcpy(sorted, ds->latency_us, n * sizeof(sorted[0]));
	qsort(sorted, n, sizeof(sorted[0]), cmp_u32);
	snprintf(buf, len,
		 "display: damage messages %" PRIu64 ", flushes merged %" PRIu64
		 ", flush to damage median %u us, worst %u us (last %u)",
		 ds->damage_sent, ds->damage_merged, n ? sorted[n / 2] : 0, n ? sorted[n - 1] : 0, n);
}

/* Sends the pending damage if the window allows: fills the surface first. */
static void pump(struct display_server *ds)
{
	if (!ds->pending || ds->client_fd < 0 || !ds->map || ds->seq_sent - ds->seq_acked >= DISPLAY_DAMAGE_WINDOW)
		return;
	struct display_rect r = ds->damage;
	if (ds->handler && !ds->prefilled)
		ds->handler->fill(ds->opaque, r, ds->map + (uint64_t)r.y * ds->surf_stride + (uint64_t)r.x * 4,
				  ds->surf_stride);
	struct display_damage d = {.seq = ds->seq_sent + 1, .x = r.x, .y = r.y, .width = r.w, .height = r.h};
	if (!send_msg(ds, DISPLAY_MSG_DAMAGE, &d, sizeof(d), NULL, 0, -1, true))
		return; /* full: kept pending, tried again on the next ACK or flush */
	ds->seq_sent++;
	ds->pending = ds->prefilled = false;
	ds->damage_sent++;
	uint64_t us = (now_ns() - ds->pending_since_ns) / 1000;
	ds->latency_us[ds->nlatency++ % DISPLAY_LATENCY_SAMPLES] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

void display_server_damage(struct display_server *ds, struct display_rect r)
{
	if (!ds->surface_on || r.w == 0 || r.h == 0)
		return;
	if ((uint64_t)r.x + r.w > ds->surf_w || (uint64_t)r.y + r.h > ds->surf_h)
		return;
	ds->prefilled = false; /* the guest drew since */
	if (ds->pending) {     /* merge: the bounding box of both */
		struct display_rect *d = &ds->damage;
		uint32_t x1 = d->x + d->w > r.x + r.w ? d->x + d->w : r.x + r.w;
		uint32_t y1 = d->y + d->h > r.y + r.h ? d->y + d->h : r.y + r.h;
		d->x = d->x < r.x ? d->x : r.x;
		d->y = d->y < r.y ? d->y : r.y;
		d->w = x1 - d->x, d->h = y1 - d->y;
		ds->damage_merged++;
	} else {
		ds->damage = r;
		ds->pending = true;
		ds->pending_since_ns = now_ns();
	}
	pump(ds);
}

/* Gives the seat a fresh memfd for the current surface and damages all of it. */
static void send_surface(struct display_server *ds)
{
	surface_unmap(ds);
	uint64_t size = (uint64_t)ds->surf_stride * ds->surf_h;
	int fd = memfd_create("shoji-display", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		log_warn("display: cannot make a %" PRIu64 "-byte surface: %s", size, strerror(errno));
		if (fd >= 0)
			close(fd);
		disconnect(ds);
		return;
	}
	void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		log_warn("display: cannot map the surface: %s", strerror(errno));
		close(fd);
		disconnect(ds);
		return;
	}
	ds->memfd = fd, ds->map = map, ds->map_size = size;
	/* Filled before the seat has it, so that it is whole even while a DAMAGE of the old
	 * surface waits for its ACK (as a hidden VM's does until it is shown). */
	if (ds->handler)
		ds->handler->fill(ds->opaque, (struct display_rect){0, 0, ds->surf_w, ds->surf_h}, map,
				  ds->surf_stride);
	struct display_surface s = {.width = ds->surf_w,
				    .height = ds->surf_h,
				    .stride = ds->surf_stride,
				    .format = DISPLAY_FORMAT_XRGB8888,
				    .offset = 0,
				    .size = size};
	if (!send_msg(ds, DISPLAY_MSG_SURFACE, &s, sizeof(s), NULL, 0, fd, false))
		return;
	ds->damage = (struct display_rect){0, 0, ds->surf_w, ds->surf_h};
	ds->pending = ds->prefilled = true;
	ds->pending_since_ns = now_ns();
	pump(ds);
}

void display_server_surface(struct display_server *ds, uint32_t w, uint32_t h)
{
	if (ds->map && w == ds->surf_w && h == ds->surf_h) { /* same size (a page flip): same memfd */
		display_server_damage(ds, (struct display_rect){0, 0, w, h});
		return;
	}
	ds->pending = false;
	ds->surface_on = w && h;
	ds->surf_w = w, ds->surf_h = h, ds->surf_stride = w * 4;
	if (ds->client_fd < 0)
		return;
	if (ds->surface_on) {
		send_surface(ds);
		return;
	}
	surface_unmap(ds);
	send_msg(ds, DISPLAY_MSG_DISABLE, NULL, 0, NULL, 0, -1, false);
}

void display_server_cursor(struct display_server *ds, const struct display_cursor *c, const uint8_t *pixels)
{
	send_msg(ds, DISPLAY_MSG_CURSOR, c, sizeof(*c), c->visible ? pixels : NULL,
		 c->visible ? DISPLAY_CURSOR_SIZE * DISPLAY_CURSOR_SIZE * 4 : 0, -1, false);
}

void display_server_cursor_move(struct display_server *ds, int32_t x, int32_t y)
{
	struct display_cursor_move m = {.x = x, .y = y};
	send_msg(ds, DISPLAY_MSG_CURSOR_MOVE, &m, sizeof(m), NULL, 0, -1, true);
}

void display_server_accept(struct display_server *ds)
{
	int fd = accept4(ds->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	disconnect(ds); /* a restarted seat takes over */
	ds->client_fd = fd;
	ds->seq_sent = ds->seq_acked = 0;
	ds->pending = false;
	struct display_hello hello = {.version = DISPLAY_PROTO_VERSION, .width = ds->width, .height = ds->height};
	if (!send_msg(ds, DISPLAY_MSG_HELLO, &hello, sizeof(hello), NULL, 0, -1, false))
		return;
	log_info("display: a seat connected");
	if (ds->handler)
		ds->handler->connected(ds->opaque);
}

/* Serves one message from the seat; false when it is malformed. */
static bool serve(struct display_server *ds, const uint8_t *buf, size_t n)
{
	struct display_msg_header h;
	if (n < sizeof(h))
		return false;
	memcpy(&h, buf, sizeof(h));
	const uint8_t *body = buf + sizeof(h);
	if (h.len != n - sizeof(h))
		return false;
	switch (h.type) {
	case DISPLAY_MSG_ACK: {
		struct display_ack a;
		if (h.len != sizeof(a))
			return false;
		memcpy(&a, body, sizeof(a));
		/* Only what was sent can be acknowledged, and never backwards. */
		if (a.seq - ds->seq_acked <= ds->seq_sent - ds->seq_acked)
			ds->seq_acked = a.seq;
		pump(ds);
		return true;
	}
	case DISPLAY_MSG_INPUT: {
		struct display_input in;
		if (h.len < sizeof(in))
			return false;
		memcpy(&in, body, sizeof(in));
		if (in.device > DISPLAY_INPUT_MOUSE || in.count == 0 || in.count > DISPLAY_INPUT_MAX ||
		    h.len != sizeof(in) + in.count * sizeof(struct display_input_event))
			return false;
		struct display_input_event ev[DISPLAY_INPUT_MAX];
		memcpy(ev, body + sizeof(in), in.count * sizeof(ev[0]));
		if (ds->handler)
			ds->handler->input(ds->opaque, in.device, ev, in.count);
		return true;
	}
	case DISPLAY_MSG_PREFERRED_SIZE: {
		struct display_size s;
		if (h.len != sizeof(s))
			return false;
		memcpy(&s, body, sizeof(s));
		if (s.width == 0 || s.height == 0 || s.width > DISPLAY_MAX_WIDTH || s.height > DISPLAY_MAX_HEIGHT)
			return false;
		if (ds->handler)
			ds->handler->preferred_size(ds->opaque, s.width, s.height);
		return true;
	}
	default: return false;
	}
}

void display_server_receive(struct display_server *ds)
{
	static _Thread_local uint8_t buf[DISPLAY_MSG_MAX + 1];
	for (int i = 0; i < RECEIVE_BUDGET && ds->client_fd >= 0; i++) {
		ssize_t n = recv(ds->client_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			log_info("display: the seat went away");
			disconnect(ds);
			return;
		}
		if ((size_t)n > DISPLAY_MSG_MAX || !serve(ds, buf, (size_t)n)) {
			log_warn("display: dropping the seat: it sent a malformed message");
			disconnect(ds);
			return;
		}
	}
}

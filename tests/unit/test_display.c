/* test_display: the display channel's monitor side (display/display_server.c) against a seat on
 * a real SOCK_SEQPACKET socket: HELLO, the socket's mode, SURFACE with a sealed memfd, damage
 * flow control (window, merging, ACKs out of range), no copies without a seat, a new seat
 * replacing the old, input and preferred-size dispatch, malformed messages dropping the seat,
 * and the --display option; then the virtio-input devices: configuration space and event
 * delivery with bounded buffering. */
#include "unit.h"

#include <fcntl.h>
#include <linux/input-event-codes.h>
#include <linux/virtio_input.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "virtio_fixture.h"
#include "vmm/devices/virtio_input.h"
#include "vmm/display/display_server.h"

struct dfx {
	char dir[96], path[128];
	struct display_server ds;
	int seat;
	unsigned connected, fills, inputs, sizes;
	struct display_rect last_fill;
	uint32_t input_device, input_count, size_w, size_h;
	struct display_input_event ev[DISPLAY_INPUT_MAX];
};

static void h_connected(void *o)
{
	((struct dfx *)o)->connected++;
}
static void h_input(void *o, uint32_t device, const struct display_input_event *ev, unsigned n)
{
	struct dfx *f = o;
	f->inputs++;
	f->input_device = device;
	f->input_count = n;
	memcpy(f->ev, ev, n * sizeof(*ev));
}
static void h_size(void *o, uint32_t w, uint32_t h)
{
	struct dfx *f = o;
	f->sizes++;
	f->size_w = w, f->size_h = h;
}
static void h_fill(void *o, struct display_rect r, uint8_t *pixels, uint32_t stride)
{
	struct dfx *f = o;
	f->fills++;
	f->last_fill = r;
	for (uint32_t y = 0; y < r.h; y++)
		memset(pixels + (size_t)y * stride, 0xab, r.w * 4);
}

static const struct display_handler handler = {h_connected, h_input, h_size, h_fill};

static int connect_seat(struct dfx *f)
{
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, f->path);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -1;
	display_server_accept(&f->ds);
	return s;
}

static int setup(void **state)
{
	struct dfx *f = calloc(1, sizeof(*f));
	struct err e;
	if (!f)
		return -1;
	unit_tmp_path(f->dir, sizeof(f->dir), "shoji-display-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/display.sock", f->dir);
	if (display_server_open(&f->ds, f->path, 640, 480, &e) < 0)
		return -1;
	display_server_set_handler(&f->ds, &handler, f);
	f->seat = connect_seat(f);
	*state = f;
	return f->seat < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct dfx *f = *state;
	close(f->seat);
	display_server_close(&f->ds);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Receives one message: its type (-1: nothing waiting, 0: the connection ended), body into
 * body, a descriptor into *fd. */
static int recv_msg(int s, void *body, size_t cap, int *fd)
{
	uint8_t buf[DISPLAY_MSG_MAX];
	union {
		char c[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c, .msg_controllen = sizeof(u.c)};
	ssize_t n = recvmsg(s, &m, MSG_DONTWAIT);
	if (n < 0)
		return -1;
	if (n == 0)
		return 0;
	struct display_msg_header h;
	memcpy(&h, buf, sizeof(h));
	assert_int_equal(h.len, (size_t)n - sizeof(h));
	memcpy(body, buf + sizeof(h), h.len < cap ? h.len : cap);
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (fd && c && c->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return (int)h.type;
}

static void seat_send(int s, uint32_t type, const void *body, uint32_t len)
{
	uint8_t buf[DISPLAY_MSG_MAX];
	struct display_msg_header h = {type, len};
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	assert_int_equal(send(s, buf, sizeof(h) + len, 0), (ssize_t)(sizeof(h) + len));
}

static void ack(struct dfx *f, uint32_t seq)
{
	struct display_ack a = {seq};
	seat_send(f->seat, DISPLAY_MSG_ACK, &a, sizeof(a));
	display_server_receive(&f->ds);
}

static void hello_and_socket_mode(void **state)
{
	struct dfx *f = *state;
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	struct display_hello h;
	assert_int_equal(recv_msg(f->seat, &h, sizeof(h), NULL), DISPLAY_MSG_HELLO);
	assert_int_equal(h.version, DISPLAY_PROTO_VERSION);
	assert_int_equal(h.width, 640);
	assert_int_equal(h.height, 480);
	assert_int_equal(f->connected, 1);
	assert_true(display_server_connected(&f->ds));
}

/* The monitor's scanout becomes w x h: the SURFACE message the seat gets, and its memfd. */
static int new_surface(struct dfx *f, uint32_t w, uint32_t h, struct display_surface *s)
{
	int fd = -1;
	display_server_surface(&f->ds, w, h);
	assert_int_equal(recv_msg(f->seat, s, sizeof(*s), &fd), DISPLAY_MSG_SURFACE);
	assert_true(fd >= 0);
	return fd;
}

static void surface_and_damage_window(void **state)
{
	struct dfx *f = *state;
	struct display_damage d;
	struct display_surface s;
	recv_msg(f->seat, &d, sizeof(d), NULL); /* HELLO */
	int fd = new_surface(f, 8, 4, &s);
	assert_int_equal(s.width, 8);
	assert_int_equal(s.height, 4);
	assert_int_equal(s.stride, 32);
	assert_int_equal(s.format, DISPLAY_FORMAT_XRGB8888);
	assert_int_equal(s.size, 128);
	int seals = fcntl(fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_int_equal(ftruncate(fd, 4), -1); /* the seat cannot shrink it under the monitor */
	uint8_t *px = mmap(NULL, 128, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(px != MAP_FAILED);
	/* The whole new surface is damaged, filled first. */
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(d.seq, 1);
	assert_int_equal(d.width, 8);
	assert_int_equal(d.height, 4);
	assert_int_equal(px[127], 0xab);
	/* A flood while seq 1 is unacknowledged: nothing is written into the surface the seat may
	 * be reading; everything merges into one pending box. */
	for (uint32_t i = 0; i < 20; i++)
		display_server_damage(&f->ds, (struct display_rect){i % 8, i % 4, 1, 1});
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), -1);
	assert_int_equal(f->fills, 1);
	assert_int_equal(f->ds.damage_merged, 19);
	ack(f, 100); /* never sent: ignored */
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), -1);
	assert_int_equal(f->fills, 1);
	ack(f, 1);
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(d.seq, 2);
	assert_int_equal(d.x, 0); /* the box of everything flushed meanwhile */
	assert_int_equal(d.y, 0);
	assert_int_equal(d.width, 8);
	assert_int_equal(d.height, 4);
	assert_int_equal(f->fills, 2);
	ack(f, 0); /* backwards: ignored */
	assert_int_equal(f->ds.seq_acked, 1);
	/* Damage outside the surface is ignored. */
	ack(f, 2);
	display_server_damage(&f->ds, (struct display_rect){7, 3, 2, 1});
	display_server_damage(&f->ds, (struct display_rect){UINT32_MAX, 0, 2, 1});
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), -1);
	/* The same size again (a page flip): no new memfd, all damaged. */
	display_server_surface(&f->ds, 8, 4);
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	display_server_surface(&f->ds, 0, 0);
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DISABLE);
	munmap(px, 128);
	close(fd);
}

/* A hidden VM's seat holds its DAMAGE unacknowledged; a mode change meanwhile still hands the
 * seat a whole surface (filled before it is sent), and the ACK then sends its damage without
 * copying it again. */
static void new_surface_while_unacknowledged(void **state)
{
	struct dfx *f = *state;
	struct display_damage d;
	struct display_surface s;
	recv_msg(f->seat, &d, sizeof(d), NULL); /* HELLO */
	close(new_surface(f, 8, 4, &s));
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(f->fills, 1);
	int fd = new_surface(f, 4, 2, &s); /* seq 1 still unacknowledged */
	assert_int_equal(f->fills, 2);
	uint8_t *px = mmap(NULL, 32, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(px != MAP_FAILED);
	assert_int_equal(px[0], 0xab);
	assert_int_equal(px[31], 0xab);
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), -1); /* its DAMAGE waits */
	ack(f, 1);
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(d.seq, 2);
	assert_int_equal(d.width, 4);
	assert_int_equal(f->fills, 2); /* filled once */
	/* The guest drawing before the ACK makes the damage a fresh copy again. */
	ack(f, 2);
	close(new_surface(f, 8, 8, &s));
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(f->fills, 3);
	close(new_surface(f, 2, 2, &s));
	display_server_damage(&f->ds, (struct display_rect){0, 0, 1, 1});
	assert_int_equal(f->fills, 4);
	ack(f, 3);
	assert_int_equal(recv_msg(f->seat, &d, sizeof(d), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(f->fills, 5);
	munmap(px, 32);
	close(fd);
}

static void no_seat_no_copies(void **state)
{
	struct dfx *f = *state;
	close(f->seat);
	display_server_receive(&f->ds); /* sees the hang-up */
	assert_false(display_server_connected(&f->ds));
	display_server_surface(&f->ds, 64, 64);
	for (int i = 0; i < 100; i++)
		display_server_damage(&f->ds, (struct display_rect){0, 0, 64, 64});
	assert_int_equal(f->fills, 0);
	assert_int_equal(f->ds.memfd, -1);
	/* A seat that comes later gets the surface and one full damage. */
	f->seat = connect_seat(f);
	struct display_surface s;
	int fd = -1;
	assert_int_equal(recv_msg(f->seat, &s, sizeof(s), NULL), DISPLAY_MSG_HELLO);
	display_server_surface(&f->ds, 64, 64); /* what the device does when told of the seat */
	assert_int_equal(recv_msg(f->seat, &s, sizeof(s), &fd), DISPLAY_MSG_SURFACE);
	assert_int_equal(s.width, 64);
	assert_int_equal(recv_msg(f->seat, &s, sizeof(s), NULL), DISPLAY_MSG_DAMAGE);
	assert_int_equal(f->fills, 1);
	close(fd);
}

static void new_seat_replaces_old(void **state)
{
	struct dfx *f = *state;
	uint8_t b[64];
	display_server_surface(&f->ds, 4, 4);
	int first_memfd = f->ds.memfd;
	int old = f->seat;
	f->seat = connect_seat(f);
	while (recv_msg(old, b, sizeof(b), NULL) > 0) /* HELLO, SURFACE, DAMAGE, then the end */
		;
	assert_int_equal(recv_msg(old, b, sizeof(b), NULL), 0);
	assert_int_equal(recv_msg(f->seat, b, sizeof(b), NULL), DISPLAY_MSG_HELLO);
	assert_int_equal(f->connected, 2);
	assert_int_equal(f->ds.seq_sent, 0); /* a fresh window */
	display_server_surface(&f->ds, 4, 4);
	int fd = -1;
	assert_int_equal(recv_msg(f->seat, b, sizeof(b), &fd), DISPLAY_MSG_SURFACE);
	(void)first_memfd; /* a new memfd: the old seat's mapping never sees the new frames */
	struct stat a, c;
	assert_int_equal(fstat(fd, &a), 0);
	close(old);
	close(fd);
	assert_int_equal(fstat(f->ds.memfd, &c), 0);
	assert_int_equal(a.st_ino, c.st_ino);
}

static void input_and_preferred_size(void **state)
{
	struct dfx *f = *state;
	uint8_t buf[sizeof(struct display_input) + 2 * sizeof(struct display_input_event)];
	struct display_input in = {DISPLAY_INPUT_TABLET, 2};
	struct display_input_event ev[2] = {{EV_ABS, ABS_X, 1234}, {EV_SYN, SYN_REPORT, 0}};
	memcpy(buf, &in, sizeof(in));
	memcpy(buf + sizeof(in), ev, sizeof(ev));
	seat_send(f->seat, DISPLAY_MSG_INPUT, buf, sizeof(buf));
	struct display_size sz = {1920, 1080};
	seat_send(f->seat, DISPLAY_MSG_PREFERRED_SIZE, &sz, sizeof(sz));
	display_server_receive(&f->ds);
	assert_int_equal(f->inputs, 1);
	assert_int_equal(f->input_device, DISPLAY_INPUT_TABLET);
	assert_int_equal(f->input_count, 2);
	assert_int_equal(f->ev[0].value, 1234);
	assert_int_equal(f->sizes, 1);
	assert_int_equal(f->size_w, 1920);
	assert_true(display_server_connected(&f->ds));
}

/* Each malformed message drops the seat. */
static void malformed_messages_drop_the_seat(void **state)
{
	struct dfx *f = *state;
	struct {
		uint32_t type, len;
		uint8_t body[64];
		size_t send_len;
	} bad[] = {
		{DISPLAY_MSG_ACK, 8, {0}, 8 + 4},                                 /* header says more than the packet */
		{DISPLAY_MSG_ACK, 2, {0}, 8 + 2},                                 /* short body */
		{DISPLAY_MSG_HELLO, 0, {0}, 8},                                   /* a monitor-to-seat type */
		{999, 0, {0}, 8},                                                 /* unknown */
		{DISPLAY_MSG_INPUT, 8, {0, 0, 0, 0, 0, 0, 0, 0}, 16},             /* no events */
		{DISPLAY_MSG_INPUT, 8, {3, 0, 0, 0, 1, 0, 0, 0}, 16},             /* bad device, count 1 */
		{DISPLAY_MSG_INPUT, 16, {0, 0, 0, 0, 2, 0, 0, 0}, 24},            /* says 2, holds 1 */
		{DISPLAY_MSG_INPUT, 8, {0, 0, 0, 0, 65, 0, 0, 0}, 16},            /* too many */
		{DISPLAY_MSG_PREFERRED_SIZE, 8, {0}, 16},                         /* 0 x 0 */
		{DISPLAY_MSG_PREFERRED_SIZE, 8, {0, 0x40, 0, 0, 1, 0, 0, 0}, 16}, /* 16384 wide */
	};
	uint8_t b[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t pkt[80];
		struct display_msg_header h = {bad[i].type, bad[i].len};
		memcpy(pkt, &h, 8);
		memcpy(pkt + 8, bad[i].body, sizeof(bad[i].body));
		assert_int_equal(send(f->seat, pkt, bad[i].send_len, 0), (ssize_t)bad[i].send_len);
		display_server_receive(&f->ds);
		if (display_server_connected(&f->ds))
			fail_msg("malformed message %zu kept the seat", i);
		while (recv_msg(f->seat, b, sizeof(b), NULL) > 0)
			;
		assert_int_equal(recv_msg(f->seat, b, sizeof(b), NULL), 0);
		close(f->seat);
		f->seat = connect_seat(f);
	}
	assert_int_equal(f->inputs, 0);
	assert_int_equal(f->sizes, 0);
}

static void option_parsing(void **state)
{
	(void)state;
	const char *path;
	uint32_t w, h;
	struct err e;
	char a[] = "socket:/run/x.sock";
	assert_int_equal(display_parse_option(a, &path, &w, &h, &e), 0);
	assert_string_equal(path, "/run/x.sock");
	assert_int_equal(w, DISPLAY_DEFAULT_WIDTH);
	assert_int_equal(h, DISPLAY_DEFAULT_HEIGHT);
	char b[] = "socket:/run/y.sock,size=1920x1080";
	assert_int_equal(display_parse_option(b, &path, &w, &h, &e), 0);
	assert_string_equal(path, "/run/y.sock");
	assert_int_equal(w, 1920);
	assert_int_equal(h, 1080);
	const char *bad[] = {"vnc:1",
			     "socket:",
			     "socket:/a,size=10x10",
			     "socket:/a,size=1920",
			     "socket:/a,size=1920x",
			     "socket:/a,size=9000x100",
			     "socket:/a,size=axb",
			     "socket:/a,size=100x100x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[64];
		strcpy(buf, bad[i]);
		assert_int_equal(display_parse_option(buf, &path, &w, &h, &e), -1);
		assert_contains(e.msg, "--display");
	}
}

/* --- virtio-input ------------------------------------------------------------------------- */

#define EVBUF 0x30000ull

struct ifx {
	struct vfx v;
	struct virtio_input in;
};

static int input_setup_kind(void **state, uint32_t kind)
{
	struct ifx *f = calloc(1, sizeof(*f));
	struct err e;
	if (!f || vfx_init(&f->v) < 0 || virtio_input_init(&f->in, kind, &f->v.fm.m, &f->v.mem, &e) < 0 ||
	    vfx_attach(&f->v, &f->in.vdev) < 0)
		return -1;
	*state = f;
	return 0;
}

static int input_setup(void **state)
{
	return input_setup_kind(state, DISPLAY_INPUT_KEYBOARD);
}

static int input_teardown(void **state)
{
	struct ifx *f = *state;
	virtio_dev_destroy(&f->in.vdev);
	vfx_destroy(&f->v);
	free(f);
	return 0;
}

/* Selects (select, subsel) and returns the size byte. */
static uint8_t cfg_select(struct ifx *f, uint8_t select, uint8_t subsel)
{
	vfx_wr(&f->v, 0x2000, select, 1);
	vfx_wr(&f->v, 0x2001, subsel, 1);
	return (uint8_t)vfx_rd(&f->v, 0x2002, 1);
}

static uint8_t cfg_byte(struct ifx *f, unsigned i)
{
	return (uint8_t)vfx_rd(&f->v, 0x2008 + i, 1);
}

static void input_config_space(void **state)
{
	struct ifx *f = *state;
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_NAME, 0), strlen("shoji keyboard"));
	assert_int_equal(cfg_byte(f, 0), 's');
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_NAME, 1), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_SERIAL, 0), 1);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_DEVIDS, 0), 8);
	assert_int_equal(cfg_byte(f, 0), 0x06); /* BUS_VIRTUAL */
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_PROP_BITS, 0), 0);
	assert_true(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY) > KEY_A / 8);
	assert_true(cfg_byte(f, KEY_A / 8) & (1u << (KEY_A % 8)));
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_REL), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_LED), 1);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ABS_INFO, ABS_X), 0);
	assert_int_equal(cfg_select(f, 0x7f, 0), 0);         /* unknown select */
	assert_int_equal(vfx_rd(&f->v, 0x2000 + 200, 4), 0); /* past the structure */
}

static void tablet_and_mouse_config(void **state)
{
	struct ifx *f = *state;
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ABS_INFO, ABS_Y), sizeof(struct virtio_input_absinfo));
	assert_int_equal(vfx_rd(&f->v, 0x2008 + 4, 4), 32767); /* max */
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS), 1);
	assert_int_equal(cfg_byte(f, 0), (1u << ABS_X) | (1u << ABS_Y));
	assert_true(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY) > BTN_LEFT / 8);
	assert_true(cfg_byte(f, BTN_LEFT / 8) & (1u << (BTN_LEFT % 8)));
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_REL), 2); /* REL_WHEEL only */
	assert_int_equal(cfg_byte(f, 0), 0);
	f->in.kind = DISPLAY_INPUT_MOUSE;
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_EV_BITS, EV_REL), 2);
	assert_int_equal(cfg_byte(f, 0), (1u << REL_X) | (1u << REL_Y));
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ABS_INFO, ABS_X), 0);
	assert_int_equal(cfg_select(f, VIRTIO_INPUT_CFG_ID_NAME, 0), strlen("shoji mouse"));
}

static int tablet_setup(void **state)
{
	return input_setup_kind(state, DISPLAY_INPUT_TABLET);
}

static void event_buffer(struct ifx *f, unsigned i)
{
	vfx_desc_q(&f->v, 0, i, EVBUF + 16ull * i, 8, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(&f->v, 0, (uint16_t)i);
}

static void events_wait_for_buffers(void **state)
{
	struct ifx *f = *state;
	struct display_input_event ev[4] = {{EV_KEY, KEY_A, 1}, {EV_SYN, 0, 0}, {EV_KEY, KEY_A, 0}, {EV_SYN, 0, 0}};
	virtio_input_inject(&f->in, ev, 4); /* no driver yet: dropped */
	assert_int_equal(f->in.count, 0);
	vfx_bring_up_queues(&f->v, 0, 2);
	virtio_input_inject(&f->in, ev, 4); /* no buffers: kept */
	assert_int_equal(f->in.count, 4);
	assert_int_equal(vfx_used_idx_q(&f->v, 0), 0);
	event_buffer(f, 0);
	event_buffer(f, 1);
	vfx_run_q(&f->v, 0);
	assert_int_equal(vfx_used_idx_q(&f->v, 0), 2);
	assert_int_equal(vfx_used_len_q(&f->v, 0, 0), 8);
	struct virtio_input_event got;
	memcpy(&got, guest_mem_ptr(&f->v.mem, EVBUF, 8), 8);
	assert_int_equal(got.type, EV_KEY);
	assert_int_equal(got.code, KEY_A);
	assert_int_equal(got.value, 1);
	assert_int_equal(f->in.count, 2);
	event_buffer(f, 2);
	event_buffer(f, 3);
	vfx_run_q(&f->v, 0);
	assert_int_equal(vfx_used_idx_q(&f->v, 0), 4);
	memcpy(&got, guest_mem_ptr(&f->v.mem, EVBUF + 32, 8), 8);
	assert_int_equal(got.value, 0);
	assert_int_equal(f->in.count, 0);
	/* The buffer is bounded: a batch that does not fit is dropped whole. */
	struct display_input_event many[DISPLAY_INPUT_MAX];
	memset(many, 0, sizeof(many));
	for (unsigned i = 0; i < VIRTIO_INPUT_PENDING / DISPLAY_INPUT_MAX; i++)
		virtio_input_inject(&f->in, many, DISPLAY_INPUT_MAX);
	assert_int_equal(f->in.count, VIRTIO_INPUT_PENDING);
	virtio_input_inject(&f->in, ev, 4);
	assert_int_equal(f->in.count, VIRTIO_INPUT_PENDING);
	assert_int_equal(f->in.dropped, 4);
	/* A reset forgets them. */
	vfx_wr(&f->v, 0x14, 0, 1);
	assert_int_equal(f->in.count, 0);
}

static void status_queue_is_drained(void **state)
{
	struct ifx *f = *state;
	vfx_bring_up_queues(&f->v, 0, 2);
	vfx_desc_q(&f->v, 1, 0, EVBUF, 8, 0, 0); /* an LED event from the driver */
	vfx_offer_q(&f->v, 1, 0);
	vfx_run_q(&f->v, 1);
	assert_int_equal(vfx_used_idx_q(&f->v, 1), 1);
	assert_int_equal(vfx_used_len_q(&f->v, 1, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(hello_and_socket_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(surface_and_damage_window, setup, teardown),
		cmocka_unit_test_setup_teardown(new_surface_while_unacknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(no_seat_no_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(new_seat_replaces_old, setup, teardown),
		cmocka_unit_test_setup_teardown(input_and_preferred_size, setup, teardown),
		cmocka_unit_test_setup_teardown(malformed_messages_drop_the_seat, setup, teardown),
		cmocka_unit_test(option_parsing),
		cmocka_unit_test_setup_teardown(input_config_space, input_setup, input_teardown),
		cmocka_unit_test_setup_teardown(tablet_and_mouse_config, tablet_setup, input_teardown),
		cmocka_unit_test_setup_teardown(events_wait_for_buffers, input_setup, input_teardown),
		cmocka_unit_test_setup_teardown(status_queue_is_drained, input_setup, input_teardown),
	};
	log_set_level(LOG_ERROR); /* the dropped seats' warnings are expected */
	return cmocka_run_group_tests(tests, NULL, NULL);
}

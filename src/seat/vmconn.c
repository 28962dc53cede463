/* vmconn: one VM's display connection: connecting (and retrying while its monitor starts),
 * reading and checking packets, mapping surfaces read-only, acknowledging damage and sending
 * input. Nothing here waits on the monitor. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fdpass.h"
#include "../common/log.h"
#include "seat.h"
#include "seat_proto.h"

#define RETRY_MS 250

const char *vmconn_state_name(enum seat_vm_state st)
{
	static const char *const n[] = {"waiting", "live", "stopped", "crashed", "broken"};
	return n[st];
}

struct seat_vm *vmconn_add(struct seat *s, const char *name, uint32_t rgb, const char *sock)
{
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		struct seat_vm *vm = &s->vms[i];
		if (vm->used)
			continue;
		memset(vm, 0, sizeof(*vm));
		vm->used = true;
		vm->fd = vm->ask_fd = -1;
		snprintf(vm->name, sizeof(vm->name), "%s", name);
		snprintf(vm->sock, sizeof(vm->sock), "%s", sock);
		vm->rgb = rgb;
		vm->state = SEAT_VM_WAITING;
		s->redraw = true;
		return vm;
	}
	return NULL;
}

static void unmap(struct seat_vm *vm)
{
	if (vm->map)
		munmap((void *)vm->map, vm->map_len);
	vm->map = NULL;
	vm->map_len = 0;
	vm->surface_on = false;
	memset(vm->dirty, 0, sizeof(vm->dirty));
}

void vmconn_disconnect(struct seat_vm *vm, enum seat_vm_state state, const char *why)
{
	if (vm->fd >= 0)
		close(vm->fd);
	vm->fd = -1;
	link_ask_close(vm);
	unmap(vm); /* never a frozen frame: the tile says what happened instead */
	vm->hello = vm->have_seq = vm->ack_due = vm->cursor_on = false;
	memset(vm->held, 0, sizeof(vm->held));
	vm->buttons = 0;
	vm->state = state;
	snprintf(vm->why, sizeof(vm->why), "%s", why);
}

void vmconn_remove(struct seat *s, struct seat_vm *vm)
{
	vmconn_disconnect(vm, SEAT_VM_STOPPED, "");
	if (vm->tex)
		SDL_DestroyTexture(vm->tex);
	if (vm->cursor_tex)
		SDL_DestroyTexture(vm->cursor_tex);
	vm->tex = vm->cursor_tex = NULL;
	vm->used = false;
	s->redraw = true;
}

void vmconn_connected(struct seat *s, struct seat_vm *vm, int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(vm->why, sizeof(vm->why), "display socket: %s", strerror(errno));
		close(fd);
		return;
	}
	vm->fd = fd;
	vm->why[0] = '\0';
	s->redraw = true;
}

long long vmconn_retry_ms(const struct seat *s, const struct seat_vm *vm)
{
	/* Without shojid (--vm) nobody says a VM came back: a stopped one is retried. */
	bool retry = vm->state == SEAT_VM_WAITING || (!s->use_shojid && vm->state == SEAT_VM_STOPPED);
	if (!vm->used || vm->fd >= 0 || vm->ask_fd >= 0 || !retry || !vm->sock[0])
		return -1;
	return vm->retry_ms;
}

void vmconn_try_connect(struct seat *s, struct seat_vm *vm)
{
	long long now = seat_now_ns() / 1000000, due = vmconn_retry_ms(s, vm);
	if (due < 0 || now < due)
		return;
	vm->retry_ms = now + RETRY_MS;
	if (vm->via_shojid) {
		link_ask_display(s, vm); /* answered through ask_fd */
		return;
	}
	int fd, en;
	struct err e;
	if (rpc_connect_type(vm->sock, SOCK_SEQPACKET, &fd, &en, &e) < 0) {
		snprintf(vm->why, sizeof(vm->why), "display socket: %s", strerror(en));
		/* A seat run by a user of the shoji group: shojid opens the socket for it. */
		if ((en == EACCES || en == EPERM) && s->use_shojid) {
			vm->via_shojid = true;
			vm->retry_ms = now;
		}
		return;
	}
	vmconn_connected(s, vm, fd);
}

static int map_surface(struct seat_vm *vm, const struct display_surface *sf, int memfd, struct err *e)
{
	struct stat st;
	if (fstat(memfd, &st) < 0)
		return err_errno(e, errno, "cannot stat the surface memfd");
	if (!S_ISREG(st.st_mode))
		return err_set(e, "the surface descriptor is not a memfd");
	int seals = fcntl(memfd, F_GET_SEALS);
	if (seat_proto_check_memfd(sf, (uint64_t)st.st_size, seals < 0 ? 0 : seals, e) < 0)
		return -1;
	void *p = mmap(NULL, sf->size, PROT_READ, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED)
		return err_errno(e, errno, "cannot map the surface");
	unmap(vm);
	vm->map = p;
	vm->map_len = sf->size;
	vm->surf = *sf;
	vm->surface_on = true;
	uint32_t all[4] = {0, 0, sf->width, sf->height};
	memcpy(vm->dirty, all, sizeof(all));
	return 0;
}

static int handle(struct seat *s, struct seat_vm *vm, const struct seat_msg *m, int memfd, struct err *e)
{
	if (!vm->hello && m->type != DISPLAY_MSG_HELLO)
		return err_set(e, "the first packet is not HELLO");
	switch (m->type) {
	case DISPLAY_MSG_HELLO:
		if (vm->hello)
			return err_set(e, "a second HELLO");
		vm->hello = true;
		vm->state = SEAT_VM_LIVE;
		vmconn_preferred_size(s, vm);
		break;
	case DISPLAY_MSG_SURFACE:
		if (map_surface(vm, &m->u.surface, memfd, e) < 0)
			return -1;
		break;
	case DISPLAY_MSG_DAMAGE: {
		uint32_t r[4];
		if (vm->surface_on && seat_proto_clip(&m->u.damage, vm->surf.width, vm->surf.height, r)) {
			if (vm->dirty[2] == 0)
				vm->damage_ns = seat_now_ns();
			seat_rect_union(vm->dirty, r);
		}
		vm->seq = m->u.damage.seq;
		vm->have_seq = vm->ack_due = true;
		break;
	}
	case DISPLAY_MSG_DISABLE: unmap(vm); break;
	case DISPLAY_MSG_CURSOR:
		vm->cursor_on = m->u.cursor.visible != 0;
		vm->cursor_x = m->u.cursor.x;
		vm->cursor_y = m->u.cursor.y;
		vm->hot_x = m->u.cursor.hot_x;
		vm->hot_y = m->u.cursor.hot_y;
		if (m->cursor_pixels) {
			memcpy(vm->cursor_px, m->cursor_pixels, sizeof(vm->cursor_px));
			vm->cursor_new = true;
		}
		break;
	case DISPLAY_MSG_CURSOR_MOVE:
		vm->cursor_x = m->u.move.x;
		vm->cursor_y = m->u.move.y;
		break;
	default: break;
	}
	/* Damage is drawn when its VM is shown (main.c looks at dirty); anything else redraws. */
	if (m->type != DISPLAY_MSG_DAMAGE)
		s->redraw = true;
	return 0;
}

void vmconn_read(struct seat *s, struct seat_vm *vm)
{
	static uint8_t buf[DISPLAY_MSG_MAX + 1];
	for (int n = 0; n < SEAT_PACKETS_PER_TURN && vm->fd >= 0; n++) {
		/* One descriptor at most (a SURFACE's memfd); any other is closed on arrival. */
		struct fdpass_msg fm;
		enum fdpass_result fr = fdpass_recv(vm->fd, buf, sizeof(buf), 1, MSG_DONTWAIT, &fm);
		if (fr == FDPASS_AGAIN)
			return;
		if (fr == FDPASS_ERROR || fm.len == 0) {
			/* 0: the monitor closed (a SEQPACKET peer never sends empty packets) */
			vmconn_disconnect(vm, SEAT_VM_STOPPED,
					  fr == FDPASS_ERROR
						  ? (errno == EPROTO ? "control data that is not one descriptor"
								     : strerror(errno))
						  : "the monitor went away");
			s->refresh = true;
			s->redraw = true;
			return;
		}
		struct seat_msg m;
		struct err e = {""};
		int r = -1;
		if (fm.len > DISPLAY_MSG_MAX)
			err_set(&e, "a packet over %d bytes", DISPLAY_MSG_MAX);
		else if (fm.dropped)
			err_set(&e, "a packet with %u descriptors", fm.nfds + fm.dropped);
		else if (seat_proto_parse(buf, fm.len, fm.nfds == 1, &m, &e) == 0)
			r = handle(s, vm, &m, fm.nfds ? fm.fds[0] : -1, &e);
		fdpass_close(&fm);
		if (r < 0) {
			vm->bad_packets++;
			log_msg(LOG_WARN, "VM '%s': %s; its display is closed", vm->name, e.msg);
			char why[160];
			snprintf(why, sizeof(why), "protocol error: %s", e.msg);
			vmconn_disconnect(vm, SEAT_VM_BROKEN, why);
			s->redraw = true;
			return;
		}
	}
}

static bool send_packet(struct seat_vm *vm, const uint8_t *buf, size_t len)
{
	if (vm->fd < 0)
		return false;
	ssize_t n = send(vm->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n == (ssize_t)len;
}

void vmconn_ack(struct seat_vm *vm)
{
	uint8_t buf[64];
	if (!vm->ack_due)
		return;
	if (send_packet(vm, buf, seat_proto_ack(buf, vm->seq))) {
		vm->ack_due = false;
		vm->acked = vm->seq;
	}
}

void vmconn_preferred_size(struct seat *s, struct seat_vm *vm)
{
	uint8_t buf[64];
	int w = s->win_w, h = s->win_h - SEAT_BAR_H;
	if (vm->hello && w > 0 && h > 0)
		send_packet(vm, buf, seat_proto_size(buf, (uint32_t)w, (uint32_t)h));
}

void vmconn_input(struct seat_vm *vm, uint32_t device, const struct display_input_event *ev, uint32_t n)
{
	static uint8_t buf[DISPLAY_MSG_MAX];
	if (!vm->hello || n == 0 || n > DISPLAY_INPUT_MAX)
		return;
	if (!send_packet(vm, buf, seat_proto_input(buf, device, ev, n)))
		vm->dropped_input++;
}

void vmconn_key(struct seat_vm *vm, uint16_t code, bool down)
{
	if (code == 0 || code >= KEYMAP_MAX_EVDEV)
		return;
	bool held = vm->held[code / 8] & (1u << (code % 8));
	if (!down && !held)
		return; /* a release for a press this VM never saw (it was held across a switch) */
	struct display_input_event ev[2] = {{.type = 1 /* EV_KEY */, .code = code, .value = down ? (held ? 2 : 1) : 0},
					    {.type = 0 /* EV_SYN */, .code = 0, .value = 0}};
	if (down)
		vm->held[code / 8] |= (uint8_t)(1u << (code % 8));
	else
		vm->held[code / 8] &= (uint8_t) ~(1u << (code % 8));
	vmconn_input(vm, DISPLAY_INPUT_KEYBOARD, ev, 2);
}

void vmconn_release_all(struct seat_vm *vm)
{
	struct display_input_event ev[DISPLAY_INPUT_MAX];
	uint32_t n = 0;
	for (unsigned code = 1; code < KEYMAP_MAX_EVDEV; code++) {
		if (!(vm->held[code / 8] & (1u << (code % 8))))
			continue;
		ev[n++] = (struct display_input_event){.type = 1, .code = (uint16_t)code, .value = 0};
		if (n == DISPLAY_INPUT_MAX - 1) {
			ev[n++] = (struct display_input_event){0, 0, 0};
			vmconn_input(vm, DISPLAY_INPUT_KEYBOARD, ev, n);
			n = 0;
		}
	}
	if (n) {
		ev[n++] = (struct display_input_event){0, 0, 0};
		vmconn_input(vm, DISPLAY_INPUT_KEYBOARD, ev, n);
	}
	memset(vm->held, 0, sizeof(vm->held));
	n = 0;
	static const uint16_t btn[] = {0x110, 0x111, 0x112}; /* BTN_LEFT, RIGHT, MIDDLE */
	for (unsigned i = 0; i < 3; i++) {
		if (vm->buttons & (1u << i))
			ev[n++] = (struct display_input_event){.type = 1, .code = btn[i], .value = 0};
	}
	if (n) { /* on both pointers: a grab may have moved the buttons to the mouse */
		ev[n++] = (struct display_input_event){0, 0, 0};
		vmconn_input(vm, DISPLAY_INPUT_TABLET, ev, n);
		vmconn_input(vm, DISPLAY_INPUT_MOUSE, ev, n);
	}
	vm->buttons = 0;
}

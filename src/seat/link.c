/* link: the seat's view of shojid: the VM list (which VMs run with a display, their display
 * sockets and label colours), refreshed whenever the event stream (events --follow) says
 * something happened, and crashes remembered from that stream so that a crashed VM keeps a
 * "crashed" tile until it is started again or deleted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/jsonl.h"
#include "../common/log.h"
#include "seat.h"

#define CALL_TIMEOUT_MS 2000 /* events --follow's first reply */
#define LIST_TIMEOUT_MS 5000
#define RECONNECT_MS    1000

static struct json_object *request(const char *cmd)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	return o;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		? json_object_get_string(v)
		: "";
}

static bool crashed(struct seat *s, const char *name)
{
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (strcmp(s->crashed[i], name) == 0)
			return true;
	}
	return false;
}

static void set_crashed(struct seat *s, const char *name, bool on)
{
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (on ? !s->crashed[i][0] : strcmp(s->crashed[i], name) == 0) {
			snprintf(s->crashed[i], sizeof(s->crashed[i]), "%s", on ? name : "");
			if (on)
				return;
		}
	}
}

static void apply_one(struct seat *s, struct json_object *v)
{
	const char *name = str(v, "name"), *state = str(v, "state"), *sock = str(v, "display_socket");
	struct json_object *d;
	bool display = json_object_object_get_ex(v, "display", &d) && json_object_get_boolean(d);
	if (!display || !name[0] || !sock[0])
		return; /* service VMs without a display are not shown */
	bool running = strcmp(state, "stopped") != 0;
	int i = seat_find(s, name);
	if (!running && !crashed(s, name))
		return; /* removed by the caller, as unseen */
	uint32_t rgb = 0x808080;
	vmdef_label_rgb(str(v, "label"), &rgb);
	struct seat_vm *vm = i >= 0 ? &s->vms[i] : vmconn_add(s, name, rgb, sock);
	if (!vm)
		return;
	vm->seen = true;
	vm->rgb = rgb;
	if (!running) {
		if (vm->state != SEAT_VM_CRASHED)
			vmconn_disconnect(vm, SEAT_VM_CRASHED, "");
	} else if (vm->state == SEAT_VM_STOPPED || vm->state == SEAT_VM_CRASHED) {
		vmconn_disconnect(vm, SEAT_VM_WAITING, ""); /* started again: reconnect */
		vm->retry_ms = 0;
	}
	snprintf(vm->sock, sizeof(vm->sock), "%s", sock);
}

static void apply_list(struct seat *s, struct json_object *reply)
{
	struct json_object *vms;
	if (!json_object_object_get_ex(reply, "vms", &vms) || !json_object_is_type(vms, json_type_array)) {
		log_msg(LOG_WARN, "shojid: a list reply without vms");
		return;
	}
	for (int i = 0; i < SEAT_MAX_VMS; i++)
		s->vms[i].seen = false;
	for (size_t i = 0; i < json_object_array_length(vms); i++)
		apply_one(s, json_object_array_get_idx(vms, i));
	struct json_object *clip;
	clip_apply_list(s, json_object_object_get_ex(reply, "clipboard", &clip) ? clip : NULL);
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (s->vms[i].used && !s->vms[i].seen) {
			vmconn_remove(s, &s->vms[i]);
			if (s->active == i)
				seat_lose_active(s);
		}
	}
	seat_pick_default(s);
	s->redraw = true;
}

static void list_close(struct seat *s)
{
	if (s->list_fd >= 0)
		close(s->list_fd);
	rpc_reader_free(&s->list_rd);
	s->list_fd = -1;
}

/* Connects to shojid and sends req (taken) without waiting: its answer is read when poll says
 * it came, so a busy shojid never holds up the seat. */
int link_send_request(struct seat *s, struct json_object *req, int *fd_out, struct err *e)
{
	int fd, en, r = -1;
	size_t n;
	char *line = jsonl_line(req, &n);
	json_object_put(req);
	if (!line)
		return err_set(e, "out of memory");
	if (rpc_connect(s->shojid_sock, &fd, &en, e) == 0) {
		if (send(fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n) {
			*fd_out = fd;
			r = 0;
		} else {
			err_errno(e, errno, "cannot send to shojid");
			close(fd);
		}
	}
	free(line);
	return r;
}

/* Asks shojid for the list; link_read_list reads the reply. */
static void list_send(struct seat *s)
{
	int fd;
	struct err e;
	s->list_retry_ms = seat_now_ns() / 1000000 + RECONNECT_MS; /* if this fails */
	if (link_send_request(s, request("list"), &fd, &e) < 0) {
		log_msg(LOG_DEBUG, "shojid: %s", e.msg);
		return;
	}
	s->list_retry_ms = 0;
	s->list_fd = fd;
	rpc_reader_init(&s->list_rd, fd, 4u << 20);
	s->list_deadline_ms = seat_now_ns() / 1000000 + LIST_TIMEOUT_MS;
	s->refresh = false;
}

void link_read_list(struct seat *s)
{
	char *line = NULL;
	struct err e;
	errno = 0;
	int r = rpc_read_line(&s->list_rd, 0, &line, NULL, &e);
	if (r < 0 && errno == ETIMEDOUT)
		return; /* more to come */
	if (r == 1) {
		struct json_object *o = json_tokener_parse(line);
		if (o)
			apply_list(s, o);
		else
			log_msg(LOG_WARN, "shojid: a list reply that is not JSON");
		json_object_put(o);
	} else {
		s->refresh = true; /* asked again after RECONNECT_MS */
		s->list_retry_ms = seat_now_ns() / 1000000 + RECONNECT_MS;
	}
	free(line);
	list_close(s);
}

void link_init(struct seat *s)
{
	s->events_fd = s->list_fd = -1;
	s->refresh = true;
}

static void events_close(struct seat *s)
{
	if (s->events_fd >= 0)
		close(s->events_fd);
	rpc_reader_free(&s->events_rd);
	s->events_fd = -1;
	s->events_retry_ms = seat_now_ns() / 1000000 + RECONNECT_MS;
}

static void events_open(struct seat *s)
{
	int fd, en;
	struct err e;
	struct json_object *req = request("events"), *reply = NULL;
	json_object_object_add(req, "follow", json_object_new_boolean(1));
	s->events_retry_ms = seat_now_ns() / 1000000 + RECONNECT_MS;
	if (rpc_connect(s->shojid_sock, &fd, &en, &e) < 0)
		return;
	rpc_reader_init(&s->events_rd, fd, 1 << 20);
	if (rpc_call(fd, &s->events_rd, req, CALL_TIMEOUT_MS, "shojid", &reply, NULL, &e) < 0) {
		rpc_reader_free(&s->events_rd);
		close(fd);
		return;
	}
	json_object_put(reply);
	s->events_fd = fd;
	s->refresh = true; /* whatever happened while not following */
}

/* The length of a port's name at p ("1-2.3", ended by the string, a space or a ':'); 0: none. */
static size_t port_word(const char *p)
{
	size_t n = strspn(p, "0123456789-.");
	return n && n < 32 && (!p[n] || p[n] == ' ' || p[n] == ':') ? n : 0;
}

/* Whether p starts with a vendor:product id, four lowercase hex digits each. */
static bool id_word(const char *p)
{
	const char *hex = "0123456789abcdef";
	return strspn(p, hex) == 4 && p[4] == ':' && strspn(p + 5, hex) == 4;
}

/* A USB event for the VM in front, as a notice: the port and vendor:product from shojid's
 * detail ("PORT VVVV:PPPP ..."), never the names the device gave itself. */
static void usb_notice(struct seat *s, const char *vm, const char *ev, const char *detail)
{
	bool attach = strcmp(ev, "usb-attach") == 0, refused = strcmp(ev, "usb-refused") == 0;
	if ((!attach && !refused && strcmp(ev, "usb-attach-failed") != 0) || s->active < 0 || !s->vms[s->active].used ||
	    strcmp(s->vms[s->active].name, vm) != 0)
		return;
	size_t port = port_word(detail), id = port && detail[port] == ' ' && id_word(detail + port + 1) ? 9 : 0;
	if (!port)
		return;
	seat_notice(s, !attach, "usb", "usb %.*s%s%.*s %s", (int)port, detail, id ? " " : "", (int)id,
		    detail + port + 1,
		    attach            ? "attached"
			    : refused ? "refused by policy"
				      : "not attached (see shoji events)");
}

void link_read(struct seat *s)
{
	for (;;) {
		char *line = NULL;
		struct err e;
		errno = 0;
		int r = rpc_read_line(&s->events_rd, 0, &line, NULL, &e);
		if (r == 0 || (r < 0 && errno != ETIMEDOUT)) {
			events_close(s); /* shojid went away: keep what is shown, reconnect later */
			return;
		}
		if (r < 0)
			return;
		struct json_object *o = json_tokener_parse(line);
		free(line);
		if (!o)
			continue;
		const char *vm = str(o, "vm"), *ev = str(o, "event");
		usb_notice(s, vm, ev, str(o, "detail"));
		if (strcmp(ev, "crashed") == 0)
			set_crashed(s, vm, true);
		else if (strcmp(ev, "started") == 0 || strcmp(ev, "deleted") == 0 || strcmp(ev, "stopped") == 0 ||
			 strcmp(ev, "failed") == 0)
			set_crashed(s, vm, false);
		json_object_put(o);
		s->refresh = true;
	}
}

#define DISPLAY_TIMEOUT_MS 1000

void link_ask_close(struct seat_vm *vm)
{
	if (vm->ask_fd >= 0)
		close(vm->ask_fd);
	rpc_reader_free(&vm->ask_rd);
	vm->ask_fd = -1;
}

void link_ask_display(struct seat *s, struct seat_vm *vm)
{
	int fd;
	struct err e;
	struct json_object *req = request("display");
	json_object_object_add(req, "name", json_object_new_string(vm->name));
	if (link_send_request(s, req, &fd, &e) < 0) {
		snprintf(vm->why, sizeof(vm->why), "shojid: %.140s", e.msg);
		return;
	}
	vm->ask_fd = fd;
	rpc_reader_init(&vm->ask_rd, fd, 64u << 10);
	vm->ask_deadline_ms = seat_now_ns() / 1000000 + DISPLAY_TIMEOUT_MS;
}

void link_read_display(struct seat *s, struct seat_vm *vm)
{
	char *line = NULL;
	int got = -1;
	struct err e;
	errno = 0;
	int r = rpc_read_line(&vm->ask_rd, 0, &line, &got, &e);
	if (r < 0 && errno == ETIMEDOUT) {
		if (seat_now_ns() / 1000000 < vm->ask_deadline_ms)
			return; /* more to come */
		snprintf(vm->why, sizeof(vm->why), "shojid: no answer to display in %d ms", DISPLAY_TIMEOUT_MS);
		link_ask_close(vm);
		return;
	}
	link_ask_close(vm);
	struct json_object *o = r == 1 ? json_tokener_parse(line) : NULL, *ok;
	free(line);
	if (o && json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok) && got >= 0) {
		vmconn_connected(s, vm, got);
	} else {
		const char *why = r < 0      ? e.msg
			: r == 0             ? "closed the connection without an answer"
			: !o                 ? "an answer that is not JSON"
			: str(o, "error")[0] ? str(o, "error")
					     : "no descriptor passed";
		snprintf(vm->why, sizeof(vm->why), "shojid: %.140s", why);
		if (got >= 0)
			close(got);
	}
	json_object_put(o);
}

long long link_next_ms(const struct seat *s)
{
	long long next = -1;
	if (!s->use_shojid)
		return -1;
	if (s->events_fd < 0)
		next = seat_earliest_ms(next, s->events_retry_ms);
	if (s->list_fd >= 0)
		next = seat_earliest_ms(next, s->list_deadline_ms + 1);
	if (s->refresh && s->list_fd < 0)
		next = seat_earliest_ms(next, s->list_retry_ms);
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (s->vms[i].used && s->vms[i].ask_fd >= 0)
			next = seat_earliest_ms(next, s->vms[i].ask_deadline_ms);
	}
	return seat_earliest_ms(seat_earliest_ms(next, clip_next_ms(s)), focus_next_ms(s));
}

void link_tick(struct seat *s)
{
	clip_tick(s); /* its notices come without shojid too */
	if (!s->use_shojid)
		return;
	if (s->events_fd < 0 && seat_now_ns() / 1000000 >= s->events_retry_ms)
		events_open(s);
	if (s->list_fd >= 0 && seat_now_ns() / 1000000 > s->list_deadline_ms) {
		log_msg(LOG_WARN, "shojid: no answer to list in %d ms; asking again", LIST_TIMEOUT_MS);
		list_close(s);
		s->refresh = true;
	}
	if (s->refresh && s->list_fd < 0 && seat_now_ns() / 1000000 >= s->list_retry_ms)
		list_send(s);
}

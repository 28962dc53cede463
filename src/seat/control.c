/* control: the seat's control socket (RUNTIME/seat/control.sock, mode 0600; `shoji switch` and the
 * tests use it). One JSON object a line each way:
 *   {"cmd":"switch","name":N}        make N the active VM
 *   {"cmd":"status"}                 the active VM, the switcher, each VM's state and size
 *   {"cmd":"screenshot","path":P}    the composed window as a PPM, answered after the next frame
 *   {"cmd":"stats"}                  switch and frame latencies, upload/draw/present times (ms,
 *                                    the last 256 of each), frames presented, the SDL renderer
 *                                    and video driver
 * Replies are {"ok":true,...} or {"ok":false,"error":"one line"}. Served by the shared JSON-lines
 * server (common/jsonl_server.h) and parsed by common/jsonl.h's rules, as shojid's API and the
 * monitors' control sockets are: an unknown command or field, or a field of the wrong type, is
 * refused. A client that cannot take its reply at once is dropped. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/jsonl.h"
#include "../common/jsonl_server.h"
#include "seat.h"

static void on_request(void *ctx, struct jsonl_conn *c, const char *line, size_t len, int fd);

/* A connection takes a free client slot (there are as many as the server has connections). */
static int on_accepted(void *ctx, struct jsonl_conn *c)
{
	struct seat *s = ctx;
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++)
		if (!s->clients[i].conn) {
			s->clients[i] = (struct seat_client){.conn = c};
			c->user = &s->clients[i];
			return 0;
		}
	jsonl_close(c); /* cannot happen: the server admits SEAT_MAX_CLIENTS */
	return -1;
}

static void on_closed(void *ctx, struct jsonl_conn *c)
{
	(void)ctx;
	struct seat_client *sc = c->user;
	if (sc)
		*sc = (struct seat_client){0};
}

static const struct jsonl_server_ops ops = {
	.accepted = on_accepted,
	.request = on_request,
	.closed = on_closed,
};

int control_open(struct seat *s, struct err *e)
{
	s->control = (struct jsonl_server){.listen_fd = -1};
	if (!s->control_path[0])
		return 0;
	const struct jsonl_server_config cfg = {
		.what = "seat control socket",
		.ops = &ops,
		.ctx = s,
		.max_conns = SEAT_MAX_CLIENTS,
		.max_line = SEAT_CONTROL_MAX_LINE,
		.max_out = 0,
		.fds_per_line = 0,
	};
	return jsonl_server_listen(&s->control, &cfg, s->control_path, e);
}

void control_close_all(struct seat *s)
{
	jsonl_server_close(&s->control);
}

unsigned control_poll_fds(struct seat *s, struct pollfd *fds, int *timeout_ms)
{
	return jsonl_server_poll_fds(&s->control, fds, timeout_ms);
}

void control_serve(struct seat *s, const struct pollfd *fds, unsigned n)
{
	jsonl_server_serve(&s->control, fds, n);
}

bool control_screenshot_waiting(const struct seat *s)
{
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++)
		if (s->clients[i].conn && s->clients[i].screenshot_wait)
			return true;
	return false;
}

static void reply(struct seat_client *c, struct json_object *o)
{
	jsonl_send_json(c->conn, o);
}

static struct json_object *ok(void)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static void fail(struct seat_client *c, const char *msg)
{
	size_t n;
	char *line = jsonl_error_line(msg, &n);
	if (line)
		jsonl_send(c->conn, line, n);
	free(line);
}

static struct json_object *status(struct seat *s)
{
	struct json_object *o = ok(), *arr = json_object_new_array();
	json_object_object_add(o, "active",
			       json_object_new_string(s->active >= 0 && s->vms[s->active].used ? s->vms[s->active].name
											       : ""));
	json_object_object_add(o, "switcher", json_object_new_boolean(s->switcher));
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		const struct seat_vm *vm = &s->vms[i];
		if (!vm->used)
			continue;
		struct json_object *v = json_object_new_object();
		char rgb[8];
		snprintf(rgb, sizeof(rgb), "#%06x", vm->rgb);
		json_object_object_add(v, "name", json_object_new_string(vm->name));
		json_object_object_add(v, "state", json_object_new_string(vmconn_state_name(vm->state)));
		json_object_object_add(v, "label", json_object_new_string(rgb));
		json_object_object_add(v, "width", json_object_new_int(vm->surface_on ? (int)vm->surf.width : 0));
		json_object_object_add(v, "height", json_object_new_int(vm->surface_on ? (int)vm->surf.height : 0));
		json_object_object_add(v, "frames", json_object_new_int64((int64_t)vm->frames));
		json_object_object_add(v, "acked", json_object_new_int64(vm->acked));
		json_object_object_add(v, "dropped_input", json_object_new_int64((int64_t)vm->dropped_input));
		json_object_object_add(v, "why", json_object_new_string(vm->why));
		json_object_object_add(v, "via", json_object_new_string(vm->via_shojid ? "shojid" : "socket"));
		json_object_array_add(arr, v);
	}
	json_object_object_add(o, "vms", arr);
	json_object_object_add(o, "grabbed", json_object_new_boolean(s->grabbed));
	struct json_object *clip = json_object_new_object();
	json_object_object_add(clip, "held", json_object_new_boolean(s->clip_held));
	if (s->clip_held) {
		json_object_object_add(clip, "from", json_object_new_string(s->clip_from));
		json_object_object_add(clip, "bytes", json_object_new_int64(s->clip_bytes));
	}
	json_object_object_add(clip, "notice", json_object_new_string(s->notice));
	json_object_object_add(clip, "refused", json_object_new_boolean(s->notice[0] && s->notice_bad));
	json_object_object_add(o, "clipboard", clip);
	json_object_object_add(o, "notice", json_object_new_string(s->notice)); /* the clipboard's or USB's */
	json_object_object_add(o, "notice_bad", json_object_new_boolean(s->notice[0] && s->notice_bad));
	return o;
}

static struct json_object *samples(const struct seat_samples *sm)
{
	struct json_object *arr = json_object_new_array();
	unsigned n = sm->n < SEAT_SAMPLES ? sm->n : SEAT_SAMPLES;
	for (unsigned i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_double(sm->v[(sm->n - n + i) % SEAT_SAMPLES]));
	return arr;
}

enum seat_cmd { SEAT_SWITCH, SEAT_STATUS, SEAT_SCREENSHOT, SEAT_STATS, SEAT_NCMDS };

static const char *const cmd_names[SEAT_NCMDS] = {
	[SEAT_SWITCH] = "switch",
	[SEAT_STATUS] = "status",
	[SEAT_SCREENSHOT] = "screenshot",
	[SEAT_STATS] = "stats",
};

static struct json_object *stats(struct seat *s)
{
	struct json_object *r = ok();
	json_object_object_add(r, "switch_ms", samples(&s->switch_ms));
	json_object_object_add(r, "frame_ms", samples(&s->frame_ms));
	json_object_object_add(r, "upload_ms", samples(&s->upload_ms));
	json_object_object_add(r, "draw_ms", samples(&s->draw_ms));
	json_object_object_add(r, "present_ms", samples(&s->present_ms));
	json_object_object_add(r, "presents", json_object_new_int64((int64_t)s->presents));
	json_object_object_add(r, "renderer", json_object_new_string(s->renderer_desc));
	const char *video = SDL_GetCurrentVideoDriver();
	json_object_object_add(r, "video", json_object_new_string(video ? video : ""));
	return r;
}

static void do_switch(struct seat *s, struct seat_client *c, const char *name)
{
	int i = seat_find(s, name);
	if (i < 0) {
		char msg[160];
		snprintf(msg, sizeof(msg),
			 "the seat shows no VM '%.40s'; it must be running with "
			 "display = on",
			 name);
		fail(c, msg);
		return;
	}
	input_switch(s, i);
	reply(c, ok());
}

/* Parses a request by jsonl.h's rules: its command, and its one argument where it takes one
 * (switch: "name", screenshot: "path"). */
static int parse(const char *line, size_t len, enum seat_cmd *cmd, char *arg, size_t size, struct err *e)
{
	static const char *const name_field[] = {"name", NULL}, *const path_field[] = {"path", NULL};
	struct json_object *o;
	if (jsonl_parse_object(line, len, SEAT_CONTROL_MAX_LINE, &o, e) < 0)
		return -1;
	int r = jsonl_command(o, cmd_names, SEAT_NCMDS, e);
	if (r >= 0) {
		*cmd = (enum seat_cmd)r;
		const char *const *fields = *cmd == SEAT_SWITCH ? name_field
			: *cmd == SEAT_SCREENSHOT               ? path_field
								: NULL;
		const char *v = NULL;
		r = jsonl_check_fields(o, cmd_names[r], fields, e);
		if (r == 0 && fields)
			r = jsonl_string(o, cmd_names[*cmd], fields[0], size - 1, true, &v, e);
		if (r == 0 && v)
			snprintf(arg, size, "%s", v);
	}
	json_object_put(o);
	return r < 0 ? -1 : 0;
}

static void on_request(void *ctx, struct jsonl_conn *conn, const char *line, size_t len, int fd)
{
	struct seat *s = ctx;
	struct seat_client *c = conn->user;
	enum seat_cmd cmd;
	char arg[sizeof(c->shot_path)];
	struct err e;
	(void)fd; /* the server takes no descriptors here */
	if (parse(line, len, &cmd, arg, sizeof(arg), &e) < 0) {
		fail(c, e.msg);
		return;
	}
	switch (cmd) {
	case SEAT_SWITCH: do_switch(s, c, arg); break;
	case SEAT_STATUS: reply(c, status(s)); break;
	case SEAT_STATS: reply(c, stats(s)); break;
	case SEAT_SCREENSHOT:
		memcpy(c->shot_path, arg, sizeof(c->shot_path));
		c->screenshot_wait = true;
		jsonl_park(conn);
		s->redraw = true;
		break;
	case SEAT_NCMDS: break;
	}
}

void control_frame_ready(struct seat *s)
{
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++) {
		struct seat_client *c = &s->clients[i];
		if (!c->conn || !c->screenshot_wait)
			continue;
		struct err e;
		c->screenshot_wait = false;
		if (render_screenshot(s, c->shot_path, &e) < 0)
			fail(c, e.msg);
		else
			reply(c, ok());
		if (c->conn)
			jsonl_resume(c->conn); /* what the client sent meanwhile */
	}
}

/* control: the seat's control socket (RUNTIME/seat/control.sock, mode 0600; `shoji switch` and the
 * tests use it). One JSON object a line each way:
 *   {"cmd":"switch","name":N}        make N the active VM
 *   {"cmd":"status"}                 the active VM, the switcher, each VM's state and size
 *   {"cmd":"screenshot","path":P}    the composed window as a PPM, answered after the next frame
 *   {"cmd":"stats"}                  switch and frame latencies, upload/draw/present times (ms,
 *                                    the last 256 of each), frames presented, the SDL renderer
 *                                    and video driver
 * Replies are {"ok":true,...} or {"ok":false,"error":"one line"}. A client that cannot take its
 * reply at once is dropped. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/unix_socket.h"
#include "seat.h"

int control_open(struct seat *s, struct err *e)
{
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->control_fd = -1;
	if (!s->control_path[0])
		return 0;
	return unix_socket_listen(s->control_path, "seat control socket", 16, &s->control_fd, e);
}

static void drop(struct seat_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->screenshot_wait = false;
}

void control_close_all(struct seat *s)
{
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++)
		drop(&s->clients[i]);
	if (s->control_fd >= 0) {
		close(s->control_fd);
		unlink(s->control_path);
	}
}

static void accept_one(struct seat *s, int fd)
{
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++) {
		if (s->clients[i].fd < 0) {
			s->clients[i] = (struct seat_client){.fd = fd};
			return;
		}
	}
	close(fd); /* too many at once */
}

void control_accept(struct seat *s)
{
	for (int n = 0; n < 16; n++) { /* what is waiting, a bounded number a turn */
		int fd = accept4(s->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		accept_one(s, fd);
	}
}

static void reply(struct seat_client *c, struct json_object *o)
{
	size_t n;
	char *line = rpc_line(o, &n);
	if (line) {
		if (send(c->fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
			drop(c);
		free(line);
	}
	json_object_put(o);
}

static struct json_object *ok(void)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static void fail(struct seat_client *c, const char *msg)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	reply(c, o);
}

static struct json_object *status(struct seat *s)
{
	struct json_object *o = ok(), *arr = json_object_new_array();
	json_object_object_add(o, "active", json_object_new_string(
		s->active >= 0 && s->vms[s->active].used ? s->vms[s->active].name : ""));
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

static void request(struct seat *s, struct seat_client *c, const char *line)
{
	struct json_object *o = json_tokener_parse(line), *v;
	const char *cmd = o && json_object_object_get_ex(o, "cmd", &v) ? json_object_get_string(v) : "";
	const char *arg = "";
	if (o && (json_object_object_get_ex(o, "name", &v) || json_object_object_get_ex(o, "path", &v)))
		arg = json_object_get_string(v);
	if (strcmp(cmd, "switch") == 0) {
		int i = seat_find(s, arg);
		if (i < 0) {
			char msg[160];
			snprintf(msg, sizeof(msg), "the seat shows no VM '%.40s'; it must be running with "
						   "display = on", arg);
			fail(c, msg);
		} else {
			input_switch(s, i);
			reply(c, ok());
		}
	} else if (strcmp(cmd, "status") == 0) {
		reply(c, status(s));
	} else if (strcmp(cmd, "screenshot") == 0 && arg[0] && strlen(arg) < sizeof(c->shot_path)) {
		strcpy(c->shot_path, arg);
		c->screenshot_wait = true;
		s->redraw = true;
	} else if (strcmp(cmd, "stats") == 0) {
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
		reply(c, r);
	} else {
		fail(c, "unknown request; send switch, status, screenshot or stats");
	}
	json_object_put(o);
}

/* Serves the whole lines received, up to a screenshot (answered after the next frame). */
static void serve_lines(struct seat *s, struct seat_client *c)
{
	char *nl;
	while (c->fd >= 0 && !c->screenshot_wait && (nl = memchr(c->buf, '\n', c->len))) {
		*nl = '\0';
		size_t used = (size_t)(nl + 1 - c->buf);
		request(s, c, c->buf);
		if (c->fd < 0)
			return; /* dropped: it could not take the reply */
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
		c->buf[c->len] = '\0';
	}
}

void control_read(struct seat *s, struct seat_client *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	serve_lines(s, c);
	if (c->fd >= 0 && c->len == sizeof(c->buf) - 1)
		drop(c); /* a line too long */
}

void control_frame_ready(struct seat *s)
{
	for (int i = 0; i < SEAT_MAX_CLIENTS; i++) {
		struct seat_client *c = &s->clients[i];
		if (c->fd < 0 || !c->screenshot_wait)
			continue;
		struct err e;
		c->screenshot_wait = false;
		if (render_screenshot(s, c->shot_path, &e) < 0)
			fail(c, e.msg);
		else
			reply(c, ok());
		if (c->fd >= 0)
			serve_lines(s, c); /* what the client sent meanwhile */
	}
}

/* focus: tells shojid which VM the seat shows (seat-focus), so that a USB device plugged in goes
 * to that VM where its policy says usb-auto = focused, and to no other. The word goes over one
 * connection the seat holds open: shojid forgets it when that connection ends (the seat quit or
 * crashed), so a seat that is gone never leaves devices going to a VM nobody sees. Each change
 * is sent as it happens, and again on a new connection; answers are read and a refusal logged.
 * The seat's one thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/jsonl.h"
#include "../common/log.h"
#include "seat.h"

#define RETRY_MS 1000

static void focus_close(struct seat *s)
{
	if (s->focus_fd >= 0)
		close(s->focus_fd);
	rpc_reader_free(&s->focus_rd);
	s->focus_fd = -1;
	s->focus_said = false;
	s->focus_retry_ms = seat_now_ms() + RETRY_MS;
}

static struct json_object *focus_request(const char *name)
{
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("seat-focus"));
	if (name[0])
		json_object_object_add(req, "name", json_object_new_string(name));
	return req;
}

/* Sends the request on the open connection: 0, or -1 when it could not go at once. */
static int send_on(struct seat *s, struct json_object *req)
{
	size_t n;
	char *line = jsonl_line(req, &n);
	json_object_put(req);
	int r = line && send(s->focus_fd, line, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
	free(line);
	return r;
}

void focus_tick(struct seat *s)
{
	const char *shown = s->active >= 0 && s->vms[s->active].used ? s->vms[s->active].name : "";
	if (!s->use_shojid || (s->focus_said && strcmp(shown, s->focus_sent) == 0))
		return;
	struct err e;
	if (s->focus_fd < 0) {
		if (seat_now_ms() < s->focus_retry_ms)
			return;
		if (link_send_request(s, focus_request(shown), &s->focus_fd, &e) < 0) {
			log_msg(LOG_DEBUG, "shojid: %s", e.msg);
			focus_close(s);
			return;
		}
		rpc_reader_init(&s->focus_rd, s->focus_fd, 64u << 10);
	} else if (send_on(s, focus_request(shown)) < 0) {
		focus_close(s); /* said again on a new connection */
		return;
	}
	snprintf(s->focus_sent, sizeof(s->focus_sent), "%s", shown);
	s->focus_said = true;
}

void focus_read(struct seat *s)
{
	for (;;) {
		char *line = NULL;
		struct err e;
		errno = 0;
		int r = rpc_read_line(&s->focus_rd, 0, &line, NULL, &e);
		if (r < 0 && errno == ETIMEDOUT)
			return; /* nothing more now */
		if (r != 1) {
			focus_close(s); /* shojid went away: said again when it is back */
			return;
		}
		struct json_object *o = json_tokener_parse(line), *v;
		if (o && json_object_object_get_ex(o, "error", &v))
			log_msg(LOG_WARN, "shojid refused to hear which VM is shown: %s", json_object_get_string(v));
		json_object_put(o);
		free(line);
	}
}

long long focus_next_ms(const struct seat *s)
{
	return s->use_shojid && s->focus_fd < 0 ? s->focus_retry_ms : -1;
}

/* clipboard: the seat's side of moving the clipboard between VMs. The hot key's modifiers + C
 * ask shojid to copy the shown VM's clipboard into its hold (clipboard-copy), + V to paste what
 * it holds into the shown VM (clipboard-paste); shojid applies the VMs' [policy], talks to the
 * monitors and records the events. The content never comes to the seat: it shows what shojid
 * holds (from the list's "clipboard": which VM, how many bytes) and, for a few seconds, how
 * the last copy or paste went, on the trust bar, which only the seat draws.
 *
 * One request at a time, sent without waiting and read when poll says its answer came (or at
 * its deadline), so neither shojid nor a slow guest agent holds up the seat. The seat's one
 * thread. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "seat.h"

#define CLIP_TIMEOUT_MS 5000 /* shojid's control call takes at most 3 s */
#define NOTICE_MS       4000

void seat_notice(struct seat *s, bool bad, const char *topic, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->notice, sizeof(s->notice), fmt, ap);
	va_end(ap);
	s->notice_bad = bad;
	s->notice_until_ms = seat_now_ms() + NOTICE_MS;
	s->redraw = true;
	log_msg(bad ? LOG_WARN : LOG_INFO, "%s: %s", topic, s->notice);
}

#define notice(s, bad, ...) seat_notice(s, bad, "clipboard", __VA_ARGS__)

void clip_request(struct seat *s, bool paste)
{
	const struct seat_vm *vm = s->active >= 0 && s->vms[s->active].used ? &s->vms[s->active] : NULL;
	if (!vm) {
		notice(s, true, "no vm is shown to %s", paste ? "paste into" : "copy from");
		return;
	}
	if (!s->use_shojid) {
		notice(s, true, "the clipboard moves through shojid, which this seat does not use");
		return;
	}
	if (s->clip_fd >= 0) {
		notice(s, true, "the last copy or paste has not finished");
		return;
	}
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(paste ? "clipboard-paste" : "clipboard-copy"));
	json_object_object_add(req, "name", json_object_new_string(vm->name));
	struct err e;
	int fd;
	if (link_send_request(s, req, &fd, &e) < 0) {
		notice(s, true, "shojid: %.100s", e.msg);
		return;
	}
	s->clip_fd = fd;
	s->clip_paste = paste;
	snprintf(s->clip_vm, sizeof(s->clip_vm), "%s", vm->name);
	rpc_reader_init(&s->clip_rd, fd, 64u << 10);
	s->clip_deadline_ms = seat_now_ms() + CLIP_TIMEOUT_MS;
}

static void clip_close(struct seat *s)
{
	close(s->clip_fd);
	rpc_reader_free(&s->clip_rd);
	s->clip_fd = -1;
	s->refresh = true; /* the list says what is held now */
}

static void answered(struct seat *s, struct json_object *o)
{
	struct json_object *ok, *v;
	const char *err = json_object_object_get_ex(o, "error", &v) ? json_object_get_string(v) : "no reason given";
	long long bytes = json_object_object_get_ex(o, "bytes", &v) ? json_object_get_int64(v) : 0;
	if (!json_object_object_get_ex(o, "ok", &ok) || !json_object_get_boolean(ok))
		notice(s, true, "%.150s", err); /* shojid's words: a refusal names the rule */
	else if (s->clip_paste)
		notice(s, false, "pasted %lld bytes into %s", bytes, s->clip_vm);
	else
		notice(s, false, "copied %lld bytes from %s", bytes, s->clip_vm);
}

void clip_read(struct seat *s)
{
	char *line = NULL;
	struct err e;
	errno = 0;
	int r = rpc_read_line(&s->clip_rd, 0, &line, NULL, &e);
	if (r < 0 && errno == ETIMEDOUT) {
		if (seat_now_ms() < s->clip_deadline_ms)
			return; /* more to come */
		notice(s, true, "shojid did not answer the %s in %d s", s->clip_paste ? "paste" : "copy",
		       CLIP_TIMEOUT_MS / 1000);
	} else {
		struct json_object *o = r == 1 ? json_tokener_parse(line) : NULL;
		if (o)
			answered(s, o);
		else
			notice(s, true, "shojid: %s", r < 0 ? e.msg : "no answer");
		json_object_put(o);
	}
	free(line);
	clip_close(s);
}

long long clip_next_ms(const struct seat *s)
{
	long long next = s->clip_fd >= 0 ? s->clip_deadline_ms : -1;
	return s->notice[0] ? seat_earliest_ms(next, s->notice_until_ms) : next;
}

void clip_tick(struct seat *s)
{
	if (s->clip_fd >= 0 && seat_now_ms() >= s->clip_deadline_ms)
		clip_read(s);
	if (s->notice[0] && seat_now_ms() >= s->notice_until_ms) {
		s->notice[0] = 0;
		s->redraw = true;
	}
}

void clip_apply_list(struct seat *s, struct json_object *clip)
{
	struct json_object *held, *from, *bytes;
	s->clip_held = clip && json_object_object_get_ex(clip, "held", &held) && json_object_get_boolean(held) &&
		json_object_object_get_ex(clip, "from", &from) && json_object_is_type(from, json_type_string) &&
		json_object_object_get_ex(clip, "bytes", &bytes) && json_object_is_type(bytes, json_type_int);
	if (s->clip_held) {
		snprintf(s->clip_from, sizeof(s->clip_from), "%s", json_object_get_string(from));
		s->clip_bytes = json_object_get_int64(bytes);
	}
	s->redraw = true;
}

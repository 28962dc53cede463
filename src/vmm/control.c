/* control: request parsing (through jsonl.c) and reply formatting (see control.h). */
#include "control.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../common/err.h"
#include "../common/jsonl.h"

static const char *const command_names[CONTROL_NCMDS] = {
	CONTROL_CMD_NAMES_LIST,
#ifdef SHOJI_TEST_HOOKS
	[CONTROL_TEST_FORBIDDEN_SYSCALL] = CONTROL_CMD_TEST_HOOK,
#endif
};

static void put(json_object *o, char *reply)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);
	if (n + 2 > CONTROL_REPLY_MAX) { /* cannot happen with the messages below */
		snprintf(reply, CONTROL_REPLY_MAX, "{\"ok\":false,\"error\":\"reply too long\"}\n");
		return;
	}
	memcpy(reply, s, n);
	memcpy(reply + n, "\n", 2);
}

void control_reply_error(const char *msg, char *reply)
{
	char cut[256];
	snprintf(cut, sizeof(cut), "%s", msg);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(cut));
	put(o, reply);
	json_object_put(o);
}

/* A string field of the request into out (size bytes, NUL included). */
static int string_arg(json_object *req, const char *cmd, const char *key, char *out, size_t size, struct err *e)
{
	const char *v;
	if (jsonl_string(req, cmd, key, size - 1, true, &v, e) < 0)
		return -1;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int parse(const char *line, size_t len, struct control_request *out, struct err *e)
{
	static const char *const snapshot_fields[] = {CONTROL_F_DISK, CONTROL_F_BACKING, NULL};
	json_object *req;
	if (jsonl_parse_object(line, len, CONTROL_MAX_LINE, &req, e) < 0)
		return -1;
	int r = jsonl_command(req, command_names, CONTROL_NCMDS, e);
	if (r >= 0) {
		out->cmd = (enum control_cmd)r;
		const char *name = command_names[r];
		bool snap = out->cmd == CONTROL_DISK_SNAPSHOT;
		r = jsonl_check_fields(req, name, snap ? snapshot_fields : NULL, e);
		if (r == 0 && snap &&
		    (string_arg(req, name, CONTROL_F_DISK, out->disk, sizeof(out->disk), e) < 0 ||
		     string_arg(req, name, CONTROL_F_BACKING, out->backing, sizeof(out->backing), e) < 0))
			r = -1;
	}
	json_object_put(req);
	return r < 0 ? -1 : 0;
}

int control_parse(const char *line, size_t len, struct control_request *out, char *reply)
{
	memset(out, 0, sizeof(*out));
	struct err e;
	if (parse(line, len, out, &e) < 0) {
		control_reply_error(e.msg, reply);
		return -1;
	}
	return 0;
}

void control_reply(enum control_cmd cmd, struct control_status *st, char *reply)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	if (cmd == CONTROL_STATUS || cmd == CONTROL_PAUSE || cmd == CONTROL_RESUME)
		json_object_object_add(o, CONTROL_R_STATE, json_object_new_string(st->paused ? "paused" : "running"));
	if (cmd == CONTROL_STATUS) {
		json_object_object_add(o, CONTROL_R_PID, json_object_new_int64(st->pid));
		json_object_object_add(o, CONTROL_R_CPUS, json_object_new_int64(st->cpus));
		json_object_object_add(o, CONTROL_R_MEMORY_MIB, json_object_new_int64((int64_t)st->memory_mib));
		double up = st->uptime_s < 0 ? 0 : st->uptime_s;
		char text[32]; /* milliseconds, printed as such rather than as the nearest double */
		snprintf(text, sizeof(text), "%.3f", up);
		json_object_object_add(o, CONTROL_R_UPTIME_S, json_object_new_double_s(up, text));
	}
	if (cmd == CONTROL_STATUS && st->agent) {
		json_object_object_add(o, CONTROL_R_AGENT, st->agent);
		st->agent = NULL;
	}
	if (cmd == CONTROL_SHUTDOWN && st->via)
		json_object_object_add(o, CONTROL_R_VIA, json_object_new_string(st->via));
	if (cmd == CONTROL_DISK_SNAPSHOT) {
		char text[32];
		snprintf(text, sizeof(text), "%.3f", st->paused_ms);
		json_object_object_add(o, CONTROL_R_PAUSED_MS, json_object_new_double_s(st->paused_ms, text));
	}
	put(o, reply);
	json_object_put(o);
	if (st->agent) { /* not taken above */
		json_object_put(st->agent);
		st->agent = NULL;
	}
}

/* control: request parsing and reply formatting with json-c (see control.h). */
#include "control.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	enum control_cmd cmd;
} commands[] = {
	{"status", CONTROL_STATUS},     {"pause", CONTROL_PAUSE}, {"resume", CONTROL_RESUME},
	{"shutdown", CONTROL_SHUTDOWN}, {"stop", CONTROL_STOP},   {"disk-snapshot", CONTROL_DISK_SNAPSHOT},
#ifdef SHOJI_TEST_HOOKS
	{"test-forbidden-syscall", CONTROL_TEST_FORBIDDEN_SYSCALL},
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

static int fail(char *reply, const char *fmt, const char *arg)
{
	char msg[200];
	snprintf(msg, sizeof(msg), fmt, arg);
	control_reply_error(msg, reply);
	return -1;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* A string argument of req into out (size bytes, NUL included); -1 with the reply written. */
static int string_arg(json_object *req, const char *key, char *out, size_t size, char *reply)
{
	json_object *v;
	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return fail(reply, "disk-snapshot needs a \"%s\" string", key);
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= size || strlen(s) != n)
		return fail(reply, "disk-snapshot: \"%s\" is empty, too long or holds a NUL byte", key);
	memcpy(out, s, n + 1);
	return 0;
}

int control_parse(const char *line, size_t len, struct control_request *out, char *reply)
{
	memset(out, 0, sizeof(*out));
	enum control_cmd *cmd = &out->cmd;
	if (len > CONTROL_MAX_LINE)
		return fail(reply, "request longer than %s bytes", "65536");
	if (memchr(line, '\0', len))
		return fail(reply, "request is not JSON: it holds a NUL byte%s", "");
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return fail(reply, "out of memory%s", "");
	json_object *req = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) { /* a NUL ends the input: "null", "12" complete */
		req = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		used = len;
	}
	json_tokener_free(tok);
	int r = 0;
	if (jerr != json_tokener_success) {
		r = fail(reply, "request is not JSON: %s",
			 jerr == json_tokener_continue ? "it ends too early" : json_tokener_error_desc(jerr));
	} else if (!blank(line + used, len - used)) {
		r = fail(reply, "request has more after its JSON object%s", "");
	} else if (!req || !json_object_is_type(req, json_type_object)) {
		r = fail(reply, "a request is a JSON object such as {\"cmd\":\"status\"}%s", "");
	} else {
		json_object *c;
		if (!json_object_object_get_ex(req, "cmd", &c) || !json_object_is_type(c, json_type_string)) {
			r = fail(reply, "the request has no \"cmd\" string%s", "");
		} else {
			const char *name = json_object_get_string(c);
			size_t i, n = sizeof(commands) / sizeof(commands[0]);
			for (i = 0; i < n && strcmp(commands[i].name, name) != 0; i++)
				;
			if (i == n || (size_t)json_object_get_string_len(c) != strlen(name)) {
				char shown[40]; /* printable ASCII only, so the reply stays valid UTF-8 */
				snprintf(shown, sizeof(shown), "%s", name);
				for (char *p = shown; *p; p++)
					if (*p < 0x20 || *p > 0x7e)
						*p = '?';
				r = fail(reply,
					 "unknown command '%s' (status, pause, resume, shutdown, stop or "
					 "disk-snapshot)", shown);
			} else {
				*cmd = commands[i].cmd;
				if (*cmd == CONTROL_DISK_SNAPSHOT &&
				    (string_arg(req, "disk", out->disk, sizeof(out->disk), reply) < 0 ||
				     string_arg(req, "backing", out->backing, sizeof(out->backing), reply) < 0))
					r = -1;
			}
		}
	}
	json_object_put(req);
	return r;
}

void control_reply(enum control_cmd cmd, const struct control_status *st, char *reply)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	if (cmd == CONTROL_STATUS || cmd == CONTROL_PAUSE || cmd == CONTROL_RESUME)
		json_object_object_add(o, "state", json_object_new_string(st->paused ? "paused" : "running"));
	if (cmd == CONTROL_STATUS) {
		json_object_object_add(o, "pid", json_object_new_int64(st->pid));
		json_object_object_add(o, "cpus", json_object_new_int64(st->cpus));
		json_object_object_add(o, "memory_mib", json_object_new_int64((int64_t)st->memory_mib));
		double up = st->uptime_s < 0 ? 0 : st->uptime_s;
		char text[32]; /* milliseconds, printed as such rather than as the nearest double */
		snprintf(text, sizeof(text), "%.3f", up);
		json_object_object_add(o, "uptime_s", json_object_new_double_s(up, text));
	}
	if (cmd == CONTROL_DISK_SNAPSHOT) {
		char text[32];
		snprintf(text, sizeof(text), "%.3f", st->paused_ms);
		json_object_object_add(o, "paused_ms", json_object_new_double_s(st->paused_ms, text));
	}
	put(o, reply);
	json_object_put(o);
}

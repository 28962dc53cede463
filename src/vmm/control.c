/* control: request parsing (through jsonl.c) and reply formatting (see control.h). */
#include "control.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/agent_proto.h"
#include "../common/base64.h"
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

/* clipboard-set's data: the base64 of clipboard text (empty for an empty clipboard), decoded
 * onto the heap. */
static int clipboard_arg(json_object *req, const char *cmd, struct control_request *out, struct err *e)
{
	json_object *v;
	const char *s = "";
	bool empty = json_object_object_get_ex(req, CONTROL_F_DATA, &v) && json_object_is_type(v, json_type_string) &&
		json_object_get_string_len(v) == 0;
	if (!empty && jsonl_string(req, cmd, CONTROL_F_DATA, base64_encoded_len(SHOJI_CLIPBOARD_MAX), true, &s, e) < 0)
		return -1;
	size_t n = strlen(s);
	out->data = malloc(n / 4 * 3 + 1);
	if (!out->data)
		return err_set(e, "'%s': out of memory for the clipboard", cmd);
	long got = base64_decode(s, n, out->data, n / 4 * 3);
	if (got < 0)
		return err_set(e, "'%s': the field '%s' is not base64 (RFC 4648, padded, without whitespace)", cmd,
			       CONTROL_F_DATA);
	if (got > (long)SHOJI_CLIPBOARD_MAX)
		return err_set(e, "'%s': the clipboard is longer than %u bytes", cmd, SHOJI_CLIPBOARD_MAX);
	if (!agent_text_ok(out->data, (size_t)got))
		return err_set(e, "'%s': the clipboard is not UTF-8 text without NUL", cmd);
	out->data_len = (uint32_t)got;
	return 0;
}

/* net-link's nic: a NIC's index, "0" to SHOJI_MAX_NICS - 1. */
static int nic_arg(json_object *req, const char *cmd, struct control_request *out, struct err *e)
{
	char v[4];
	if (string_arg(req, cmd, CONTROL_F_NIC, v, sizeof(v), e) < 0)
		return -1;
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end || (v[0] == '0' && v[1]) || n >= SHOJI_MAX_NICS)
		return err_set(e, "'%s': the field '%s' must be a NIC's index, from 0 to %d", cmd, CONTROL_F_NIC,
			       SHOJI_MAX_NICS - 1);
	out->nic = (unsigned)n;
	json_object *o;
	if (!json_object_object_get_ex(req, CONTROL_F_OFFLOAD, &o))
		return 0;
	if (!json_object_is_type(o, json_type_boolean))
		return err_set(e, "'%s': the field '%s' must be true or false", cmd, CONTROL_F_OFFLOAD);
	out->offload = json_object_get_boolean(o);
	return 0;
}

/* The fields of the command out->cmd (name), each checked. */
static int arguments(json_object *req, const char *name, struct control_request *out, struct err *e)
{
	static const char *const snapshot_fields[] = {CONTROL_F_DISK, CONTROL_F_BACKING, NULL};
	static const char *const clipboard_fields[] = {CONTROL_F_DATA, NULL};
	static const char *const link_fields[] = {CONTROL_F_NIC, CONTROL_F_OFFLOAD, NULL};
	bool snap = out->cmd == CONTROL_DISK_SNAPSHOT, clip = out->cmd == CONTROL_CLIPBOARD_SET;
	if (out->cmd == CONTROL_NET_LINK)
		return jsonl_check_fields(req, name, link_fields, e) < 0 ? -1 : nic_arg(req, name, out, e);
	if (jsonl_check_fields(req, name, snap ? snapshot_fields : clip ? clipboard_fields : NULL, e) < 0)
		return -1;
	if (snap &&
	    (string_arg(req, name, CONTROL_F_DISK, out->disk, sizeof(out->disk), e) < 0 ||
	     string_arg(req, name, CONTROL_F_BACKING, out->backing, sizeof(out->backing), e) < 0))
		return -1;
	return clip ? clipboard_arg(req, name, out, e) : 0;
}

static int parse(const char *line, size_t len, struct control_request *out, struct err *e)
{
	json_object *req;
	if (jsonl_parse_object(line, len, CONTROL_MAX_LINE, &req, e) < 0)
		return -1;
	int r = jsonl_command(req, command_names, CONTROL_NCMDS, e);
	if (r >= 0) {
		out->cmd = (enum control_cmd)r;
		r = arguments(req, command_names[r], out, e);
	}
	json_object_put(req);
	return r < 0 ? -1 : 0;
}

int control_parse(const char *line, size_t len, struct control_request *out, char *reply)
{
	memset(out, 0, sizeof(*out));
	struct err e;
	if (parse(line, len, out, &e) < 0) {
		control_request_free(out);
		control_reply_error(e.msg, reply);
		return -1;
	}
	return 0;
}

void control_request_free(struct control_request *req)
{
	free(req->data);
	req->data = NULL;
	req->data_len = 0;
}

char *control_reply_clipboard(const uint8_t *text, uint32_t len, size_t *n)
{
	static const char tail[] = "\"}\n";
	char head[128];
	int h = snprintf(head, sizeof(head),
			 "{\"ok\":true,\"" CONTROL_R_KIND "\":\"text\",\"" CONTROL_R_BYTES "\":%u,\"" CONTROL_R_DATA
			 "\":\"",
			 len);
	size_t b64 = base64_encoded_len(len);
	char *line = malloc((size_t)h + b64 + sizeof(tail));
	if (!line)
		return NULL;
	memcpy(line, head, (size_t)h);
	base64_encode(text, len, line + h); /* base64 needs no escape in a JSON string */
	memcpy(line + h + b64, tail, sizeof(tail));
	*n = (size_t)h + b64 + sizeof(tail) - 1;
	return line;
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
	if (cmd == CONTROL_STATUS && st->nics) {
		json_object_object_add(o, CONTROL_R_NICS, st->nics);
		st->nics = NULL;
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
	if (st->nics) {
		json_object_put(st->nics);
		st->nics = NULL;
	}
}

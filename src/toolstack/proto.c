/* proto: request parsing and error replies of the shojid API (see proto.h). */
#include "proto.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "../common/jsonl.h"

enum field {
	F_NAME = 1,
	F_DEFINITION = 2,
	F_ASSIGN = 4,
	F_TIMEOUT = 8,
	F_FOLLOW = 16,
	F_BYTES = 32,
	F_REPLACE = 64,
	F_VERSION = 128,
	F_SNAPSHOT = 256,
	F_SOURCE = 512,
	F_DEVICE = 1024,
};

static const struct {
	const char *name;
	unsigned required, optional;
} cmds[] = {
	[PROTO_PING] = {"ping", 0, 0},
	[PROTO_LIST] = {"list", 0, 0},
	[PROTO_INFO] = {"info", F_NAME, 0},
	[PROTO_CREATE] = {"create", F_NAME | F_DEFINITION, 0},
	[PROTO_DEFINITION] = {"definition", F_NAME, 0},
	[PROTO_REPLACE] = {"replace", F_NAME | F_DEFINITION, 0},
	[PROTO_SET] = {"set", F_NAME | F_ASSIGN, 0},
	[PROTO_DELETE] = {"delete", F_NAME, 0},
	[PROTO_START] = {"start", F_NAME, 0},
	[PROTO_STOP] = {"stop", F_NAME, F_TIMEOUT},
	[PROTO_KILL] = {"kill", F_NAME, 0},
	[PROTO_PAUSE] = {"pause", F_NAME, 0},
	[PROTO_RESUME] = {"resume", F_NAME, 0},
	[PROTO_CONSOLE] = {"console", F_NAME, 0},
	[PROTO_LOGS] = {"logs", F_NAME, F_BYTES},
	[PROTO_EVENTS] = {"events", 0, F_NAME | F_FOLLOW},
	[PROTO_TEMPLATE_BEGIN] = {"template-begin", F_NAME, F_REPLACE},
	[PROTO_TEMPLATE_COMMIT] = {"template-commit", F_NAME | F_VERSION, F_SOURCE},
	[PROTO_TEMPLATE_LIST] = {"template-list", 0, 0},
	[PROTO_TEMPLATE_INFO] = {"template-info", F_NAME, 0},
	[PROTO_TEMPLATE_DELETE] = {"template-delete", F_NAME, 0},
	[PROTO_SNAPSHOT_CREATE] = {"snapshot-create", F_NAME, F_SNAPSHOT},
	[PROTO_SNAPSHOT_LIST] = {"snapshot-list", F_NAME, 0},
	[PROTO_SNAPSHOT_REVERT] = {"snapshot-revert", F_NAME | F_SNAPSHOT, 0},
	[PROTO_SNAPSHOT_DELETE] = {"snapshot-delete", F_NAME | F_SNAPSHOT, 0},
	[PROTO_RUN] = {"run", F_DEFINITION, 0},
	[PROTO_DISPLAY] = {"display", F_NAME, 0},
	[PROTO_CLIPBOARD] = {"clipboard", 0, 0},
	[PROTO_CLIPBOARD_COPY] = {"clipboard-copy", F_NAME, 0},
	[PROTO_CLIPBOARD_PASTE] = {"clipboard-paste", F_NAME, 0},
	[PROTO_CLIPBOARD_CLEAR] = {"clipboard-clear", 0, 0},
	[PROTO_NET] = {"net", 0, 0},
	[PROTO_USB_LIST] = {"usb-list", 0, F_NAME},
	[PROTO_USB_ATTACH] = {"usb-attach", F_NAME | F_DEVICE, 0},
	[PROTO_USB_DETACH] = {"usb-detach", F_DEVICE, 0},
	[PROTO_SEAT_FOCUS] = {"seat-focus", 0, F_NAME},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))
_Static_assert(NCMDS == PROTO_NCMDS, "every command has its name and fields");

static const char *const field_names[] = {"name",    "definition", "assign",   "timeout", "follow", "bytes",
					  "replace", "version",    "snapshot", "source",  "device"};

static const char *const code_names[] = {
	[PROTO_OK] = "ok",
	[PROTO_ERROR] = "error",
	[PROTO_USAGE] = "usage",
	[PROTO_NOT_FOUND] = "not-found",
	[PROTO_STATE] = "state",
	[PROTO_PERMISSION] = "permission",
	[6] = "error",
	[PROTO_EXISTS] = "exists",
	[PROTO_REFUSED] = "refused",
};

const char *proto_code_name(enum proto_code code)
{
	return (unsigned)code < sizeof(code_names) / sizeof(code_names[0]) ? code_names[code] : "error";
}

enum proto_code proto_code_parse(const char *name)
{
	for (unsigned i = 0; name && i < sizeof(code_names) / sizeof(code_names[0]); i++) {
		if (strcmp(code_names[i], name) == 0)
			return (enum proto_code)i;
	}
	return PROTO_ERROR;
}

const char *proto_cmd_name(enum proto_cmd cmd)
{
	return (unsigned)cmd < NCMDS ? cmds[cmd].name : "?";
}

void proto_request_free(struct proto_request *req)
{
	free(req->definition);
	for (int i = 0; i < req->nassign; i++)
		free(req->assign[i]);
	*req = (struct proto_request){0};
}

static int field_index(const char *key)
{
	for (unsigned i = 0; i < sizeof(field_names) / sizeof(field_names[0]); i++) {
		if (strcmp(field_names[i], key) == 0)
			return (int)i;
	}
	return -1;
}

/* A VM, template or snapshot name: 1..32 of [A-Za-z0-9._-]. */
static int parse_name(struct json_object *v, const char *field, const char *what, char out[VMDEF_NAME_MAX + 1],
		      struct err *e)
{
	if (!json_object_is_type(v, json_type_string))
		return err_set(e, "'%s' must be a string", field);
	const char *s = json_object_get_string(v);
	if (!vmdef_name_ok(s) || strlen(s) != (size_t)json_object_get_string_len(v))
		return err_set(e, "'%s' is not a valid %s name (1 to %d of A-Z a-z 0-9 . _ -)", field, what,
			       VMDEF_NAME_MAX);
	strcpy(out, s);
	return 0;
}

/* v as a string of fewer than max bytes with no NUL in it; NULL otherwise. */
static const char *string_under(struct json_object *v, size_t max)
{
	if (!json_object_is_type(v, json_type_string))
		return NULL;
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	return n < max && strlen(s) == n ? s : NULL;
}

static int parse_assign(struct proto_request *r, struct json_object *v, struct err *e)
{
	if (!json_object_is_type(v, json_type_array))
		return err_set(e, "'assign' must be an array of \"KEY=VALUE\" strings");
	size_t n = json_object_array_length(v);
	if (n == 0 || n > PROTO_MAX_ASSIGN)
		return err_set(e, "'assign' must hold 1 to %d strings", PROTO_MAX_ASSIGN);
	for (size_t i = 0; i < n; i++) {
		const char *s = string_under(json_object_array_get_idx(v, i), 4096 + 1);
		if (!s)
			return err_set(e, "'assign' must hold strings of at most 4096 bytes");
		if (!(r->assign[r->nassign] = strdup(s)))
			return err_set(e, "out of memory");
		r->nassign++;
	}
	return 0;
}

/* A whole number field from lo to hi into *out. */
static int parse_int(struct json_object *v, const char *fname, int64_t lo, int64_t hi, int64_t *out, struct err *e)
{
	if (!json_object_is_type(v, json_type_int))
		return err_set(e, "'%s' must be a whole number", fname);
	*out = json_object_get_int64(v);
	if (*out < lo || *out > hi)
		return err_set(e, "'%s' must be from %lld to %lld", fname, (long long)lo, (long long)hi);
	return 0;
}

static int parse_bool(struct json_object *v, const char *fname, bool *out, struct err *e)
{
	if (!json_object_is_type(v, json_type_boolean))
		return err_set(e, "'%s' must be true or false", fname);
	*out = json_object_get_boolean(v);
	return 0;
}

static int parse_field(struct proto_request *r, int f, struct json_object *v, struct err *e)
{
	const char *fname = field_names[f], *s;
	int64_t x = 0;
	switch (1 << f) {
	case F_NAME: return parse_name(v, "name", "VM", r->name, e);
	case F_SNAPSHOT: return parse_name(v, "snapshot", "snapshot", r->snapshot, e);
	case F_DEFINITION:
		if (!json_object_is_type(v, json_type_string))
			return err_set(e, "'definition' must be a string");
		if (!(s = string_under(v, PROTO_MAX_DEFINITION + 1)))
			return err_set(e, "'definition' is over %d bytes or contains a NUL byte", PROTO_MAX_DEFINITION);
		return (r->definition = strdup(s)) ? 0 : err_set(e, "out of memory");
	case F_ASSIGN: return parse_assign(r, v, e);
	case F_SOURCE:
		if (!json_object_is_type(v, json_type_string))
			return err_set(e, "'source' must be a string");
		if (!(s = string_under(v, PROTO_MAX_SOURCE)))
			return err_set(e, "'source' must be under %d bytes, without NUL", PROTO_MAX_SOURCE);
		strcpy(r->source, s);
		return 0;
	case F_DEVICE:
		if (!(s = string_under(v, sizeof(r->device))) || !usb_port_ok(s))
			return err_set(e,
				       "'device' must be a USB device's port as shoji usb list shows it (1-2, 3-1.4)");
		strcpy(r->device, s);
		return 0;
	case F_REPLACE: return parse_bool(v, fname, &r->replace, e);
	case F_VERSION:
		if (parse_int(v, fname, 1, 1000000000, &x, e) < 0)
			return -1;
		r->version = (int)x;
		return 0;
	case F_TIMEOUT:
		if (parse_int(v, fname, 0, PROTO_MAX_TIMEOUT_S, &x, e) < 0)
			return -1;
		r->timeout_s = (int)x;
		return 0;
	case F_BYTES:
		if (parse_int(v, fname, 0, PROTO_MAX_LOG_BYTES, &x, e) < 0)
			return -1;
		r->bytes = (long)x;
		return 0;
	default: /* F_FOLLOW */ return parse_bool(v, fname, &r->follow, e);
	}
}

static int parse_object(struct json_object *obj, struct proto_request *r, enum proto_code *code, struct err *e)
{
	*code = PROTO_USAGE;
	const char *names[NCMDS];
	for (unsigned i = 0; i < NCMDS; i++)
		names[i] = cmds[i].name;
	int found = jsonl_command(obj, names, NCMDS, e);
	if (found < 0)
		return -1;
	unsigned ci = (unsigned)found;
	const char *cname = cmds[ci].name;
	r->cmd = (enum proto_cmd)ci;
	r->timeout_s = 30;
	r->bytes = 16 * 1024;
	unsigned seen = 0;
	json_object_object_foreach(obj, key, val)
	{
		if (strcmp(key, "cmd") == 0)
			continue;
		int f = field_index(key);
		if (f < 0 || !((cmds[ci].required | cmds[ci].optional) & (1u << f)))
			return err_set(e, "'%s' takes no field '%.40s'", cname, key);
		if (parse_field(r, f, val, e) < 0)
			return -1;
		seen |= 1u << f;
	}
	unsigned missing = cmds[ci].required & ~seen;
	for (unsigned f = 0; missing; f++) {
		if (missing & (1u << f))
			return err_set(e, "'%s' needs the field '%s'", cname, field_names[f]);
	}
	return 0;
}

int proto_parse_request(const char *line, size_t len, struct proto_request *req, enum proto_code *code, struct err *e)
{
	*req = (struct proto_request){0};
	*code = PROTO_USAGE;
	struct json_object *obj;
	if (jsonl_parse_object(line, len, PROTO_MAX_LINE, &obj, e) < 0)
		return -1;
	int r = parse_object(obj, req, code, e);
	json_object_put(obj);
	if (r < 0)
		proto_request_free(req);
	return r;
}

char *proto_error_reply(enum proto_code code, const char *msg)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "code", json_object_new_string(proto_code_name(code)));
	json_object_object_add(o, "error", json_object_new_string(msg));
	size_t n;
	char *line = jsonl_line(o, &n);
	json_object_put(o);
	return line;
}

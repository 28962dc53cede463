/* conn: the shoji command's connection to shojid: connecting (with the right exit status when
 * the daemon is absent or refuses us), calls, and printing errors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../common/rpc.h"
#include "../proto.h"
#include "cli.h"

int cli_fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("shoji: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return status;
}

int cli_print_json(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
	return CLI_OK;
}

const char *cli_str(struct json_object *o, const char *key, const char *def)
{
	struct json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		? json_object_get_string(v)
		: def;
}

long long cli_int(struct json_object *o, const char *key, long long def)
{
	struct json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : def;
}

struct json_object *cli_request(const char *cmd, const char *name)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "cmd", json_object_new_string(cmd));
	if (name)
		json_object_object_add(o, "name", json_object_new_string(name));
	return o;
}

static int fail_json_or_text(struct cli *c, int status, const char *code, const char *msg)
{
	if (c->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(0));
		json_object_object_add(o, "code", json_object_new_string(code));
		json_object_object_add(o, "error", json_object_new_string(msg));
		cli_print_json(o);
		json_object_put(o);
		return status;
	}
	return cli_fail(status, "%s", msg);
}

int cli_connect(struct cli *c)
{
	char sock[512];
	struct err e;
	int en;
	if (paths_get(&c->paths, PATHS_DAEMON_SOCKET, NULL, sock, sizeof(sock), &e) < 0)
		return fail_json_or_text(c, CLI_USAGE, "usage", e.msg);
	if (rpc_connect(sock, &c->fd, &en, &e) == 0) {
		rpc_reader_init(&c->rd, c->fd, 4u << 20);
		return CLI_OK;
	}
	char msg[700];
	if (en == EACCES || en == EPERM) {
		snprintf(msg, sizeof(msg),
			 "permission denied: cannot connect to %s; shoji is for root "
			 "and members of group shoji",
			 sock);
		return fail_json_or_text(c, CLI_PERMISSION, "permission", msg);
	}
	if (en == ENOENT || en == ECONNREFUSED) {
		snprintf(msg, sizeof(msg),
			 "shojid is not running (no daemon at %s); start it (systemctl "
			 "start shojid, or run shojid)",
			 sock);
		return fail_json_or_text(c, CLI_NO_DAEMON, "no-daemon", msg);
	}
	return fail_json_or_text(c, CLI_ERROR, "error", e.msg);
}

static int status_of(enum proto_code code)
{
	switch (code) {
	case PROTO_USAGE: return CLI_USAGE;
	case PROTO_NOT_FOUND: return CLI_NOT_FOUND;
	case PROTO_STATE: return CLI_STATE;
	case PROTO_PERMISSION: return CLI_PERMISSION;
	case PROTO_EXISTS: return CLI_EXISTS;
	case PROTO_REFUSED: return CLI_REFUSED;
	default: return CLI_ERROR;
	}
}

int cli_call(struct cli *c, struct json_object *req, struct json_object **reply, int *fd_out)
{
	struct err e;
	int r = c->fd >= 0 ? CLI_OK : cli_connect(c);
	if (r != CLI_OK) {
		json_object_put(req);
		return r;
	}
	struct json_object *rep = NULL;
	r = rpc_call(c->fd, &c->rd, req, -1, "shojid", &rep, fd_out, &e);
	json_object_put(req);
	if (r < 0)
		return fail_json_or_text(c, CLI_ERROR, "error", e.msg);
	struct json_object *ok;
	if (json_object_object_get_ex(rep, "ok", &ok) && json_object_get_boolean(ok)) {
		*reply = rep;
		return CLI_OK;
	}
	const char *code = cli_str(rep, "code", "error");
	r = status_of(proto_code_parse(code));
	if (c->json)
		cli_print_json(rep);
	else
		cli_fail(r, "%s", cli_str(rep, "error", "shojid gave no reason"));
	json_object_put(rep);
	return r;
}

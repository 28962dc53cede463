/* client: shojid's API connections on the shared JSON-lines server (common/jsonl_server.h):
 * each accepted with the caller's credentials checked (root or the shoji group, by SO_PEERCRED
 * and SO_PEERGROUPS), its requests handed to api.c one at a time (at most PROTO_MAX_LINE bytes;
 * a request parked on a VM operation holds the next), replies queued up to 64 MiB (an events
 * subscriber that reads no further is dropped), a descriptor passed with a reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/jsonl.h"
#include "../../common/jsonl_server.h"
#include "../../common/rpc.h"
#include "daemon.h"

static bool authorized(struct daemon *d, int fd, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	*uid = cred.uid;
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	if (!d->have_group)
		return false;
	if (cred.gid == d->group_gid)
		return true;
	gid_t groups[256];
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++) {
		if (groups[i] == d->group_gid)
			return true;
	}
	return false;
}

/* A connection: its caller's identity checked; one refused is told why and drained. */
static int on_accepted(void *ctx, struct jsonl_conn *conn)
{
	struct daemon *d = ctx;
	int slot = -1;
	for (int i = 0; i < DAEMON_MAX_CLIENTS && slot < 0; i++)
		if (!d->clients[i])
			slot = i;
	struct client *c = slot >= 0 ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		client_send_error_conn(conn, PROTO_ERROR, "shojid has too many connections; try again");
		return -1;
	}
	c->conn = conn;
	conn->user = c;
	d->clients[slot] = c;
	if (!authorized(d, conn->fd, &c->uid)) {
		char msg[300];
		snprintf(msg, sizeof(msg),
			 "permission denied: uid %u is neither root nor in group '%s'; "
			 "ask an administrator to add you to it",
			 (unsigned)c->uid, d->group);
		client_send_error(c, PROTO_PERMISSION, msg);
		return -1;
	}
	return 0;
}

static void on_request(void *ctx, struct jsonl_conn *conn, const char *line, size_t len, int fd)
{
	struct client *c = conn->user;
	if (fd >= 0)
		close(fd); /* the API takes no descriptor from its callers */
	if (c->subscriber)
		return; /* events --follow: the stream is all it gets */
	api_handle(ctx, c, line, len);
}

/* The connection went: nobody waits on it any more. */
static void on_closed(void *ctx, struct jsonl_conn *conn)
{
	struct daemon *d = ctx;
	struct client *c = conn->user;
	if (!c)
		return;
	image_job_forget(d, c);
	usbassign_forget(d, c);
	seatfocus_forget(d, c); /* before c leaves the list its word is looked up in */
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		if (d->vms[i].waiter == c)
			d->vms[i].waiter = NULL;
	}
	for (int i = 0; i < DAEMON_MAX_CLIENTS; i++) {
		if (d->clients[i] == c)
			d->clients[i] = NULL;
	}
	free(c);
}

static char *error_line(void *ctx, const char *msg, size_t *len)
{
	(void)ctx;
	char *line = proto_error_reply(PROTO_USAGE, msg);
	if (line)
		*len = strlen(line);
	return line;
}

static const struct jsonl_server_ops ops = {
	.accepted = on_accepted,
	.request = on_request,
	.closed = on_closed,
	.error_line = error_line,
};

int client_serve(struct daemon *d, int listen_fd, struct err *e)
{
	const struct jsonl_server_config cfg = {
		.what = "shojid socket",
		.ops = &ops,
		.ctx = d,
		.max_conns = DAEMON_MAX_CLIENTS,
		.max_line = PROTO_MAX_LINE,
		.max_out = 64u << 20,
		.fds_per_line = 0,
	};
	return jsonl_server_adopt(&d->api, &cfg, listen_fd, e);
}

void client_send_error_conn(struct jsonl_conn *conn, enum proto_code code, const char *msg)
{
	char *line = proto_error_reply(code, msg);
	if (line)
		jsonl_send(conn, line, strlen(line));
	free(line);
}

void client_send_line(struct client *c, const char *line, size_t len)
{
	jsonl_send(c->conn, line, len);
}

void client_send(struct client *c, struct json_object *reply)
{
	if (reply)
		jsonl_send_json(c->conn, reply);
}

void client_send_error(struct client *c, enum proto_code code, const char *msg)
{
	client_send_error_conn(c->conn, code, msg);
}

int client_send_fd(struct client *c, struct json_object *reply, int fd)
{
	size_t n;
	char *line = jsonl_line(reply, &n);
	int r = line ? jsonl_send_fd(c->conn, line, n, fd) : -1;
	free(line);
	json_object_put(reply);
	return r;
}

void client_park(struct client *c)
{
	jsonl_park(c->conn);
}

void client_resume(struct daemon *d, struct client *c, struct json_object *reply)
{
	(void)d;
	struct jsonl_conn *conn = c->conn; /* a send to a peer that has gone frees c */
	client_send(c, reply);
	if (jsonl_conn_open(conn))
		c->resume_pending = true; /* its next requests: from the loop (client_serve_resumed) */
}

void client_serve_resumed(struct daemon *d)
{
	for (bool again = true; again;) {
		again = false;
		for (int i = 0; i < DAEMON_MAX_CLIENTS; i++) {
			struct client *c = d->clients[i];
			if (!c || !c->resume_pending)
				continue;
			c->resume_pending = false;
			again = true;
			jsonl_resume(c->conn); /* may answer, park, close or resume any client */
		}
	}
}

void client_answer(struct daemon *d, struct client **waiter, struct json_object *reply)
{
	struct client *c = *waiter;
	*waiter = NULL;
	if (c)
		client_resume(d, c, reply);
	else
		json_object_put(reply);
}

void client_answer_error(struct daemon *d, struct client **waiter, enum proto_code code, const char *msg)
{
	char *line = proto_error_reply(code, msg);
	client_answer(d, waiter, json_tokener_parse(line ? line : "{\"ok\":false,\"error\":\"out of memory\"}"));
	free(line);
}

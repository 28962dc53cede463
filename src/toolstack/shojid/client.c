/* client: shojid's API connections: accept with the caller's credentials checked (root or the
 * shoji group, by SO_PEERCRED and SO_PEERGROUPS), line framing of requests (one at a time per
 * connection, at most PROTO_MAX_LINE bytes), buffered replies, and descriptor passing. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/fdpass.h"
#include "../rpc.h"
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

void client_accept(struct daemon *d)
{
	int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	int slot = -1;
	for (int i = 0; i < DAEMON_MAX_CLIENTS && slot < 0; i++) {
		if (!d->clients[i])
			slot = i;
	}
	struct client *c = slot >= 0 ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		char *line = proto_error_reply(PROTO_ERROR, "shojid has too many connections; try again");
		if (line && send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing more to do: the caller sees the connection close */
		}
		free(line);
		close(fd);
		return;
	}
	c->fd = fd;
	d->clients[slot] = c;
	if (!authorized(d, fd, &c->uid)) {
		char msg[300];
		snprintf(msg, sizeof(msg), "permission denied: uid %u is neither root nor in group '%s'; "
					   "ask an administrator to add you to it", (unsigned)c->uid, d->group);
		client_send_error(c, PROTO_PERMISSION, msg);
		c->drain_until_ms = daemon_now_ms() + 2000;
	}
}

static void out_append(struct client *c, const char *s, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		while (cap < c->outlen + n)
			cap *= 2;
		if (cap > (64u << 20)) { /* a subscriber that never reads: drop it */
			c->closing = true;
			c->outlen = 0;
			return;
		}
		char *b = realloc(c->out, cap);
		if (!b) {
			c->closing = true;
			return;
		}
		c->out = b;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

void client_send_line(struct client *c, const char *line, size_t len)
{
	out_append(c, line, len);
}

void client_send(struct client *c, struct json_object *reply)
{
	if (!reply)
		return;
	const char *s = json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
	out_append(c, s, strlen(s));
	out_append(c, "\n", 1);
	json_object_put(reply);
}

void client_send_error(struct client *c, enum proto_code code, const char *msg)
{
	char *line = proto_error_reply(code, msg);
	if (line)
		out_append(c, line, strlen(line));
	free(line);
}

int client_send_fd(struct client *c, struct json_object *reply, int fd)
{
	size_t n;
	char *line = rpc_line(reply, &n);
	int r = -1;
	if (line && c->outlen == 0) {
		ssize_t sent = fdpass_send(c->fd, line, n, fd, MSG_DONTWAIT);
		if (sent > 0) {
			r = 0;
			if ((size_t)sent < n)
				out_append(c, line + sent, n - (size_t)sent);
		}
	}
	free(line);
	json_object_put(reply);
	return r;
}

void client_close(struct daemon *d, struct client *c)
{
	image_job_forget(d, c);
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		if (d->vms[i].waiter == c)
			d->vms[i].waiter = NULL;
	}
	for (int i = 0; i < DAEMON_MAX_CLIENTS; i++) {
		if (d->clients[i] == c)
			d->clients[i] = NULL;
	}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

/* Handles the complete lines in the input while the client is not parked. */
static void handle_lines(struct daemon *d, struct client *c)
{
	while (!c->busy && !c->closing && !c->subscriber) {
		char *nl = c->inlen ? memchr(c->in, '\n', c->inlen) : NULL;
		if (!nl) {
			if (c->inlen > PROTO_MAX_LINE) {
				client_send_error(c, PROTO_USAGE, "request line too long; end each request "
								  "with a newline");
				c->drain_until_ms = daemon_now_ms() + 2000;
			}
			return;
		}
		size_t n = (size_t)(nl - c->in);
		api_handle(d, c, c->in, n);
		memmove(c->in, nl + 1, c->inlen - n - 1);
		c->inlen -= n + 1;
	}
}

void client_resume(struct daemon *d, struct client *c, struct json_object *reply)
{
	client_send(c, reply);
	c->busy = false;
	handle_lines(d, c);
}

void client_io(struct daemon *d, struct client *c, short revents)
{
	if (c->outlen) {
		ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			memmove(c->out, c->out + n, c->outlen - (size_t)n);
			c->outlen -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			client_close(d, c);
			return;
		}
	}
	if (c->drain_until_ms) {
		char sink[4096];
		if (c->outlen == 0)
			shutdown(c->fd, SHUT_WR);
		ssize_t n = (revents & POLLIN) ? recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) : -1;
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && (revents & POLLIN)) ||
		    (revents & (POLLHUP | POLLERR)))
			client_close(d, c);
		return;
	}
	if ((revents & POLLIN) && !c->closing) {
		if (c->incap - c->inlen < 4096) {
			size_t cap = c->incap ? c->incap * 2 : 8192;
			char *b = cap <= PROTO_MAX_LINE * 2u ? realloc(c->in, cap) : NULL;
			if (!b) {
				client_send_error(c, PROTO_USAGE, "request line too long; end each request "
								  "with a newline");
				c->drain_until_ms = daemon_now_ms() + 2000;
				return;
			}
			c->in = b;
			c->incap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(d, c);
			return;
		}
		if (n > 0) {
			c->inlen += (size_t)n;
			handle_lines(d, c);
		}
	}
	if ((revents & (POLLHUP | POLLERR)) && !(revents & POLLIN)) {
		client_close(d, c);
		return;
	}
	if (c->closing && c->outlen == 0)
		client_close(d, c);
}

void client_tick(struct daemon *d)
{
	long long now = daemon_now_ms();
	for (int i = 0; i < DAEMON_MAX_CLIENTS; i++) {
		struct client *c = d->clients[i];
		if (c && c->drain_until_ms && now > c->drain_until_ms)
			client_close(d, c);
	}
}

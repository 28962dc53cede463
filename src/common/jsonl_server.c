/* jsonl_server: the JSON-lines socket server (see jsonl_server.h). */
#include "jsonl_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "jsonl.h"
#include "log.h"
#include "rpc.h"
#include "unix_socket.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int jsonl_server_adopt(struct jsonl_server *s, const struct jsonl_server_config *cfg, int listen_fd, struct err *e)
{
	*s = (struct jsonl_server){.cfg = *cfg, .listen_fd = listen_fd};
	s->conns = calloc(cfg->max_conns, sizeof(*s->conns));
	if (!s->conns) {
		close(listen_fd);
		s->listen_fd = -1;
		return err_set(e, "out of memory for the %s's connections", cfg->what);
	}
	for (unsigned i = 0; i < cfg->max_conns; i++)
		s->conns[i] = (struct jsonl_conn){.fd = -1, .passed_fd = -1};
	return 0;
}

int jsonl_server_listen(struct jsonl_server *s, const struct jsonl_server_config *cfg, const char *path, struct err *e)
{
	int fd;
	*s = (struct jsonl_server){.listen_fd = -1};
	if (unix_socket_listen(path, cfg->what, 16, &fd, e) < 0)
		return -1;
	if (jsonl_server_adopt(s, cfg, fd, e) < 0) {
		unlink(path);
		return -1;
	}
	s->path = path;
	return 0;
}

/* Frees a closed connection's slot for a new one. */
static void release(struct jsonl_conn *c)
{
	free(c->in);
	free(c->out);
	*c = (struct jsonl_conn){.fd = -1, .passed_fd = -1};
}

void jsonl_close(struct jsonl_conn *c)
{
	if (c->fd < 0 || c->dead)
		return;
	struct jsonl_server *s = c->server;
	close(c->fd);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	c->fd = c->passed_fd = -1;
	c->dead = true; /* its buffers stay until the slot is released: a callback may be using them */
	if (s->cfg.ops->closed)
		s->cfg.ops->closed(s->cfg.ctx, c);
	c->user = NULL;
}

void jsonl_server_close(struct jsonl_server *s)
{
	for (unsigned i = 0; s->conns && i < s->cfg.max_conns; i++) {
		jsonl_close(&s->conns[i]);
		release(&s->conns[i]);
	}
	free(s->conns);
	s->conns = NULL;
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	s->listen_fd = -1;
	if (s->path && unlink(s->path) < 0)
		log_warn("cannot remove the %s '%s': %s", s->cfg.what, s->path, strerror(errno));
	s->path = NULL;
}

/* Closes refused connections whose drain time is over; the milliseconds until the next such
 * deadline, or -1. */
static int tick(struct jsonl_server *s)
{
	long long now = now_ms(), next = -1;
	for (unsigned i = 0; s->conns && i < s->cfg.max_conns; i++) {
		struct jsonl_conn *c = &s->conns[i];
		if (!jsonl_conn_open(c) || !c->refused || !c->drain_until_ms)
			continue;
		if (now >= c->drain_until_ms)
			jsonl_close(c);
		else if (next < 0 || c->drain_until_ms - now < next)
			next = c->drain_until_ms - now;
	}
	return (int)next;
}

unsigned jsonl_server_poll_fds(struct jsonl_server *s, struct pollfd *fds, int *timeout_ms)
{
	if (s->listen_fd < 0)
		return 0;
	int t = tick(s);
	if (timeout_ms && t >= 0 && (*timeout_ms < 0 || t < *timeout_ms))
		*timeout_ms = t;
	unsigned n = 0;
	fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < s->cfg.max_conns; i++) {
		struct jsonl_conn *c = &s->conns[i];
		if (c->dead)
			release(c);
		if (c->fd < 0)
			continue;
		short ev = c->parked && !c->refused ? 0 : POLLIN;
		fds[n++] = (struct pollfd){.fd = c->fd, .events = ev | (c->outlen ? POLLOUT : 0)};
	}
	return n;
}

/* Sends what is queued; -1 when the peer is gone. */
static int flush(struct jsonl_conn *c)
{
	while (c->outlen) {
		ssize_t n = send(c->fd, c->out, c->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	return 0;
}

static int queue(struct jsonl_conn *c, const char *line, size_t len, size_t max_out)
{
	if (c->outlen + len > max_out) {
		jsonl_close(c); /* a peer that does not read */
		return -1;
	}
	if (c->outlen + len > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		while (cap < c->outlen + len)
			cap *= 2;
		char *b = realloc(c->out, cap);
		if (!b) {
			jsonl_close(c);
			return -1;
		}
		c->out = b;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, line, len);
	c->outlen += len;
	return 0;
}

/* Sends line after what is queued: at once where the socket takes it, the rest queued. */
static int send_after_queue(struct jsonl_conn *c, const char *line, size_t len, int fd)
{
	if (!jsonl_conn_open(c))
		return -1;
	size_t sent = 0;
	if (c->outlen == 0) {
		ssize_t n = fd >= 0 ? fdpass_send(c->fd, line, len, fd, MSG_DONTWAIT)
				    : send(c->fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			jsonl_close(c);
			return -1;
		}
		sent = n > 0 ? (size_t)n : 0;
		if (fd >= 0 && sent == 0)
			return -1; /* the descriptor did not go */
	}
	if (sent == len)
		return 0;
	return queue(c, line + sent, len - sent, c->server->cfg.max_out);
}

int jsonl_send(struct jsonl_conn *c, const char *line, size_t len)
{
	return send_after_queue(c, line, len, -1);
}

int jsonl_send_json(struct jsonl_conn *c, struct json_object *o)
{
	size_t len;
	char *line = jsonl_line(o, &len);
	json_object_put(o);
	int r = line ? jsonl_send(c, line, len) : -1;
	free(line);
	return r;
}

int jsonl_send_fd(struct jsonl_conn *c, const char *line, size_t len, int fd)
{
	if (!jsonl_conn_open(c) || c->outlen)
		return -1;
	return send_after_queue(c, line, len, fd);
}

void jsonl_park(struct jsonl_conn *c)
{
	c->parked = true;
}

void jsonl_refuse(struct jsonl_conn *c)
{
	c->refused = true;
	c->drain_until_ms = now_ms() + JSONL_DRAIN_MS;
}

void jsonl_close_after_output(struct jsonl_conn *c)
{
	jsonl_refuse(c);
	c->drain_until_ms = 0; /* close once flushed, without draining */
	if (c->outlen == 0)
		jsonl_close(c);
}

/* The server's own refusal: msg as the owner's error line, then refused. */
static void fault(struct jsonl_server *s, struct jsonl_conn *c, const char *msg)
{
	size_t len;
	char *line =
		s->cfg.ops->error_line ? s->cfg.ops->error_line(s->cfg.ctx, msg, &len) : jsonl_error_line(msg, &len);
	if (line)
		jsonl_send(c, line, len);
	free(line);
	jsonl_refuse(c);
}

/* Hands each whole line to the owner, in order, while the connection is open, not parked and
 * not refused; then keeps the partial line that is left. */
static void serve_lines(struct jsonl_conn *c)
{
	struct jsonl_server *s = c->server;
	size_t start = 0;
	char *nl;
	while (jsonl_conn_open(c) && !c->parked && !c->refused &&
	       (nl = memchr(c->in + start, '\n', c->inlen - start))) {
		char *line = c->in + start;
		size_t len = (size_t)(nl - line);
		start += len + 1;
		if (len && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		int fd = c->passed_fd;
		c->passed_fd = -1;
		s->cfg.ops->request(s->cfg.ctx, c, line, len, fd);
	}
	if (c->dead)
		return;
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (c->inlen > s->cfg.max_line && !c->refused && !memchr(c->in, '\n', c->inlen)) {
		char msg[128];
		snprintf(msg, sizeof(msg), "request too long: longer than %zu bytes; end each request with a newline",
			 s->cfg.max_line);
		fault(s, c, msg);
	}
}

void jsonl_resume(struct jsonl_conn *c)
{
	c->parked = false;
	serve_lines(c);
}

/* A refused connection: its output flushed, then its write side shut and its input drained
 * until the peer closes or the time is up. */
static void drain(struct jsonl_conn *c, short revents)
{
	if (c->outlen)
		return;
	if (!c->drain_until_ms) {
		jsonl_close(c);
		return;
	}
	shutdown(c->fd, SHUT_WR);
	char sink[4096];
	ssize_t n = (revents & POLLIN) ? recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) : -1;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR && (revents & POLLIN)) ||
	    (revents & (POLLHUP | POLLERR)))
		jsonl_close(c);
}

/* One read (so that a busy peer cannot starve the others), then the whole lines in it. */
static void receive(struct jsonl_conn *c)
{
	struct jsonl_server *s = c->server;
	size_t room = s->cfg.max_line + 1 - c->inlen; /* a line and its newline, at most */
	unsigned want = c->passed_fd < 0 ? s->cfg.fds_per_line : 0;
	struct fdpass_msg m;
	enum fdpass_result r = fdpass_recv(c->fd, c->in + c->inlen, room, want, MSG_DONTWAIT, &m);
	if (r == FDPASS_AGAIN)
		return;
	if (r == FDPASS_ERROR || m.len == 0) { /* hang-up: a partial line is discarded */
		jsonl_close(c);
		return;
	}
	if (m.nfds)
		c->passed_fd = m.fds[0];
	c->inlen += m.len;
	serve_lines(c);
}

static void serve_conn(struct jsonl_conn *c, short revents)
{
	if (!jsonl_conn_open(c))
		return;
	if ((revents & POLLOUT) && flush(c) < 0) {
		jsonl_close(c);
		return;
	}
	if (c->refused) {
		drain(c, revents);
		return;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR))
		receive(c);
}

static void accept_conn(struct jsonl_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	struct jsonl_conn *c = NULL;
	for (unsigned i = 0; i < s->cfg.max_conns && !c; i++)
		if (s->conns[i].fd < 0 && !s->conns[i].dead)
			c = &s->conns[i];
	char *in = c ? malloc(s->cfg.max_line + 2) : NULL;
	if (!in) {
		char msg[128];
		snprintf(msg, sizeof(msg), "too many connections to the %s; close one and retry", s->cfg.what);
		size_t len;
		char *line = s->cfg.ops->error_line ? s->cfg.ops->error_line(s->cfg.ctx, msg, &len)
						    : jsonl_error_line(msg, &len);
		if (line && send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* the peer sees the connection close */
		}
		free(line);
		close(fd);
		return;
	}
	*c = (struct jsonl_conn){.server = s, .fd = fd, .in = in, .passed_fd = -1};
	if (s->cfg.ops->accepted && s->cfg.ops->accepted(s->cfg.ctx, c) < 0 && jsonl_conn_open(c))
		jsonl_refuse(c);
}

void jsonl_server_serve(struct jsonl_server *s, const struct pollfd *fds, unsigned n)
{
	if (n == 0)
		return;
	/* Connections first: a slot closed here is not reused before the next poll_fds. */
	for (unsigned i = 1; i < n; i++) {
		if (!fds[i].revents)
			continue;
		for (unsigned j = 0; j < s->cfg.max_conns; j++)
			if (s->conns[j].fd == fds[i].fd) {
				serve_conn(&s->conns[j], fds[i].revents);
				break;
			}
	}
	if (fds[0].revents & POLLIN)
		accept_conn(s);
}

/* control_server: the control socket's connections (see control_server.h). */
#include "control_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/fdpass.h"
#include "../common/log.h"
#include "../common/unix_socket.h"

int control_server_open(struct control_server *s, const char *path, struct err *e)
{
	memset(s, 0, sizeof(*s));
	s->listen_fd = -1;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		s->clients[i] = (struct control_client){.fd = -1, .passed_fd = -1};
	s->path = path;
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	if (!path)
		return 0;
	return unix_socket_listen(path, "control socket", 16, &s->listen_fd, e);
}

static void drop(struct control_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	free(c->buf);
	*c = (struct control_client){.fd = -1, .passed_fd = -1};
}

void control_server_close(struct control_server *s)
{
	if (!s->path)
		return; /* never opened, or opened without a socket */
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		drop(&s->clients[i]);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		if (unlink(s->path) < 0)
			log_warn("cannot remove the control socket '%s': %s", s->path, strerror(errno));
	}
	s->listen_fd = -1;
}

unsigned control_server_poll_fds(const struct control_server *s, struct pollfd *fds)
{
	if (s->listen_fd < 0)
		return 0;
	unsigned n = 0;
	fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			fds[n++] = (struct pollfd){.fd = s->clients[i].fd, .events = POLLIN};
	return n;
}

/* Sends a whole reply at once or not at all: a client that does not read is dropped. */
static int send_reply(int fd, const char *reply)
{
	size_t len = strlen(reply);
	ssize_t n = send(fd, reply, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n == (ssize_t)len ? 0 : -1;
}

static void accept_client(struct control_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (unsigned i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *c = &s->clients[i];
		if (c->fd >= 0)
			continue;
		c->buf = malloc(CONTROL_MAX_LINE + 1);
		if (!c->buf)
			break;
		c->fd = fd;
		c->len = 0;
		c->passed_fd = -1;
		return;
	}
	char reply[CONTROL_REPLY_MAX];
	control_reply_error("too many control connections; close one and retry", reply);
	send_reply(fd, reply);
	close(fd);
}

/* Answers each whole line in the client's buffer; returns -1 when the client must go. */
static int serve_lines(struct control_client *c, const struct timespec *started,
		       control_exec_fn exec, void *ctx)
{
	char reply[CONTROL_REPLY_MAX];
	size_t start = 0;
	char *nl;
	while ((nl = memchr(c->buf + start, '\n', c->len - start))) {
		size_t len = (size_t)(nl - (c->buf + start));
		if (len && c->buf[start + len - 1] == '\r')
			len--;
		struct control_request req;
		int fd = c->passed_fd;
		c->passed_fd = -1;
		if (control_parse(c->buf + start, len, &req, reply) < 0) {
			if (fd >= 0)
				close(fd);
		} else {
			struct control_status st = {0};
			char why[CONTROL_WHY_MAX] = "";
			if (exec(ctx, &req, fd, &st, why) < 0) {
				control_reply_error(why, reply);
			} else {
				struct timespec now;
				clock_gettime(CLOCK_MONOTONIC, &now);
				st.pid = (long)getpid();
				st.uptime_s = (double)(now.tv_sec - started->tv_sec) +
					      (double)(now.tv_nsec - started->tv_nsec) / 1e9;
				control_reply(req.cmd, &st, reply);
			}
		}
		if (send_reply(c->fd, reply) < 0)
			return -1;
		start = (size_t)(nl - c->buf) + 1;
	}
	memmove(c->buf, c->buf + start, c->len - start);
	c->len -= start;
	if (c->len == CONTROL_MAX_LINE + 1) { /* full, and no newline in it */
		control_reply_error("request longer than 65536 bytes", reply);
		send_reply(c->fd, reply);
		return -1;
	}
	return 0;
}

static void serve_client(struct control_client *c, const struct timespec *started, short revents,
			 control_exec_fn exec, void *ctx)
{
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	/* One read per wake-up, so that a busy client cannot starve the others. */
	/* The first descriptor that comes with the bytes of a line is kept for it (one at a
	 * time); any other is closed on arrival, and control data cut short drops the client. */
	struct fdpass_msg m;
	enum fdpass_result r = fdpass_recv(c->fd, c->buf + c->len, CONTROL_MAX_LINE + 1 - c->len,
					   c->passed_fd < 0 ? 1 : 0, MSG_DONTWAIT, &m);
	if (r == FDPASS_AGAIN)
		return;
	if (r == FDPASS_ERROR || m.len == 0) { /* hang-up; a partial line is discarded */
		drop(c);
		return;
	}
	if (m.nfds)
		c->passed_fd = m.fds[0];
	c->len += m.len;
	if (serve_lines(c, started, exec, ctx) < 0)
		drop(c);
}

void control_server_serve(struct control_server *s, const struct pollfd *fds, unsigned n,
			  control_exec_fn exec, void *ctx)
{
	if (n == 0)
		return;
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = 0; j < CONTROL_MAX_CLIENTS; j++)
			if (s->clients[j].fd == fds[i].fd) {
				serve_client(&s->clients[j], &s->started, fds[i].revents, exec, ctx);
				break;
			}
	if (fds[0].revents & POLLIN)
		accept_client(s);
}

/* rpc: line-framed JSON calls over Unix sockets (see rpc.h). */
#include "rpc.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fdpass.h"
#include "jsonl.h"

int rpc_connect(const char *path, int *fd_out, int *errno_out, struct err *e)
{
	return rpc_connect_type(path, SOCK_STREAM, fd_out, errno_out, e);
}

int rpc_connect_type(const char *path, int type, int *fd_out, int *errno_out, struct err *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	*errno_out = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return *errno_out = ENAMETOOLONG, err_set(e, "socket path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	/* Non-blocking: a peer whose backlog is full must not stall the caller (calls poll). */
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return *errno_out = errno, err_errno(e, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*errno_out = errno;
		close(fd);
		return err_errno(e, *errno_out, "cannot connect to %s", path);
	}
	*fd_out = fd;
	return 0;
}

void rpc_reader_init(struct rpc_reader *r, int fd, size_t max_line)
{
	*r = (struct rpc_reader){.fd = fd, .max = max_line};
}

void rpc_reader_free(struct rpc_reader *r)
{
	if (r->has_passed_fd)
		close(r->passed_fd);
	r->has_passed_fd = false;
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, long long deadline, struct err *e)
{
	for (;;) {
		int t = deadline < 0 ? -1 : (int)(deadline - now_ms());
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, deadline >= 0 && t < 0 ? 0 : t); /* a time-out of 0 still looks once */
		if (n > 0)
			return 0;
		if (n == 0 && deadline >= 0 && now_ms() >= deadline) {
			err_set(e, "no answer in time");
			errno = ETIMEDOUT;
			return -1;
		}
		if (n < 0 && errno != EINTR)
			return err_errno(e, errno, "poll");
	}
}

int rpc_read_line(struct rpc_reader *r, int timeout_ms, char **line, int *fd_out, struct err *e)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	if (fd_out)
		*fd_out = -1;
	for (;;) {
		char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - r->buf);
			if (!(*line = malloc(n + 1)))
				return err_set(e, "out of memory");
			memcpy(*line, r->buf, n);
			(*line)[n] = '\0';
			memmove(r->buf, nl + 1, r->len - n - 1);
			r->len -= n + 1;
			if (r->has_passed_fd) {
				if (fd_out)
					*fd_out = r->passed_fd;
				else
					close(r->passed_fd);
				r->has_passed_fd = false;
			}
			return 1;
		}
		if (r->len >= r->max)
			return err_set(e, "a line longer than %zu bytes", r->max);
		if (r->cap - r->len < 4096) {
			size_t cap = r->cap ? r->cap * 2 : 8192;
			char *b = realloc(r->buf, cap);
			if (!b)
				return err_set(e, "out of memory");
			r->buf = b;
			r->cap = cap;
		}
		if (wait_fd(r->fd, POLLIN, deadline, e) < 0)
			return -1;
		/* One descriptor a line: a second one, or one in a later read of the same line, is
		 * closed. */
		struct fdpass_msg m;
		enum fdpass_result fr =
			fdpass_recv(r->fd, r->buf + r->len, r->cap - r->len, r->has_passed_fd ? 0 : 1, 0, &m);
		if (fr == FDPASS_AGAIN)
			continue;
		if (fr == FDPASS_ERROR)
			return errno == EPROTO ? err_set(e,
							 "read: the peer sent control data that was cut short "
							 "or is not a descriptor; nothing it sent was kept")
					       : err_errno(e, errno, "read");
		if (m.nfds) {
			r->passed_fd = m.fds[0];
			r->has_passed_fd = true;
		}
		size_t n = m.len;
		if (n == 0)
			return r->len ? err_set(e, "the connection ended inside a line") : 0;
		r->len += (size_t)n;
	}
}

int rpc_write_all(int fd, const char *buf, size_t len, int timeout_ms, struct err *e)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(fd, POLLOUT, deadline, e) < 0)
				return -1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_errno(e, errno, "write");
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Sends the first bytes of line with send_fd attached, waiting for room; returns how many went. */
static ssize_t send_with_fd(int fd, const char *line, size_t len, int send_fd)
{
	ssize_t n;
	for (int tries = 0;; tries++) {
		n = fdpass_send(fd, line, len, send_fd, 0);
		if (n >= 0 || (errno != EINTR && errno != EAGAIN) || tries == 50)
			return n;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		poll(&p, 1, 100);
	}
}

int rpc_call(int fd, struct rpc_reader *reader, struct json_object *req, int timeout_ms, const char *what,
	     struct json_object **reply, int *fd_out, struct err *e)
{
	return rpc_call_fd(fd, reader, req, -1, timeout_ms, what, reply, fd_out, e);
}

int rpc_call_fd(int fd, struct rpc_reader *reader, struct json_object *req, int send_fd, int timeout_ms,
		const char *what, struct json_object **reply, int *fd_out, struct err *e)
{
	size_t len;
	char *line = jsonl_line(req, &len);
	if (!line)
		return err_set(e, "out of memory");
	struct err sub, werr;
	size_t first = 0;
	if (send_fd >= 0) {
		ssize_t k = send_with_fd(fd, line, len, send_fd);
		if (k <= 0) {
			int en = errno;
			free(line);
			return err_errno(e, en, "%s: cannot pass a file descriptor", what);
		}
		first = (size_t)k;
	}
	int w = first == len ? 0 : rpc_write_all(fd, line + first, len - first, timeout_ms, &werr);
	free(line);
	/* Even when the write failed, the peer may have answered before closing (a refusal). */
	struct rpc_reader local;
	if (!reader) {
		rpc_reader_init(&local, fd, 4u << 20);
		reader = &local;
	}
	char *text = NULL;
	int r = rpc_read_line(reader, w < 0 ? 0 : timeout_ms, &text, fd_out, &sub);
	if (reader == &local)
		rpc_reader_free(&local);
	if (r <= 0 && w < 0)
		return err_set(e, "%s: %s", what, werr.msg);
	if (r <= 0)
		return err_set(e, "%s: %s", what, r == 0 ? "closed the connection without an answer" : sub.msg);
	*reply = json_tokener_parse(text);
	free(text);
	if (!*reply || !json_object_is_type(*reply, json_type_object)) {
		json_object_put(*reply);
		*reply = NULL;
		if (fd_out && *fd_out >= 0)
			close(*fd_out), *fd_out = -1;
		return err_set(e, "%s: the answer is not a JSON object", what);
	}
	return 0;
}

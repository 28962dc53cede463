/* control_server: the control socket on the shared JSON-lines server (see control_server.h). */
#include "control_server.h"

#include <string.h>
#include <unistd.h>

/* Carries out req (from c) through the owner's callback: its reply into reply, or
 * CONTROL_PARKED (c parked, no reply yet). */
static int run(struct control_server *s, struct jsonl_conn *c, const struct control_request *req, int fd, char *reply)
{
	struct control_status st = {0};
	char why[CONTROL_WHY_MAX] = "";
	bool waits = req->cmd == CONTROL_CLIPBOARD_GET || req->cmd == CONTROL_CLIPBOARD_SET;
	if (waits && s->parked) {
		if (fd >= 0)
			close(fd);
		control_reply_error("a clipboard request is already in progress", reply);
		return 0;
	}
	int r = s->exec(s->ctx, req, fd, &st, why);
	if (r == CONTROL_PARKED && waits) {
		s->parked = c;
		s->parked_cmd = req->cmd;
		jsonl_park(c);
		return r;
	}
	if (r < 0) {
		if (st.agent)
			json_object_put(st.agent);
		if (st.nics)
			json_object_put(st.nics);
		control_reply_error(why, reply);
		return 0;
	}
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	st.pid = (long)getpid();
	st.uptime_s = (double)(now.tv_sec - s->started.tv_sec) + (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
	control_reply(req->cmd, &st, reply);
	return 0;
}

static void on_request(void *ctx, struct jsonl_conn *c, const char *line, size_t len, int fd)
{
	struct control_server *s = ctx;
	char reply[CONTROL_REPLY_MAX];
	struct control_request req;
	if (control_parse(line, len, &req, reply) < 0) {
		if (fd >= 0)
			close(fd);
	} else {
		int r = run(s, c, &req, fd, reply);
		control_request_free(&req);
		if (r == CONTROL_PARKED)
			return;
	}
	jsonl_send(c, reply, strlen(reply));
}

static void on_closed(void *ctx, struct jsonl_conn *c)
{
	struct control_server *s = ctx;
	if (s->parked == c) /* its reply, when it comes, goes nowhere */
		s->parked = NULL;
}

static const struct jsonl_server_ops ops = {.request = on_request, .closed = on_closed};

int control_server_open(struct control_server *s, const char *path, struct err *e)
{
	*s = (struct control_server){.js = {.listen_fd = -1}};
	clock_gettime(CLOCK_MONOTONIC, &s->started);
	if (!path)
		return 0;
	const struct jsonl_server_config cfg = {
		.what = "control socket",
		.ops = &ops,
		.ctx = s,
		.max_conns = CONTROL_MAX_CLIENTS,
		.max_line = CONTROL_MAX_LINE,
		.max_out = CONTROL_CLIPBOARD_REPLY_MAX,
		.fds_per_line = 1,
	};
	return jsonl_server_listen(&s->js, &cfg, path, e);
}

void control_server_close(struct control_server *s)
{
	jsonl_server_close(&s->js);
}

unsigned control_server_poll_fds(struct control_server *s, struct pollfd *fds, int *timeout_ms)
{
	return jsonl_server_poll_fds(&s->js, fds, timeout_ms);
}

void control_server_serve(struct control_server *s, const struct pollfd *fds, unsigned n, control_exec_fn exec,
			  void *ctx)
{
	s->exec = exec;
	s->ctx = ctx;
	jsonl_server_serve(&s->js, fds, n);
	s->exec = NULL;
}

void control_server_finish(struct control_server *s, const char *line, size_t len, const char *why,
			   control_exec_fn exec, void *ctx)
{
	struct jsonl_conn *c = s->parked;
	if (!c)
		return;
	s->parked = NULL;
	char reply[CONTROL_REPLY_MAX];
	if (why || !line) {
		struct control_status st = {0};
		if (why)
			control_reply_error(why, reply);
		else
			control_reply(s->parked_cmd, &st, reply);
		line = reply;
		len = strlen(reply);
	}
	if (jsonl_send(c, line, len) < 0)
		return; /* dropped: it did not read */
	s->exec = exec;
	s->ctx = ctx;
	jsonl_resume(c);
	s->exec = NULL;
}

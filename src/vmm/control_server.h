/* control_server: the --control-socket (common/control_proto.h), served by the shared JSON-lines
 * server (common/jsonl_server.h) from the main thread's poll loop (runloop.c). Each request
 * line goes through control.c and the command is carried out by the owner's callback. A client
 * that sends an over-long line is told so and closed; one that leaves more than a clipboard's
 * reply (CONTROL_CLIPBOARD_REPLY_MAX) unread is dropped; at most CONTROL_MAX_CLIENTS are
 * connected, and one beyond that gets an error and is closed.
 *
 * A clipboard request waits for the guest's agent: the callback parks it (CONTROL_PARKED) and
 * the owner answers it later (control_server_finish); its connection reads no further request
 * meanwhile, and the monitor goes on serving the others. One such request at a time: another
 * meanwhile is refused. A parked client that hangs up is forgotten, and the answer dropped. A client may attach one
 * file descriptor (SCM_RIGHTS) to a request (disk-snapshot); it goes with that line, and is closed if the command does
 * not take it. The socket outlives guest reboots. Main thread only. */
#ifndef SHOJI_VMM_CONTROL_SERVER_H
#define SHOJI_VMM_CONTROL_SERVER_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "../common/err.h"
#include "../common/jsonl_server.h"
#include "control.h"

#define CONTROL_POLL_FDS (1 + CONTROL_MAX_CLIENTS)

#define CONTROL_WHY_MAX 256

/* The callback's answer for a request whose reply comes later (clipboard-get, clipboard-set). */
#define CONTROL_PARKED 1

/* Carries out the request and fills in the machine's state afterwards (paused, cpus,
 * memory_mib, paused_ms; the server adds pid and uptime). fd: the descriptor the client
 * attached (SCM_RIGHTS) to the request, or -1; the callback owns it. Returns 0, -1 with a
 * one-line reason in why (CONTROL_WHY_MAX bytes), or, for a clipboard request only,
 * CONTROL_PARKED: the owner calls control_server_finish once it has the outcome. Main thread. */
typedef int (*control_exec_fn)(void *ctx, const struct control_request *req, int fd, struct control_status *st,
			       char *why);

struct control_server {
	struct jsonl_server js;  /* listen_fd -1: no control socket */
	struct timespec started; /* for uptime_s */
	control_exec_fn exec;    /* while serving */
	void *ctx;
	struct jsonl_conn *parked; /* the client whose clipboard request awaits its reply, or NULL */
	enum control_cmd parked_cmd;
};

/* path NULL: no socket (the other functions then do nothing). */
int control_server_open(struct control_server *s, const char *path, struct err *e);
/* Closes every connection and removes the socket. */
void control_server_close(struct control_server *s);
/* Adds the descriptors to watch to fds (room for CONTROL_POLL_FDS); returns how many. Lowers
 * *timeout_ms (-1: none) to when a refused client must be closed. */
unsigned control_server_poll_fds(struct control_server *s, struct pollfd *fds, int *timeout_ms);
/* Serves what poll reported on the n descriptors that control_server_poll_fds added; exec
 * carries out the commands, with ctx (the machine of the current boot). */
void control_server_serve(struct control_server *s, const struct pollfd *fds, unsigned n, control_exec_fn exec,
			  void *ctx);
/* Whether a request is parked (its client still there). */
static inline bool control_server_parked(const struct control_server *s)
{
	return s->parked != NULL;
}
/* The parked request's reply: line (len bytes, newline included; NULL: {"ok":true}) or, when
 * why is not NULL, the error why. Its client then goes on with the requests it sent meanwhile,
 * carried out by exec with ctx as in control_server_serve. Nothing when none is parked. */
void control_server_finish(struct control_server *s, const char *line, size_t len, const char *why,
			   control_exec_fn exec, void *ctx);

#endif

/* control_server: the --control-socket (common/control_proto.h), served by the shared JSON-lines
 * server (common/jsonl_server.h) from the main thread's poll loop (runloop.c). Each request
 * line goes through control.c and the command is carried out by the owner's callback. A client
 * that sends an over-long line is told so and closed; one that cannot take its reply at once is
 * dropped; at most CONTROL_MAX_CLIENTS are connected, and one beyond that gets an error and is
 * closed. A client may attach one file descriptor (SCM_RIGHTS) to a request (disk-snapshot); it
 * goes with that line, and is closed if the command does not take it. The socket outlives guest
 * reboots. Main thread only. */
#ifndef SHOJI_VMM_CONTROL_SERVER_H
#define SHOJI_VMM_CONTROL_SERVER_H

#include <poll.h>
#include <stddef.h>
#include <time.h>

#include "../common/err.h"
#include "../common/jsonl_server.h"
#include "control.h"

#define CONTROL_POLL_FDS (1 + CONTROL_MAX_CLIENTS)

#define CONTROL_WHY_MAX 256

/* Carries out the request and fills in the machine's state afterwards (paused, cpus,
 * memory_mib, paused_ms; the server adds pid and uptime). fd: the descriptor the client
 * attached (SCM_RIGHTS) to the request, or -1; the callback owns it. Returns 0, or -1 with a
 * one-line reason in why (CONTROL_WHY_MAX bytes). */
typedef int (*control_exec_fn)(void *ctx, const struct control_request *req, int fd, struct control_status *st,
			       char *why);

struct control_server {
	struct jsonl_server js;  /* listen_fd -1: no control socket */
	struct timespec started; /* for uptime_s */
	control_exec_fn exec;    /* while serving */
	void *ctx;
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

#endif

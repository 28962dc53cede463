/* control_server: the --control-socket listener and its clients, served from the main thread's
 * poll loop (runloop.c). Requests are read without blocking and cut into lines; each line goes
 * through control.c and the command is carried out by the caller's callback. A client that
 * sends an over-long line, hangs up or cannot take its reply at once is dropped; at most
 * CONTROL_MAX_CLIENTS are connected, and a connection beyond that gets an error and is closed.
 * A client may attach one file descriptor (SCM_RIGHTS) to a request (disk-snapshot); it goes
 * to the next whole line served, and is closed if that command does not take one.
 * The socket outlives guest reboots. */
#ifndef SHOJI_VMM_CONTROL_SERVER_H
#define SHOJI_VMM_CONTROL_SERVER_H

#include <poll.h>
#include <stddef.h>
#include <time.h>

#include "../common/err.h"
#include "control.h"

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_POLL_FDS (1 + CONTROL_MAX_CLIENTS)

#define CONTROL_WHY_MAX 256

/* Carries out the request and fills in the machine's state afterwards (paused, cpus,
 * memory_mib, paused_ms; the server adds pid and uptime). fd: the descriptor the client
 * attached (SCM_RIGHTS) to the request, or -1; the callback owns it. Returns 0, or -1 with a
 * one-line reason in why (CONTROL_WHY_MAX bytes). */
typedef int (*control_exec_fn)(void *ctx, const struct control_request *req, int fd,
			       struct control_status *st, char *why);

struct control_client {
	int fd;    /* -1: a free slot */
	char *buf; /* CONTROL_MAX_LINE + 1 bytes: a line and its newline */
	size_t len;
	int passed_fd; /* a descriptor received with the bytes of the next line, or -1 */
};

struct control_server {
	int listen_fd; /* -1: no control socket */
	const char *path;
	struct timespec started; /* for uptime_s */
	struct control_client clients[CONTROL_MAX_CLIENTS];
};

/* path NULL: no socket (the other functions then do nothing). */
int control_server_open(struct control_server *s, const char *path, struct err *e);
/* Closes every connection and removes the socket. */
void control_server_close(struct control_server *s);
/* Adds the descriptors to watch to fds (room for CONTROL_POLL_FDS); returns how many. */
unsigned control_server_poll_fds(const struct control_server *s, struct pollfd *fds);
/* Serves what poll reported on the n descriptors that control_server_poll_fds added. */
void control_server_serve(struct control_server *s, const struct pollfd *fds, unsigned n,
			  control_exec_fn exec, void *ctx);

#endif

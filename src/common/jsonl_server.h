/* jsonl_server: the one server of shoji's JSON-lines sockets (shojid's API, each monitor's
 * control socket, the seat's control socket): a listening Unix stream socket and at most
 * max_conns connections, served from the owner's poll loop. Requests are read without blocking
 * and cut into lines of at most max_line bytes (a '\r' before the newline is dropped); each
 * whole line goes to the owner's request callback, one at a time per
 * connection, in order. A connection whose request is parked (jsonl_park: a long operation, a
 * screenshot after the next frame) reads no further line until jsonl_resume.
 *
 * A descriptor may come with a request (SCM_RIGHTS, through fdpass) where the owner allows it
 * (fds_per_line 1): the first one that arrives with the bytes of a line goes with that line,
 * and every other is closed on arrival, so no peer leaves a descriptor behind.
 *
 * Replies are sent at once where the socket takes them; what it does not take is queued, up to
 * max_out bytes, and a peer that falls further behind is dropped (max_out 0: a reply that does
 * not go at once drops the peer). A connection beyond max_conns, and one whose line is too
 * long, gets one error line; then the server stops reading its requests, flushes its output,
 * shuts its write side and drains what it still sends for up to JSONL_DRAIN_MS before closing,
 * so the peer reads why instead of a reset. The owner may do the same to a connection it
 * refuses (jsonl_refuse).
 *
 * One thread (the owner's poll loop) runs every function here and every callback; no locks.
 * A callback may send, park, refuse or close any connection; a closed connection's slot is
 * reused only at the next jsonl_server_poll_fds, after its closed callback has run. */
#ifndef SHOJI_COMMON_JSONL_SERVER_H
#define SHOJI_COMMON_JSONL_SERVER_H

#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define JSONL_DRAIN_MS 2000

struct jsonl_conn {
	void *user; /* the owner's state for this connection */
	/* The server's, below. */
	struct jsonl_server *server;
	int fd;   /* -1: a free slot */
	char *in; /* max_line + 2 bytes: a line, its newline and a NUL */
	size_t inlen;
	char *out;
	size_t outlen, outcap;
	int passed_fd;            /* came with the bytes of the line being completed, or -1 */
	bool parked;              /* a request is in progress: read no further line */
	bool refused;             /* no further request: flush, shut down, drain, close */
	bool dead;                /* closed; the slot is freed at the next poll_fds */
	long long drain_until_ms; /* when refused and flushed: close at this time at the latest */
};

struct jsonl_server_ops {
	/* A connection was accepted (c->user is NULL). Return -1 to refuse it: the callback has
	 * sent it the reason (jsonl_send) and the server refuses it (see above). Optional. */
	int (*accepted)(void *ctx, struct jsonl_conn *c);
	/* A request: len bytes at line (NUL-terminated there, no newline), and fd, the descriptor
	 * that came with it (-1: none), which the callback owns. */
	void (*request)(void *ctx, struct jsonl_conn *c, const char *line, size_t len, int fd);
	/* The connection is going: free c->user. Optional. */
	void (*closed)(void *ctx, struct jsonl_conn *c);
	/* The error line (ending in '\n', malloc'd) to send for msg when the server itself
	 * refuses (too many connections, a line too long). NULL: jsonl_error_line. */
	char *(*error_line)(void *ctx, const char *msg, size_t *len);
};

struct jsonl_server_config {
	const char *what; /* names the socket in errors and logs: "control socket" */
	const struct jsonl_server_ops *ops;
	void *ctx;
	unsigned max_conns;
	size_t max_line;       /* bytes of a request, newline excluded */
	size_t max_out;        /* bytes of replies queued per connection; 0: none */
	unsigned fds_per_line; /* 0 or 1 */
};

struct jsonl_server {
	struct jsonl_server_config cfg;
	int listen_fd;            /* -1: none */
	const char *path;         /* the socket removed at close (the caller's string, which it may
				   * point elsewhere, e.g. into a jail); NULL: not ours to remove */
	struct jsonl_conn *conns; /* cfg.max_conns */
};

/* Listens at path (mode 0600, a stale socket replaced: unix_socket_listen) and serves it. */
int jsonl_server_listen(struct jsonl_server *s, const struct jsonl_server_config *cfg, const char *path, struct err *e);
/* Serves listen_fd, a listening socket the caller made (non-blocking; the server closes it). */
int jsonl_server_adopt(struct jsonl_server *s, const struct jsonl_server_config *cfg, int listen_fd, struct err *e);
/* Closes every connection (their closed callbacks run) and the socket, and removes the socket
 * file when the server made it. Safe on a zeroed server. */
void jsonl_server_close(struct jsonl_server *s);

/* The descriptors to poll: at most jsonl_server_poll_room(s), written to fds, their count
 * returned. Closes refused connections whose drain time is over, frees the slots of those
 * closed since the last call, and lowers *timeout_ms (-1: none; NULL: not asked) to the next
 * drain deadline. */
unsigned jsonl_server_poll_fds(struct jsonl_server *s, struct pollfd *fds, int *timeout_ms);
static inline unsigned jsonl_server_poll_room(const struct jsonl_server *s)
{
	return 1 + s->cfg.max_conns;
}
/* Serves what poll reported on the n descriptors jsonl_server_poll_fds wrote. */
void jsonl_server_serve(struct jsonl_server *s, const struct pollfd *fds, unsigned n);

/* Queues line (len bytes, ending in '\n'); returns -1 when the connection is closed or is
 * dropped by this (see max_out). */
int jsonl_send(struct jsonl_conn *c, const char *line, size_t len);
/* The same for a JSON object, as one line; consumes o. */
int jsonl_send_json(struct jsonl_conn *c, struct json_object *o);
/* The same with fd attached (SCM_RIGHTS); only when nothing is queued before it. -1 when the
 * descriptor did not go (fd stays the caller's). */
int jsonl_send_fd(struct jsonl_conn *c, const char *line, size_t len, int fd);

/* The connection's current request continues after the callback returns: read no further line. */
void jsonl_park(struct jsonl_conn *c);
/* The parked request was answered: serve the lines that came meanwhile. */
void jsonl_resume(struct jsonl_conn *c);
/* No further request from c: flush what is queued, shut down, drain, close (see above). */
void jsonl_refuse(struct jsonl_conn *c);
/* Closes c once what is queued has been sent (at once when nothing is). */
void jsonl_close_after_output(struct jsonl_conn *c);
/* Closes c now (its closed callback runs). */
void jsonl_close(struct jsonl_conn *c);
static inline bool jsonl_conn_open(const struct jsonl_conn *c)
{
	return c->fd >= 0 && !c->dead;
}

#endif

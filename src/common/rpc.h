/* rpc: one-JSON-object-per-line calls over Unix stream sockets, as both the shojid API and the
 * monitors' control sockets speak them; a reply may carry a file descriptor (SCM_RIGHTS). */
#ifndef SHOJI_COMMON_RPC_H
#define SHOJI_COMMON_RPC_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Connects to the socket at path (the socket is non-blocking). On failure *errno_out holds the connect errno (ENOENT,
 * ECONNREFUSED: nobody listens; EACCES: no permission). */
int rpc_connect(const char *path, int *fd_out, int *errno_out, struct err *e);
/* The same for another socket type (SOCK_SEQPACKET: a monitor's display channel). */
int rpc_connect_type(const char *path, int type, int *fd_out, int *errno_out, struct err *e);

struct rpc_reader {
	int fd;
	char *buf;
	size_t len, cap, max;
	/* A descriptor that came with the bytes of a line not yet complete (a reply read in
	 * pieces), handed out with that line. */
	bool has_passed_fd;
	int passed_fd;
};

void rpc_reader_init(struct rpc_reader *r, int fd, size_t max_line);
void rpc_reader_free(struct rpc_reader *r);
/* Reads the next line (without '\n') into a malloc'd string, waiting at most timeout_ms (-1:
 * forever; 0: only what has arrived). A descriptor received with the line's bytes is stored in
 * *fd_out (-1 if none; closed when fd_out is NULL), also when the line came in several reads.
 * A descriptor belongs to the line being completed when it arrives: a caller that expects one
 * has a single request outstanding on the connection.
 * Returns 1, 0 at end of stream, -1 on error or time-out (errno ETIMEDOUT). */
int rpc_read_line(struct rpc_reader *r, int timeout_ms, char **line, int *fd_out, struct err *e);

/* Writes all of buf, waiting at most timeout_ms. */
int rpc_write_all(int fd, const char *buf, size_t len, int timeout_ms, struct err *e);

/* Sends req (one line) and returns the parsed reply object (a JSON object). what names the
 * peer in errors. reader (may be NULL) keeps what arrives after the reply for later reads. */
int rpc_call(int fd, struct rpc_reader *reader, struct json_object *req, int timeout_ms, const char *what,
	     struct json_object **reply, int *fd_out, struct err *e);
/* rpc_call with send_fd attached to the request line (SCM_RIGHTS; -1: none). After a time-out
 * (no answer within timeout_ms) errno is ETIMEDOUT. */
int rpc_call_fd(int fd, struct rpc_reader *reader, struct json_object *req, int send_fd, int timeout_ms,
		const char *what, struct json_object **reply, int *fd_out, struct err *e);

#endif

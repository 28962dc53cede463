/* unix_socket: the monitor's listening Unix sockets (control, serial console, virtio-console:
 * stream; display: seqpacket): created private to the owner, a stale socket at the path
 * replaced, and the one-client-at-a-time rule the consoles share; and the socket pair that
 * carries a NIC's frames to shoji-slirp, whichever of the monitor and shojid makes it. */
#ifndef SHOJI_COMMON_UNIX_SOCKET_H
#define SHOJI_COMMON_UNIX_SOCKET_H

#include "err.h"

/* Listens on a non-blocking, close-on-exec socket at `path`, mode 0600. `what` names it in
 * errors ("control socket"). A socket already at the path is replaced; any other file there is
 * an error. */
int unix_socket_listen(const char *path, const char *what, int backlog, int *fd, struct err *e);
/* The same for another socket type (SOCK_SEQPACKET). */
int unix_socket_listen_type(const char *path, const char *what, int type, int backlog, int *fd, struct err *e);

/* Accepts one connection on listen_fd. When *client_fd already holds a client the newcomer is
 * refused (sent `refusal`, when not NULL, and closed at once) and 0 returned; otherwise it becomes *client_fd
 * (blocking: callers use MSG_DONTWAIT where it matters) and 1 is returned. 0 also when there was nothing to accept. */
int unix_socket_accept_one(int listen_fd, int *client_fd, const char *refusal);

/* A close-on-exec SOCK_SEQPACKET pair for a NIC's frames, one frame a message, each end with
 * UNIX_SOCKET_FRAME_BUF bytes of send and receive buffer (room for a burst of 64 KiB frames);
 * `what` names it in the error. */
#define UNIX_SOCKET_FRAME_BUF (1 << 20)
int unix_socket_frame_pair(int sv[2], const char *what, struct err *e);

/* What a second console client reads before it is closed. */
#define UNIX_SOCKET_CONSOLE_BUSY "shoji-vmm: this console is in use by another client; detach it first\r\n"

#endif

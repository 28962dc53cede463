/* unix_socket: listening Unix sockets and the one-client rule (see unix_socket.h). */
#include "unix_socket.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unix_socket_listen(const char *path, const char *what, int backlog, int *fd, struct err *e)
{
	return unix_socket_listen_type(path, what, SOCK_STREAM, backlog, fd, e);
}

int unix_socket_listen_type(const char *path, const char *what, int type, int backlog, int *fd, struct err *e)
{
	*fd = -1;
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return err_set(e, "%s path '%s' is longer than %zu bytes; use a shorter path", what, path,
			       sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e,
				       "%s path '%s' exists and is not a socket; remove it or choose "
				       "another path",
				       what, path);
		unlink(path);
	}
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return err_errno(e, errno, "cannot create the %s", what);
	/* Nobody can connect before listen(), so the mode is right before the first client. */
	if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 || listen(s, backlog) < 0) {
		int saved = errno;
		close(s);
		return err_errno(e, saved, "cannot listen on %s '%s'", what, path);
	}
	*fd = s;
	return 0;
}

int unix_socket_accept_one(int listen_fd, int *client_fd, const char *refusal)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return 0;
	if (*client_fd >= 0) { /* one client at a time: the newcomer is told why and closed */
		if (refusal)
			(void)!send(fd, refusal, strlen(refusal), MSG_DONTWAIT | MSG_NOSIGNAL);
		close(fd);
		return 0;
	}
	*client_fd = fd;
	return 1;
}

int unix_socket_frame_pair(int sv[2], const char *what, struct err *e)
{
	int sz = UNIX_SOCKET_FRAME_BUF;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_errno(e, errno, "cannot make %s's socket pair", what);
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	return 0;
}

/* console: terminal mode and escape handling for the serial console (see console.h). */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/file.h"
#include "../common/unix_socket.h"

void console_open(struct console *c, int in_fd)
{
	*c = (struct console){.in_fd = in_fd,
			      .out_fd = -1,
			      .log = {.fd = -1, .old_fd = -1},
			      .listen_fd = -1,
			      .client_fd = -1};
	pthread_mutex_init(&c->out_lock, NULL);
	if (in_fd < 0 || !isatty(in_fd) || tcgetattr(in_fd, &c->saved) < 0)
		return;
	c->is_tty = true;
	struct termios raw = c->saved;
	cfmakeraw(&raw);
	raw.c_oflag = c->saved.c_oflag; /* keep output processing as it was */
	if (tcsetattr(in_fd, TCSANOW, &raw) == 0)
		c->raw = true;
}

void console_close(struct console *c)
{
	if (c->raw)
		tcsetattr(c->in_fd, TCSANOW, &c->saved);
	c->raw = false;
}

size_t console_filter(struct console *c, const uint8_t *in, size_t n, uint8_t *out, bool *quit)
{
	size_t m = 0;
	*quit = false;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];
		if (!c->is_tty) {
			out[m++] = b; /* piped input is passed through untouched */
			continue;
		}
		if (c->escape_pending) {
			c->escape_pending = false;
			if (b == 'x' || b == 'X') {
				*quit = true;
				return m;
			}
			if (b != CONSOLE_ESCAPE)
				out[m++] = CONSOLE_ESCAPE;
			out[m++] = b;
		} else if (b == CONSOLE_ESCAPE) {
			c->escape_pending = true;
		} else {
			out[m++] = b;
		}
	}
	return m;
}

int console_open_output(struct console *c, int out_fd, const char *log_path, const char *socket_path, struct err *e)
{
	c->out_fd = out_fd;
	if (log_path && logfile_open(&c->log, log_path, LOGFILE_SERIAL_CAP, e) < 0)
		return -1;
	if (socket_path) {
		if (unix_socket_listen(socket_path, "serial socket", 4, &c->listen_fd, e) < 0)
			return -1;
		c->socket_path = socket_path;
	}
	return 0;
}

void console_close_output(struct console *c)
{
	console_drop_client(c);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->socket_path);
	}
	logfile_close(&c->log);
	c->listen_fd = -1;
}

void console_output(void *opaque, const uint8_t *buf, size_t n)
{
	struct console *c = opaque;
	pthread_mutex_lock(&c->out_lock);
	if (c->out_fd >= 0)
		(void)file_write_all(c->out_fd, buf, n);
	logfile_write(&c->log, buf, n);
	if (c->client_fd >= 0) /* a hang-up is seen and handled by the main thread's poll */
		(void)send(c->client_fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	pthread_mutex_unlock(&c->out_lock);
}

void console_accept(struct console *c)
{
	pthread_mutex_lock(&c->out_lock);
	unix_socket_accept_one(c->listen_fd, &c->client_fd, UNIX_SOCKET_CONSOLE_BUSY);
	pthread_mutex_unlock(&c->out_lock);
}

void console_drop_client(struct console *c)
{
	pthread_mutex_lock(&c->out_lock);
	if (c->client_fd >= 0)
		close(c->client_fd);
	c->client_fd = -1;
	pthread_mutex_unlock(&c->out_lock);
}

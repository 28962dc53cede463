/* console: "shoji console NAME": the terminal in raw mode relayed to and from the VM's serial
 * console (a socket shojid opened and passed to us) until Ctrl-] or the VM ends. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/unix_socket.h"
#include "cli.h"

#define DETACH_KEY 0x1d /* Ctrl-] */

int cli_console(const char *name, int fd)
{
	struct termios saved, raw;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK); /* plain blocking relay */
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		fprintf(stderr, "Connected to the console of '%s'; Ctrl-] detaches.\r\n", name);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	char buf[4096];
	int status = CLI_OK;
	bool input_open = true, detached = false, first = true;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			ssize_t n = read(fd, buf, sizeof(buf));
			size_t busy_len = strlen(UNIX_SOCKET_CONSOLE_BUSY);
			if (first && n >= (ssize_t)busy_len && memcmp(buf, UNIX_SOCKET_CONSOLE_BUSY, busy_len) == 0) {
				/* The monitor serves one console client and another holds it. */
				if (tty)
					tcsetattr(STDIN_FILENO, TCSANOW, &saved);
				fprintf(stderr,
					"shoji: the console of '%s' is in use by another client; detach "
					"it there first (Ctrl-])\n",
					name);
				close(fd);
				return CLI_STATE;
			}
			first = false;
			if (n <= 0) {
				if (tty)
					fprintf(stderr, "\r\n");
				fprintf(stderr,
					"shoji: the console of '%s' closed (the VM stopped, or another "
					"client holds it)%s\n",
					name, tty ? "\r" : "");
				break;
			}
			if (file_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				break;
		}
		if (input_open && p[0].revents) {
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) { /* end of input: keep showing output */
				input_open = false;
				p[0].fd = -1;
				continue;
			}
			bool detach = false;
			for (ssize_t i = 0; i < n; i++) {
				if ((unsigned char)buf[i] == DETACH_KEY && tty) {
					n = i;
					detach = true;
				}
			}
			if (file_write_all(fd, buf, (size_t)n) < 0 || detach) {
				detached = detach;
				break;
			}
		}
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		if (detached)
			fprintf(stderr, "\nDetached from '%s'.\n", name);
	}
	close(fd);
	return status;
}

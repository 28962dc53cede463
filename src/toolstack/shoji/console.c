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

/* What one relay step found. */
enum relay {
	RELAY_ON,       /* go on */
	RELAY_BUSY,     /* another client holds the console */
	RELAY_END,      /* the console closed, or a write failed */
	RELAY_NO_INPUT, /* the terminal's input ended: output goes on */
	RELAY_DETACH,   /* the user pressed Ctrl-] */
};

/* The VM's console output to the terminal; first: the first read, which may be the monitor's
 * word that the console is in use. */
static enum relay relay_output(const char *name, int fd, bool first, bool tty)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));
	size_t busy_len = strlen(UNIX_SOCKET_CONSOLE_BUSY);
	if (first && n >= (ssize_t)busy_len && memcmp(buf, UNIX_SOCKET_CONSOLE_BUSY, busy_len) == 0)
		return RELAY_BUSY; /* the monitor serves one console client and another holds it */
	if (n <= 0) {
		if (tty)
			fprintf(stderr, "\r\n");
		fprintf(stderr, "shoji: the console of '%s' closed (the VM stopped, or another client holds it)%s\n",
			name, tty ? "\r" : "");
		return RELAY_END;
	}
	return file_write_all(STDOUT_FILENO, buf, (size_t)n) < 0 ? RELAY_END : RELAY_ON;
}

/* The terminal's input to the VM's console, up to Ctrl-] (on a terminal). */
static enum relay relay_input(int fd, bool tty)
{
	char buf[4096];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	if (n <= 0)
		return RELAY_NO_INPUT;
	bool detach = false;
	for (ssize_t i = 0; i < n; i++) {
		if ((unsigned char)buf[i] == DETACH_KEY && tty) {
			n = i;
			detach = true;
		}
	}
	if (file_write_all(fd, buf, (size_t)n) < 0)
		return RELAY_END;
	return detach ? RELAY_DETACH : RELAY_ON;
}

/* Relays both ways until the console ends or the user detaches; the last step's finding. */
static enum relay relay(const char *name, int fd, bool tty)
{
	struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	bool first = true;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return RELAY_END;
		}
		enum relay r = RELAY_ON;
		if (p[1].revents) {
			if ((r = relay_output(name, fd, first, tty)) != RELAY_ON)
				return r;
			first = false;
		}
		if (p[0].fd >= 0 && p[0].revents && (r = relay_input(fd, tty)) == RELAY_NO_INPUT)
			p[0].fd = -1; /* end of input: keep showing output */
		else if (r != RELAY_ON)
			return r;
	}
}

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
	enum relay r = relay(name, fd, tty);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	close(fd);
	if (r == RELAY_BUSY) {
		fprintf(stderr,
			"shoji: the console of '%s' is in use by another client; detach it there first (Ctrl-])\n",
			name);
		return CLI_STATE;
	}
	if (tty && r == RELAY_DETACH)
		fprintf(stderr, "\nDetached from '%s'.\n", name);
	return CLI_OK;
}

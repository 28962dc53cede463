/* console: the host side of the serial console: puts a terminal in raw mode (and restores it),
 * and watches the input for the escape sequence Ctrl-A x (quit); Ctrl-A Ctrl-A sends Ctrl-A.
 * It also fans the UART's output out to the terminal or file, the serial log and the client of
 * the serial socket (--serial socket:PATH), whose bytes are the UART's input. These outlive a
 * guest reboot, so a client stays attached across it. */
#ifndef SHOJI_VMM_CONSOLE_H
#define SHOJI_VMM_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "../common/err.h"
#include "../common/logfile.h"

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console {
	int in_fd; /* -1: no input */
	bool is_tty, raw, escape_pending, eof;
	struct termios saved;
	/* Output: out_fd (terminal or file), the serial log, and the socket's one client; -1 when absent.
	 * out_lock orders the vCPU threads' writes against the main thread's accept and drop. */
	pthread_mutex_t out_lock;
	int out_fd;
	struct logfile log; /* the serial log, capped and rotated (LOGFILE_SERIAL_CAP) */
	int listen_fd, client_fd;
	const char *socket_path;
};

void console_open(struct console *c, int in_fd);
void console_close(struct console *c);
/* Where the UART's output goes besides the input side: out_fd (-1: nowhere), a log appended to
 * at log_path, a Unix socket at socket_path (one client at a time; a second is refused); either
 * path may be NULL. After console_open. */
int console_open_output(struct console *c, int out_fd, const char *log_path, const char *socket_path, struct err *e);
/* Closes the log and the socket (removing it); after console_close. */
void console_close_output(struct console *c);
/* The UART's output callback (serial_set_output): a client that cannot take the bytes at once
 * misses them, so a slow client never stalls the guest. */
void console_output(void *opaque, const uint8_t *buf, size_t n);
/* Takes a waiting connection on the serial socket; drops the client (peer gone). */
void console_accept(struct console *c);
void console_drop_client(struct console *c);
/* Copies the bytes of in meant for the guest to out (at least n bytes of room) and returns
 * their count; sets *quit when the escape sequence asked to quit. */
size_t console_filter(struct console *c, const uint8_t *in, size_t n, uint8_t *out, bool *quit);

#endif

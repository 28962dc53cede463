/* console: the host side of the serial console: puts a terminal in raw mode (and restores it),
 * and watches the input for the escape sequence Ctrl-A x (quit); Ctrl-A Ctrl-A sends Ctrl-A. */
#ifndef SHOJI_VMM_CONSOLE_H
#define SHOJI_VMM_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console {
	int in_fd; /* -1: no input */
	bool is_tty, raw, escape_pending, eof;
	struct termios saved;
};

void console_open(struct console *c, int in_fd);
void console_close(struct console *c);
/* Copies the bytes of in meant for the guest to out (at least n bytes of room) and returns
 * their count; sets *quit when the escape sequence asked to quit. */
size_t console_filter(struct console *c, const uint8_t *in, size_t n, uint8_t *out, bool *quit);

#endif

/* console: terminal mode and escape handling for the serial console (see console.h). */
#include "console.h"

#include <unistd.h>

void console_open(struct console *c, int in_fd)
{
	*c = (struct console){.in_fd = in_fd};
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

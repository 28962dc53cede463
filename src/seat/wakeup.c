/* wakeup: when the seat's loop wakes. It sleeps in poll() on its sockets and on the window
 * system's connection (the X11 or Wayland socket SDL reads input from, found through
 * SDL_GetWindowWMInfo), so an idle seat costs no CPU: it wakes for input, a socket, or the next
 * retry or time-out of its own (link_next_ms, vmconn_retry_ms), and at least once a second.
 * Video drivers that give no connection (KMSDRM reads evdev devices of its own; offscreen and
 * dummy have no input) are handled by name: KMSDRM is asked for input every few ms, the others
 * never. All of it runs on the seat's one thread. */
#include <SDL.h>
#include <SDL_syswm.h>
#include <string.h>

#ifdef HAVE_WAYLAND_CLIENT
#include <wayland-client.h>
#endif

#include "../common/log.h"
#include "seat.h"

#define POLLED_INPUT_MS 4    /* a driver without a connection to poll: how often its input is read */
#define MAX_SLEEP_MS    1000 /* the longest sleep, whatever is pending */

static int connection_fd(SDL_Window *win)
{
	SDL_SysWMinfo info;
	SDL_VERSION(&info.version);
	if (!SDL_GetWindowWMInfo(win, &info))
		return -1;
	switch (info.subsystem) {
#if defined(SDL_VIDEO_DRIVER_X11)
	case SDL_SYSWM_X11: return ConnectionNumber(info.info.x11.display);
#endif
#if defined(SDL_VIDEO_DRIVER_WAYLAND) && defined(HAVE_WAYLAND_CLIENT)
	case SDL_SYSWM_WAYLAND: return wl_display_get_fd(info.info.wl.display);
#endif
	default: return -1;
	}
}

void wakeup_init(struct seat *s)
{
	const char *driver = SDL_GetCurrentVideoDriver();
	s->window_fd = connection_fd(s->win);
	bool no_input = driver && (strcmp(driver, "offscreen") == 0 || strcmp(driver, "dummy") == 0);
	s->window_polled = s->window_fd < 0 && !no_input;
	if (s->window_polled)
		log_msg(LOG_INFO, "video driver %s gives no connection to wait on: its input is read every %d ms",
			driver ? driver : "(none)", POLLED_INPUT_MS);
}

int wakeup_timeout_ms(struct seat *s)
{
	/* Events SDL has already read from the connection (while presenting, say) would not wake
	 * poll(): they are handled first. */
	SDL_PumpEvents();
	if (s->redraw || SDL_HasEvents(SDL_FIRSTEVENT, SDL_LASTEVENT))
		return 0;
	long long next = link_next_ms(s);
	for (int i = 0; i < SEAT_MAX_VMS; i++)
		next = seat_earliest_ms(next, vmconn_retry_ms(s, &s->vms[i]));
	long long wait = MAX_SLEEP_MS;
	if (next >= 0) {
		wait = next - seat_now_ns() / 1000000;
		wait = wait < 0 ? 0 : wait > MAX_SLEEP_MS ? MAX_SLEEP_MS : wait;
	}
	if (s->window_polled && wait > POLLED_INPUT_MS)
		wait = POLLED_INPUT_MS;
	return (int)wait;
}

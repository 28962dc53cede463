/* shoji-seat: the one process that owns the screen, keyboard and pointer. Learns the running
 * VMs with a display from shojid (or takes them from --vm), connects to each one's display
 * socket, shows the active one under a trust bar, switches on the secure hot key or `shoji
 * switch`, and sends input to the active VM alone. Options, start-up, and the main loop. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/version.h"
#include "../toolstack/paths.h"
#include "seat.h"

long long seat_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long seat_now_ms(void)
{
	return seat_now_ns() / 1000000;
}

void seat_sample(struct seat_samples *sm, double v)
{
	sm->v[sm->n++ % SEAT_SAMPLES] = v;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoji-seat [--runtime-dir DIR] [--control PATH] [--hotkey KEYS] [--size WxH]\n"
		"                  [--fullscreen] [--renderer auto|gpu|software]\n"
		"                  [--vm NAME=SOCKET[,label=COLOUR]]... [--log-level L] [--version]\n"
		"Shows the running VMs that have a display (display = on) in one window: the active one\n"
		"under a bar with its name and label colour. The hot key (default " HOTKEY_DEFAULT ")\n"
		"opens the switcher; 1..9 there (or the hot key's modifiers with 1..9) switch.\n"
		"The VMs come from shojid (its runtime directory, default /run/shoji), or from --vm\n"
		"(display sockets given directly; shojid is then not asked). The control socket\n"
		"(default RUNTIME/seat/control.sock) takes `shoji switch NAME`. Run as root or as a\n"
		"user of shojid's group (the displays are then opened through shojid). --renderer auto\n"
		"(the default) draws with the GPU, or in software where OpenGL is itself software.\n");
}

struct options {
	const char *runtime_dir, *control, *hotkey;
	enum seat_renderer renderer;
	int w, h;
	bool fullscreen;
};

static int add_vm_option(struct seat *s, const char *spec, struct err *e)
{
	char buf[512], *eq, *comma;
	if (strlen(spec) >= sizeof(buf) || !(eq = strchr(strcpy(buf, spec), '=')))
		return err_set(e, "--vm '%s': write NAME=SOCKET[,label=COLOUR]", spec);
	*eq = '\0';
	uint32_t rgb = 0x808080;
	if ((comma = strchr(eq + 1, ','))) {
		*comma = '\0';
		char label[8];
		if (strncmp(comma + 1, "label=", 6) != 0 || vmdef_parse_label(comma + 7, label, e) < 0 ||
		    vmdef_label_rgb(label, &rgb) < 0)
			return err_set(e,
				       "--vm '%s': after the socket only label=COLOUR (blue, green, "
				       "#rrggbb...) may follow",
				       spec);
	}
	if (!vmdef_name_ok(buf) || seat_find(s, buf) >= 0)
		return err_set(e, "--vm '%s': '%s' is not a VM name, or is given twice", spec, buf);
	return vmconn_add(s, buf, rgb, eq + 1) ? 0 : err_set(e, "at most %d VMs", SEAT_MAX_VMS);
}

static int parse(int argc, char **argv, struct seat *s, struct options *o, struct err *e)
{
	*o = (struct options){.hotkey = HOTKEY_DEFAULT, .w = 1280, .h = 800};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--version") == 0) {
			version_print("shoji-seat");
			exit(0);
		} else if (strcmp(a, "--fullscreen") == 0) {
			o->fullscreen = true;
			continue;
		}
		if (!v)
			return err_set(e, "unknown option '%s' or missing value (see shoji-seat --help)", a);
		i++;
		if (strcmp(a, "--runtime-dir") == 0) {
			o->runtime_dir = v;
		} else if (strcmp(a, "--control") == 0) {
			o->control = v;
		} else if (strcmp(a, "--hotkey") == 0) {
			o->hotkey = v;
		} else if (strcmp(a, "--renderer") == 0) {
			if (renderer_parse(v, &o->renderer, e) < 0)
				return -1;
		} else if (strcmp(a, "--size") == 0) {
			if (sscanf(v, "%dx%d", &o->w, &o->h) != 2 || o->w < 160 || o->h < 120 || o->w > 16384 ||
			    o->h > 16384)
				return err_set(e, "--size '%s': write WIDTHxHEIGHT, e.g. 1280x800", v);
		} else if (strcmp(a, "--vm") == 0) {
			if (add_vm_option(s, v, e) < 0)
				return -1;
		} else if (strcmp(a, "--log-level") == 0) {
			enum log_level l;
			if (log_level_parse(v, &l) < 0)
				return err_set(e, "--log-level '%s': use error, warn, info or debug", v);
			log_set_level(l);
		} else {
			return err_set(e, "unknown option '%s' (see shoji-seat --help)", a);
		}
	}
	snprintf(s->hotkey_name, sizeof(s->hotkey_name), "%s", o->hotkey);
	return hotkey_parse(o->hotkey, &s->hotkey, e);
}

static int setup(struct seat *s, const struct options *o, struct err *e)
{
	struct paths p;
	s->use_shojid = seat_nth(s, 0) < 0;
	if (paths_init(&p, NULL, o->runtime_dir, e) < 0)
		return -1;
	if (s->use_shojid && paths_get(&p, PATHS_DAEMON_SOCKET, NULL, s->shojid_sock, sizeof(s->shojid_sock), e) < 0)
		return -1;
	if (o->control)
		snprintf(s->control_path, sizeof(s->control_path), "%s", o->control);
	else if (paths_get(&p, PATHS_SEAT_CONTROL, NULL, s->control_path, sizeof(s->control_path), e) < 0)
		return -1;
	if (control_open(s, e) < 0) {
		char why[sizeof(e->msg)];
		snprintf(why, sizeof(why), "%s", e->msg);
		return err_set(e, "%.300s; start shojid (it makes the runtime directory) or give --control PATH", why);
	}
	link_init(s);
	if (SDL_Init(SDL_INIT_VIDEO) < 0)
		return err_set(e,
			       "cannot open the display: %s (set DISPLAY, or SDL_VIDEODRIVER=kmsdrm "
			       "on a console)",
			       SDL_GetError());
	s->win = SDL_CreateWindow("shoji-seat", SDL_WINDOWPOS_CENTERED, SDL_WINDOWPOS_CENTERED, o->w, o->h,
				  SDL_WINDOW_RESIZABLE | (o->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0));
	if (!s->win)
		return err_set(e, "cannot open a window: %s", SDL_GetError());
	if (renderer_open(s, o->renderer, e) < 0)
		return -1;
	log_msg(LOG_INFO, "drawing with %s", s->renderer_desc);
	SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
	SDL_StopTextInput();
	SDL_GetRendererOutputSize(s->ren, &s->win_w, &s->win_h);
	s->active = -1;
	s->auto_pick = true;
	seat_pick_default(s);
	s->redraw = true;
	wakeup_init(s);
	return 0;
}

static bool visible(const struct seat *s, int i)
{
	return s->switcher || i == s->active;
}

/* Draws and presents a frame if anything shown changed; acknowledges damage. */
static void frame(struct seat *s)
{
	bool need = s->redraw;
	for (int i = 0; i < SEAT_MAX_VMS && !need; i++)
		need = s->vms[i].used && visible(s, i) && s->vms[i].dirty[2] != 0;
	need = need || control_screenshot_waiting(s);
	long long t0 = seat_now_ns(), t1 = t0;
	if (need) {
		render_frame(s); /* uploads the shown VMs' damage */
		t1 = seat_now_ns();
	}
	/* The shown VMs' damage is out of their memfds now. The ACK lets a monitor write its next
	 * frame while this one is presented; it writes the memfd only while no DAMAGE is
	 * unacknowledged, so what the seat uploads is never half written. A hidden VM's DAMAGE is
	 * not acknowledged until the VM is shown: its monitor meanwhile only merges the guest's
	 * damage (no copying), and the seat's upload when it is shown again reads a memfd that
	 * nobody writes, then the ACK brings whatever the guest drew since. */
	bool shown[SEAT_MAX_VMS] = {false};
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		struct seat_vm *vm = &s->vms[i];
		if (!vm->used || !vm->ack_due || !visible(s, i))
			continue;
		shown[i] = need;
		vmconn_ack(vm);
	}
	if (!need)
		return;
	control_frame_ready(s);
	long long t2 = seat_now_ns();
	SDL_RenderPresent(s->ren);
	long long now = seat_now_ns();
	seat_sample(&s->draw_ms, (double)(t1 - t0) / 1e6);
	seat_sample(&s->present_ms, (double)(now - t2) / 1e6);
	s->presents++;
	s->redraw = false;
	if (s->switch_ns && s->active == s->switch_to) {
		seat_sample(&s->switch_ms, (double)(now - s->switch_ns) / 1e6);
		s->switch_ns = 0;
	}
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		struct seat_vm *vm = &s->vms[i];
		if (!shown[i])
			continue;
		vm->frames++;
		if (vm->damage_ns)
			seat_sample(&s->frame_ms, (double)(now - vm->damage_ns) / 1e6);
		vm->damage_ns = 0;
	}
}

static void loop(struct seat *s)
{
	enum { VM_FDS = 4, CTL_FDS = 5 + 2 * SEAT_MAX_VMS };
	struct pollfd pfd[CTL_FDS + 1 + SEAT_MAX_CLIENTS];
	while (!s->quit) {
		int n = 0;
		pfd[n++] = (struct pollfd){.fd = s->events_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->list_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->clip_fd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->focus_fd, .events = POLLIN};
		for (int i = 0; i < SEAT_MAX_VMS; i++, n++)
			pfd[n] = (struct pollfd){.fd = s->vms[i].used ? s->vms[i].fd : -1, .events = POLLIN};
		for (int i = 0; i < SEAT_MAX_VMS; i++, n++)
			pfd[n] = (struct pollfd){.fd = s->vms[i].used ? s->vms[i].ask_fd : -1, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = s->window_fd, .events = POLLIN}; /* input: SDL reads it */
		int timeout = wakeup_timeout_ms(s);
		unsigned nctl = control_poll_fds(s, pfd + CTL_FDS, &timeout);
		if (poll(pfd, (nfds_t)(CTL_FDS + nctl), timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents && s->events_fd >= 0)
			link_read(s);
		if (pfd[1].revents && s->list_fd >= 0)
			link_read_list(s);
		if (pfd[2].revents && s->clip_fd >= 0)
			clip_read(s);
		if (pfd[3].revents && s->focus_fd >= 0)
			focus_read(s);
		control_serve(s, pfd + CTL_FDS, nctl);
		for (int i = 0; i < SEAT_MAX_VMS; i++) {
			if (pfd[VM_FDS + i].revents && s->vms[i].used && s->vms[i].fd >= 0)
				vmconn_read(s, &s->vms[i]);
		}
		for (int i = 0; i < SEAT_MAX_VMS; i++) { /* answers, or a time-out checked each turn */
			if (s->vms[i].used && s->vms[i].ask_fd >= 0)
				link_read_display(s, &s->vms[i]);
		}
		SDL_Event ev;
		while (SDL_PollEvent(&ev))
			input_event(s, &ev);
		link_tick(s);
		for (int i = 0; i < SEAT_MAX_VMS; i++) {
			if (s->vms[i].used)
				vmconn_try_connect(s, &s->vms[i]);
		}
		seat_pick_default(s);
		focus_tick(s);
		frame(s);
	}
}

int main(int argc, char **argv)
{
	static struct seat s;
	struct options o;
	struct err e;
	log_set_prefix("shoji-seat");
	for (int i = 0; i < SEAT_MAX_VMS; i++)
		s.vms[i].fd = -1;
	s.control = (struct jsonl_server){.listen_fd = -1};
	s.events_fd = s.list_fd = s.window_fd = s.clip_fd = s.focus_fd = -1;
	if (parse(argc, argv, &s, &o, &e) < 0 || setup(&s, &o, &e) < 0) {
		fprintf(stderr, "shoji-seat: %s\n", e.msg);
		control_close_all(&s);
		SDL_Quit();
		return 1;
	}
	loop(&s);
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (s.vms[i].used)
			vmconn_remove(&s, &s.vms[i]);
	}
	control_close_all(&s);
	SDL_DestroyRenderer(s.ren);
	SDL_DestroyWindow(s.win);
	SDL_Quit();
	return 0;
}

/* seat: shoji-seat's shared state and the functions its parts call on one another. One thread:
 * poll() over the VMs' display sockets, shojid's event stream and the seat's control socket,
 * then SDL's events, then a frame when something visible changed. Every socket is
 * non-blocking and every monitor packet is checked (seat_proto.c), so no VM can stall the
 * seat or reach another VM's frames or input. */
#ifndef SHOJI_SEAT_SEAT_H
#define SHOJI_SEAT_SEAT_H

#include <SDL.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/display_proto.h"
#include "../common/err.h"
#include "../common/jsonl_server.h"
#include "../common/rpc.h"
#include "../toolstack/vmdef.h"
#include "hotkey.h"
#include "keymap.h"

#define SEAT_MAX_VMS          32
#define SEAT_MAX_CLIENTS      4
#define SEAT_CONTROL_MAX_LINE 4096 /* bytes of a control request, newline excluded */
#define SEAT_BAR_H            28   /* the trust bar, above the guest's pixels */
#define SEAT_PACKETS_PER_TURN                                                                                          \
	64               /* a monitor's packets read per loop turn, so none can starve                                 \
			  * the others */
#define SEAT_SAMPLES 256 /* latency samples kept for "stats" */

enum seat_vm_state {
	SEAT_VM_WAITING, /* no connection yet (the monitor is starting), or no HELLO yet */
	SEAT_VM_LIVE,    /* connected */
	SEAT_VM_STOPPED, /* the monitor went away and shojid has not said why yet */
	SEAT_VM_CRASHED, /* shojid reported a crash */
	SEAT_VM_BROKEN,  /* the monitor broke the protocol; the connection is closed */
};

struct seat_vm {
	bool used, seen;
	char name[VMDEF_NAME_MAX + 1];
	uint32_t rgb;
	char sock[256];
	enum seat_vm_state state;
	char why[160];
	int fd;
	long long retry_ms;
	bool hello;
	bool via_shojid; /* the display socket is out of reach: shojid connects and passes it */
	int ask_fd;      /* a display request to shojid awaiting its answer (via_shojid) */
	struct rpc_reader ask_rd;
	long long ask_deadline_ms;
	/* the current surface, mapped read-only */
	bool surface_on;
	struct display_surface surf;
	const uint8_t *map;
	size_t map_len;
	uint32_t dirty[4]; /* {x, y, w, h} not yet uploaded to tex */
	SDL_Texture *tex;
	uint32_t tex_w, tex_h;
	/* the guest's pointer image (virtio-gpu's cursor queue), drawn over its pixels */
	bool cursor_on, cursor_new;
	int32_t cursor_x, cursor_y;
	uint32_t hot_x, hot_y;
	uint8_t cursor_px[DISPLAY_CURSOR_SIZE * DISPLAY_CURSOR_SIZE * 4];
	SDL_Texture *cursor_tex;
	/* flow control */
	bool have_seq, ack_due;
	uint32_t seq, acked;
	long long damage_ns; /* when the oldest unpresented damage arrived */
	/* input */
	uint8_t held[KEYMAP_MAX_EVDEV / 8];
	uint32_t buttons; /* pointer buttons held */
	uint64_t frames, dropped_input, bad_packets;
};

/* A control socket client (control.c): its connection while it has one. */
struct seat_client {
	struct jsonl_conn *conn; /* NULL: a free slot */
	bool screenshot_wait;    /* answered after the next frame */
	char shot_path[256];
};

struct seat_samples {
	double v[SEAT_SAMPLES];
	unsigned n; /* total added; the last SEAT_SAMPLES are kept */
};

struct seat {
	struct seat_vm vms[SEAT_MAX_VMS];
	int active; /* index or -1 */
	/* Until the user picks a VM or the active one goes away, the first VM is shown (the user
	 * launched the seat to see it); after that only the user's act (the hot key, the switcher,
	 * `shoji switch`) makes a VM active: no VM ever gets the keyboard by itself. */
	bool auto_pick;
	bool switcher;
	struct hotkey hotkey;
	char hotkey_name[48]; /* as given, for the neutral screen's hint */
	bool grabbed;         /* the pointer is grabbed: relative motion to the active VM's mouse */
	int held[8];          /* the hot key's modifier keys pressed and not yet shown to any guest */
	unsigned nheld;
	bool held_used; /* the hot key was made while they were held: their releases stay here */
	SDL_Window *win;
	/* The window system's connection (X11, Wayland), which the loop polls for input; -1 where
	 * the video driver has none to give (window_polled: it must be asked every few ms). */
	int window_fd;
	bool window_polled;
	SDL_Renderer *ren;
	char renderer_desc[128]; /* "opengl (the GPU)", "software (OpenGL is llvmpipe ...)" */
	int win_w, win_h;
	bool redraw;
	/* shojid: a list now and then, events --follow as they come */
	bool use_shojid;
	char shojid_sock[256];
	int events_fd, list_fd;
	struct rpc_reader events_rd, list_rd;
	long long list_deadline_ms, list_retry_ms;
	bool refresh;
	long long events_retry_ms;
	char crashed[SEAT_MAX_VMS][VMDEF_NAME_MAX + 1]; /* names shojid reported crashed */
	/* the clipboard (clipboard.c): a copy or paste request out, what shojid holds, the notice */
	int clip_fd; /* -1: none out */
	struct rpc_reader clip_rd;
	long long clip_deadline_ms;
	bool clip_paste;
	char clip_vm[VMDEF_NAME_MAX + 1]; /* the VM the request names */
	bool clip_held;
	char clip_from[VMDEF_NAME_MAX + 1];
	long long clip_bytes;
	/* which VM is shown, as shojid last heard it (focus.c) */
	int focus_fd; /* the connection that said it; -1: none */
	struct rpc_reader focus_rd;
	bool focus_said;
	char focus_sent[VMDEF_NAME_MAX + 1];
	long long focus_retry_ms;
	char notice[160]; /* shown on the bar until notice_until_ms; "" none */
	bool notice_bad;
	long long notice_until_ms;
	/* control socket */
	char control_path[256];
	struct jsonl_server control;
	struct seat_client clients[SEAT_MAX_CLIENTS];
	/* measurements */
	long long switch_ns; /* a switch waiting for the target's first frame; 0: none */
	int switch_to;
	struct seat_samples switch_ms, frame_ms, upload_ms, draw_ms, present_ms;
	uint64_t presents;
	bool quit;
};

enum seat_renderer { SEAT_RENDERER_AUTO, SEAT_RENDERER_GPU, SEAT_RENDERER_SOFTWARE };

/* renderer.c: picks and creates s->ren for s->win */
int renderer_parse(const char *v, enum seat_renderer *out, struct err *e);
int renderer_open(struct seat *s, enum seat_renderer choice, struct err *e);

long long seat_now_ns(void);
/* The same clock (CLOCK_MONOTONIC) in ms: the deadlines' unit. */
long long seat_now_ms(void);
/* The earlier of two times in ms, where -1 means none. */
static inline long long seat_earliest_ms(long long a, long long b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}
void seat_sample(struct seat_samples *s, double v);

/* vmconn.c: one VM's display connection */
struct seat_vm *vmconn_add(struct seat *s, const char *name, uint32_t rgb, const char *sock);
void vmconn_remove(struct seat *s, struct seat_vm *vm);
void vmconn_try_connect(struct seat *s, struct seat_vm *vm);
/* When vmconn_try_connect next tries the VM's display socket (CLOCK_MONOTONIC ms); -1: it does
 * not (connected, asking shojid, or not waiting for the VM). */
long long vmconn_retry_ms(const struct seat *s, const struct seat_vm *vm);
void vmconn_disconnect(struct seat_vm *vm, enum seat_vm_state state, const char *why);
/* fd is a new connection to the VM's display (made here or passed by shojid); takes it. */
void vmconn_connected(struct seat *s, struct seat_vm *vm, int fd);
/* The socket is readable (or hung up): reads at most SEAT_PACKETS_PER_TURN packets. */
void vmconn_read(struct seat *s, struct seat_vm *vm);
void vmconn_ack(struct seat_vm *vm);
/* Sends events to the monitor (dropped, and counted, when it cannot take them at once). */
void vmconn_input(struct seat_vm *vm, uint32_t device, const struct display_input_event *ev, uint32_t n);
void vmconn_key(struct seat_vm *vm, uint16_t code, bool down);
/* Releases every key and button the VM was given. */
void vmconn_release_all(struct seat_vm *vm);
void vmconn_preferred_size(struct seat *s, struct seat_vm *vm);
const char *vmconn_state_name(enum seat_vm_state st);

/* link.c: shojid (events_fd follows its events; list_fd, while a list request is out) */
void link_init(struct seat *s);
/* events_fd is readable: an event (or shojid's end). */
void link_read(struct seat *s);
/* list_fd is readable: the reply to a list request. */
void link_read_list(struct seat *s);
/* Refreshes the VM list from shojid when asked to, or reconnects the event stream. */
void link_tick(struct seat *s);
/* When link_tick or link_read_display next has something to do by the clock (a retry, a
 * time-out), in CLOCK_MONOTONIC ms; -1: nothing. */
long long link_next_ms(const struct seat *s);
/* Asks shojid for a connection to the VM's display (the seat runs as a user of the shoji group,
 * who may not enter the monitors' runtime directories); shojid makes it and passes it over its
 * socket. The request goes out at once, and vm->ask_fd polls for the answer. */
void link_ask_display(struct seat *s, struct seat_vm *vm);
/* vm->ask_fd is readable: the answer (and the connection) or a refusal, or the time is up. */
void link_read_display(struct seat *s, struct seat_vm *vm);
void link_ask_close(struct seat_vm *vm);
/* Connects to shojid and sends req (taken) without waiting; *fd_out polls for the answer. */
int link_send_request(struct seat *s, struct json_object *req, int *fd_out, struct err *e);

/* clipboard.c: the hot key's modifiers + C / + V (see there) */
/* Asks shojid to copy the shown VM's clipboard (paste false) or paste into it. */
void clip_request(struct seat *s, bool paste);
/* clip_fd is readable (or its time is up): the answer, shown as a notice. */
/* A notice on the bar for a few seconds (bad: on red), logged under topic; the seat's own words
 * only. clip_tick ends it. */
void seat_notice(struct seat *s, bool bad, const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void clip_read(struct seat *s);
/* The request's deadline, or when the notice ends; -1: none. */
long long clip_next_ms(const struct seat *s);
void clip_tick(struct seat *s);
/* The list's "clipboard" object (NULL: none): what shojid holds. */
void clip_apply_list(struct seat *s, struct json_object *clip);

/* focus.c: shojid told which VM is shown (seat-focus), on one connection held open */
/* Says it when the shown VM changed since shojid last heard, or on a new connection. */
void focus_tick(struct seat *s);
/* focus_fd is readable: the answers (a refusal is logged), or shojid's end. */
void focus_read(struct seat *s);
/* When focus_tick next connects again; -1: nothing to do by the clock. */
long long focus_next_ms(const struct seat *s);

/* control.c: the seat's control socket */
int control_open(struct seat *s, struct err *e);
/* The control socket's descriptors to poll (room for 1 + SEAT_MAX_CLIENTS), their count
 * returned; lowers *timeout_ms to when a refused client must be closed. */
unsigned control_poll_fds(struct seat *s, struct pollfd *fds, int *timeout_ms);
/* Serves what poll reported on those n descriptors. */
void control_serve(struct seat *s, const struct pollfd *fds, unsigned n);
/* A screenshot request waits for the next frame. */
bool control_screenshot_waiting(const struct seat *s);
/* A frame is drawn but not yet presented: answers screenshot requests. */
void control_frame_ready(struct seat *s);
void control_close_all(struct seat *s);

/* wakeup.c: when the loop must wake (thread: the seat's one thread) */
/* Finds the window system's connection for s->window_fd, after the window is made. */
void wakeup_init(struct seat *s);
/* How long the loop may sleep in poll(): 0 when SDL already holds events, until the next
 * deadline of a retry or time-out, at most a second; -1 is never returned. */
int wakeup_timeout_ms(struct seat *s);

/* render.c */
void render_frame(struct seat *s);
/* The window as a PPM file. */
int render_screenshot(struct seat *s, const char *path, struct err *e);
/* Where the active VM's pixels go in the window (w == 0: nowhere). */
SDL_Rect render_guest_rect(const struct seat *s, const struct seat_vm *vm);

/* input.c: the keyboard and pointer from SDL */
void input_event(struct seat *s, const SDL_Event *ev);
/* Makes idx the active VM (releasing everything held in the one left); false when idx is not
 * a VM with a display. */
bool input_switch(struct seat *s, int idx);
/* Grabs the pointer for the active VM's relative mouse, or lets it go. */
void input_grab(struct seat *s, bool on);
int seat_find(const struct seat *s, const char *name);
/* The n-th (0-based) VM in the switcher's order, or -1. */
int seat_nth(const struct seat *s, int n);
/* The active VM went away: none is active until the user picks one (main thread). */
void seat_lose_active(struct seat *s);
/* Shows the first VM while auto_pick holds and none is active (main thread). */
void seat_pick_default(struct seat *s);

#endif

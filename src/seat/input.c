/* input: SDL keyboard and pointer events. The hot key and the switcher's keys stay in the seat;
 * everything else goes to the active VM alone, keys as evdev codes and the pointer as an
 * absolute tablet scaled to 0..32767 over the VM's pixels, or, while the pointer is grabbed
 * (the hot key's modifiers + G), as relative motion of its mouse. The hot key's modifiers are
 * held back when pressed: a guest sees them only once another key, a click or their own release
 * shows they did not start the hot key, so no guest learns that the hot key was pressed. */
#include "seat.h"

#include <string.h>

#define EV_SYN        0
#define EV_KEY        1
#define EV_REL        2
#define EV_ABS        3
#define ABS_MAX_VALUE 32767
#define REL_X         0
#define REL_Y         1
#define REL_WHEEL     8
#define GRAB_KEY      SDL_SCANCODE_G
#define COPY_KEY      SDL_SCANCODE_C
#define PASTE_KEY     SDL_SCANCODE_V

int seat_find(const struct seat *s, const char *name)
{
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (s->vms[i].used && strcmp(s->vms[i].name, name) == 0)
			return i;
	}
	return -1;
}

int seat_nth(const struct seat *s, int n)
{
	for (int i = 0; i < SEAT_MAX_VMS; i++) {
		if (s->vms[i].used && n-- == 0)
			return i;
	}
	return -1;
}

void input_grab(struct seat *s, bool on)
{
	if (s->grabbed == on)
		return;
	/* SDL hides the host pointer and keeps it in the window; motion comes as deltas. */
	s->grabbed = on && SDL_SetRelativeMouseMode(SDL_TRUE) == 0;
	if (!s->grabbed)
		SDL_SetRelativeMouseMode(SDL_FALSE);
	s->redraw = true;
}

bool input_switch(struct seat *s, int idx)
{
	if (idx < 0 || idx >= SEAT_MAX_VMS || !s->vms[idx].used)
		return false;
	input_grab(s, false); /* a grab belongs to the VM it was made for */
	if (s->active >= 0 && s->active != idx)
		vmconn_release_all(&s->vms[s->active]);
	if (s->active != idx) {
		s->switch_ns = seat_now_ns();
		s->switch_to = idx;
		struct seat_vm *vm = &s->vms[idx];
		if (vm->surface_on) { /* its whole memfd, quiet under its held DAMAGE, is shown now */
			uint32_t all[4] = {0, 0, vm->surf.width, vm->surf.height};
			memcpy(vm->dirty, all, sizeof(all));
		}
	}
	s->active = idx;
	s->auto_pick = false; /* the user has picked */
	s->switcher = false;
	s->redraw = true;
	return true;
}

void seat_lose_active(struct seat *s)
{
	input_grab(s, false);
	s->active = -1;
	s->auto_pick = false;
	s->redraw = true;
}

void seat_pick_default(struct seat *s)
{
	if (s->active < 0 && s->auto_pick && seat_nth(s, 0) >= 0) {
		s->active = seat_nth(s, 0);
		s->redraw = true;
	}
}

static struct seat_vm *active(struct seat *s)
{
	return s->active >= 0 && s->vms[s->active].used && s->vms[s->active].state == SEAT_VM_LIVE ? &s->vms[s->active]
												   : NULL;
}

/* The switcher's keys: 1..9 pick a VM, Escape closes, the hot key again closes. */
static void switcher_key(struct seat *s, const SDL_KeyboardEvent *k)
{
	if (k->type != SDL_KEYDOWN)
		return;
	SDL_Scancode sc = k->keysym.scancode;
	if (sc >= SDL_SCANCODE_1 && sc <= SDL_SCANCODE_9)
		input_switch(s, seat_nth(s, sc - SDL_SCANCODE_1));
	else if (sc == SDL_SCANCODE_ESCAPE)
		s->switcher = false;
	s->redraw = true;
}

/* The HOTKEY_* bit a modifier key stands for (0: not a modifier). */
static unsigned modifier_bit(SDL_Scancode sc)
{
	switch (sc) {
	case SDL_SCANCODE_LCTRL:
	case SDL_SCANCODE_RCTRL: return HOTKEY_CTRL;
	case SDL_SCANCODE_LALT:
	case SDL_SCANCODE_RALT: return HOTKEY_ALT;
	case SDL_SCANCODE_LSHIFT:
	case SDL_SCANCODE_RSHIFT: return HOTKEY_SHIFT;
	case SDL_SCANCODE_LGUI:
	case SDL_SCANCODE_RGUI: return HOTKEY_SUPER;
	default: return 0;
	}
}

static int held_find(const struct seat *s, SDL_Scancode sc)
{
	for (unsigned i = 0; i < s->nheld; i++)
		if (s->held[i] == (int)sc)
			return (int)i;
	return -1;
}

/* Something other than the hot key came: the held modifiers were the user's, for the guest. */
static void held_flush(struct seat *s, struct seat_vm *vm)
{
	for (unsigned i = 0; vm && i < s->nheld; i++)
		vmconn_key(vm, keymap_hid_to_evdev((SDL_Scancode)s->held[i]), true);
	s->nheld = 0;
	s->held_used = false;
}

/* A hot-key modifier pressed or released; true when the seat keeps the event. */
static bool held_modifier(struct seat *s, const SDL_KeyboardEvent *k)
{
	SDL_Scancode sc = k->keysym.scancode;
	int i = held_find(s, sc);
	if (!(modifier_bit(sc) & s->hotkey.mods))
		return false;
	if (k->type == SDL_KEYDOWN) {
		if (i < 0 && !k->repeat && s->nheld < sizeof(s->held) / sizeof(s->held[0])) {
			s->held[s->nheld++] = sc;
			return true;
		}
		return i >= 0; /* a held one's repeats stay here; a shown one's go on */
	}
	if (i < 0)
		return false; /* shown to the guest already: its release follows */
	s->held[i] = s->held[--s->nheld];
	struct seat_vm *vm = active(s);
	if (!s->held_used && vm && !s->switcher) { /* a modifier tapped alone: the guest gets it */
		vmconn_key(vm, keymap_hid_to_evdev(sc), true);
		vmconn_key(vm, keymap_hid_to_evdev(sc), false);
	}
	if (s->nheld == 0)
		s->held_used = false;
	return true;
}

static void key(struct seat *s, const SDL_KeyboardEvent *k)
{
	SDL_Scancode sc = k->keysym.scancode;
	if (held_modifier(s, k))
		return;
	if (k->type == SDL_KEYDOWN && hotkey_match(&s->hotkey, sc, k->keysym.mod)) {
		/* The hot key: no guest gets any of it (its modifiers were held back), and the VM
		 * loses any other key it holds. */
		s->held_used = true;
		s->switcher = !s->switcher;
		input_grab(s, false);
		if (s->active >= 0)
			vmconn_release_all(&s->vms[s->active]);
		s->redraw = true;
		return;
	}
	bool chord = k->type == SDL_KEYDOWN && hotkey_mods(k->keysym.mod) == s->hotkey.mods;
	if (chord && sc >= SDL_SCANCODE_1 && sc <= SDL_SCANCODE_9) { /* hot-key modifiers + digit: direct */
		s->held_used = true;
		input_switch(s, seat_nth(s, sc - SDL_SCANCODE_1));
		return;
	}
	if (chord && (sc == COPY_KEY || sc == PASTE_KEY) && !s->switcher) { /* + C, + V: the clipboard */
		s->held_used = true;
		clip_request(s, sc == PASTE_KEY);
		return;
	}
	if (chord && sc == GRAB_KEY && !s->switcher) { /* hot-key modifiers + G: grab the pointer, or let it go */
		s->held_used = true;
		input_grab(s, !s->grabbed && active(s));
		return;
	}
	if (s->switcher) {
		switcher_key(s, k);
		return;
	}
	struct seat_vm *vm = active(s);
	held_flush(s, vm);
	if (vm)
		vmconn_key(vm, keymap_hid_to_evdev(sc), k->type == SDL_KEYDOWN);
}

static void pointer_abs(struct seat *s, struct seat_vm *vm, int x, int y)
{
	SDL_Rect r = render_guest_rect(s, vm);
	if (r.w <= 1 || r.h <= 1)
		return;
	x = x < r.x ? r.x : x >= r.x + r.w ? r.x + r.w - 1 : x;
	y = y < r.y ? r.y : y >= r.y + r.h ? r.y + r.h - 1 : y;
	struct display_input_event ev[3] = {
		{EV_ABS, 0 /* ABS_X */, (int32_t)((long long)(x - r.x) * ABS_MAX_VALUE / (r.w - 1))},
		{EV_ABS, 1 /* ABS_Y */, (int32_t)((long long)(y - r.y) * ABS_MAX_VALUE / (r.h - 1))},
		{EV_SYN, 0, 0},
	};
	vmconn_input(vm, DISPLAY_INPUT_TABLET, ev, 3);
}

void input_event(struct seat *s, const SDL_Event *ev)
{
	struct seat_vm *vm;
	if (s->grabbed && !active(s))
		input_grab(s, false); /* the VM went away under the grab */
	switch (ev->type) {
	case SDL_KEYDOWN:
	case SDL_KEYUP: key(s, &ev->key); break;
	case SDL_MOUSEMOTION:
		if (s->switcher || !(vm = active(s)))
			break;
		if (!s->grabbed) {
			pointer_abs(s, vm, ev->motion.x, ev->motion.y);
		} else if (ev->motion.xrel || ev->motion.yrel) {
			struct display_input_event rel[3] = {{EV_REL, REL_X, ev->motion.xrel},
							     {EV_REL, REL_Y, ev->motion.yrel},
							     {EV_SYN, 0, 0}};
			vmconn_input(vm, DISPLAY_INPUT_MOUSE, rel, 3);
		}
		break;
	case SDL_MOUSEBUTTONDOWN:
	case SDL_MOUSEBUTTONUP: {
		unsigned b = ev->button.button == SDL_BUTTON_LEFT ? 0
			: ev->button.button == SDL_BUTTON_RIGHT   ? 1
			: ev->button.button == SDL_BUTTON_MIDDLE  ? 2
								  : 3;
		bool down = ev->type == SDL_MOUSEBUTTONDOWN;
		if (b == 3 || s->switcher || !(vm = active(s)))
			break;
		held_flush(s, vm); /* Ctrl+click is the guest's */
		if (!down && !(vm->buttons & (1u << b)))
			break;
		if (!s->grabbed)
			pointer_abs(s, vm, ev->button.x, ev->button.y);
		struct display_input_event e2[2] = {{EV_KEY, (uint16_t)(0x110 + b), down}, {EV_SYN, 0, 0}};
		vm->buttons = down ? vm->buttons | (1u << b) : vm->buttons & ~(1u << b);
		vmconn_input(vm, s->grabbed ? DISPLAY_INPUT_MOUSE : DISPLAY_INPUT_TABLET, e2, 2);
		break;
	}
	case SDL_MOUSEWHEEL:
		if (!s->switcher && (vm = active(s)) && ev->wheel.y) {
			held_flush(s, vm);
			struct display_input_event e2[2] = {{EV_REL, REL_WHEEL, ev->wheel.y}, {EV_SYN, 0, 0}};
			vmconn_input(vm, s->grabbed ? DISPLAY_INPUT_MOUSE : DISPLAY_INPUT_TABLET, e2, 2);
		}
		break;
	case SDL_WINDOWEVENT:
		if (ev->window.event == SDL_WINDOWEVENT_FOCUS_LOST && s->active >= 0) {
			vmconn_release_all(&s->vms[s->active]); /* keys released elsewhere never come */
			input_grab(s, false);
		}
		if (ev->window.event == SDL_WINDOWEVENT_SIZE_CHANGED) {
			s->win_w = ev->window.data1;
			s->win_h = ev->window.data2;
			for (int i = 0; i < SEAT_MAX_VMS; i++) {
				if (s->vms[i].used)
					vmconn_preferred_size(s, &s->vms[i]);
			}
		}
		s->redraw = true;
		break;
	case SDL_QUIT: s->quit = true; break;
	default: break;
	}
}

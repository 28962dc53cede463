/* hotkey: the seat's secure hot key, "ctrl+alt+space" style: modifiers and one key by its SDL
 * name. The seat keeps every press of it (and what the switcher takes) from all guests. */
#ifndef SHOJI_SEAT_HOTKEY_H
#define SHOJI_SEAT_HOTKEY_H

#include <stdbool.h>

#include "../common/err.h"

enum {
	HOTKEY_CTRL = 1,
	HOTKEY_ALT = 2,
	HOTKEY_SHIFT = 4,
	HOTKEY_SUPER = 8,
};

struct hotkey {
	unsigned mods; /* HOTKEY_* that must be held (either side), and no others */
	int scancode;  /* SDL_Scancode */
};

#define HOTKEY_DEFAULT "ctrl+alt+space"

int hotkey_parse(const char *spec, struct hotkey *out, struct err *e);
/* The HOTKEY_* set of SDL's modifier state. */
unsigned hotkey_mods(unsigned sdl_mod);
bool hotkey_match(const struct hotkey *h, int scancode, unsigned sdl_mod);

#endif

/* hotkey: parsing and matching the hot key (see hotkey.h). */
#include "hotkey.h"

#include <SDL.h>
#include <string.h>
#include <strings.h>

int hotkey_parse(const char *spec, struct hotkey *out, struct err *e)
{
	static const struct {
		const char *name;
		unsigned bit;
	} mods[] = {
		{"ctrl", HOTKEY_CTRL},   {"control", HOTKEY_CTRL}, {"alt", HOTKEY_ALT},
		{"shift", HOTKEY_SHIFT}, {"super", HOTKEY_SUPER},  {"win", HOTKEY_SUPER},
	};
	char buf[128];
	if (strlen(spec) >= sizeof(buf))
		return err_set(e, "hot key '%.40s...' is too long; write it as e.g. ctrl+alt+space", spec);
	strcpy(buf, spec);
	out->mods = 0;
	out->scancode = SDL_SCANCODE_UNKNOWN;
	char *save = NULL;
	for (char *part = strtok_r(buf, "+", &save); part; part = strtok_r(NULL, "+", &save)) {
		bool mod = false;
		for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
			if (strcasecmp(part, mods[i].name) == 0) {
				out->mods |= mods[i].bit;
				mod = true;
			}
		}
		if (mod)
			continue;
		if (out->scancode != SDL_SCANCODE_UNKNOWN)
			return err_set(e,
				       "hot key '%s' names two keys; give modifiers and one key, e.g. "
				       "ctrl+alt+space",
				       spec);
		out->scancode = SDL_GetScancodeFromName(part);
		if (out->scancode == SDL_SCANCODE_UNKNOWN)
			return err_set(e, "hot key '%s': '%s' is not a key name (Space, Return, F12, A...)", spec,
				       part);
	}
	if (out->scancode == SDL_SCANCODE_UNKNOWN)
		return err_set(e, "hot key '%s' has no key; add one, e.g. ctrl+alt+space", spec);
	if (out->mods == 0)
		return err_set(e,
			       "hot key '%s' has no modifier, so guests could never get that key; add "
			       "ctrl, alt, shift or super",
			       spec);
	return 0;
}

unsigned hotkey_mods(unsigned sdl_mod)
{
	return (sdl_mod & KMOD_CTRL ? HOTKEY_CTRL : 0u) | (sdl_mod & KMOD_ALT ? HOTKEY_ALT : 0u) |
		(sdl_mod & KMOD_SHIFT ? HOTKEY_SHIFT : 0u) | (sdl_mod & KMOD_GUI ? HOTKEY_SUPER : 0u);
}

bool hotkey_match(const struct hotkey *h, int scancode, unsigned sdl_mod)
{
	return scancode == h->scancode && hotkey_mods(sdl_mod) == h->mods;
}

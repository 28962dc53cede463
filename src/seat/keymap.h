/* keymap: keyboard scancodes (USB HID usage page 7, which SDL's scancodes are) to Linux evdev
 * key codes, as virtio-input carries them. Pure. */
#ifndef SHOJI_SEAT_KEYMAP_H
#define SHOJI_SEAT_KEYMAP_H

#include <stdint.h>

#define KEYMAP_MAX_EVDEV 256 /* every code the table yields is below this */

/* The evdev code for a HID usage, or 0 when the key has none (it is then not sent). */
uint16_t keymap_hid_to_evdev(int usage);

#endif

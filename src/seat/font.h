/* font: the seat's built-in 5x7 bitmap font for the trust bar and the switcher (capitals,
 * digits and the punctuation VM names use; lower case is drawn as capitals). No font files, so
 * nothing a guest or a user's home can swap in changes what the trust bar says. Pure. */
#ifndef SHOJI_SEAT_FONT_H
#define SHOJI_SEAT_FONT_H

#include <stdbool.h>
#include <stdint.h>

#define FONT_W       5
#define FONT_H       7
#define FONT_ADVANCE 6 /* columns a character takes, the gap included */

/* Row bits of a character (bit 4 is the leftmost column); false for characters it lacks,
 * which are drawn as a box. */
bool font_glyph(char c, uint8_t rows[FONT_H]);

/* Pixels a string takes at a scale. */
int font_width(const char *s, int scale);

#endif

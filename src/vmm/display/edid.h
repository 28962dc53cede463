/* edid: a 128-byte EDID 1.4 base block describing one monitor whose preferred (and only
 * detailed) mode is the given size at about 60 Hz, as virtio-gpu's GET_EDID returns it. */
#ifndef SHOJI_VMM_DISPLAY_EDID_H
#define SHOJI_VMM_DISPLAY_EDID_H

#include <stdint.h>

#define EDID_SIZE 128

/* width and height: 1..8192 (a detailed timing holds at most 4095; larger sizes are clamped). */
void edid_build(uint8_t out[EDID_SIZE], uint32_t width, uint32_t height);

#endif

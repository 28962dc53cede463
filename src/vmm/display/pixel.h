/* pixel: the 32-bit pixel formats a virtio-gpu guest may give its 2D resources (virtio 1.x
 * section 5.7.6.8, named by their byte order in memory) and their conversion to the display
 * channel's XRGB8888 (bytes B, G, R, X), the one format the seat receives. */
#ifndef SHOJI_VMM_DISPLAY_PIXEL_H
#define SHOJI_VMM_DISPLAY_PIXEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether `format` (VIRTIO_GPU_FORMAT_*) is one the device accepts; all are 4 bytes a pixel. */
bool pixel_format_known(uint32_t format);

/* Converts n pixels of `format` to B, G, R, A bytes; formats without alpha get 0xff there. */
void pixel_row_to_bgra(uint32_t format, const uint8_t *src, uint8_t *dst, size_t n);
/* The same to B, G, R, X, the fourth byte left as whatever is cheapest (the surface's format). */
void pixel_row_to_bgrx(uint32_t format, const uint8_t *src, uint8_t *dst, size_t n);

#endif

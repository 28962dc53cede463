/* pixel: format checks and row conversion to B, G, R, A (see pixel.h). */
#include "pixel.h"

#include <linux/virtio_gpu.h>
#include <string.h>

/* Where B, G, R and A sit in a pixel of each format (A: 4 when the format has none). */
struct layout {
	uint32_t format;
	uint8_t b, g, r, a;
};

static const struct layout layouts[] = {
	{VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 0, 1, 2, 3}, {VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, 0, 1, 2, 4},
	{VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, 3, 2, 1, 0}, {VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, 3, 2, 1, 4},
	{VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, 2, 1, 0, 3}, {VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, 1, 2, 3, 4},
	{VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, 1, 2, 3, 0}, {VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, 2, 1, 0, 4},
};

static const struct layout *layout_of(uint32_t format)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].format == format)
			return &layouts[i];
	return NULL;
}

bool pixel_format_known(uint32_t format)
{
	return layout_of(format) != NULL;
}

static void convert(uint32_t format, const uint8_t *src, uint8_t *dst, size_t n, bool alpha)
{
	const struct layout *l = layout_of(format);
	if (!l)
		return;
	if (l->b == 0 && l->g == 1 && l->r == 2 && (l->a == 3 || !alpha)) {
		memcpy(dst, src, n * 4);
		return;
	}
	if (l->b == 3 && l->g == 2 && l->r == 1 && (l->a == 0 || !alpha)) { /* byte-reversed */
		for (size_t i = 0; i < n; i++) {
			uint32_t v;
			memcpy(&v, src + 4 * i, 4);
			v = __builtin_bswap32(v);
			memcpy(dst + 4 * i, &v, 4);
		}
		return;
	}
	for (size_t i = 0; i < n; i++, src += 4, dst += 4) {
		dst[0] = src[l->b];
		dst[1] = src[l->g];
		dst[2] = src[l->r];
		dst[3] = l->a < 4 ? src[l->a] : 0xff;
	}
}

void pixel_row_to_bgra(uint32_t format, const uint8_t *src, uint8_t *dst, size_t n)
{
	convert(format, src, dst, n, true);
}

void pixel_row_to_bgrx(uint32_t format, const uint8_t *src, uint8_t *dst, size_t n)
{
	convert(format, src, dst, n, false);
}

/* gpu_2d: the virtio-gpu 2D command set (virtio 1.x section 5.7) with no transport in it: 2D
 * resources in host memory, their backing pages in guest RAM; blob resources in guest memory
 * (VIRTIO_GPU_F_RESOURCE_BLOB, VIRTIO_GPU_BLOB_MEM_GUEST), which have no host copy at all: what
 * the scanout shows is read from the guest's pages when the seat draws it, so a Linux guest's
 * framebuffers (dumb buffers are guest blobs when the device offers blobs) cost the host no
 * memory; one scanout, the cursor, display info and EDID. A command arrives as the readable
 * bytes of a request chain and its answer is written to a response buffer; everything in the
 * request is the guest's and is checked (ids, rectangles, formats, offsets, backing entries
 * against guest RAM). Host memory for resources
 * and backing tables is bounded per device. What becomes visible (scanout changes, flushes,
 * the cursor) is reported through struct gpu_2d_events. One thread at a time. */
#ifndef SHOJI_VMM_DISPLAY_GPU_2D_H
#define SHOJI_VMM_DISPLAY_GPU_2D_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../memory.h"
#include "../virtio/virtqueue.h"

#define GPU_2D_MAX_RESOURCES       1024
#define GPU_2D_MAX_BACKING_ENTRIES 16384          /* in one ATTACH_BACKING (as QEMU) */
#define GPU_2D_HOST_LIMIT          (256ull << 20) /* resources and backing tables, per device */
#define GPU_2D_RESP_MAX            1056           /* the largest response (EDID: 24 + 8 + 1024) */
#define GPU_2D_CURSOR              64             /* cursor image side, pixels */
#define GPU_2D_MIN_SIZE            64             /* smallest preferred mode */

struct gpu_rect {
	uint32_t x, y, w, h;
};

struct gpu_backing_entry {
	uint8_t *host; /* inside guest RAM */
	uint32_t len;
	uint64_t start; /* offset of this entry in the resource's backing */
};

struct gpu_resource {
	uint32_t id, format, width, height; /* a blob's: those it was last shown with, else 0 */
	uint8_t *pixels;                    /* 2D: width * height * 4 bytes, rows width * 4 apart */
	bool blob;                          /* its pixels are its backing, in guest RAM */
	uint64_t blob_size;
	struct gpu_backing_entry *backing;
	uint32_t nbacking;
	uint64_t backing_len;
};

/* The picture a scanout shows of its resource: width x height pixels in format, row y at
 * offset + y * stride of the resource's bytes (a 2D resource's host pixels, a blob's backing). */
struct gpu_image {
	uint32_t format, width, height, stride;
	uint64_t offset;
};

struct gpu_cursor {
	uint32_t hot_x, hot_y;
	int32_t x, y;
	bool visible;
	uint8_t image[GPU_2D_CURSOR * GPU_2D_CURSOR * 4]; /* B, G, R, A */
};

/* What the guest made visible; on the caller's thread, during gpu_2d_execute. */
struct gpu_2d_events {
	/* The scanout was set (to another resource or rectangle) or disabled. */
	void (*scanout_changed)(void *opaque);
	/* The guest flushed this part of the scanout (in scanout coordinates). */
	void (*flushed)(void *opaque, struct gpu_rect r);
	/* The cursor changed: a new image (image_changed) or only its position. */
	void (*cursor_changed)(void *opaque, bool image_changed);
};

struct gpu_2d {
	const struct guest_mem *mem;
	struct gpu_resource **res;
	unsigned nres;
	uint64_t host_bytes, host_limit;
	/* The scanout: resource (0: disabled), its picture and the rectangle of that shown. */
	uint32_t scanout_res;
	struct gpu_image image;
	struct gpu_rect scanout;
	uint32_t pref_w, pref_h; /* the mode offered in display info and EDID */
	struct gpu_cursor cursor;
	bool blob_shown; /* a blob was shown since the device was made (said once in the log) */
	const struct gpu_2d_events *events;
	void *opaque;
};

void gpu_2d_init(struct gpu_2d *g, const struct guest_mem *mem, uint32_t width, uint32_t height,
		 const struct gpu_2d_events *events, void *opaque);
/* Frees every resource (device reset or close); the scanout is disabled without an event. */
void gpu_2d_reset(struct gpu_2d *g);

/* Runs one control or cursor command: the request is the first `len` bytes of the readable
 * buffers iov[0, n). Writes the response (header echoing the fence) to resp and returns its
 * length (0 for cursor commands, which have none). */
size_t gpu_2d_execute(struct gpu_2d *g, const struct virtq_iov *iov, unsigned n, uint64_t len,
		      uint8_t resp[GPU_2D_RESP_MAX]);

/* The preferred mode (clamped to GPU_2D_MIN_SIZE..8192); true when it changed. */
bool gpu_2d_set_preferred(struct gpu_2d *g, uint32_t width, uint32_t height);

/* Copies rectangle r of the scanout (scanout coordinates, inside it) into dst as XRGB8888
 * rows dst_stride bytes apart, dst pointing at r's top-left pixel. False when there is no
 * scanout or r does not fit. A blob's pixels are read from guest RAM now, whatever the guest
 * is writing there (a blob keeps its pages while shown: taking them back turns the scanout
 * off, and none are attached to it again). */
bool gpu_2d_read_scanout(const struct gpu_2d *g, struct gpu_rect r, uint8_t *dst, size_t dst_stride);

#endif

/* test_virtio_gpu: the virtio-gpu 2D command engine (display/gpu_2d.c) against hostile
 * requests: each malformed command gets its VIRTIO_GPU_RESP_ERR_* and changes nothing; resource
 * ids, rectangles (with overflowing sums), formats, sizes, backing entries outside guest RAM,
 * truncated entry lists, transfer offsets past the backing, the memory and count bounds, blob
 * pictures that do not fit their blob; and the good paths: display info, EDID, transfers over
 * split backing, format conversion, scanout, flush events, fences, the cursor, and blobs read
 * from guest memory with no host copy. Then the device on the PCI transport: configuration and
 * a command through the control queue. */
#include "unit.h"

#include <linux/virtio_gpu.h>
#include <stdlib.h>

#include "virtio_fixture.h"
#include "vmm/devices/virtio_gpu.h"
#include "vmm/display/edid.h"
#include "vmm/display/gpu_2d.h"
#include "vmm/display/pixel.h"

#define RAM      (16ull << 20)
#define BACK     0x100000ull /* backing pages in guest RAM */
#define FMT_BGRX VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM
#define FMT_XRGB VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM

struct gfx {
	struct guest_mem mem;
	struct gpu_2d g;
	unsigned scanout_events, flush_events, cursor_images, cursor_moves;
	struct gpu_rect last_flush;
	uint8_t resp[GPU_2D_RESP_MAX];
	size_t resp_len;
};

static void ev_scanout(void *o)
{
	((struct gfx *)o)->scanout_events++;
}
static void ev_flush(void *o, struct gpu_rect r)
{
	struct gfx *f = o;
	f->flush_events++;
	f->last_flush = r;
}
static void ev_cursor(void *o, bool image)
{
	struct gfx *f = o;
	if (image)
		f->cursor_images++;
	else
		f->cursor_moves++;
}

static const struct gpu_2d_events events = {ev_scanout, ev_flush, ev_cursor};

static int setup(void **state)
{
	struct gfx *f = calloc(1, sizeof(*f));
	struct err e;
	if (!f || guest_mem_init(&f->mem, RAM, &e) < 0)
		return -1;
	gpu_2d_init(&f->g, &f->mem, 640, 480, &events, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct gfx *f = *state;
	gpu_2d_reset(&f->g);
	guest_mem_free(&f->mem);
	free(f);
	return 0;
}

/* Runs a command of len bytes; returns the response type. */
static uint32_t run(struct gfx *f, const void *cmd, size_t len)
{
	struct virtq_iov iov = {(void *)cmd, (uint32_t)len};
	memset(f->resp, 0xee, sizeof(f->resp));
	f->resp_len = gpu_2d_execute(&f->g, &iov, 1, len, f->resp);
	uint32_t type = 0;
	if (f->resp_len >= 4)
		memcpy(&type, f->resp, 4);
	return type;
}

#define RUN(f, cmd) run((f), &(cmd), sizeof(cmd))

static struct virtio_gpu_ctrl_hdr hdr(uint32_t type)
{
	return (struct virtio_gpu_ctrl_hdr){.type = type};
}

static uint32_t create(struct gfx *f, uint32_t id, uint32_t format, uint32_t w, uint32_t h)
{
	struct virtio_gpu_resource_create_2d c = {hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), id, format, w, h};
	return RUN(f, c);
}

/* Attaches n entries: entries[i] = {addr, len}. */
static uint32_t attach(struct gfx *f, uint32_t id, const uint64_t (*entries)[2], uint32_t n)
{
	size_t len = sizeof(struct virtio_gpu_resource_attach_backing) + n * sizeof(struct virtio_gpu_mem_entry);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_resource_attach_backing a = {hdr(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), id, n};
	memcpy(buf, &a, sizeof(a));
	for (uint32_t i = 0; i < n; i++) {
		struct virtio_gpu_mem_entry m = {.addr = entries[i][0], .length = (uint32_t)entries[i][1]};
		memcpy(buf + sizeof(a) + i * sizeof(m), &m, sizeof(m));
	}
	uint32_t r = run(f, buf, len);
	free(buf);
	return r;
}

static uint32_t transfer(struct gfx *f, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint64_t offset)
{
	struct virtio_gpu_transfer_to_host_2d t = {hdr(VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D), {x, y, w, h}, offset, id, 0};
	return RUN(f, t);
}

static uint32_t scanout(struct gfx *f, uint32_t sid, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct virtio_gpu_set_scanout s = {hdr(VIRTIO_GPU_CMD_SET_SCANOUT), {x, y, w, h}, sid, id};
	return RUN(f, s);
}

static uint32_t flush(struct gfx *f, uint32_t id, uint32_t x, uint32_t y, uint32_t w, uint32_t h)
{
	struct virtio_gpu_resource_flush c = {hdr(VIRTIO_GPU_CMD_RESOURCE_FLUSH), {x, y, w, h}, id, 0};
	return RUN(f, c);
}

static uint8_t *g(struct gfx *f, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&f->mem, gpa, len);
}

/* A 16x8 resource 1 with its whole backing at BACK. */
static void resource_with_backing(struct gfx *f, uint32_t format)
{
	assert_int_equal(create(f, 1, format, 16, 8), VIRTIO_GPU_RESP_OK_NODATA);
	const uint64_t e[1][2] = {{BACK, 16 * 8 * 4}};
	assert_int_equal(attach(f, 1, e, 1), VIRTIO_GPU_RESP_OK_NODATA);
}

static void display_info_and_edid(void **state)
{
	struct gfx *f = *state;
	struct virtio_gpu_ctrl_hdr h = hdr(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	assert_int_equal(RUN(f, h), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	struct virtio_gpu_resp_display_info d;
	assert_int_equal(f->resp_len, sizeof(d));
	memcpy(&d, f->resp, sizeof(d));
	assert_int_equal(d.pmodes[0].r.width, 640);
	assert_int_equal(d.pmodes[0].r.height, 480);
	assert_int_equal(d.pmodes[0].enabled, 1);
	assert_int_equal(d.pmodes[1].enabled, 0);

	struct virtio_gpu_cmd_get_edid ge = {hdr(VIRTIO_GPU_CMD_GET_EDID), 0, 0};
	assert_int_equal(RUN(f, ge), VIRTIO_GPU_RESP_OK_EDID);
	struct virtio_gpu_resp_edid r;
	memcpy(&r, f->resp, sizeof(r));
	assert_int_equal(r.size, EDID_SIZE);
	static const uint8_t magic[8] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	assert_memory_equal(r.edid, magic, 8);
	uint8_t sum = 0;
	for (int i = 0; i < EDID_SIZE; i++)
		sum = (uint8_t)(sum + r.edid[i]);
	assert_int_equal(sum, 0);
	/* The preferred detailed timing: 640 x 480. */
	assert_int_equal(r.edid[56] | (r.edid[58] >> 4) << 8, 640);
	assert_int_equal(r.edid[59] | (r.edid[61] >> 4) << 8, 480);
	ge.scanout = 1;
	assert_int_equal(RUN(f, ge), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);

	assert_true(gpu_2d_set_preferred(&f->g, 1920, 1080));
	assert_false(gpu_2d_set_preferred(&f->g, 1920, 1080));
	assert_int_equal(RUN(f, h), VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	memcpy(&d, f->resp, sizeof(d));
	assert_int_equal(d.pmodes[0].r.width, 1920);
	gpu_2d_set_preferred(&f->g, 1, 100000); /* clamped */
	assert_int_equal(f->g.pref_w, GPU_2D_MIN_SIZE);
	assert_int_equal(f->g.pref_h, 8192);
}

static void short_and_unknown_commands(void **state)
{
	struct gfx *f = *state;
	uint8_t tiny[10] = {0};
	assert_int_equal(run(f, tiny, sizeof(tiny)), VIRTIO_GPU_RESP_ERR_UNSPEC);
	struct virtio_gpu_ctrl_hdr h = hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D); /* no body */
	assert_int_equal(RUN(f, h), VIRTIO_GPU_RESP_ERR_UNSPEC);
	h = hdr(VIRTIO_GPU_CMD_CTX_CREATE); /* 3D: not offered */
	assert_int_equal(RUN(f, h), VIRTIO_GPU_RESP_ERR_UNSPEC);
	h = hdr(0xdeadbeef);
	assert_int_equal(RUN(f, h), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_int_equal(f->g.nres, 0);
}

static void fences_are_echoed(void **state)
{
	struct gfx *f = *state;
	struct virtio_gpu_resource_create_2d c = {hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_2D), 5, FMT_BGRX, 4, 4};
	c.hdr.flags = VIRTIO_GPU_FLAG_FENCE;
	c.hdr.fence_id = 77;
	c.hdr.ctx_id = 3;
	assert_int_equal(RUN(f, c), VIRTIO_GPU_RESP_OK_NODATA);
	struct virtio_gpu_ctrl_hdr r;
	memcpy(&r, f->resp, sizeof(r));
	assert_int_equal(r.flags, VIRTIO_GPU_FLAG_FENCE);
	assert_int_equal(r.fence_id, 77);
	assert_int_equal(r.ctx_id, 3);
	c.hdr.flags = 0; /* no fence: nothing echoed */
	c.resource_id = 6;
	RUN(f, c);
	memcpy(&r, f->resp, sizeof(r));
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.fence_id, 0);
}

static void create_checks_ids_formats_sizes(void **state)
{
	struct gfx *f = *state;
	assert_int_equal(create(f, 0, FMT_BGRX, 4, 4), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(create(f, 1, FMT_BGRX, 4, 4), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(create(f, 1, FMT_BGRX, 4, 4), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(create(f, 2, 0, 4, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create(f, 2, VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM + 1, 4, 4),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create(f, 2, FMT_BGRX, 0, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create(f, 2, FMT_BGRX, 4, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create(f, 2, FMT_BGRX, 8193, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create(f, 2, FMT_BGRX, 0xffffffff, 0xffffffff), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	static const uint32_t formats[] = {
		VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM,
		VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM,
		VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM,
	};
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(create(f, 10 + i, formats[i], 2, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->g.nres, 9);
}

static void host_memory_and_count_are_bounded(void **state)
{
	struct gfx *f = *state;
	f->g.host_limit = 1u << 20;                                                    /* 1 MiB for the test */
	assert_int_equal(create(f, 1, FMT_BGRX, 512, 256), VIRTIO_GPU_RESP_OK_NODATA); /* 512 KiB */
	assert_int_equal(create(f, 2, FMT_BGRX, 512, 257), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
	struct virtio_gpu_resource_unref u = {hdr(VIRTIO_GPU_CMD_RESOURCE_UNREF), 1, 0};
	assert_int_equal(RUN(f, u), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->g.host_bytes, 0);
	assert_int_equal(create(f, 2, FMT_BGRX, 512, 512), VIRTIO_GPU_RESP_OK_NODATA); /* all of it */
	assert_int_equal(create(f, 3, FMT_BGRX, 1, 1), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
	const uint64_t e[1][2] = {{BACK, 4096}};
	assert_int_equal(attach(f, 2, e, 1), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY); /* its table too */
	RUN(f, ((struct virtio_gpu_resource_unref){hdr(VIRTIO_GPU_CMD_RESOURCE_UNREF), 2, 0}));
	f->g.host_limit = GPU_2D_HOST_LIMIT;
	for (uint32_t i = 1; i <= GPU_2D_MAX_RESOURCES; i++)
		assert_int_equal(create(f, i, FMT_BGRX, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(create(f, 5000, FMT_BGRX, 1, 1), VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY);
}

static void attach_backing_checks_entries(void **state)
{
	struct gfx *f = *state;
	const uint64_t ok[1][2] = {{BACK, 4096}};
	assert_int_equal(attach(f, 9, ok, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(create(f, 1, FMT_BGRX, 16, 16), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(attach(f, 1, ok, 0), VIRTIO_GPU_RESP_ERR_UNSPEC); /* no entries */
	const uint64_t outside[1][2] = {{RAM - 100, 4096}};
	assert_int_equal(attach(f, 1, outside, 1), VIRTIO_GPU_RESP_ERR_UNSPEC);
	const uint64_t wraps[1][2] = {{UINT64_MAX - 10, 4096}};
	assert_int_equal(attach(f, 1, wraps, 1), VIRTIO_GPU_RESP_ERR_UNSPEC);
	const uint64_t empty[2][2] = {{BACK, 4096}, {BACK + 8192, 0}};
	assert_int_equal(attach(f, 1, empty, 2), VIRTIO_GPU_RESP_ERR_UNSPEC);
	/* More entries than the request holds, and more than the limit. */
	struct virtio_gpu_resource_attach_backing a = {hdr(VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING), 1, 3};
	assert_int_equal(RUN(f, a), VIRTIO_GPU_RESP_ERR_UNSPEC);
	a.nr_entries = GPU_2D_MAX_BACKING_ENTRIES + 1;
	assert_int_equal(RUN(f, a), VIRTIO_GPU_RESP_ERR_UNSPEC);
	a.nr_entries = UINT32_MAX;
	assert_int_equal(RUN(f, a), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_null(f->g.res[0]->backing);
	assert_int_equal(attach(f, 1, ok, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(attach(f, 1, ok, 1), VIRTIO_GPU_RESP_ERR_UNSPEC); /* attached already */
	struct virtio_gpu_resource_detach_backing d = {hdr(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING), 1, 0};
	assert_int_equal(RUN(f, d), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(RUN(f, d), VIRTIO_GPU_RESP_ERR_UNSPEC); /* nothing attached */
	d.resource_id = 2;
	assert_int_equal(RUN(f, d), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(transfer(f, 1, 0, 0, 16, 16, 0), VIRTIO_GPU_RESP_ERR_UNSPEC); /* no backing */
}

static void transfer_checks_rect_and_offset(void **state)
{
	struct gfx *f = *state;
	resource_with_backing(f, FMT_BGRX);
	assert_int_equal(transfer(f, 2, 0, 0, 1, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(transfer(f, 1, 0, 0, 17, 8, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 0, 1, 16, 8, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 0xffffffff, 0, 2, 1, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 0, 0xfffffff0, 1, 0x20, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	/* The rows the offset names must lie in the backing (512 bytes). */
	assert_int_equal(transfer(f, 1, 0, 0, 16, 8, 4), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 0, 0, 1, 1, 512), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 0, 0, 1, 2, UINT64_MAX - 16), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 0, 0, 1, 1, UINT64_MAX), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(transfer(f, 1, 15, 7, 1, 1, 508), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(transfer(f, 1, 0, 0, 0, 0, 0), VIRTIO_GPU_RESP_OK_NODATA);
}

static void transfer_over_split_backing(void **state)
{
	struct gfx *f = *state;
	assert_int_equal(create(f, 1, FMT_XRGB, 16, 8), VIRTIO_GPU_RESP_OK_NODATA);
	/* 512 bytes in three pieces far apart, the first cut mid-row and mid-pixel. */
	const uint64_t e[3][2] = {{BACK + 0x3000, 70}, {BACK, 200}, {BACK + 0x8000, 242}};
	assert_int_equal(attach(f, 1, e, 3), VIRTIO_GPU_RESP_OK_NODATA);
	uint8_t all[512];
	for (unsigned i = 0; i < 512; i++)
		all[i] = (uint8_t)(i * 7 + 1);
	memcpy(g(f, BACK + 0x3000, 70), all, 70);
	memcpy(g(f, BACK, 200), all + 70, 200);
	memcpy(g(f, BACK + 0x8000, 242), all + 270, 242);
	assert_int_equal(transfer(f, 1, 0, 0, 16, 8, 0), VIRTIO_GPU_RESP_OK_NODATA);
	assert_memory_equal(f->g.res[0]->pixels, all, 512);
	/* A sub-rectangle: rows 2..3, pixels 3..5 (offset of (3, 2)), into fresh pixels. */
	memset(f->g.res[0]->pixels, 0, 512);
	assert_int_equal(transfer(f, 1, 3, 2, 3, 2, 2 * 64 + 3 * 4), VIRTIO_GPU_RESP_OK_NODATA);
	for (unsigned y = 0; y < 8; y++)
		for (unsigned x = 0; x < 16; x++) {
			unsigned off = y * 64 + x * 4;
			bool in = y >= 2 && y < 4 && x >= 3 && x < 6;
			assert_int_equal(f->g.res[0]->pixels[off], in ? all[off] : 0);
		}
	/* X8R8G8B8 (bytes X, R, G, B) read out as B, G, R, X. */
	assert_int_equal(scanout(f, 0, 1, 0, 0, 16, 8), VIRTIO_GPU_RESP_OK_NODATA);
	uint8_t px[4];
	assert_true(gpu_2d_read_scanout(&f->g, (struct gpu_rect){3, 2, 1, 1}, px, 4));
	const uint8_t *src = all + 2 * 64 + 3 * 4;
	assert_int_equal(px[0], src[3]);
	assert_int_equal(px[1], src[2]);
	assert_int_equal(px[2], src[1]); /* px[3], the X byte, is left undefined */
	assert_false(gpu_2d_read_scanout(&f->g, (struct gpu_rect){15, 0, 2, 1}, px, 8));
}

static void scanout_and_flush(void **state)
{
	struct gfx *f = *state;
	resource_with_backing(f, FMT_BGRX);
	assert_int_equal(scanout(f, 1, 1, 0, 0, 16, 8), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
	assert_int_equal(scanout(f, 0, 7, 0, 0, 16, 8), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(scanout(f, 0, 1, 1, 0, 16, 8), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout(f, 0, 1, 0xffffffff, 0, 2, 8), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(f->scanout_events, 0);
	assert_int_equal(scanout(f, 0, 1, 4, 2, 8, 4), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->scanout_events, 1);
	assert_int_equal(scanout(f, 0, 1, 4, 2, 8, 4), VIRTIO_GPU_RESP_OK_NODATA); /* unchanged */
	assert_int_equal(f->scanout_events, 1);

	assert_int_equal(flush(f, 9, 0, 0, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(flush(f, 1, 0, 0, 17, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(flush(f, 1, 1, 0xffffffff, 1, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(flush(f, 1, 0, 0, 2, 2), VIRTIO_GPU_RESP_OK_NODATA); /* outside the shown part */
	assert_int_equal(f->flush_events, 0);
	assert_int_equal(flush(f, 1, 0, 0, 16, 8), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->flush_events, 1);
	assert_int_equal(f->last_flush.x, 0);
	assert_int_equal(f->last_flush.y, 0);
	assert_int_equal(f->last_flush.w, 8);
	assert_int_equal(f->last_flush.h, 4);
	assert_int_equal(flush(f, 1, 10, 5, 6, 3), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->last_flush.x, 6);
	assert_int_equal(f->last_flush.y, 3);
	assert_int_equal(f->last_flush.w, 2);
	assert_int_equal(f->last_flush.h, 1);

	/* A resource freed while shown turns the scanout off. */
	struct virtio_gpu_resource_unref u = {hdr(VIRTIO_GPU_CMD_RESOURCE_UNREF), 1, 0};
	assert_int_equal(RUN(f, u), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->g.scanout_res, 0);
	assert_int_equal(f->scanout_events, 2);
	assert_int_equal(RUN(f, u), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(scanout(f, 0, 0, 0, 0, 0, 0), VIRTIO_GPU_RESP_OK_NODATA); /* off already */
	assert_int_equal(f->scanout_events, 2);
}

static void cursor_commands(void **state)
{
	struct gfx *f = *state;
	assert_int_equal(create(f, 1, VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, 64, 64), VIRTIO_GPU_RESP_OK_NODATA);
	f->g.res[0]->pixels[0] = 0x11, f->g.res[0]->pixels[3] = 0x80;
	struct virtio_gpu_update_cursor c = {.hdr = hdr(VIRTIO_GPU_CMD_UPDATE_CURSOR),
					     .pos = {0, 10, 20, 0},
					     .resource_id = 1,
					     .hot_x = 3,
					     .hot_y = 999};
	assert_int_equal(RUN(f, c), 0);
	assert_int_equal(f->resp_len, 0); /* no answers on the cursor queue */
	assert_int_equal(f->cursor_images, 1);
	assert_true(f->g.cursor.visible);
	assert_int_equal(f->g.cursor.image[0], 0x11);
	assert_int_equal(f->g.cursor.image[3], 0x80);
	assert_int_equal(f->g.cursor.hot_y, GPU_2D_CURSOR - 1);
	c.hdr.type = VIRTIO_GPU_CMD_MOVE_CURSOR;
	c.pos.x = 30;
	RUN(f, c);
	assert_int_equal(f->cursor_moves, 1);
	assert_int_equal(f->g.cursor.x, 30);
	c.pos.scanout_id = 5; /* ignored */
	RUN(f, c);
	assert_int_equal(f->cursor_moves, 1);
	c.pos.scanout_id = 0;
	c.hdr.type = VIRTIO_GPU_CMD_UPDATE_CURSOR;
	c.resource_id = 42; /* unknown: hidden */
	RUN(f, c);
	assert_false(f->g.cursor.visible);
	/* A small resource fills the top-left corner. */
	assert_int_equal(create(f, 2, FMT_BGRX, 2, 2), VIRTIO_GPU_RESP_OK_NODATA);
	c.resource_id = 2;
	RUN(f, c);
	assert_true(f->g.cursor.visible);
	assert_int_equal(f->g.cursor.image[3], 0xff);
	assert_int_equal(f->g.cursor.image[2 * 4 + 3], 0);
	uint8_t tiny[8] = {0};
	memcpy(tiny, &c.hdr.type, 4);
	assert_int_equal(run(f, tiny, sizeof(tiny)), VIRTIO_GPU_RESP_ERR_UNSPEC); /* too short for a header */
}

/* Creates blob id over n entries {addr, len} of guest memory; returns the response type. */
static uint32_t create_blob(struct gfx *f, uint32_t id, uint32_t mem, uint32_t flags, uint64_t size,
			    const uint64_t (*entries)[2], uint32_t n)
{
	size_t len = sizeof(struct virtio_gpu_resource_create_blob) + n * sizeof(struct virtio_gpu_mem_entry);
	uint8_t *buf = calloc(1, len);
	struct virtio_gpu_resource_create_blob c = {.hdr = hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB),
						    .resource_id = id,
						    .blob_mem = mem,
						    .blob_flags = flags,
						    .nr_entries = n,
						    .size = size};
	memcpy(buf, &c, sizeof(c));
	for (uint32_t i = 0; i < n; i++) {
		struct virtio_gpu_mem_entry m = {.addr = entries[i][0], .length = (uint32_t)entries[i][1]};
		memcpy(buf + sizeof(c) + i * sizeof(m), &m, sizeof(m));
	}
	uint32_t r = run(f, buf, len);
	free(buf);
	return r;
}

/* SET_SCANOUT_BLOB of rectangle rect of a w x h picture in format, stride and offset. */
static uint32_t scanout_blob(struct gfx *f, uint32_t id, struct virtio_gpu_rect rect, uint32_t w, uint32_t h,
			     uint32_t format, uint32_t stride, uint32_t offset)
{
	struct virtio_gpu_set_scanout_blob c = {.hdr = hdr(VIRTIO_GPU_CMD_SET_SCANOUT_BLOB),
						.r = rect,
						.resource_id = id,
						.width = w,
						.height = h,
						.format = format,
						.strides = {stride},
						.offsets = {offset}};
	return RUN(f, c);
}

/* A blob in guest memory: a 16 x 8 XRGB picture, rows 72 bytes apart from offset 8, its pages
 * in two pieces (the second far from the first); the guest writes it, the scanout reads it at
 * once with no transfer, and every bad blob command is refused and leaves nothing behind. */
static void blob_resources(void **state)
{
	struct gfx *f = *state;
	enum { W = 16, H = 8, STRIDE = 72, OFF = 8, SIZE = OFF + STRIDE * H };
	const uint64_t split[2][2] = {{BACK, 300}, {BACK + 0x40000, SIZE - 300}};
	const uint64_t outside[1][2] = {{RAM - 8, 64}};
	uint32_t GUEST = VIRTIO_GPU_BLOB_MEM_GUEST;
	assert_int_equal(create_blob(f, 0, GUEST, 2, SIZE, split, 2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(create_blob(f, 5, VIRTIO_GPU_BLOB_MEM_HOST3D, 2, SIZE, split, 2),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create_blob(f, 5, GUEST, VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE, SIZE, split, 2),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create_blob(f, 5, GUEST, 2, 0, split, 2), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(create_blob(f, 5, GUEST, 2, SIZE, split, 0), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_int_equal(create_blob(f, 5, GUEST, 2, SIZE, outside, 1), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_int_equal(create_blob(f, 5, GUEST, 2, SIZE + 1, split, 2), VIRTIO_GPU_RESP_ERR_UNSPEC); /* too short */
	struct virtio_gpu_resource_create_blob cut = {.hdr = hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB),
						      .resource_id = 5,
						      .blob_mem = GUEST,
						      .nr_entries = 2,
						      .size = 64};
	assert_int_equal(RUN(f, cut), VIRTIO_GPU_RESP_ERR_UNSPEC); /* entries missing */
	assert_int_equal(f->g.nres, 0);
	assert_int_equal(f->g.host_bytes, 0);

	assert_int_equal(create_blob(f, 5, GUEST, 2, SIZE, split, 2), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(create_blob(f, 5, GUEST, 2, SIZE, split, 2), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(f->g.host_bytes, 2 * sizeof(struct gpu_backing_entry));       /* no pixels on the host */
	assert_int_equal(attach(f, 5, split, 1), VIRTIO_GPU_RESP_ERR_UNSPEC);          /* has its backing */
	assert_int_equal(transfer(f, 5, 0, 0, 9999, 1, 0), VIRTIO_GPU_RESP_OK_NODATA); /* nothing to copy */
	assert_int_equal(flush(f, 5, 0, 0, 1, 1), VIRTIO_GPU_RESP_OK_NODATA);          /* not shown */

	/* SET_SCANOUT_BLOB's checks; a 2D resource is not a blob, and a blob takes no SET_SCANOUT. */
	resource_with_backing(f, FMT_BGRX);
	struct virtio_gpu_rect all = {0, 0, W, H};
	assert_int_equal(scanout_blob(f, 1, all, W, H, FMT_XRGB, STRIDE, OFF), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout(f, 0, 5, 0, 0, 1, 1), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout_blob(f, 9, all, W, H, FMT_XRGB, STRIDE, OFF), VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID);
	assert_int_equal(scanout_blob(f, 5, all, W, H, 0, STRIDE, OFF), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout_blob(f, 5, all, W, H, FMT_XRGB, W * 4 - 1, OFF),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout_blob(f, 5, all, W, H, FMT_XRGB, STRIDE, OFF + 9),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout_blob(f, 5, all, W, H, FMT_XRGB, 0xffffffff, 0), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout_blob(f, 5, all, 0, H, FMT_XRGB, STRIDE, OFF), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(scanout_blob(f, 5, (struct virtio_gpu_rect){1, 0, W, H}, W, H, FMT_XRGB, STRIDE, OFF),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	struct virtio_gpu_set_scanout_blob other = {.hdr = hdr(VIRTIO_GPU_CMD_SET_SCANOUT_BLOB),
						    .r = all,
						    .scanout_id = 1,
						    .resource_id = 5};
	assert_int_equal(RUN(f, other), VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID);
	assert_int_equal(f->scanout_events, 0);
	assert_int_equal(scanout_blob(f, 5, (struct virtio_gpu_rect){2, 1, 12, 6}, W, H, FMT_XRGB, STRIDE, OFF),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->scanout_events, 1);
	assert_int_equal(scanout_blob(f, 5, (struct virtio_gpu_rect){2, 1, 12, 6}, W, H, FMT_XRGB, STRIDE, OFF),
			 VIRTIO_GPU_RESP_OK_NODATA); /* unchanged */
	assert_int_equal(f->scanout_events, 1);

	/* The guest writes pixel (x, y) as X8R8G8B8 bytes {0, y, x, 7}; the row holding byte 300
	 * spans both pieces. The scanout reads what is there now. */
	for (uint32_t y = 0; y < H; y++)
		for (uint32_t x = 0; x < W; x++) {
			uint64_t at = OFF + (uint64_t)y * STRIDE + x * 4;
			uint8_t px[4] = {0, (uint8_t)y, (uint8_t)x, 7};
			for (int i = 0; i < 4; i++, at++)
				*g(f, at < 300 ? BACK + at : BACK + 0x40000 + at - 300, 1) = px[i];
		}
	uint8_t out[12 * 6 * 4];
	assert_true(gpu_2d_read_scanout(&f->g, (struct gpu_rect){0, 0, 12, 6}, out, 12 * 4));
	for (uint32_t y = 0; y < 6; y++)
		for (uint32_t x = 0; x < 12; x++) {
			const uint8_t *p = out + (y * 12 + x) * 4;
			assert_int_equal(p[0], 7);     /* B */
			assert_int_equal(p[1], x + 2); /* G */
			assert_int_equal(p[2], y + 1); /* R */
		}
	assert_false(gpu_2d_read_scanout(&f->g, (struct gpu_rect){0, 0, 13, 1}, out, 13 * 4));
	assert_int_equal(flush(f, 5, 0, 0, W, H), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->flush_events, 1);
	assert_int_equal(f->last_flush.w, 12);
	assert_int_equal(flush(f, 5, 0, 0, W + 1, H), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

	/* A page flip inside the blob (another offset, the same rectangle) is a change; a picture
	 * whose last row ends exactly at the blob's end fits. */
	assert_int_equal(scanout_blob(f, 5, (struct virtio_gpu_rect){2, 1, 12, 6}, W, H, FMT_XRGB, STRIDE, 16),
			 VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->scanout_events, 2);
	assert_int_equal(scanout_blob(f, 5, (struct virtio_gpu_rect){2, 1, 12, 6}, W, H, FMT_XRGB, STRIDE, 16 + 1),
			 VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);

	/* Its pages taken back while shown: the scanout goes off; none are attached to it again. */
	struct virtio_gpu_resource_detach_backing d = {hdr(VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING), 5, 0};
	assert_int_equal(RUN(f, d), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->g.scanout_res, 0);
	assert_int_equal(f->scanout_events, 3);
	assert_false(gpu_2d_read_scanout(&f->g, (struct gpu_rect){0, 0, 1, 1}, out, 4));
	assert_int_equal(attach(f, 5, split, 2), VIRTIO_GPU_RESP_ERR_UNSPEC);
	assert_int_equal(scanout_blob(f, 5, all, W, H, FMT_XRGB, STRIDE, OFF), VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER);
	assert_int_equal(f->g.scanout_res, 0);
	struct virtio_gpu_resource_unref u = {hdr(VIRTIO_GPU_CMD_RESOURCE_UNREF), 5, 0};
	assert_int_equal(RUN(f, u), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(f->g.scanout_res, 0);
	assert_int_equal(f->g.host_bytes, 16 * 8 * 4 + sizeof(struct gpu_backing_entry)); /* resource 1's */

	/* A blob as the cursor: 64 x 64 B8G8R8A8 from its start; a smaller one is no cursor, even
	 * with more pages behind it than it says. */
	const uint64_t cur[1][2] = {{BACK + 0x80000, GPU_2D_CURSOR * GPU_2D_CURSOR * 4}};
	assert_int_equal(create_blob(f, 6, GUEST, 2, cur[0][1], cur, 1), VIRTIO_GPU_RESP_OK_NODATA);
	assert_int_equal(create_blob(f, 7, GUEST, 2, 4096, cur, 1), VIRTIO_GPU_RESP_OK_NODATA);
	memcpy(g(f, BACK + 0x80000, 4), (uint8_t[]){0x21, 0x22, 0x23, 0x80}, 4);
	struct virtio_gpu_update_cursor c = {.hdr = hdr(VIRTIO_GPU_CMD_UPDATE_CURSOR), .resource_id = 6};
	RUN(f, c);
	assert_true(f->g.cursor.visible);
	assert_memory_equal(f->g.cursor.image, ((uint8_t[]){0x21, 0x22, 0x23, 0x80}), 4);
	c.resource_id = 7;
	RUN(f, c);
	assert_false(f->g.cursor.visible);
}

/* Every format to B, G, R, A (the cursor) and B, G, R, X (the surface). */
static void pixel_formats(void **state)
{
	(void)state;
	static const struct {
		uint32_t format;
		uint8_t bgra[4];
	} cases[] = {
		{VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM, {1, 2, 3, 4}}, {VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM, {1, 2, 3, 0xff}},
		{VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM, {4, 3, 2, 1}}, {VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM, {4, 3, 2, 0xff}},
		{VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM, {3, 2, 1, 4}}, {VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM, {2, 3, 4, 0xff}},
		{VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM, {2, 3, 4, 1}}, {VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM, {3, 2, 1, 0xff}},
	};
	const uint8_t src[8] = {1, 2, 3, 4, 1, 2, 3, 4};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[8];
		assert_true(pixel_format_known(cases[i].format));
		pixel_row_to_bgra(cases[i].format, src, out, 2);
		assert_memory_equal(out, cases[i].bgra, 4);
		assert_memory_equal(out + 4, cases[i].bgra, 4);
		pixel_row_to_bgrx(cases[i].format, src, out, 2);
		assert_memory_equal(out, cases[i].bgra, 3);
		assert_memory_equal(out + 4, cases[i].bgra, 3);
	}
	assert_false(pixel_format_known(0));
	assert_false(pixel_format_known(VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM + 100));
}

/* --- the device on the transport ---------------------------------------------------------- */

#define REQ  0x20000ull
#define RESP 0x21000ull

static void device_config_and_control_queue(void **state)
{
	(void)state;
	struct vfx v;
	static struct display_server ds = {.listen_fd = -1, .client_fd = -1, .memfd = -1, .width = 800, .height = 600};
	static struct virtio_gpu gpu;
	struct err e;
	assert_int_equal(vfx_init(&v), 0);
	assert_int_equal(virtio_gpu_init(&gpu, &ds, NULL, &v.fm.m, &v.mem, &e), 0);
	assert_int_equal(vfx_attach(&v, &gpu.vdev), 0);
	vfx_wr(&v, 0x00, 0, 4);
	assert_true(vfx_rd(&v, 0x04, 4) & (1u << VIRTIO_GPU_F_EDID));
	assert_true(vfx_rd(&v, 0x04, 4) & (1u << VIRTIO_GPU_F_RESOURCE_BLOB));
	assert_int_equal(vfx_rd(&v, 0x2008, 4), 1); /* num_scanouts */
	vfx_bring_up_queues(&v, 1ull << VIRTIO_GPU_F_EDID | 1ull << VIRTIO_GPU_F_RESOURCE_BLOB, 2);
	struct virtio_gpu_ctrl_hdr h = hdr(VIRTIO_GPU_CMD_GET_DISPLAY_INFO);
	memcpy(guest_mem_ptr(&v.mem, REQ, sizeof(h)), &h, sizeof(h));
	vfx_desc(&v, 0, REQ, sizeof(h), VRING_DESC_F_NEXT, 1);
	vfx_desc(&v, 1, RESP, 4096, VRING_DESC_F_WRITE, 0);
	vfx_offer(&v, 0);
	vfx_run(&v);
	assert_int_equal(vfx_used_idx(&v), 1);
	assert_int_equal(vfx_used_len(&v, 0), sizeof(struct virtio_gpu_resp_display_info));
	struct virtio_gpu_resp_display_info d;
	memcpy(&d, guest_mem_ptr(&v.mem, RESP, sizeof(d)), sizeof(d));
	assert_int_equal(d.hdr.type, VIRTIO_GPU_RESP_OK_DISPLAY_INFO);
	assert_int_equal(d.pmodes[0].r.width, 800);
	/* The seat's preferred size: a display event and a configuration interrupt, then the new
	 * mode in display info; the same size again changes nothing. */
	uint8_t generation = gpu.vdev.config_generation;
	pthread_mutex_lock(&gpu.vdev.lock);
	ds.handler->preferred_size(ds.opaque, 1280, 720);
	pthread_mutex_unlock(&gpu.vdev.lock);
	assert_int_equal(vfx_rd(&v, 0x2000, 4), VIRTIO_GPU_EVENT_DISPLAY);
	assert_int_not_equal(gpu.vdev.config_generation, generation);
	assert_true(v.vp.isr & 2);
	vfx_offer(&v, 0);
	vfx_run(&v);
	memcpy(&d, guest_mem_ptr(&v.mem, RESP, sizeof(d)), sizeof(d));
	assert_int_equal(d.pmodes[0].r.width, 1280);
	assert_int_equal(d.pmodes[0].r.height, 720);
	generation = gpu.vdev.config_generation;
	ds.handler->preferred_size(ds.opaque, 1280, 720);
	assert_int_equal(gpu.vdev.config_generation, generation);
	/* A blob through the control queue, as a Linux guest's framebuffer: made, then shown. */
	struct {
		struct virtio_gpu_resource_create_blob c;
		struct virtio_gpu_mem_entry m;
	} blob = {{.hdr = hdr(VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB),
		   .resource_id = 9,
		   .blob_mem = VIRTIO_GPU_BLOB_MEM_GUEST,
		   .blob_flags = VIRTIO_GPU_BLOB_FLAG_USE_SHAREABLE,
		   .nr_entries = 1,
		   .size = 64 * 64 * 4},
		  {.addr = 0x100000, .length = 64 * 64 * 4}};
	struct virtio_gpu_set_scanout_blob show = {.hdr = hdr(VIRTIO_GPU_CMD_SET_SCANOUT_BLOB),
						   .r = {0, 0, 64, 64},
						   .resource_id = 9,
						   .width = 64,
						   .height = 64,
						   .format = FMT_BGRX,
						   .strides = {256}};
	const void *cmds[2] = {&blob, &show};
	const uint32_t lens[2] = {sizeof(blob), sizeof(show)};
	for (int i = 0; i < 2; i++) {
		memcpy(guest_mem_ptr(&v.mem, REQ, lens[i]), cmds[i], lens[i]);
		vfx_desc(&v, 0, REQ, lens[i], VRING_DESC_F_NEXT, 1);
		vfx_offer(&v, 0);
		vfx_run(&v);
		struct virtio_gpu_ctrl_hdr r;
		memcpy(&r, guest_mem_ptr(&v.mem, RESP, sizeof(r)), sizeof(r));
		assert_int_equal(r.type, VIRTIO_GPU_RESP_OK_NODATA);
	}
	assert_int_equal(gpu.g.scanout_res, 9);
	assert_int_equal(gpu.g.host_bytes, sizeof(struct gpu_backing_entry));
	/* events_clear clears what events_read shows. */
	gpu.events_read = VIRTIO_GPU_EVENT_DISPLAY;
	assert_int_equal(vfx_rd(&v, 0x2000, 4), VIRTIO_GPU_EVENT_DISPLAY);
	vfx_wr(&v, 0x2004, VIRTIO_GPU_EVENT_DISPLAY, 4);
	assert_int_equal(vfx_rd(&v, 0x2000, 4), 0);
	virtio_gpu_destroy(&gpu);
	vfx_destroy(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(display_info_and_edid, setup, teardown),
		cmocka_unit_test_setup_teardown(short_and_unknown_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(fences_are_echoed, setup, teardown),
		cmocka_unit_test_setup_teardown(create_checks_ids_formats_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(host_memory_and_count_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(attach_backing_checks_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(transfer_checks_rect_and_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(transfer_over_split_backing, setup, teardown),
		cmocka_unit_test_setup_teardown(scanout_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(cursor_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(blob_resources, setup, teardown),
		cmocka_unit_test(pixel_formats),
		cmocka_unit_test(device_config_and_control_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

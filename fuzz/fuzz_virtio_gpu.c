/* fuzz_virtio_gpu: libFuzzer target for the virtio-gpu control and cursor command parser
 * (display/gpu_2d.c) over 16 MiB of guest RAM. The input is a run of commands, each an op byte,
 * a 16-bit length and that many bytes of request: the op picks the command type written over the
 * request's header (ops from 0xf0 keep the type the bytes give) and, with bit 6, splits the
 * request over two buffers. Every flush of the scanout is read out as the seat's surface would
 * be. State carries over from one command to the next within an input and is freed at its end.
 * Nothing may read or write outside guest RAM or a resource, leak, hang, or crash. */
#include <linux/virtio_gpu.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/display/gpu_2d.h"

#define RAM        (16ull << 20)
#define HOST_LIMIT (16ull << 20)        /* resources and tables, per input */
#define SURFACE    (8192ull * 8192 * 4) /* the largest picture */

#ifndef FUZZ_VIRTIO_GPU_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t types[] = {
	VIRTIO_GPU_CMD_GET_DISPLAY_INFO,
	VIRTIO_GPU_CMD_RESOURCE_CREATE_2D,
	VIRTIO_GPU_CMD_RESOURCE_UNREF,
	VIRTIO_GPU_CMD_SET_SCANOUT,
	VIRTIO_GPU_CMD_RESOURCE_FLUSH,
	VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D,
	VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING,
	VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING,
	VIRTIO_GPU_CMD_GET_EDID,
	VIRTIO_GPU_CMD_UPDATE_CURSOR,
	VIRTIO_GPU_CMD_MOVE_CURSOR,
	VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB,
	VIRTIO_GPU_CMD_SET_SCANOUT_BLOB,
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static struct guest_mem mem;
static struct gpu_2d gpu;
static uint8_t *surface; /* SURFACE bytes: any flushed rectangle fits (a blob's picture is not bounded by
			  * HOST_LIMIT: its pages are the guest's), touched only where written */

static void on_scanout(void *opaque)
{
	(void)opaque;
	if (!gpu.scanout_res)
		return;
	/* The seat's surface is filled when the scanout changes: here its first and last rows, which
	 * hold the picture's first and last bytes shown. */
	struct gpu_rect s = gpu.scanout;
	if (!gpu_2d_read_scanout(&gpu, (struct gpu_rect){0, 0, s.w, 1}, surface, (size_t)s.w * 4) ||
	    !gpu_2d_read_scanout(&gpu, (struct gpu_rect){0, s.h - 1, s.w, 1}, surface, (size_t)s.w * 4))
		abort();
}
static void on_cursor(void *opaque, bool image)
{
	(void)opaque, (void)image;
}
static void on_flush(void *opaque, struct gpu_rect r)
{
	(void)opaque;
	if (!gpu_2d_read_scanout(&gpu, r, surface, (size_t)r.w * 4))
		abort(); /* a flush event always lies inside the scanout, and a shown blob keeps its pages */
}

static const struct gpu_2d_events events = {on_scanout, on_flush, on_cursor};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		struct err e;
		log_set_level(LOG_ERROR);
		surface = malloc(SURFACE);
		if (!surface || guest_mem_init(&mem, RAM, &e) < 0)
			abort();
		ready = 1;
	}
	gpu_2d_init(&gpu, &mem, 1024, 768, &events, NULL);
	gpu.host_limit = HOST_LIMIT;
	static uint8_t cmd[65536], resp[GPU_2D_RESP_MAX];
	while (size >= 3) {
		uint8_t op = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3, size -= 3;
		if (len > size)
			len = size;
		memcpy(cmd, data, len);
		data += len, size -= len;
		if (op < 0xf0 && len >= 4) {
			uint32_t type = types[(op & 0x3f) % NTYPES];
			memcpy(cmd, &type, 4);
		}
		struct virtq_iov iov[2] = {{cmd, (uint32_t)len}, {NULL, 0}};
		unsigned n = len ? 1 : 0;
		if ((op & 0x40) && len > 1) { /* two buffers */
			iov[0].len = (uint32_t)(len / 2);
			iov[1] = (struct virtq_iov){cmd + len / 2, (uint32_t)(len - len / 2)};
			n = 2;
		}
		size_t out = gpu_2d_execute(&gpu, iov, n, len, resp);
		if (out > GPU_2D_RESP_MAX)
			abort();
	}
	gpu_2d_reset(&gpu);
	if (gpu.host_bytes != 0)
		abort(); /* every byte counted is given back */
	return 0;
}

#else /* the seed writer: a 64x64 resource drawn, shown, flushed, used as the cursor, freed; then                      \
       * a blob shown, flushed, used as the cursor, its pages taken back, flushed again */

static uint8_t in[4096];
static size_t used;

static void put(unsigned op, const void *cmd, size_t len)
{
	in[used] = (uint8_t)op;
	in[used + 1] = (uint8_t)len;
	in[used + 2] = (uint8_t)(len >> 8);
	memcpy(in + used + 3, cmd, len);
	used += 3 + len;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct virtio_gpu_ctrl_hdr h = {0};
	put(0, &h, sizeof(h));
	struct virtio_gpu_resource_create_2d c = {.resource_id = 1,
						  .format = VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM,
						  .width = 64,
						  .height = 64};
	put(1, &c, sizeof(c));
	struct {
		struct virtio_gpu_resource_attach_backing a;
		struct virtio_gpu_mem_entry m[2];
	} ab = {{.resource_id = 1, .nr_entries = 2},
		{{.addr = 0x100000, .length = 8192}, {.addr = 0x200000, .length = 8192}}};
	put(0x46, &ab, sizeof(ab));
	struct virtio_gpu_transfer_to_host_2d t = {.r = {0, 0, 64, 64}, .resource_id = 1};
	put(5, &t, sizeof(t));
	t.r = (struct virtio_gpu_rect){3, 5, 10, 20};
	t.offset = 5 * 256 + 12;
	put(5, &t, sizeof(t));
	struct virtio_gpu_set_scanout s = {.r = {0, 0, 64, 64}, .resource_id = 1};
	put(3, &s, sizeof(s));
	struct virtio_gpu_resource_flush fl = {.r = {8, 8, 16, 16}, .resource_id = 1};
	put(4, &fl, sizeof(fl));
	struct virtio_gpu_cmd_get_edid ed = {0};
	put(8, &ed, sizeof(ed));
	struct virtio_gpu_update_cursor cu = {.pos = {0, 5, 5, 0}, .resource_id = 1, .hot_x = 1};
	put(9, &cu, sizeof(cu));
	put(10, &cu, sizeof(cu));
	struct virtio_gpu_resource_detach_backing d = {.resource_id = 1};
	put(7, &d, sizeof(d));
	struct virtio_gpu_resource_unref u = {.resource_id = 1};
	put(2, &u, sizeof(u));
	struct {
		struct virtio_gpu_resource_create_blob b;
		struct virtio_gpu_mem_entry m[2];
	} cb = {{.resource_id = 2, .blob_mem = VIRTIO_GPU_BLOB_MEM_GUEST, .nr_entries = 2, .size = 16384},
		{{.addr = 0x300000, .length = 4096}, {.addr = 0x400000, .length = 12288}}};
	put(11, &cb, sizeof(cb));
	struct virtio_gpu_set_scanout_blob sb = {.r = {4, 4, 60, 50},
						 .resource_id = 2,
						 .width = 64,
						 .height = 63,
						 .format = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
						 .strides = {260},
						 .offsets = {4}};
	put(12, &sb, sizeof(sb));
	fl.resource_id = 2;
	put(4, &fl, sizeof(fl));
	cu.resource_id = 2;
	put(9, &cu, sizeof(cu));
	d.resource_id = 2;
	put(7, &d, sizeof(d));
	put(4, &fl, sizeof(fl));
	u.resource_id = 2;
	put(2, &u, sizeof(u));
	char path[4096];
	snprintf(path, sizeof(path), "%s/seed-0", argv[1]);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(in, 1, used, f) != used || fclose(f))
		return 1;
	return 0;
}

#endif

/* fuzz_virtio_blk: libFuzzer target for virtio-blk request handling behind the virtio PCI
 * transport: the input is the first byte of negotiated features (EVENT_IDX, INDIRECT_DESC)
 * followed by 64 KiB of guest memory holding queue 0's descriptor table, rings, headers, data
 * and status buffers at any addresses; the device is reset, brought up and its queue run. The
 * image is a 1 MiB memfd. Every chain and header is hostile; nothing may read or write outside
 * guest RAM or the image, hang, or crash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../tests/unit/virtio_fixture.h"
#include "common/log.h"
#include "vmm/devices/virtio_blk.h"

#define WINDOW 0x10000u /* guest bytes the input covers, from VFX_DESC */

#ifndef FUZZ_VIRTIO_BLK_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vfx fx;
static struct virtio_blk blk;

static void setup_once(void)
{
	static int ready;
	if (ready)
		return;
	log_set_level(LOG_ERROR);
	int fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		abort();
	static char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct err e;
	static struct block_dev *disk;
	if (vfx_init(&fx) < 0 || block_open(&disk, path, BLOCK_FORMAT_RAW, 0, &e) < 0 ||
	    virtio_blk_init(&blk, disk, false, "fuzz", 2, &fx.fm.m, &fx.mem, &e) < 0 || vfx_attach(&fx, &blk.vdev) < 0)
		abort();
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 1)
		return 0;
	uint64_t features = 0;
	if (data[0] & 1)
		features |= VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX);
	if (data[0] & 2)
		features |= VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC);
	data++;
	size--;
	vfx_restart(&fx, data, size, WINDOW, features, 1);
	vfx_run(&fx);
	virtio_blk_settle(&blk); /* the requests in flight complete */
	return 0;
}

#else /* the seed writer: a write, a read and a flush request, each a valid input */

#include "seed_window.h"

#define HDR    0x13000u
#define DATA   0x13100u
#define STATUS 0x13400u

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	static const uint32_t types[] = {1, 0, 4};
	for (unsigned t = 0; t < 3; t++) {
		static uint8_t in[1 + STATUS + 1 - VFX_DESC];
		memset(in, 0, sizeof(in));
		in[0] = 3; /* EVENT_IDX, INDIRECT_DESC */
		uint8_t *w = in + 1;
		unsigned n = 0;
		seed_desc(w, VFX_DESC, n, HDR, 16, 1, (uint16_t)(n + 1)), n++;
		if (types[t] != 4)
			seed_desc(w, VFX_DESC, n, DATA, 512, (uint16_t)(1 | (types[t] == 0 ? 2 : 0)),
				  (uint16_t)(n + 1)),
				n++;
		seed_desc(w, VFX_DESC, n, STATUS, 1, 2, 0);
		uint16_t avail[3] = {0, 1, 0};
		seed_put(w, VFX_AVAIL, avail, sizeof(avail));
		uint32_t hdr[4] = {types[t], 0, 3, 0};
		seed_put(w, HDR, hdr, sizeof(hdr));
		char path[4096];
		snprintf(path, sizeof(path), "%s/seed-%u", argv[1], t);
		FILE *f = fopen(path, "wb");
		if (!f || fwrite(in, 1, sizeof(in), f) != sizeof(in) || fclose(f))
			return 1;
	}
	return 0;
}

#endif

/* fuzz_virtio_net: libFuzzer target for the network device behind the virtio PCI transport. The
 * input is a features byte (MRG_RXBUF, EVENT_IDX, INDIRECT_DESC), two bytes of frame length, then
 * 64 KiB of guest memory from VFX_DESC holding both queues' descriptor tables and rings (receive
 * at VFX_DESC, transmit VFX_QUEUE_STRIDE above) and their buffers. The device is reset and
 * brought up, a frame of that length arrives from the backend (a socket pair), and both queues
 * run. Nothing may read or write outside guest RAM, hang, or crash. */
#include <linux/virtio_net.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tests/unit/virtio_fixture.h"
#include "common/log.h"
#include "vmm/devices/virtio_net.h"

#define WINDOW      0x10000u
#define F_MRG_RXBUF VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)
#define F_INDIRECT  VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT_IDX VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX)

#ifndef FUZZ_VIRTIO_NET_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vfx fx;
static struct virtio_net net;
static int peer;

static void setup_once(void)
{
	static int ready;
	if (ready)
		return;
	log_set_level(LOG_ERROR);
	int sv[2];
	struct net_config c = {.kind = NET_LINK};
	struct err e;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	peer = sv[1];
	if (vfx_init(&fx) < 0 || virtio_net_init(&net, &c, 1, &fx.fm.m, &fx.mem, &e) < 0 ||
	    vfx_attach(&fx, &net.vdev) < 0 || virtio_net_link_set(&net, sv[0], false, &e) < 0)
		abort();
	ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 3)
		return 0;
	uint64_t features = ((data[0] & 1) ? F_MRG_RXBUF : 0) | ((data[0] & 2) ? F_EVENT_IDX : 0) |
		((data[0] & 4) ? F_INDIRECT : 0);
	size_t frame_len = 1 + (((size_t)data[1] << 8 | data[2]) % 9000);
	data += 3;
	size -= 3;
	vfx_restart(&fx, data, size, WINDOW, features, 2);
	static uint8_t frame[9000];
	memset(frame, 0xa5, frame_len);
	if (send(peer, frame, frame_len, MSG_DONTWAIT) < 0)
		abort();
	pthread_mutex_lock(&net.vdev.lock);
	net.vdev.ops->fd_ready(&net.vdev, 0);
	pthread_mutex_unlock(&net.vdev.lock);
	vfx_run_q(&fx, 0);
	vfx_run_q(&fx, 1);
	while (recv(peer, frame, sizeof(frame), MSG_DONTWAIT) > 0) /* what the guest sent */
		;
	vfx_wr(&fx, 0x14, 0, 1);
	while (recv(net.backend.fd, frame, sizeof(frame), MSG_DONTWAIT) > 0) /* frames not taken */
		;
	return 0;
}

#else /* the seed writer: two receive buffers and a two-buffer transmit chain, a valid input */

#include "seed_window.h"

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	static uint8_t in[3 + WINDOW];
	in[0] = 7;
	in[1] = 0x05, in[2] = 0xdc; /* 1500 bytes */
	uint8_t *w = in + 3;
	seed_desc(w, VFX_DESC, 0, 0x18000, 1024, 2, 0);
	seed_desc(w, VFX_DESC, 1, 0x18400, 1024, 2, 0);
	uint16_t avail[4] = {0, 2, 0, 1};
	seed_put(w, VFX_AVAIL, avail, sizeof(avail));
	uint64_t tx = VFX_DESC + VFX_QUEUE_STRIDE;
	seed_desc(w, tx, 0, 0x19000, 12, 1, 1);
	seed_desc(w, tx, 1, 0x19100, 60, 0, 0);
	uint16_t tx_avail[3] = {0, 1, 0};
	seed_put(w, VFX_AVAIL + VFX_QUEUE_STRIDE, tx_avail, sizeof(tx_avail));
	char path[4096];
	snprintf(path, sizeof(path), "%s/seed-0", argv[1]);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(in, 1, sizeof(in), f) != sizeof(in) || fclose(f))
		return 1;
	return 0;
}

#endif

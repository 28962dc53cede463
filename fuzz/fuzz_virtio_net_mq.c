/* fuzz_virtio_net_mq: libFuzzer target for a NIC with several queue pairs and the control queue
 * (VIRTIO_NET_F_MQ), in front of a multiqueue TAP the target makes (gone with its last
 * descriptor; it exits 77, skipped, where this process cannot make one: no /dev/net/tun or no
 * CAP_NET_ADMIN). The input is a features byte (MQ, CTRL_VQ, EVENT_IDX, INDIRECT_DESC,
 * MRG_RXBUF), four step bytes, then 128 KiB of guest memory from VFX_DESC holding the rings of
 * the seven queues (VFX_QUEUE_STRIDE apart: three pairs, then the control queue) and their
 * buffers. After a reset and bring-up each step either serves one queue as the I/O thread would
 * (the control queue among them, whose commands attach and detach the TAP's queues), or sends a
 * frame out of the TAP's interface and lets every pair read. Nothing may read or write outside
 * guest RAM, hang, or crash; a detached pair must never be read. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../tests/unit/virtio_fixture.h"

#define WINDOW  0x20000u
#define PAIRS   3
#define NQUEUES (2 * PAIRS + 1)
#define F_MQ    (VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ))

#ifndef FUZZ_VIRTIO_NET_MQ_SEED

#include "common/log.h"
#include "fuzz_check.h"
#include "vmm/devices/virtio_net.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vfx fx;
static struct virtio_net net;
static char ifname[IFNAMSIZ];
static int packet_fd = -1;
static struct sockaddr_ll to;

/* The interface up, without IPv6 (whose own frames would make runs differ), and a packet
 * socket that sends frames out of it, which the TAP hands to one of its attached queues. */
static int interface_up(void)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			fprintf(stderr, "fuzz_virtio_net_mq: IPv6 stays on for %s\n", ifname);
		close(fd);
	}
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	memcpy(ifr.ifr_name, ifname, strnlen(ifname, IFNAMSIZ - 1));
	int r = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -1 : 0;
	ifr.ifr_flags |= IFF_UP;
	r = r || ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0 ? -1 : 0;
	if (s >= 0)
		close(s);
	to = (struct sockaddr_ll){.sll_family = AF_PACKET, .sll_ifindex = ifr.ifr_ifindex, .sll_halen = ETH_ALEN};
	packet_fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return r < 0 || packet_fd < 0 ? -1 : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	log_set_level(LOG_ERROR);
	snprintf(ifname, sizeof(ifname), "shojifz%d", (int)getpid() % 100000);
	char spec[64];
	snprintf(spec, sizeof(spec), "tap=%s,queues=%d,vhost=off", ifname, PAIRS);
	struct net_config c;
	struct err e;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq probe = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE};
	memcpy(probe.ifr_name, ifname, strlen(ifname));
	if (fd < 0 || ioctl(fd, TUNSETIFF, &probe) < 0) {
		fprintf(stderr, "fuzz_virtio_net_mq: skipped: cannot make a TAP here (%s)\n", strerror(errno));
		exit(77);
	}
	close(fd); /* the TAP goes with it: the device makes its own of that name */
	if (net_config_parse(&c, spec, 0, &e) < 0 || vfx_init(&fx) < 0 ||
	    virtio_net_init(&net, &c, 1, &fx.fm.m, &fx.mem, &e) < 0 || vfx_attach(&fx, &net.vdev) < 0 ||
	    interface_up() < 0) {
		fprintf(stderr, "fuzz_virtio_net_mq: set-up failed: %s (%s)\n", e.msg, strerror(errno));
		abort();
	}
	check(net.npairs == PAIRS);
	return 0;
}

/* A frame out of the interface (to one of the attached queues, by its flow), then every pair
 * told its descriptor is readable, as the I/O thread's epoll would; only attached pairs may read. */
static void frame_in(uint8_t seed)
{
	uint8_t frame[128] = {0};
	memset(frame, 0xff, ETH_ALEN);
	frame[6] = 0x02, frame[11] = seed;
	frame[12] = 0x08; /* IPv4, then UDP: the TAP picks a queue by the flow's hash */
	static const uint8_t ip[] = {0x45, 0, 0, 60, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1};
	memcpy(frame + 14, ip, sizeof(ip));
	frame[34] = seed, frame[35] = (uint8_t)(seed * 7); /* the source port */
	frame[36] = 0x30, frame[37] = 0x39, frame[39] = 40;
	memcpy(to.sll_addr, frame, ETH_ALEN);
	if (sendto(packet_fd, frame, 74, 0, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != ENOBUFS &&
	    errno != EAGAIN)
		abort();
	pthread_mutex_lock(&net.vdev.lock);
	for (unsigned i = 0; i < PAIRS; i++)
		net.vdev.ops->fd_ready(&net.vdev, 2 * i);
	pthread_mutex_unlock(&net.vdev.lock);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	uint64_t features = (data[0] & 1 ? F_MQ : 0) | (data[0] & 2 ? VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) : 0) |
		(data[0] & 4 ? VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) : 0) |
		(data[0] & 8 ? VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) : 0) |
		(data[0] & 16 ? VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) : 0);
	const uint8_t *steps = data + 1;
	data += 5;
	size -= 5;
	vfx_restart(&fx, data, size, WINDOW, features, NQUEUES);
	for (unsigned s = 0; s < 4; s++) {
		if (steps[s] % 8 == NQUEUES)
			frame_in(steps[s] / 8);
		else
			vfx_run_q(&fx, steps[s] % 8);
		check(net.active_pairs >= 1 && net.active_pairs <= PAIRS);
		for (unsigned i = 1; i < PAIRS; i++) /* the pairs in use, and only they, attached */
			check(net.pairs[i].attached == (i < net.active_pairs));
	}
	vfx_wr(&fx, 0x14, 0, 1);
	uint8_t frame[VIRTIO_NET_FRAME_MAX];
	for (unsigned i = 0; i < PAIRS; i++) /* frames not taken */
		while (read(i ? net.backend.queue_fd[i - 1] : net.backend.fd, frame, sizeof(frame)) > 0)
			;
	return 0;
}

#else /* the seed writer: VQ_PAIRS_SET 3 then 2 on the control queue, receive buffers on pair 1 and a frame sent on it \
       */

#include "seed_window.h"

static uint8_t in[5 + WINDOW];

/* Queue q's descriptor table, and its avail ring with heads [0, n). */
static uint64_t table(unsigned q)
{
	return VFX_DESC + VFX_QUEUE_STRIDE * q;
}

static void offer(uint8_t *w, unsigned q, uint16_t n)
{
	uint16_t avail[2 + 8] = {0, n};
	for (uint16_t i = 0; i < n; i++)
		avail[2 + i] = (uint16_t)(2 * i);
	seed_put(w, VFX_AVAIL + VFX_QUEUE_STRIDE * q, avail, sizeof(avail));
}

static int seed(const char *dir, const char *name, const uint8_t steps[4])
{
	memcpy(in + 1, steps, 4);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	return !f || fwrite(in, 1, sizeof(in), f) != sizeof(in) || fclose(f) ? -1 : 0;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	uint8_t *w = in + 5;
	in[0] = 1 | 4 | 16; /* MQ and CTRL_VQ, EVENT_IDX, MRG_RXBUF */
	const uint64_t cmd = VFX_DESC + 0x1c000, rx = VFX_DESC + 0x1d000, tx = VFX_DESC + 0x1e000;
	for (uint16_t i = 0; i < 2; i++) { /* two commands: 3 pairs, then 2; each its answer byte */
		uint8_t c[4] = {VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, (uint8_t)(3 - i), 0};
		seed_put(w, cmd + 0x10 * i, c, sizeof(c));
		seed_desc(w, table(6), 2 * i, cmd + 0x10 * i, 4, 1, (uint16_t)(2 * i + 1));
		seed_desc(w, table(6), 2 * i + 1, cmd + 0x10 * i + 8, 1, 2, 0);
	}
	offer(w, 6, 2);
	seed_desc(w, table(2), 0, rx, 1526, 2, 0); /* pair 1's receive buffers */
	seed_desc(w, table(2), 2, rx + 0x800, 1526, 2, 0);
	offer(w, 2, 2);
	seed_desc(w, table(3), 0, tx, 12, 1, 1); /* a frame on pair 1's transmit queue */
	seed_desc(w, table(3), 1, tx + 0x100, 60, 0, 0);
	offer(w, 3, 1);
	const uint8_t mq_then_frames[4] = {6, 7 | 8, 3, 7 | 16}, frames_first[4] = {7, 2, 6, 7 | 24};
	return seed(argv[1], "seed-0", mq_then_frames) || seed(argv[1], "seed-1", frames_first) ? 1 : 0;
}

#endif

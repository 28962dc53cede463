/* test_virtio_net: the network device as a link NIC, against a socket pair: frames into one
 * receive buffer and merged over several, waiting for buffers without losing the frame, dropping
 * what cannot fit without MRG_RXBUF, transmit with the header stripped and the sent frames'
 * buffers given back in a batch when the device's hold ends (a driver with EVENT_IDX; at once
 * without), hostile buffers
 * (read-only or shorter than the header on receive, truncated or oversized frames on send), and
 * the link's state: down without a socket, down when the other end goes, up with a new one. */
#include "unit.h"

#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "offload_fixture.h"
#include "virtio_fixture.h"
#include "vmm/devices/virtio_net.h"

#define RXQ         0
#define TXQ         1
#define F_MAC       VIRTIO_BIT(VIRTIO_NET_F_MAC)
#define F_MRG_RXBUF VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)
#define RXBUF       0x20000ull /* receive buffers, 0x1000 apart */
#define TXBUF       0x40000ull
#define HDR         12

struct nfx {
	struct vfx v;
	struct virtio_net net;
	int peer; /* the host side of the backend */
};

static int setup_link(void **state, uint64_t features, bool offload)
{
	struct nfx *f = calloc(1, sizeof(*f));
	int sv[2];
	struct err e;
	if (!f || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	struct net_config c;
	if (net_config_parse(&c, "link,mac=52:54:00:aa:bb:cc", 0, &e) < 0)
		return -1;
	f->peer = sv[1];
	if (vfx_init(&f->v) < 0 || virtio_net_init(&f->net, &c, 1, &f->v.fm.m, &f->v.mem, &e) < 0 ||
	    vfx_attach(&f->v, &f->net.vdev) < 0)
		return -1;
	vfx_bring_up_queues(&f->v, features, 2);
	if (virtio_net_link_set(&f->net, sv[0], offload, &e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int setup_with(void **state, uint64_t features)
{
	return setup_link(state, features, false);
}

static int setup(void **state)
{
	return setup_with(state, F_MAC | F_MRG_RXBUF);
}
/* A slirp NIC: its first NAT's socket given at the start (peer stands in for shoji-slirp), up
 * from the start; a new NAT's socket comes as a link's does. */
static int setup_slirp(void **state)
{
	struct nfx *f = calloc(1, sizeof(*f));
	int sv[2];
	struct err e;
	struct net_config c;
	if (!f || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    net_config_parse(&c, "slirp", 0, &e) < 0)
		return -1;
	c.helper_fd = sv[0];
	f->peer = sv[1];
	int r = vfx_init(&f->v) < 0 || virtio_net_init(&f->net, &c, 1, &f->v.fm.m, &f->v.mem, &e) < 0 ||
		vfx_attach(&f->v, &f->net.vdev) < 0;
	close(sv[0]); /* the NIC holds its own duplicate, as each boot's does */
	if (r)
		return -1;
	vfx_bring_up_queues(&f->v, F_MAC | F_MRG_RXBUF, 2);
	*state = f;
	return 0;
}
/* As Linux's driver: it suppresses and asks for interrupts itself (EVENT_IDX). */
static int setup_event_idx(void **state)
{
	return setup_with(state, F_MAC | F_MRG_RXBUF | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX));
}
static int setup_no_mrg(void **state)
{
	return setup_with(state, F_MAC);
}

static int teardown(void **state)
{
	struct nfx *f = *state;
	virtio_net_destroy(&f->net);
	vfx_destroy(&f->v);
	if (f->peer >= 0)
		close(f->peer);
	free(f);
	return 0;
}

static uint8_t *g(struct nfx *f, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&f->v.mem, gpa, len);
}

/* Offers receive buffer i (descriptor i, RXBUF + 0x1000 * i) of len bytes. */
static void rx_buffer(struct nfx *f, unsigned i, uint32_t len, uint16_t flags)
{
	vfx_desc_q(&f->v, RXQ, i, RXBUF + 0x1000ull * i, len, flags, 0);
	vfx_offer_q(&f->v, RXQ, (uint16_t)i);
}

static void host_sends(struct nfx *f, size_t len, uint8_t fill)
{
	uint8_t frame[4096];
	memset(frame, fill, len);
	assert_int_equal(send(f->peer, frame, len, 0), (ssize_t)len);
}

static void backend_ready(struct nfx *f)
{
	pthread_mutex_lock(&f->net.vdev.lock);
	f->net.vdev.ops->fd_ready(&f->net.vdev, 0);
	pthread_mutex_unlock(&f->net.vdev.lock);
}

static uint16_t num_buffers(struct nfx *f, unsigned i)
{
	uint16_t n;
	memcpy(&n, g(f, RXBUF + 0x1000ull * i + 10, 2), 2);
	return n;
}

static bool needs_reset(struct nfx *f)
{
	return vfx_rd(&f->v, 0x14, 1) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

static void config_has_mac_and_link(void **state)
{
	struct nfx *f = *state;
	uint8_t mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(vfx_rd(&f->v, 0x2000 + i, 1), mac[i]);
	assert_int_equal(vfx_rd(&f->v, 0x2006, 2), 1); /* LINK_UP */
	assert_int_equal(vfx_rd(&f->v, 0x200a, 2), NET_LINK_MTU);
	vfx_wr(&f->v, 0x00, 0, 4);
	assert_true(vfx_rd(&f->v, 0x04, 4) & (1u << VIRTIO_NET_F_MTU));
}

static void frame_into_one_buffer(void **state)
{
	struct nfx *f = *state;
	rx_buffer(f, 0, 2048, VRING_DESC_F_WRITE);
	vfx_run_q(&f->v, RXQ);
	host_sends(f, 100, 0xab);
	backend_ready(f);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 1);
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 0), HDR + 100);
	assert_int_equal(num_buffers(f, 0), 1);
	uint8_t want[100];
	memset(want, 0xab, sizeof(want));
	assert_memory_equal(g(f, RXBUF + HDR, 100), want, 100);
}

static void frame_merged_over_buffers(void **state)
{
	struct nfx *f = *state;
	for (unsigned i = 0; i < 3; i++)
		rx_buffer(f, i, 1500, VRING_DESC_F_WRITE);
	host_sends(f, 3000, 0x5a);
	backend_ready(f);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 3);
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 0), 1500);
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 1), 1500);
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 2), HDR);
	assert_int_equal(num_buffers(f, 0), 3);
	assert_int_equal(g(f, RXBUF + 0x2000 + HDR - 1, 1)[0], 0x5a);
}

static void waits_for_buffers_without_losing_frames(void **state)
{
	struct nfx *f = *state;
	host_sends(f, 3000, 0x11);
	backend_ready(f); /* no buffers at all: nothing happens, the backend is left alone */
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 0);
	assert_false(f->net.pairs[0].watching);
	rx_buffer(f, 0, 1500, VRING_DESC_F_WRITE); /* too few for the whole frame */
	vfx_run_q(&f->v, RXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 0);
	assert_true(f->net.pairs[0].frame_pending);
	rx_buffer(f, 1, 1500, VRING_DESC_F_WRITE);
	rx_buffer(f, 2, 1500, VRING_DESC_F_WRITE);
	vfx_run_q(&f->v, RXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 3);
	assert_int_equal(num_buffers(f, 0), 3);
	assert_true(f->net.pairs[0].watching);
}

static void too_big_without_mergeable_is_dropped(void **state)
{
	struct nfx *f = *state;
	rx_buffer(f, 0, 1500, VRING_DESC_F_WRITE);
	host_sends(f, 3000, 0x22); /* does not fit one buffer */
	host_sends(f, 60, 0x33);   /* does */
	vfx_run_q(&f->v, RXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 1);
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 0), HDR + 60);
	assert_int_equal(f->net.rx_dropped, 1);
	assert_false(needs_reset(f));
}

static void hostile_receive_buffers(void **state)
{
	struct nfx *f = *state;
	rx_buffer(f, 0, 1500, 0); /* read-only */
	host_sends(f, 60, 1);
	backend_ready(f);
	assert_true(needs_reset(f));
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 0);

	vfx_wr(&f->v, 0x14, 0, 1); /* reset, then a buffer shorter than the header */
	memset(f->v.avail_idx_q, 0, sizeof(f->v.avail_idx_q));
	memset(g(f, VFX_AVAIL, 0x4000), 0, 0x4000);
	vfx_bring_up_queues(&f->v, F_MRG_RXBUF, 2);
	assert_false(needs_reset(f));
	rx_buffer(f, 0, 8, VRING_DESC_F_WRITE);
	host_sends(f, 60, 2);
	vfx_run_q(&f->v, RXQ);
	assert_true(needs_reset(f));
}

/* Offers a transmit chain: the header in one buffer, the frame split over two. */
static void tx_chain(struct nfx *f, uint32_t hdr_len, uint32_t a, uint32_t b)
{
	vfx_desc_q(&f->v, TXQ, 0, TXBUF, hdr_len, VRING_DESC_F_NEXT, 1);
	vfx_desc_q(&f->v, TXQ, 1, TXBUF + 0x1000, a, b ? VRING_DESC_F_NEXT : 0, 2);
	vfx_desc_q(&f->v, TXQ, 2, TXBUF + 0x2000, b ? b : 1, 0, 0);
	vfx_offer_q(&f->v, TXQ, 0);
	vfx_run_q(&f->v, TXQ);
}

static void transmit_strips_header(void **state)
{
	struct nfx *f = *state;
	memset(g(f, TXBUF, HDR), 0, HDR);
	memset(g(f, TXBUF + 0x1000, 40), 'A', 40);
	memset(g(f, TXBUF + 0x2000, 20), 'B', 20);
	tx_chain(f, HDR, 40, 20);
	uint8_t got[128];
	ssize_t n = recv(f->peer, got, sizeof(got), MSG_DONTWAIT);
	assert_int_equal(n, 60);
	assert_int_equal(got[0], 'A');
	assert_int_equal(got[59], 'B');
	/* Sent at once; its buffers held until the device's timer (or a full batch). */
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 0);
	assert_true(f->net.vdev.timer_at != 0);
	vfx_run_timer(&f->v);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 1);
	assert_int_equal(vfx_used_len_q(&f->v, TXQ, 0), 0);
}

/* Three frames offered, each in one buffer, and run. */
static void send_three(struct nfx *f)
{
	for (unsigned i = 0; i < 3; i++) {
		uint64_t at = TXBUF + 0x1000ull * i;
		memset(g(f, at, HDR), 0, HDR);
		memset(g(f, at + HDR, 40), 'a' + (int)i, 40);
		vfx_desc_q(&f->v, TXQ, (uint16_t)i, at, HDR + 40, 0, 0);
		vfx_offer_q(&f->v, TXQ, (uint16_t)i);
	}
	vfx_run_q(&f->v, TXQ);
	uint8_t got[64];
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), 40);
		assert_int_equal(got[0], 'a' + (int)i);
	}
}

/* Frames go out as soon as the driver offers them; with EVENT_IDX their buffers come back
 * together, with one interrupt, when the device's hold ends. */
static void sent_buffers_come_back_in_a_batch(void **state)
{
	struct nfx *f = *state;
	send_three(f);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 0);
	assert_int_equal(f->net.vdev.queues[TXQ].interrupts, 0);
	assert_true(f->net.vdev.timer_at != 0);
	vfx_run_timer(&f->v);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 3);
	assert_int_equal(f->net.vdev.queues[TXQ].interrupts, 1);
	assert_int_equal(f->net.vdev.timer_at, 0);
	vfx_run_timer(&f->v); /* nothing more held: nothing happens */
	assert_int_equal(f->net.vdev.queues[TXQ].interrupts, 1);
	/* A small ring (8 here) gives back once half of it is held, with no wait. */
	for (unsigned i = 0; i < 4; i++) {
		vfx_desc_q(&f->v, TXQ, (uint16_t)i, TXBUF + 0x1000ull * i, HDR + 40, 0, 0);
		vfx_offer_q(&f->v, TXQ, (uint16_t)i);
	}
	vfx_run_q(&f->v, TXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 7);
	assert_int_equal(f->net.tx_dropped, 0);
}

/* A sender already making full segments has its buffers back at once: a hold would only stop
 * its TCP, which waits for its few segments in the device (TCP small queues). The bound is 60 KiB
 * held, a Linux segment's size (64 KiB less its headers). */
static void big_frames_come_back_at_once(void **state)
{
	struct nfx *f = *state;
	uint8_t got[8];
	memset(g(f, 0x100000, HDR), 0, HDR);
	vfx_desc_q(&f->v, TXQ, 3, 0x100000, (60 << 10) - 1, 0, 0); /* a byte short: held */
	vfx_offer_q(&f->v, TXQ, 3);
	vfx_run_q(&f->v, TXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 0);
	assert_true(f->net.vdev.timer_at != 0);
	vfx_run_timer(&f->v);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 1);
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT | MSG_TRUNC), (60 << 10) - 1 - HDR);
	memset(g(f, TXBUF, HDR), 0, HDR); /* a small frame: held */
	tx_chain(f, HDR, 40, 20);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 1);
	vfx_desc_q(&f->v, TXQ, 3, 0x100000, (60 << 10) - (HDR + 60), 0, 0); /* then 60 KiB held in all */
	vfx_offer_q(&f->v, TXQ, 3);
	vfx_run_q(&f->v, TXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 3); /* both back at once */
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT | MSG_TRUNC), 60);
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT | MSG_TRUNC), (60 << 10) - (HDR + 60) - HDR);
	tx_chain(f, HDR, 40, 20); /* the count starts again: held */
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 3);
	assert_int_equal(f->net.tx_dropped, 0);
}

/* A chain the full backend left for later is not counted as held: counted on each try, it would
 * end later holds early. */
static void waiting_chain_is_not_counted(void **state)
{
	struct nfx *f = *state;
	uint8_t filler[1024] = {0};
	while (send(f->net.backend.fd, filler, sizeof(filler), MSG_DONTWAIT) > 0) /* fill the pair */
		;
	memset(g(f, TXBUF, HDR), 0, HDR);
	tx_chain(f, HDR, 40, 0);
	assert_true(f->net.pairs[0].tx_waiting);
	assert_int_equal(f->net.pairs[0].tx_held_bytes, 0);
	while (recv(f->peer, filler, sizeof(filler), MSG_DONTWAIT) == (ssize_t)sizeof(filler))
		;
	pthread_mutex_lock(&f->net.vdev.lock);
	f->net.vdev.ops->fd_ready(&f->net.vdev, 1); /* room again: sent, and held */
	pthread_mutex_unlock(&f->net.vdev.lock);
	assert_int_equal(f->net.pairs[0].tx_held_bytes, HDR + 40);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 0);
}

/* A driver without EVENT_IDX (firmware's polls for each buffer) has them back at once. */
static void sent_buffers_back_at_once_without_event_idx(void **state)
{
	struct nfx *f = *state;
	send_three(f);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 3);
	assert_int_equal(f->net.vdev.timer_at, 0);
}

static void hostile_transmits_are_dropped(void **state)
{
	struct nfx *f = *state;
	vfx_desc_q(&f->v, TXQ, 0, TXBUF, 8, 0, 0); /* shorter than the header */
	vfx_offer_q(&f->v, TXQ, 0);
	vfx_run_q(&f->v, TXQ);
	/* More than any frame may be (VIRTIO_NET_FRAME_MAX), in two big buffers. */
	vfx_desc_q(&f->v, TXQ, 1, 0x100000, 60000, VRING_DESC_F_NEXT, 2);
	vfx_desc_q(&f->v, TXQ, 2, 0x200000, 60000, 0, 0);
	vfx_offer_q(&f->v, TXQ, 1);
	vfx_run_q(&f->v, TXQ);
	/* A header and no frame: on a link it would be a zero-length message, which the other
	 * end reads as this end's close. */
	vfx_desc_q(&f->v, TXQ, 3, TXBUF, HDR, 0, 0);
	vfx_offer_q(&f->v, TXQ, 3);
	vfx_run_q(&f->v, TXQ);
	uint8_t got[16];
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(f->net.tx_dropped, 3);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 3); /* all handed back */
	assert_false(needs_reset(f));
}

static void full_backend_holds_transmit(void **state)
{
	struct nfx *f = *state;
	uint8_t filler[1024] = {0};
	while (send(f->net.backend.fd, filler, sizeof(filler), MSG_DONTWAIT) > 0) /* fill the pair */
		;
	memset(g(f, TXBUF, HDR), 0, HDR);
	memset(g(f, TXBUF + 0x1000, 40), 'C', 40);
	tx_chain(f, HDR, 40, 0);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 0); /* not taken, not dropped */
	assert_true(f->net.pairs[0].tx_waiting);
	assert_int_equal(f->net.tx_dropped, 0);
	vfx_run_q(&f->v, TXQ); /* a kick while waiting changes nothing */
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 0);
	while (recv(f->peer, filler, sizeof(filler), MSG_DONTWAIT) == (ssize_t)sizeof(filler))
		;
	pthread_mutex_lock(&f->net.vdev.lock);
	f->net.vdev.ops->fd_ready(&f->net.vdev, 1); /* room again */
	pthread_mutex_unlock(&f->net.vdev.lock);
	assert_false(f->net.pairs[0].tx_waiting);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 1);
	uint8_t got[64];
	ssize_t r;
	do /* the filler's last frames, then ours */
		r = recv(f->peer, got, sizeof(got), MSG_DONTWAIT);
	while (r > 0 && got[0] != 'C');
	assert_int_equal(r, 40);
}

static void reset_forgets_pending_frame(void **state)
{
	struct nfx *f = *state;
	host_sends(f, 3000, 0x44);
	rx_buffer(f, 0, 1500, VRING_DESC_F_WRITE);
	vfx_run_q(&f->v, RXQ);
	assert_true(f->net.pairs[0].frame_pending);
	vfx_wr(&f->v, 0x14, 0, 1);
	assert_false(f->net.pairs[0].frame_pending);
	assert_false(f->net.pairs[0].watching);
}

#define CONFIG_GENERATION 0x15
#define LINK_STATUS       0x2006

/* The frame the guest sends on the transmit queue's descriptor 0..2 (40 bytes of fill). */
static void guest_sends(struct nfx *f, uint8_t fill)
{
	memset(g(f, TXBUF, HDR), 0, HDR);
	memset(g(f, TXBUF + 0x1000, 40), fill, 40);
	tx_chain(f, HDR, 40, 0);
}

static void link_down_when_the_other_end_goes(void **state)
{
	struct nfx *f = *state;
	uint32_t gen = vfx_rd(&f->v, CONFIG_GENERATION, 1);
	close(f->peer); /* the other VM's monitor stopped */
	f->peer = -1;
	backend_ready(f);
	assert_int_equal(vfx_rd(&f->v, LINK_STATUS, 2), 0);
	assert_int_not_equal(vfx_rd(&f->v, CONFIG_GENERATION, 1), gen); /* a configuration interrupt */
	assert_false(f->net.pairs[0].watching);
	assert_false(needs_reset(f)); /* the NIC itself is sound */
	guest_sends(f, 'D');          /* no carrier: dropped, counted, handed back */
	assert_int_equal(f->net.tx_dropped, 1);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 1);

	int sv[2]; /* the other VM is back: a new pair */
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	gen = vfx_rd(&f->v, CONFIG_GENERATION, 1);
	assert_int_equal(virtio_net_link_set(&f->net, sv[0], false, &e), 0);
	f->peer = sv[1];
	assert_int_equal(vfx_rd(&f->v, LINK_STATUS, 2), 1);
	assert_int_not_equal(vfx_rd(&f->v, CONFIG_GENERATION, 1), gen);
	assert_true(f->net.pairs[0].watching);
	rx_buffer(f, 0, 2048, VRING_DESC_F_WRITE);
	host_sends(f, 64, 0x77);
	backend_ready(f);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 1);
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 0), HDR + 64);
}

static void link_send_to_a_gone_end_takes_it_down(void **state)
{
	struct nfx *f = *state;
	close(f->peer);
	f->peer = -1;
	guest_sends(f, 'E'); /* EPIPE: the link goes down, the frame is dropped */
	assert_int_equal(vfx_rd(&f->v, LINK_STATUS, 2), 0);
	assert_int_equal(f->net.tx_dropped, 1);
	assert_int_equal(f->net.backend.fd, -1);
}

/* A guest that posts no receive buffers leaves the socket unread: the status path sees the other
 * end close all the same. */
static void hang_up_seen_without_receive_buffers(void **state)
{
	struct nfx *f = *state;
	bool up;
	uint64_t rx, tx;
	host_sends(f, 64, 0x55);
	backend_ready(f); /* no buffer: the frame waits, the socket is no longer watched */
	assert_false(f->net.pairs[0].watching);
	virtio_net_state(&f->net, &up, &rx, &tx);
	assert_true(up); /* the other end is still there */
	close(f->peer);
	f->peer = -1;
	virtio_net_state(&f->net, &up, &rx, &tx);
	assert_false(up);
	assert_int_equal(vfx_rd(&f->v, LINK_STATUS, 2), 0);
	assert_int_equal(f->net.backend.fd, -1);
}

/* A frame held for a full socket's room is not stranded when a new link replaces that socket:
 * the transmit queue is run again (its kick), and the frame goes out on the new link. */
static void new_link_runs_held_transmit(void **state)
{
	struct nfx *f = *state;
	uint8_t filler[1024] = {0};
	while (send(f->net.backend.fd, filler, sizeof(filler), MSG_DONTWAIT) > 0)
		;
	guest_sends(f, 'H');
	assert_true(f->net.pairs[0].tx_waiting);
	uint64_t count;
	while (read(f->net.vdev.queues[TXQ].kick_fd, &count, sizeof(count)) > 0) /* kicks so far */
		;
	int sv[2];
	struct err e;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(virtio_net_link_set(&f->net, sv[0], false, &e), 0);
	close(f->peer);
	f->peer = sv[1];
	assert_false(f->net.pairs[0].tx_waiting);
	assert_int_equal(read(f->net.vdev.queues[TXQ].kick_fd, &count, sizeof(count)), (ssize_t)sizeof(count));
	vfx_run_q(&f->v, TXQ); /* what the kick does on the I/O thread */
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ), 1);
	uint8_t got[64];
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), 40);
	assert_int_equal(got[0], 'H');
}

static void link_refuses_what_is_not_a_link(void **state)
{
	struct nfx *f = *state;
	struct err e;
	int p[2], s[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(virtio_net_link_set(&f->net, p[0], false, &e), -1); /* taken: closed */
	assert_contains(e.msg, "SOCK_SEQPACKET Unix socket");
	close(p[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
	assert_int_equal(virtio_net_link_set(&f->net, s[0], false, &e), -1);
	close(s[1]);
	assert_int_equal(vfx_rd(&f->v, LINK_STATUS, 2), 1); /* the link it had stays */

	struct nfx tap; /* a TAP takes no socket */
	struct net_config c;
	assert_int_equal(net_config_parse(&c, "tap=tap0", 0, &e), 0);
	memset(&tap, 0, sizeof(tap));
	tap.net.config = c;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, s), 0);
	assert_int_equal(virtio_net_link_set(&tap.net, s[0], false, &e), -1);
	assert_contains(e.msg, "it is a TAP");
	close(s[1]);
}

static void link_down_until_its_socket_comes(void **state)
{
	(void)state;
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	assert_int_equal(net_config_parse(&c, "link", 0, &e), 0);
	assert_int_equal(vfx_init(&v), 0);
	assert_int_equal(virtio_net_init(&n, &c, 1, &v.fm.m, &v.mem, &e), 0);
	assert_int_equal(vfx_attach(&v, &n.vdev), 0);
	vfx_bring_up_queues(&v, F_MAC | F_MRG_RXBUF, 2);
	assert_int_equal(vfx_rd(&v, LINK_STATUS, 2), 0);
	assert_false(n.pairs[0].watching);
	bool up;
	uint64_t rx, tx;
	virtio_net_state(&n, &up, &rx, &tx);
	assert_false(up);
	virtio_net_destroy(&n);
	vfx_destroy(&v);
}

/* A passt NIC: its stream socket handed over, frames after their 4-byte lengths both ways. */
static void passt_frames_both_ways(void **state)
{
	(void)state;
	struct nfx f = {.peer = -1};
	struct net_config c;
	struct err e;
	int sv[2];
	assert_int_equal(net_config_parse(&c, "passt", 0, &e), 0);
	assert_int_equal(vfx_init(&f.v), 0);
	assert_int_equal(virtio_net_init(&f.net, &c, 1, &f.v.fm.m, &f.v.mem, &e), 0);
	assert_int_equal(vfx_attach(&f.v, &f.net.vdev), 0);
	vfx_bring_up_queues(&f.v, F_MAC | F_MRG_RXBUF, 2);
	assert_int_equal(vfx_rd(&f.v, LINK_STATUS, 2), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0); /* the wrong kind */
	assert_int_equal(virtio_net_link_set(&f.net, sv[0], false, &e), -1);
	assert_contains(e.msg, "SOCK_STREAM");
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(virtio_net_link_set(&f.net, sv[0], false, &e), 0);
	f.peer = sv[1];
	assert_int_equal(vfx_rd(&f.v, LINK_STATUS, 2), 1);
	/* passt first hears the guest's MAC address: a RARP request from it to all. */
	uint8_t rarp[4 + 60];
	assert_int_equal(recv(f.peer, rarp, sizeof(rarp), MSG_DONTWAIT), (ssize_t)sizeof(rarp));
	assert_memory_equal(rarp, "\0\0\0\x3c\xff\xff\xff\xff\xff\xff", 10);
	assert_memory_equal(rarp + 4 + 6, c.mac, 6);
	assert_memory_equal(rarp + 4 + 12, "\x80\x35\0\x01\x08\x00\x06\x04\0\x03", 10);
	assert_memory_equal(rarp + 4 + 22, c.mac, 6);
	assert_memory_equal(rarp + 4 + 32, c.mac, 6);

	uint8_t wire[4 + 100] = {0, 0, 0, 100};
	memset(wire + 4, 0xab, 100);
	rx_buffer(&f, 0, 2048, VRING_DESC_F_WRITE);
	assert_int_equal(send(f.peer, wire, 50, 0), 50); /* half a frame: nothing yet */
	backend_ready(&f);
	assert_int_equal(vfx_used_idx_q(&f.v, RXQ), 0);
	assert_int_equal(send(f.peer, wire + 50, sizeof(wire) - 50, 0), (ssize_t)sizeof(wire) - 50);
	backend_ready(&f);
	assert_int_equal(vfx_used_idx_q(&f.v, RXQ), 1);
	assert_int_equal(vfx_used_len_q(&f.v, RXQ, 0), HDR + 100);
	assert_int_equal(g(&f, RXBUF + HDR + 99, 1)[0], 0xab);

	guest_sends(&f, 'P');
	uint8_t got[64];
	assert_int_equal(recv(f.peer, got, sizeof(got), MSG_DONTWAIT), 44);
	assert_memory_equal(got, "\0\0\0\x28", 4);
	assert_int_equal(got[4], 'P');

	uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff}; /* a length no frame has: the stream is broken */
	assert_int_equal(send(f.peer, huge, 4, 0), 4);
	backend_ready(&f);
	assert_int_equal(vfx_rd(&f.v, LINK_STATUS, 2), 0);
	assert_int_equal(f.net.backend.fd, -1);
	virtio_net_destroy(&f.net);
	vfx_destroy(&f.v);
	close(f.peer);
}

/* ---- a link that carries headers (offload), and one of bare frames whose guest offloads ---- */

#define F_GUEST_TSO (VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4))
#define F_HOST_TSO  (VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4))

static int setup_offload(void **state)
{
	return setup_link(state, F_MAC | F_MRG_RXBUF | F_GUEST_TSO | F_HOST_TSO, true);
}
/* Firmware's driver: no offload features at all. */
static int setup_offload_plain_guest(void **state)
{
	return setup_link(state, F_MAC | F_MRG_RXBUF, true);
}
static int setup_bare_offloading_guest(void **state)
{
	return setup_link(state, F_MAC | F_MRG_RXBUF | F_GUEST_TSO | F_HOST_TSO, false);
}

/* The other VM sends a segment of FX_PAYLOAD bytes after its header; its length with it. */
static size_t peer_sends_segment(struct nfx *f, struct virtio_net_hdr *h)
{
	static uint8_t msg[8192 + HDR];
	size_t len = fx_segment(msg + HDR, false, false, h);
	memcpy(msg, h, sizeof(*h));
	assert_int_equal(send(f->peer, msg, HDR + len, 0), (ssize_t)(HDR + len));
	return len;
}

static void offload_link_passes_a_segment_whole(void **state)
{
	struct nfx *f = *state;
	vfx_wr(&f->v, 0x00, 0, 4);
	assert_true(vfx_rd(&f->v, 0x04, 4) & (1u << VIRTIO_NET_F_GUEST_TSO4)); /* a link offers offloads */
	for (unsigned i = 0; i < 3; i++)
		rx_buffer(f, i, 4096, VRING_DESC_F_WRITE);
	struct virtio_net_hdr sent;
	size_t len = peer_sends_segment(f, &sent);
	backend_ready(f);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 2); /* one frame over two buffers */
	assert_int_equal(num_buffers(f, 0), 2);
	struct virtio_net_hdr got;
	memcpy(&got, g(f, RXBUF, sizeof(got)), sizeof(got));
	assert_int_equal(got.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM); /* DATA_VALID not passed on */
	assert_int_equal(got.gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_int_equal(got.gso_size, FX_MSS);
	assert_int_equal(got.hdr_len, 14 + 20 + 20); /* the frame's, not the sender's word */
	assert_int_equal(vfx_used_len_q(&f->v, RXQ, 0) + vfx_used_len_q(&f->v, RXQ, 1), HDR + len);
}

static void offload_link_cuts_for_a_guest_without_tso(void **state)
{
	struct nfx *f = *state;
	struct virtio_net_hdr sent, got;
	for (unsigned i = 0; i < 2; i++)
		rx_buffer(f, i, 2048, VRING_DESC_F_WRITE);
	peer_sends_segment(f, &sent);
	backend_ready(f);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 2); /* two pieces; the rest waits for buffers */
	assert_true(f->net.pairs[0].frame_pending && f->net.pairs[0].cutting);
	for (unsigned i = 2; i < 6; i++)
		rx_buffer(f, i, 2048, VRING_DESC_F_WRITE);
	vfx_run_q(&f->v, RXQ);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 5);
	assert_false(f->net.pairs[0].frame_pending);
	for (unsigned i = 0; i < 5; i++) {
		size_t pay = i < 4 ? FX_MSS : FX_PAYLOAD % FX_MSS;
		assert_int_equal(vfx_used_len_q(&f->v, RXQ, i), HDR + 54 + pay);
		memcpy(&got, g(f, RXBUF + 0x1000ull * i, sizeof(got)), sizeof(got));
		assert_int_equal(got.flags | got.gso_type, 0);
		const uint8_t *ip = g(f, RXBUF + 0x1000ull * i + HDR + 14, 40 + pay);
		assert_int_equal(fx_sum(ip, 20, 0), 0xffff);
		assert_int_equal(fx_sum(ip + 20, 20 + pay, fx_sum(ip + 12, 8, 6 + 20 + (uint32_t)pay)), 0xffff);
	}
	assert_int_equal(f->net.rx_dropped, 0);
}

static void offload_link_drops_a_header_that_lies(void **state)
{
	struct nfx *f = *state;
	struct virtio_net_hdr h;
	static uint8_t msg[8192 + HDR];
	rx_buffer(f, 0, 4096, VRING_DESC_F_WRITE);
	rx_buffer(f, 1, 4096, VRING_DESC_F_WRITE);
	size_t len = fx_segment(msg + HDR, false, false, &h);
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV6; /* the frame is IPv4 */
	memcpy(msg, &h, sizeof(h));
	assert_int_equal(send(f->peer, msg, HDR + len, 0), (ssize_t)(HDR + len));
	assert_int_equal(send(f->peer, msg, 5, 0), 5); /* shorter than a header */
	peer_sends_segment(f, &h);
	backend_ready(f);
	assert_int_equal(f->net.rx_dropped, 2);
	assert_int_equal(vfx_used_idx_q(&f->v, RXQ), 2); /* the good one, over two buffers */
}

/* The guest sends a segment (header asking TSO, the frame over two buffers). */
static size_t guest_sends_segment(struct nfx *f, uint8_t *frame)
{
	struct virtio_net_hdr h;
	size_t len = fx_segment(frame, false, false, &h);
	memset(g(f, TXBUF, HDR), 0, HDR);
	memcpy(g(f, TXBUF, sizeof(h)), &h, sizeof(h));
	memcpy(g(f, TXBUF + 0x1000, 4096), frame, 4096);
	memcpy(g(f, TXBUF + 0x2000, len - 4096), frame + 4096, len - 4096);
	tx_chain(f, HDR, 4096, (uint32_t)(len - 4096));
	return len;
}

static void offload_link_sends_a_segment_whole(void **state)
{
	struct nfx *f = *state;
	static uint8_t frame[8192], got[8192 + HDR];
	size_t len = guest_sends_segment(f, frame);
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), (ssize_t)(HDR + len));
	assert_int_equal(((struct virtio_net_hdr *)got)->gso_type, VIRTIO_NET_HDR_GSO_TCPV4);
	assert_memory_equal(got + HDR, frame, len);
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1); /* one message */
}

static void bare_link_gets_the_segment_cut(void **state)
{
	struct nfx *f = *state;
	static uint8_t frame[8192], got[8192];
	guest_sends_segment(f, frame);
	for (unsigned i = 0; i < 5; i++) {
		size_t pay = i < 4 ? FX_MSS : FX_PAYLOAD % FX_MSS;
		assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), (ssize_t)(54 + pay));
		assert_memory_equal(got + 54, frame + 54 + i * FX_MSS, pay);
		assert_int_equal(fx_sum(got + 34, 20 + pay, fx_sum(got + 26, 8, 6 + 20 + (uint32_t)pay)), 0xffff);
	}
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), -1);
	assert_int_equal(f->net.tx_dropped, 0);
}

/* A header with flags but nothing to do (DATA_VALID on an ARP frame): sent bare, as it is. */
static void bare_link_sends_a_plain_frame_whose_header_has_flags(void **state)
{
	struct nfx *f = *state;
	struct virtio_net_hdr h = {.flags = VIRTIO_NET_HDR_F_DATA_VALID};
	memset(g(f, TXBUF, HDR), 0, HDR);
	memcpy(g(f, TXBUF, sizeof(h)), &h, sizeof(h));
	memset(g(f, TXBUF + 0x1000, 42), 0, 42);
	memcpy(g(f, TXBUF + 0x1000 + 12, 2), "\x08\x06", 2); /* ARP */
	tx_chain(f, HDR, 42, 0);
	uint8_t got[128];
	assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), 42);
	assert_int_equal(f->net.tx_dropped, 0);
}

/* The socket full when the guest's segment comes: nothing sent, nothing lost; once there is
 * room every piece goes, in order. */
static void bare_link_cut_waits_for_room(void **state)
{
	struct nfx *f = *state;
	static uint8_t frame[8192], got[8192];
	uint8_t filler[1024] = {0};
	while (send(f->net.backend.fd, filler, sizeof(filler), MSG_DONTWAIT) > 0)
		;
	guest_sends_segment(f, frame);
	assert_true(f->net.pairs[0].tx_waiting && f->net.tx_cutting);
	while (recv(f->peer, got, sizeof(got), MSG_DONTWAIT) == (ssize_t)sizeof(filler))
		;
	pthread_mutex_lock(&f->net.vdev.lock);
	f->net.vdev.ops->fd_ready(&f->net.vdev, 1); /* room again */
	pthread_mutex_unlock(&f->net.vdev.lock);
	for (unsigned i = 0; i < 5; i++) {
		size_t pay = i < 4 ? FX_MSS : FX_PAYLOAD % FX_MSS;
		assert_int_equal(recv(f->peer, got, sizeof(got), MSG_DONTWAIT), (ssize_t)(54 + pay));
		assert_memory_equal(got + 54, frame + 54 + i * FX_MSS, pay);
	}
	assert_false(f->net.tx_cutting);
	assert_int_equal(f->net.tx_dropped, 0);
}

static void option_parsing(void **state)
{
	(void)state;
	struct net_config c;
	struct err e;
	assert_int_equal(net_config_parse(&c, "slirp", 2, &e), 0);
	assert_int_equal(c.kind, NET_SLIRP);
	assert_int_equal(c.mac[5], 0x58); /* NIC 2's default */
	assert_int_equal(c.mtu, NET_SLIRP_MTU);
	assert_int_equal(net_config_parse(&c, "slirp,mtu=1500", 0, &e), 0);
	assert_int_equal(c.mtu, 1500);
	assert_int_equal(net_config_parse(&c, "slirp,fwd=tcp:127.0.0.1:2222:22,fwd=udp:5353:53", 0, &e), 0);
	assert_int_equal(c.nfwd, 2);
	assert_int_equal(c.fwd[0].host_port, 2222);
	assert_int_equal(c.fwd[0].guest_port, 22);
	assert_true(c.fwd[1].udp);
	/* A forward without an address listens on the host's loopback only. */
	assert_int_equal(c.fwd[1].host_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_false(c.host_loopback);
	assert_int_equal(net_config_parse(&c, "slirp,host-loopback=on,fwd=tcp:0.0.0.0:80:80", 0, &e), 0);
	assert_true(c.host_loopback);
	assert_int_equal(c.fwd[0].host_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(net_config_parse(&c, "tap=tap0,mac=02:00:00:00:00:01", 0, &e), 0);
	assert_int_equal(c.kind, NET_TAP);
	assert_string_equal(c.ifname, "tap0");
	assert_int_equal(c.vhost, VHOST_AUTO);
	assert_int_equal(net_config_parse(&c, "tap=tap0,vhost=off", 0, &e), 0);
	assert_int_equal(c.vhost, VHOST_OFF);
	assert_int_equal(net_config_parse(&c, "tap=tap0,vhost=on", 0, &e), 0);
	assert_int_equal(c.vhost, VHOST_ON);
	assert_int_equal(c.queues, 0); /* one a vCPU */
	assert_int_equal(net_config_parse(&c, "tap=tap0,queues=8", 0, &e), 0);
	assert_int_equal(c.queues, 8);
	assert_int_equal(net_config_parse(&c, "passt", 0, &e), 0);
	assert_int_equal(c.kind, NET_PASST);
	assert_int_equal(c.mtu, NET_SLIRP_MTU);
	assert_int_equal(net_config_parse(&c, "link,mtu=9000", 0, &e), 0);
	assert_int_equal(c.kind, NET_LINK);
	assert_int_equal(c.mtu, 9000);

	static const struct {
		const char *spec, *msg;
	} bad[] = {
		{"bridge", "unknown backend 'bridge'"},
		{"tap=", "unknown backend"},
		{"tap=an-interface-name-too-long", "unknown backend"},
		{"slirp,mac=52:54:00:12:34", "bad MAC address"},
		{"slirp,host-loopback=yes", "host-loopback=on or host-loopback=off"},
		{"tap=tap0,host-loopback=on", "slirp backend only"},
		{"slirp,mac=01:00:5e:00:00:01", "multicast"},
		{"tap=tap0,fwd=tcp:1:2", "slirp backend only"},
		{"slirp,fwd=tcp:80", "is not tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT"},
		{"slirp,fwd=sctp:1:2", "is not tcp|udp"},
		{"slirp,fwd=tcp:0:80", "ports are whole numbers from 1 to 65535"},
		{"slirp,fwd=tcp:65536:80", "ports are whole numbers"},
		{"slirp,fwd=tcp:+22:80", "ports are whole numbers"},
		{"slirp,fwd=tcp:not-an-ip:1:2", "'not-an-ip' is not an IPv4 address"},
		{"slirp,speed=10", "unknown option 'speed=10'"},
		{"slirp,mtu=100", "the MTU must be from 576"},
		{"slirp,mtu=65521", "the MTU must be from 576"},
		{"tap=tap0,mtu=9000", "slirp, link and passt backends only"},
		{"passt,fwd=tcp:1:2", "slirp backend only"},
		{"link,fwd=tcp:1:2", "slirp backend only"},
		{"link,vhost=on", "tap backend only"},
		{"tap=tap0,vhost=yes", "vhost=auto, vhost=on or vhost=off"},
		{"slirp,vhost=on", "tap backend only"},
		{"tap=tap0,queues=0", "queues= is a number of queue pairs from 1 to 8"},
		{"tap=tap0,queues=9", "from 1 to 8"},
		{"tap=tap0,queues=-1", "from 1 to 8"},
		{"tap=tap0,queues=2x", "from 1 to 8"},
		{"link,queues=2", "tap backend only"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(net_config_parse(&c, bad[i].spec, 0, &e), -1);
		assert_contains(e.msg, bad[i].msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(option_parsing),
		cmocka_unit_test_setup_teardown(config_has_mac_and_link, setup, teardown),
		cmocka_unit_test_setup_teardown(frame_into_one_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(frame_merged_over_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(waits_for_buffers_without_losing_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(too_big_without_mergeable_is_dropped, setup_no_mrg, teardown),
		cmocka_unit_test_setup_teardown(hostile_receive_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(transmit_strips_header, setup_event_idx, teardown),
		cmocka_unit_test_setup_teardown(sent_buffers_come_back_in_a_batch, setup_event_idx, teardown),
		cmocka_unit_test_setup_teardown(big_frames_come_back_at_once, setup_event_idx, teardown),
		cmocka_unit_test_setup_teardown(waiting_chain_is_not_counted, setup_event_idx, teardown),
		cmocka_unit_test_setup_teardown(sent_buffers_back_at_once_without_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_transmits_are_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(full_backend_holds_transmit, setup, teardown),
		cmocka_unit_test_setup_teardown(reset_forgets_pending_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(link_down_when_the_other_end_goes, setup, teardown),
		/* a slirp NIC whose shoji-slirp ended, and shojid's new one */
		cmocka_unit_test_setup_teardown(link_down_when_the_other_end_goes, setup_slirp, teardown),
		cmocka_unit_test_setup_teardown(link_send_to_a_gone_end_takes_it_down, setup, teardown),
		cmocka_unit_test_setup_teardown(link_refuses_what_is_not_a_link, setup, teardown),
		cmocka_unit_test_setup_teardown(hang_up_seen_without_receive_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(new_link_runs_held_transmit, setup, teardown),
		cmocka_unit_test(link_down_until_its_socket_comes),
		cmocka_unit_test(passt_frames_both_ways),
		cmocka_unit_test_setup_teardown(offload_link_passes_a_segment_whole, setup_offload, teardown),
		cmocka_unit_test_setup_teardown(offload_link_cuts_for_a_guest_without_tso, setup_offload_plain_guest,
						teardown),
		cmocka_unit_test_setup_teardown(offload_link_drops_a_header_that_lies, setup_offload, teardown),
		cmocka_unit_test_setup_teardown(offload_link_sends_a_segment_whole, setup_offload, teardown),
		cmocka_unit_test_setup_teardown(bare_link_gets_the_segment_cut, setup_bare_offloading_guest, teardown),
		cmocka_unit_test_setup_teardown(bare_link_sends_a_plain_frame_whose_header_has_flags,
						setup_bare_offloading_guest, teardown),
		cmocka_unit_test_setup_teardown(bare_link_cut_waits_for_room, setup_bare_offloading_guest, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

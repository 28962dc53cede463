/* virtio_net: the network device (see virtio_net.h; virtio 1.x section 5.1). Queue 2i receives
 * and 2i+1 transmits for queue pair i; a NIC with several pairs (a multiqueue TAP) has the
 * control queue after them, for the driver's choice of how many pairs it uses (VIRTIO_NET_F_MQ),
 * and nothing else. Served here, on the device's I/O thread, or, for a TAP where the host has
 * vhost-net, by the host kernel (vhost-net, a descriptor and a kernel thread a pair). A link
 * NIC's socket may be absent (the link down): then nothing is read and what the guest sends is
 * dropped and counted, as a NIC without carrier does. */
#include "virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h> /* VIRTIO_RING_F_EVENT_IDX */
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../net/offload.h"
#include "../virtio/iov.h"
#include "../virtio/vhost.h"

#define NET_QUEUE_SIZE 256
/* A sent frame's buffers go back to the driver once NET_TX_HOLD_MAX frames or NET_TX_HOLD_BYTES
 * (one full segment) are held, or NET_TX_HOLD_NS after the pass that sent the first one, with one interrupt for
 * the batch, as a NIC's interrupt moderation does. The guest's TCP makes bigger frames while its
 * last ones are still in the device (autocorking and TCP small queues wait for them): given
 * back as soon as written, each small write of a sender became a frame of its own, with its own
 * kick and interrupt (measured in the emulated harness, guest to host over a TAP: 329 frames and
 * 814 exits per MiB at 5.8 MiB/s, against 63 and 137 at 25.1 MiB/s with a 100 us hold; QEMU 48
 * and 74 at 32.6 MiB/s). A sender already making full segments gains nothing from the wait,
 * and TCP small queues stop it until its few segments in the device come back, hence the byte
 * bound (in the harness, a 256 KiB writer over a TAP: medians of four bench/net runs of three
 * 0.74x to 1.26x QEMU's held by time alone, 0.98x to 1.53x given back at once; the emulated
 * machine's spread is as wide as the difference). The frame itself is never delayed. */
#define NET_TX_HOLD_NS    100000u
#define NET_TX_HOLD_BYTES (60u << 10) /* a full segment: Linux's are 64 KiB less headers */
#define NET_TX_HOLD_MAX   64          /* or half the ring, if that is less */
_Static_assert(NET_QUEUE_SIZE <= VIRTIO_HELD_MAX, "a transmit ring's chains all fit in its hold");
/* The header with num_buffers, as VERSION_1 always has it. */
#define HDR_LEN         ((unsigned)sizeof(struct virtio_net_hdr_mrg_rxbuf))
#define HDR_NUM_BUFFERS offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers)
#define ETH_HEADER_LEN  14
#define ETH_MIN_FRAME   60 /* without its check sequence */
/* Pair i's queues, and its two watch tokens: its descriptor readable, and room on it. */
#define RXQ(i)           (2 * (i))
#define TXQ(i)           (2 * (i) + 1)
#define TOKEN_BACKEND(i) (2 * (i))
#define TOKEN_TX_ROOM(i) (2 * (i) + 1)

#define BASE_FEATURES                                                                                                  \
	(VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_STATUS))
/* What a TAP with a virtio-net header can carry as is. */
#define OFFLOAD_FEATURES                                                                                               \
	(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |   \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |                                    \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN))
/* Several pairs: the driver says how many it uses on the control queue. */
#define MQ_FEATURES (VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_MQ))
/* The configuration fields up to the MTU: mac, status, max_virtqueue_pairs, mtu. */
#define CONFIG_SIZE offsetof(struct virtio_net_config, speed)

static struct virtio_net *net_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

static unsigned pair_index(const struct virtio_net *n, const struct virtio_net_pair *p)
{
	return (unsigned)(p - n->pairs);
}

/* The pair's backend descriptor: the backend's own for pair 0 (a link's comes and goes), a
 * further TAP queue's for the others. */
static int pair_fd(const struct virtio_net *n, const struct virtio_net_pair *p)
{
	unsigned i = pair_index(n, p);
	return i ? n->backend.queue_fd[i - 1] : n->backend.fd;
}

/* Whether vhost-net serves the data queues (then no frame passes through here). */
static bool vhost_served(const struct virtio_net *n)
{
	return n->vhost_fd[0] >= 0;
}

/* The control queue, where the driver took it (virtio 1.x 5.1.2): after the pairs with MQ,
 * else queue 2; UINT_MAX without one. */
static unsigned ctrl_queue(const struct virtio_net *n)
{
	uint64_t f = n->vdev.driver_features;
	if (!(f & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)))
		return UINT_MAX;
	return f & VIRTIO_BIT(VIRTIO_NET_F_MQ) ? 2 * n->npairs : 2;
}

static void config_read(struct virtio_dev *vdev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = net_of(vdev);
	struct virtio_net_config c = {
		.status = n->link_up ? VIRTIO_NET_S_LINK_UP : 0,
		.max_virtqueue_pairs = (uint16_t)n->npairs,
		.mtu = (uint16_t)n->config.mtu,
	};
	memcpy(c.mac, n->config.mac, sizeof(c.mac));
	memcpy(data, (uint8_t *)&c + off, len); /* inside CONFIG_SIZE: the core checked */
}

static void watch_backend(struct virtio_net *n, struct virtio_net_pair *p, bool on)
{
	int fd = pair_fd(n, p);
	if (on == p->watching || (on && fd < 0))
		return;
	if (on && virtio_watch(&n->vdev, fd, TOKEN_BACKEND(pair_index(n, p))) < 0) {
		log_warn("virtio-net: cannot watch the backend: %s", strerror(errno));
		return;
	}
	if (!on)
		virtio_unwatch(&n->vdev, fd);
	p->watching = on;
}

static void tx_stop_waiting(struct virtio_net *n, struct virtio_net_pair *p)
{
	if (p->tx_waiting)
		virtio_unwatch(&n->vdev, p->tx_fd);
	p->tx_waiting = false;
}

/* ---- a link to another VM's NIC: its socket comes and goes ---- */

/* The pair forgets the frame it held for the guest (and the piece being cut from it). */
static void rx_forget(struct virtio_net_pair *p)
{
	p->frame_pending = p->cutting = false;
}

/* The device forgets the frame it was cutting for a bare link. */
static void tx_forget(struct virtio_net *n)
{
	n->tx_cutting = false;
	n->tx_piece = 0;
}

static void link_close(struct virtio_net *n)
{
	struct virtio_net_pair *p = &n->pairs[0]; /* a link has one pair */
	watch_backend(n, p, false);
	tx_stop_waiting(n, p);
	if (n->backend.fd >= 0)
		close(n->backend.fd);
	if (p->tx_fd >= 0)
		close(p->tx_fd);
	n->backend.fd = p->tx_fd = -1;
	rx_forget(p);
	tx_forget(n);
	if (n->stream.in)
		net_stream_reset(&n->stream);
}

static void log_link(const struct virtio_net *n, const char *state, const char *why)
{
	char mac[18];
	net_mac_text(n->config.mac, mac);
	log_info("virtio-net: the link of NIC %s is %s%s", mac, state, why);
}

static void link_show(struct virtio_net *n, bool up)
{
	if (up == n->link_up)
		return;
	n->link_up = up;
	virtio_config_changed(&n->vdev);
}

/* The other end went (its monitor, passt or shoji-slirp ended): the link is down until another
 * socket comes (a link's or passt's; a slirp NIC's helper is not started again). A TAP that
 * fails keeps its descriptor. */
static void link_lost(struct virtio_net *n, const char *why)
{
	if (!net_kind_peer_ends(n->backend.kind) || n->backend.fd < 0)
		return;
	link_close(n);
	link_show(n, false);
	log_link(n, "down: ", why);
}

static bool rx_ready(const struct virtio_net *n, const struct virtio_net_pair *p)
{
	return virtio_queue_live(&n->vdev, RXQ(pair_index(n, p)));
}

/* passt's stream ended or broke (r: what net_stream said; errno its error). */
static void stream_lost(struct virtio_net *n, enum net_stream_result r)
{
	link_lost(n,
		  r == NET_STREAM_CLOSED    ? "the other end closed it"
			  : errno == EPROTO ? "it sent a frame longer than the NIC takes"
					    : strerror(errno));
}

/* passt's stream: the next whole frame into frame[], after a zeroed header. */
static bool stream_frame_read(struct virtio_net *n, struct virtio_net_pair *p)
{
	for (;;) {
		uint32_t len;
		enum net_stream_result r = net_stream_read(&n->stream, n->backend.fd, p->frame + HDR_LEN, &len);
		if (r == NET_STREAM_AGAIN)
			return false;
		if (r != NET_STREAM_FRAME) {
			stream_lost(n, r);
			return false;
		}
		if (len < ETH_HEADER_LEN) {
			n->rx_dropped++;
			continue;
		}
		memset(p->frame, 0, HDR_LEN);
		p->frame_len = HDR_LEN + len;
		p->frame_pending = true;
		return true;
	}
}

/* The next piece of the frame being cut into cut[] (a zeroed header, then the frame); false
 * when none is left. */
static bool cut_next(struct virtio_net_pair *p)
{
	size_t len = offload_seg_next(&p->seg, p->cut + HDR_LEN);
	memset(p->cut, 0, HDR_LEN);
	p->cut_len = (uint32_t)(HDR_LEN + len);
	return p->cutting = len > 0;
}

/* A frame from a link that carries headers (the other VM's asks: a checksum to complete, a TCP
 * segment to cut): checked, then passed on as it is where the guest takes it, else done here
 * (the segment cut into frames of cut[], one delivered at a time). False: dropped. */
static bool rx_offload(struct virtio_net *n, struct virtio_net_pair *p)
{
	struct virtio_net_hdr *h = (struct virtio_net_hdr *)p->frame;
	uint8_t *f = p->frame + HDR_LEN;
	size_t len = p->frame_len - HDR_LEN;
	int need = offload_check(h, f, len);
	if (need < 0)
		return false;
	if (offload_guest_takes((enum offload_need)need, h, n->vdev.driver_features))
		return true;
	if (need == OFFLOAD_CSUM) {
		offload_csum(h, f, len);
		memset(h, 0, sizeof(*h));
		return true;
	}
	if (!p->cut && !(p->cut = malloc(VIRTIO_NET_FRAME_MAX)))
		return false;
	return offload_seg_init(&p->seg, h, f, len) && cut_next(p);
}

/* Reads the next frame from the pair's descriptor into its frame[], header first. False when
 * none is there. */
static bool frame_read(struct virtio_net *n, struct virtio_net_pair *p)
{
	if (n->backend.kind == NET_PASST)
		return stream_frame_read(n, p);
	unsigned skip = HDR_LEN - n->backend.vnet_hdr_len;
	for (unsigned tries = 0; tries < NET_QUEUE_SIZE; tries++) { /* drops too end the pass */
		ssize_t r = read(pair_fd(n, p), p->frame + skip, VIRTIO_NET_FRAME_MAX - skip);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (r < 0 && errno != EAGAIN && net_kind_peer_ends(n->backend.kind))) {
			link_lost(n, r == 0 ? "the other end closed it" : strerror(errno));
			return false;
		}
		if (r < 0)
			return false;
		if ((size_t)r < n->backend.vnet_hdr_len) {
			n->rx_dropped++;
			continue;
		}
		memset(p->frame, 0, skip);
		p->frame_len = (uint32_t)r + skip;
		if (n->backend.kind == NET_LINK && n->backend.vnet_hdr_len && !rx_offload(n, p)) {
			n->rx_dropped++;
			continue;
		}
		p->frame_pending = true;
		return true;
	}
	return false; /* a pass of drops: the descriptor, still readable, is watched again */
}

/* Puts frame (len bytes, header first: the pair's pending frame or the piece cut from it) into
 * the guest's receive buffers. Returns 1 when delivered (or dropped as undeliverable), 0 when
 * the guest has too few buffers now (they are given back and the frame kept), -1 when the queue
 * is broken. */
static int frame_deliver(struct virtio_net *n, struct virtio_net_pair *p, const uint8_t *frame, uint32_t frame_len)
{
	struct virtio_dev *vdev = &n->vdev;
	struct virtq *vq = &vdev->queues[RXQ(pair_index(n, p))].vq;
	bool mergeable = vdev->driver_features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	struct virtq_chain chain[VIRTIO_NET_RX_CHAINS];
	uint32_t put[VIRTIO_NET_RX_CHAINS];
	uint32_t off = 0;
	unsigned k = 0;
	struct err e;
	while (off < frame_len) {
		if (k == VIRTIO_NET_RX_CHAINS || (k == 1 && !mergeable)) {
			virtq_rewind(vq, (uint16_t)k); /* cannot fit: drop the frame, keep the buffers */
			n->rx_dropped++;
			return 1;
		}
		virtq_chain_init(&chain[k], n->rx_iov[k], VIRTIO_NET_RX_IOV);
		int r = virtq_pop(vq, &chain[k], &e);
		if (r == 0) {
			virtq_rewind(vq, (uint16_t)k);
			return 0;
		}
		if (r < 0 || chain[k].n_readable || chain[k].writable_bytes < (k ? 1u : HDR_LEN)) {
			log_guest(LOG_WARN, "virtio-net: receive queue: %s",
				  r < 0 ? e.msg : "a receive buffer is read-only or shorter than the header");
			virtio_set_needs_reset(vdev);
			return -1;
		}
		uint64_t room = chain[k].writable_bytes;
		uint32_t len = frame_len - off < room ? frame_len - off : (uint32_t)room;
		put[k] = (uint32_t)iov_from_buf(virtq_chain_writable(&chain[k]), chain[k].n_writable, 0, frame + off,
						len);
		off += len;
		k++;
	}
	if (k == 0)
		return 1; /* frames always have a header: not reached */
	uint16_t nbuf = (uint16_t)k;
	iov_from_buf(virtq_chain_writable(&chain[0]), chain[0].n_writable, HDR_NUM_BUFFERS, &nbuf, 2);
	for (unsigned i = 0; i < k; i++)
		virtq_push(vq, chain[i].head, put[i]);
	return 1;
}

/* Moves frames from the pair's descriptor to the guest while both have some; a guest without
 * buffers stops the descriptor being read until it gives more. */
static void rx_fill(struct virtio_net *n, struct virtio_net_pair *p)
{
	if (!rx_ready(n, p))
		return;
	bool pushed = false;
	for (unsigned budget = NET_QUEUE_SIZE; budget; budget--) {
		if (!p->frame_pending && !frame_read(n, p))
			break;
		int r = p->cutting ? frame_deliver(n, p, p->cut, p->cut_len)
				   : frame_deliver(n, p, p->frame, p->frame_len);
		if (r < 0)
			return;
		if (r == 0) {
			watch_backend(n, p, false);
			break;
		}
		p->frame_pending = p->cutting && cut_next(p); /* the frame's next piece, if it is being cut */
		pushed = true;
	}
	if (pushed)
		virtio_notify_queue(&n->vdev, RXQ(pair_index(n, p)));
}

/* Waits for the pair's descriptor to have room (tx_fd writable); false when it cannot be
 * watched. */
static bool tx_wait_room(struct virtio_net *n, struct virtio_net_pair *p)
{
	if (p->tx_fd < 0 || virtio_watch_writable(&n->vdev, p->tx_fd, TOKEN_TX_ROOM(pair_index(n, p))) < 0)
		return false;
	p->tx_waiting = true;
	return true;
}

/* One frame onto passt's stream: taken (in part, the rest held until there is room), or later. */
static uint32_t tx_stream(struct virtio_net *n, const struct iovec *out, int k, size_t len)
{
	struct virtio_net_pair *p = &n->pairs[0];
	enum net_stream_result r = net_stream_pending(&n->stream) /* a frame's rest goes first */
		? NET_STREAM_AGAIN
		: net_stream_write(&n->stream, n->backend.fd, out, k, len);
	if (r == NET_STREAM_AGAIN && tx_wait_room(n, p))
		return VIRTIO_SERVE_LATER;
	if (r != NET_STREAM_FRAME) { /* or room cannot be watched */
		stream_lost(n, r);
		n->tx_dropped++;
		return 0;
	}
	if (net_stream_pending(&n->stream))
		tx_wait_room(n, p);
	return 0;
}

/* A write of a frame onto the pair's descriptor failed (errno): the link lost, or the frame
 * tried again when there is room (where `again`), or dropped. */
static uint32_t tx_failed(struct virtio_net *n, struct virtio_net_pair *p, bool again)
{
	if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
		link_lost(n, strerror(errno));
		n->tx_dropped++;
		return 0;
	}
	if (again && (errno == EAGAIN || errno == ENOBUFS) && tx_wait_room(n, p))
		return VIRTIO_SERVE_LATER; /* full: try this frame again when there is room */
	n->tx_dropped++;
	return 0;
}

/* Whether the guest's header (read into h) asks for a checksum or a cut (features a link NIC
 * offers). */
static bool tx_asks(const struct virtq_chain *chain, struct virtio_net_hdr *h)
{
	iov_to_buf(chain->iov, chain->n_readable, 0, h, sizeof(*h));
	return h->flags || h->gso_type;
}

/* The frame being cut for a bare link: its pieces onto the descriptor, each once, the piece the
 * socket had no room for first when it has (0, or VIRTIO_SERVE_LATER meanwhile). */
static uint32_t tx_pieces(struct virtio_net *n, struct virtio_net_pair *p, int fd)
{
	for (;;) {
		if (!n->tx_piece && !(n->tx_piece = offload_seg_next(&n->tx_seg, n->tx_cut)))
			break;
		if (write(fd, n->tx_cut, n->tx_piece) < 0) {
			uint32_t r = tx_failed(n, p, true);
			if (r == VIRTIO_SERVE_LATER)
				return r; /* the same chain comes back here, and this piece goes first */
			break;
		}
		n->tx_piece = 0;
	}
	tx_forget(n);
	return 0;
}

/* A frame whose header asks for a checksum or a cut, onto a link whose other monitor takes bare
 * frames (one started by an older shoji): done here first, into tx_buf, its pieces through
 * tx_cut; a socket that fills meanwhile holds the transmit queue as for any frame, and the cut
 * goes on from the piece it stopped at. */
static uint32_t tx_finish(struct virtio_net *n, struct virtio_net_pair *p, const struct virtq_chain *chain,
			  struct virtio_net_hdr h, int fd)
{
	size_t len = chain->readable_bytes - HDR_LEN;
	if (n->tx_cutting)
		return tx_pieces(n, p, fd);
	if ((!n->tx_buf && !(n->tx_buf = malloc(VIRTIO_NET_FRAME_MAX))) ||
	    (!n->tx_cut && !(n->tx_cut = malloc(VIRTIO_NET_FRAME_MAX)))) {
		n->tx_dropped++;
		return 0;
	}
	iov_to_buf(chain->iov, chain->n_readable, HDR_LEN, n->tx_buf, len);
	int need = offload_check(&h, n->tx_buf, len);
	if (need < 0) {
		n->tx_dropped++;
		return 0;
	}
	if (need == OFFLOAD_CSUM)
		offload_csum(&h, n->tx_buf, len);
	if (need == OFFLOAD_CSUM || need == OFFLOAD_NONE)
		return write(fd, n->tx_buf, len) >= 0 ? 0 : tx_failed(n, p, true);
	if (!offload_seg_init(&n->tx_seg, &h, n->tx_buf, len)) { /* checked: not reached */
		n->tx_dropped++;
		return 0;
	}
	n->tx_cutting = true;
	n->tx_piece = 0;
	return tx_pieces(n, p, fd);
}

/* One frame of the pair being served (tx_pair) onto its descriptor. */
static uint32_t tx_send(struct virtio_net *n, struct virtio_net_pair *p, const struct virtq_chain *chain)
{
	unsigned skip = HDR_LEN - n->backend.vnet_hdr_len;
	uint64_t len = chain->readable_bytes;
	struct iovec out[VIRTQ_MAX_IOV];
	int fd = pair_fd(n, p);
	int k = len < HDR_LEN || len > VIRTIO_NET_FRAME_MAX
		? -1
		: iov_slice(chain->iov, chain->n_readable, skip, len - skip, out, VIRTQ_MAX_IOV);
	if (k <= 0 || fd < 0) {
		n->tx_dropped++; /* malformed, or no link: a wire would drop it too */
		return 0;
	}
	if (n->backend.kind == NET_PASST)
		return tx_stream(n, out, k, len - skip);
	struct virtio_net_hdr h;
	if (n->backend.kind == NET_LINK && !n->backend.vnet_hdr_len && tx_asks(chain, &h))
		return tx_finish(n, p, chain, h, fd);
	return writev(fd, out, k) >= 0 ? 0 : tx_failed(n, p, true);
}

/* A chain the driver made available: sent (or dropped), and then held, or left for later. */
static uint32_t tx_one(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	struct virtio_net *n = net_of(vdev);
	struct virtio_net_pair *p = n->tx_pair;
	uint32_t r = tx_send(n, p, chain);
	if (r != VIRTIO_SERVE_LATER) /* a chain left for later is neither held nor counted */
		p->tx_held_bytes += chain->readable_bytes;
	return r;
}

/* Pair p's sent frames' buffers go back to the driver. */
static void tx_give_back(struct virtio_net *n, struct virtio_net_pair *p)
{
	virtio_give_back(&n->vdev, TXQ(pair_index(n, p)), &p->tx_held);
	p->tx_held_bytes = 0;
}

/* The frames the driver made available go onto the pair's descriptor; their buffers go back
 * in batches (see NET_TX_HOLD_NS). */
static void tx_run(struct virtio_net *n, struct virtio_net_pair *p)
{
	if (p->tx_waiting)
		return;
	n->tx_pair = p;
	unsigned q = TXQ(pair_index(n, p));
	/* A driver without EVENT_IDX (firmware's, which polls for its buffers one frame at a time)
	 * gets them back at once. */
	if (!(n->vdev.driver_features & VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX))) {
		virtio_serve_queue(&n->vdev, q, n->tx_iov, VIRTQ_MAX_IOV, tx_one);
		p->tx_held_bytes = 0;
		return;
	}
	virtio_serve_queue_held(&n->vdev, q, n->tx_iov, VIRTQ_MAX_IOV, tx_one, &p->tx_held);
	unsigned most = n->vdev.queues[q].size / 2; /* a small ring: half of it */
	if (p->tx_held.n >= (most < NET_TX_HOLD_MAX ? most : NET_TX_HOLD_MAX) || p->tx_held_bytes >= NET_TX_HOLD_BYTES)
		tx_give_back(n, p);
	else if (p->tx_held.n)
		virtio_timer_arm(&n->vdev, NET_TX_HOLD_NS);
}

/* The hold is over: every pair's sent frames' buffers go back. */
static void net_timer(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	for (unsigned i = 0; i < n->npairs; i++)
		if (n->pairs[i].tx_held.n)
			tx_give_back(n, &n->pairs[i]);
}

static void ctrl_run(struct virtio_net *n);

static void net_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_net *n = net_of(vdev);
	if (q == ctrl_queue(n)) {
		ctrl_run(n);
		return;
	}
	/* Past the pairs: the control queue's place, taken by a driver that did not ask for it;
	 * with vhost-net, a queue the kernel does not serve (a pair not started); receive queues
	 * beyond the pairs the driver uses are never filled. */
	if (q / 2 >= n->npairs || vhost_served(n) || (q % 2 == 0 && q / 2 >= n->active_pairs))
		return;
	struct virtio_net_pair *p = &n->pairs[q / 2];
	if (q % 2) {
		tx_run(n, p);
		return;
	}
	watch_backend(n, p, true); /* new receive buffers */
	rx_fill(n, p);
}

/* passt's stream has room again: what is held of a frame goes first; false while some of it
 * remains (waiting for room again) or the stream broke. */
static bool stream_flushed(struct virtio_net *n)
{
	enum net_stream_result r = net_stream_flush(&n->stream, n->backend.fd);
	if (r == NET_STREAM_AGAIN && tx_wait_room(n, &n->pairs[0]))
		return false;
	if (r != NET_STREAM_FRAME) { /* or room cannot be watched: the stream cannot go on */
		stream_lost(n, r);
		return false;
	}
	return true;
}

static void net_fd_ready(struct virtio_dev *vdev, unsigned token)
{
	struct virtio_net *n = net_of(vdev);
	if (token / 2 >= n->npairs)
		return;
	struct virtio_net_pair *p = &n->pairs[token / 2];
	if (token % 2) { /* room on the descriptor */
		tx_stop_waiting(n, p);
		if (n->backend.kind == NET_PASST && !stream_flushed(n))
			return;
		if (rx_ready(n, p) && vdev->queues[TXQ(pair_index(n, p))].enabled)
			tx_run(n, p);
		return;
	}
	if (!rx_ready(n, p) || token / 2 >= n->active_pairs) {
		watch_backend(n, p, false);
		return;
	}
	rx_fill(n, p);
}

/* ---- the control queue: how many pairs the driver uses (VIRTIO_NET_CTRL_MQ) ---- */

/* Pair i's two rings' vhost-net backend: its TAP queue, or none (-1: the kernel stops serving
 * them); here because the control queue moves pairs in and out of use. */
static int vhost_set_backend(struct virtio_net *n, unsigned i, int fd)
{
	for (unsigned ring = 0; ring < 2; ring++) {
		struct vhost_vring_file f = {.index = ring, .fd = fd};
		if (ioctl(n->vhost_fd[i], VHOST_NET_SET_BACKEND, &f) < 0)
			return -1;
	}
	n->pairs[i].vhost_running = fd >= 0;
	return 0;
}

/* Whether the kernel steers frames to pair p's TAP queue, and the pair's descriptor is read:
 * the queues of pairs the driver does not use are detached, so that no flow goes where nobody
 * reads (the same with vhost-net: its rings then see no frame). -1 (said, rate-limited: the
 * guest's command) when the TAP refused; the pair is as it was. */
static int pair_use(struct virtio_net *n, struct virtio_net_pair *p, bool use)
{
	unsigned i = pair_index(n, p);
	if (use == p->attached)
		return 0;
	/* vhost-net polls its backend and refuses one that polls as an error, as a detached queue
	 * does: it lets go of the queue before the detach and takes it after the attach. */
	if (vhost_served(n) && !use && p->vhost_running && vhost_set_backend(n, i, -1) < 0) {
		log_guest(LOG_WARN, "virtio-net: cannot stop vhost-net on queue pair %u: %s", i, strerror(errno));
		return -1;
	}
	if (net_tap_attach_queue(pair_fd(n, p), use) < 0) {
		log_guest(LOG_WARN, "virtio-net: TAP '%s': cannot %s queue %u: %s", n->config.ifname,
			  use ? "attach" : "detach", i, strerror(errno));
		if (vhost_served(n) && !use && i < n->vhost_pairs)
			vhost_set_backend(n, i, pair_fd(n, p)); /* as it was */
		return -1;
	}
	p->attached = use;
	if (vhost_served(n)) {
		if (use && i < n->vhost_pairs && vhost_set_backend(n, i, pair_fd(n, p)) < 0) {
			log_guest(LOG_WARN, "virtio-net: vhost-net refused the TAP of queue pair %u: %s", i,
				  strerror(errno));
			virtio_set_needs_reset(&n->vdev);
		}
		return 0;
	}
	if (!use) {
		watch_backend(n, p, false); /* a detached queue polls as an error */
		tx_stop_waiting(n, p);
		rx_forget(p); /* what a detached queue held: the driver gave it up */
	} else if (rx_ready(n, p)) {
		watch_backend(n, p, true);
	}
	return 0;
}

/* The driver uses pairs 0..active-1 (pair 0 always); -1, the pairs as they were, when the TAP
 * refused one. */
static int pairs_use(struct virtio_net *n, unsigned active)
{
	for (unsigned i = 1; i < n->npairs; i++)
		if (pair_use(n, &n->pairs[i], i < active) < 0) {
			while (--i >= 1)
				pair_use(n, &n->pairs[i], i < n->active_pairs);
			return -1;
		}
	n->active_pairs = active;
	return 0;
}

/* One command: its class and code, then its data, then one writable byte for the answer. */
static uint32_t ctrl_one(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	struct virtio_net *n = net_of(vdev);
	struct {
		uint8_t class, cmd;
		uint16_t pairs; /* little-endian, as the host */
	} __attribute__((packed)) c = {0};
	uint8_t ack = VIRTIO_NET_ERR;
	if (chain->n_writable == 0 || chain->readable_bytes < 2) {
		log_guest(LOG_WARN, "virtio-net: control queue: a command %s",
			  chain->n_writable ? "shorter than its header" : "with no room for its answer");
		return 0;
	}
	size_t got = iov_to_buf(chain->iov, chain->n_readable, 0, &c, sizeof(c));
	bool mq = vdev->driver_features & VIRTIO_BIT(VIRTIO_NET_F_MQ);
	unsigned most = vhost_served(n) ? n->vhost_pairs : n->npairs; /* with vhost-net: those started */
	unsigned was = n->active_pairs;
	if (mq && c.class == VIRTIO_NET_CTRL_MQ && c.cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && got == sizeof(c) &&
	    chain->readable_bytes == sizeof(c) && c.pairs >= VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN && c.pairs <= most &&
	    pairs_use(n, c.pairs) == 0) {
		if (c.pairs != was)
			log_guest(LOG_INFO, "virtio-net: TAP '%s': the driver uses %u of its %u queue pairs",
				  n->config.ifname, c.pairs, n->npairs);
		ack = VIRTIO_NET_OK;
	}
	return (uint32_t)iov_from_buf(virtq_chain_writable(chain), chain->n_writable, 0, &ack, 1);
}

static void ctrl_run(struct virtio_net *n)
{
	virtio_serve_queue(&n->vdev, ctrl_queue(n), n->tx_iov, VIRTQ_MAX_IOV, ctrl_one);
}

/* The TAP takes the offloads the driver accepted for its own receive path. */
static void set_tap_offloads(struct virtio_net *n)
{
	uint64_t f = n->vdev.driver_features;
	unsigned tun = 0;
	if (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)) {
		tun |= TUN_F_CSUM;
		tun |= (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4)) ? TUN_F_TSO4 : 0;
		tun |= (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6)) ? TUN_F_TSO6 : 0;
		tun |= (f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN)) ? TUN_F_TSO_ECN : 0;
	}
	if (net_tap_set_offload(&n->backend, tun) < 0)
		log_warn("virtio-net: TAP '%s' refused offloads 0x%x: %s", n->config.ifname, tun, strerror(errno));
}

/* ---- vhost-net: the host kernel serves the rings between the guest and the TAP ---- */

/* The pairs the driver set up (all with MQ, else the first; both queues of each enabled) go to
 * vhost-net: pair 0's kicks were the kernel's from the start, the others' are from now on (a
 * driver without MQ may have its control queue at 2). The pairs the driver does not use yet
 * get no TAP. */
static void net_vhost_driver_ok(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	set_tap_offloads(n);
	unsigned want = vdev->driver_features & VIRTIO_BIT(VIRTIO_NET_F_MQ) ? n->npairs : 1;
	const char *what;
	for (unsigned i = 0; i < want && vdev->queues[RXQ(i)].enabled && vdev->queues[TXQ(i)].enabled; i++) {
		if (i) {
			virtio_queue_kicks_here(vdev, RXQ(i), false);
			virtio_queue_kicks_here(vdev, TXQ(i), false);
		}
		n->vhost_pairs = i + 1;
		if (vhost_start_rings(n->vhost_fd[i], vdev, n->vhost_features, RXQ(i), 2, &what) < 0 ||
		    (what = "TAP", n->pairs[i].attached && vhost_set_backend(n, i, pair_fd(n, &n->pairs[i])) < 0)) {
			log_guest(LOG_WARN, "virtio-net: vhost-net refused the %s of queue pair %u: %s", what, i,
				  strerror(errno));
			virtio_set_needs_reset(vdev);
			return;
		}
	}
}

static void net_vhost_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	for (unsigned i = 0; i < n->npairs; i++)
		if (n->pairs[i].vhost_running && vhost_set_backend(n, i, -1) < 0)
			log_warn("virtio-net: cannot stop vhost-net on queue pair %u: %s", i, strerror(errno));
	for (unsigned i = 1; i < n->vhost_pairs; i++) { /* their queues are the device's again */
		virtio_queue_kicks_here(vdev, RXQ(i), true);
		virtio_queue_kicks_here(vdev, TXQ(i), true);
	}
	n->vhost_pairs = 0;
}

static void net_driver_ok(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	if (pairs_use(n, 1) < 0) /* until the driver says how many (VIRTIO_NET_CTRL_MQ) */
		log_warn("virtio-net: TAP '%s': its further queues stay attached: frames may go unread",
			 n->config.ifname);
	if (vhost_served(n)) {
		net_vhost_driver_ok(vdev);
		return;
	}
	if (n->backend.kind == NET_TAP)
		set_tap_offloads(n);
	watch_backend(n, &n->pairs[0], true);
}

static void net_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	if (vhost_served(n))
		net_vhost_reset(vdev);
	for (unsigned i = 0; i < n->npairs; i++) {
		struct virtio_net_pair *p = &n->pairs[i];
		if (!vhost_served(n))
			watch_backend(n, p, false);
		tx_stop_waiting(n, p);
		rx_forget(p);
		p->tx_held.n = 0; /* the rings are gone: nothing to give back */
		p->tx_held_bytes = 0;
	}
	tx_forget(n); /* the frame being cut went with them */
}

static const struct virtio_device_ops net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.features = BASE_FEATURES,
	.num_queues = VIRTIO_MAX_QUEUES, /* the most; virtio_net_init offers 2 a pair, and control */
	.queue_max_size = NET_QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = config_read,
	.queue_notify = net_notify,
	.driver_ok = net_driver_ok,
	.reset = net_reset,
	.fd_ready = net_fd_ready,
	.timer = net_timer,
};

/* vhost-net for a TAP NIC as its configuration asks, a descriptor a queue pair: 1 when opened,
 * 0 when not wanted or (auto) not available here, -1 when asked for (vhost=on) and not
 * available. */
static int vhost_wanted(struct virtio_net *n, const struct net_config *c, struct err *e)
{
	if (c->kind != NET_TAP || c->vhost == VHOST_OFF)
		return 0;
	unsigned i = 0;
	while (i < n->npairs && (n->vhost_fd[i] = vhost_open("/dev/vhost-net", &n->vhost_features)) >= 0)
		i++;
	if (i == n->npairs) {
		log_info("virtio-net: TAP '%s': the rings of its %u queue pair%s are served by vhost-net", c->ifname,
			 n->npairs, n->npairs > 1 ? "s" : "");
		return 1;
	}
	int err = errno;
	while (i) {
		close(n->vhost_fd[--i]);
		n->vhost_fd[i] = -1;
	}
	if (c->vhost == VHOST_ON)
		return err_errno(e, err,
				 "--net tap=%s,vhost=on: cannot use /dev/vhost-net (load the vhost_net module: "
				 "'modprobe vhost_net', give this user access to it, or use vhost=auto)",
				 c->ifname);
	log_info("virtio-net: TAP '%s': no vhost-net here (%s): frames pass through the monitor", c->ifname,
		 strerror(err));
	return 0;
}

/* Each pair's frame buffer and a dup() of its descriptor for room (the monitor's own path). */
static int pairs_init(struct virtio_net *n, struct err *e)
{
	for (unsigned i = 0; i < n->npairs; i++) {
		struct virtio_net_pair *p = &n->pairs[i];
		int fd = pair_fd(n, p);
		if (!(p->frame = malloc(VIRTIO_NET_FRAME_MAX)))
			return err_set(e, "out of memory");
		if (fd >= 0 && (p->tx_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
			return err_errno(e, errno, "virtio-net: cannot duplicate the backend's descriptor");
	}
	return 0;
}

int virtio_net_init(struct virtio_net *n, const struct net_config *c, unsigned cpus, struct machine *m,
		    const struct guest_mem *mem, struct err *e)
{
	memset(n, 0, sizeof(*n));
	n->backend.fd = -1;
	n->npairs = n->active_pairs = 1;
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		n->pairs[i] = (struct virtio_net_pair){.tx_fd = -1, .attached = true};
		n->vhost_fd[i] = -1;
	}
	n->config = *c;
	if (c->kind == NET_TAP && !c->queues) {
		n->config.queues = cpus < 1 ? 1 : cpus > NET_MAX_PAIRS ? NET_MAX_PAIRS : cpus;
		n->config.queues_auto = true;
	}
	if (virtio_dev_init(&n->vdev, &net_ops, n, m, mem, e) < 0 || net_backend_open(&n->backend, &n->config, e) < 0)
		return -1;
	n->npairs = n->backend.pairs;
	virtio_set_num_queues(&n->vdev, (uint16_t)(2 * n->npairs + (n->npairs > 1)));
	if (n->npairs > 1)
		n->vdev.device_features |= MQ_FEATURES;
	int vhost = vhost_wanted(n, c, e);
	if (vhost < 0)
		return -1;
	n->link_up = !net_kind_handed_over(c->kind); /* down until its socket comes */
	if (c->kind == NET_PASST && net_stream_init(&n->stream, VIRTIO_NET_FRAME_MAX - HDR_LEN, e) < 0)
		return -1;
	/* vhost: the kernel's rings know MRG_RXBUF too; no frame passes through here */
	if (vhost) /* pair 0's queues; the others' at DRIVER_OK, as the driver set them up */
		vhost_attach(&n->vdev, 2, n->vhost_features, VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	else if (pairs_init(n, e) < 0)
		return -1;
	if (n->backend.vnet_hdr_len || c->kind == NET_LINK) /* a link: passed on, or done here */
		n->vdev.device_features |= OFFLOAD_FEATURES;
	if (c->mtu)
		n->vdev.device_features |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
	return 0;
}

void virtio_net_destroy(struct virtio_net *n)
{
	virtio_dev_destroy(&n->vdev); /* stops the I/O thread first */
	for (unsigned i = 0; i < NET_MAX_PAIRS; i++) {
		struct virtio_net_pair *p = &n->pairs[i];
		if (n->vhost_fd[i] >= 0) {
			if (p->vhost_running)
				vhost_set_backend(n, i, -1);
			close(n->vhost_fd[i]);
		}
		n->vhost_fd[i] = -1;
		if (p->tx_fd >= 0)
			close(p->tx_fd);
		p->tx_fd = -1;
		free(p->frame);
		free(p->cut);
		p->frame = p->cut = NULL;
	}
	free(n->tx_buf);
	free(n->tx_cut);
	n->tx_buf = n->tx_cut = NULL;
	net_backend_close(&n->backend);
	net_stream_destroy(&n->stream);
	if (n->rx_dropped || n->tx_dropped)
		log_info("virtio-net: dropped %llu received and %llu sent frames", (unsigned long long)n->rx_dropped,
			 (unsigned long long)n->tx_dropped);
}

/* A link's (and shoji-slirp's) socket carries one frame a message: a SOCK_SEQPACKET Unix
 * socket; passt's is a SOCK_STREAM one. */
static int link_socket_ok(int fd, enum net_kind kind, struct err *e)
{
	int type = 0, domain = 0, want = kind == NET_PASST ? SOCK_STREAM : SOCK_SEQPACKET;
	socklen_t len = sizeof(type), dlen = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0 || type != want || domain != AF_UNIX)
		return err_set(e, "a %s NIC's descriptor must be a %s Unix socket",
			       kind == NET_PASST           ? "passt"
				       : kind == NET_SLIRP ? "slirp"
							   : "link",
			       kind == NET_PASST ? "SOCK_STREAM" : "SOCK_SEQPACKET");
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return err_errno(e, errno, "cannot make the link's socket non-blocking");
	return 0;
}

/* Tells a new passt stream the guest's MAC address, as QEMU's self-announcement does: one RARP
 * request from the NIC's address to all. passt sends to the broadcast address until a frame from
 * the guest shows it the guest's, and a guest's TCP drops a segment sent to the broadcast
 * address: without this, a port forward to a guest that has sent nothing since the stream came
 * (a fixed address and no IPv6, whose link coming up sends nothing) never connects. Lock held. */
static void passt_announce(struct virtio_net *n)
{
	uint8_t f[ETH_MIN_FRAME] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t arp[] = {0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4, 0, 3}; /* RARP: Ethernet, IPv4, request */
	memcpy(f + 6, n->config.mac, 6);
	memcpy(f + 12, arp, sizeof(arp));
	memcpy(f + 22, n->config.mac, 6);      /* sender hardware address; its IPv4 address stays 0 */
	memcpy(f + 22 + 10, n->config.mac, 6); /* target hardware address */
	struct iovec iov = {f, sizeof(f)};
	enum net_stream_result r = net_stream_write(&n->stream, n->backend.fd, &iov, 1, sizeof(f));
	if (r != NET_STREAM_FRAME && r != NET_STREAM_AGAIN)
		stream_lost(n, r);
	else if (net_stream_pending(&n->stream))
		tx_wait_room(n, &n->pairs[0]);
}

int virtio_net_link_set(struct virtio_net *n, int fd, bool offload, struct err *e)
{
	int tx = -1;
	if (!net_kind_takes_socket(n->config.kind)) {
		close(fd);
		return err_set(e,
			       "this NIC takes no socket: it is a TAP; a link to another VM (--net link), a "
			       "passt NIC (--net passt) or a slirp NIC (--net slirp, a new shoji-slirp) takes one");
	}
	if (offload && n->config.kind != NET_LINK) {
		close(fd);
		return err_set(e,
			       "offload applies to a link to another VM only: passt and shoji-slirp take bare frames");
	}
	if (link_socket_ok(fd, n->config.kind, e) < 0) {
		close(fd);
		return -1;
	}
	if ((tx = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		int saved = errno;
		close(fd);
		return err_errno(e, saved, "cannot duplicate the link's socket");
	}
	struct virtio_net_pair *p = &n->pairs[0];
	pthread_mutex_lock(&n->vdev.lock);
	link_close(n); /* the socket it replaces, if any */
	n->backend.fd = fd;
	n->backend.vnet_hdr_len = offload ? HDR_LEN : 0; /* each frame after its header, or bare */
	p->tx_fd = tx;
	if (rx_ready(n, p))
		watch_backend(n, p, true);
	link_show(n, true);
	if (n->config.kind == NET_PASST)
		passt_announce(n);
	bool up = n->link_up;
	pthread_mutex_unlock(&n->vdev.lock);
	/* A frame held for the old socket's room was given back to the ring: the guest may not
	 * notify again (EVENT_IDX), so the queue runs now. */
	virtio_requeue(&n->vdev, TXQ(0));
	if (up)
		log_link(n, "up", "");
	return 0;
}

/* A link whose backend is not watched (the guest posts no receive buffers) sees the other end
 * close only here: asked from the status path, so what shojid and shoji net read is true. */
static void link_probe(struct virtio_net *n)
{
	struct pollfd p = {.fd = n->backend.fd, .events = POLLRDHUP};
	if (!net_kind_peer_ends(n->backend.kind) || n->backend.fd < 0 || n->pairs[0].watching)
		return;
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR)))
		link_lost(n, "the other end closed it");
}

void virtio_net_state(struct virtio_net *n, bool *link_up, uint64_t *rx_dropped, uint64_t *tx_dropped)
{
	pthread_mutex_lock(&n->vdev.lock);
	link_probe(n);
	*link_up = n->link_up;
	*rx_dropped = n->rx_dropped;
	*tx_dropped = n->tx_dropped;
	pthread_mutex_unlock(&n->vdev.lock);
}

/* virtio_net: the network device (see virtio_net.h; virtio 1.x section 5.1). Queue 0 receives,
 * queue 1 transmits; no control queue, one queue pair. Served here, on the device's I/O thread,
 * or, for a TAP where the host has vhost-net, by the host kernel (vhost-net). A link NIC's
 * socket may be absent (the link down): then nothing is read and what the guest sends is
 * dropped and counted, as a NIC without carrier does. */
#include "virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/vhost.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../virtio/iov.h"
#include "../virtio/vhost.h"

#define RXQ            0
#define TXQ            1
#define NET_QUEUE_SIZE 256
/* The header with num_buffers, as VERSION_1 always has it. */
#define HDR_LEN         ((unsigned)sizeof(struct virtio_net_hdr_mrg_rxbuf))
#define HDR_NUM_BUFFERS offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers)
#define TOKEN_BACKEND   0
#define TOKEN_TX_ROOM   1
#define ETH_HEADER_LEN  14

#define BASE_FEATURES                                                                                                  \
	(VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_STATUS))
/* What a TAP with a virtio-net header can carry as is. */
#define OFFLOAD_FEATURES                                                                                               \
	(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |   \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ECN) |                                    \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_HOST_ECN))
/* The configuration fields up to the MTU: mac, status, max_virtqueue_pairs, mtu. */
#define CONFIG_SIZE offsetof(struct virtio_net_config, speed)

static struct virtio_net *net_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

static void config_read(struct virtio_dev *vdev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = net_of(vdev);
	struct virtio_net_config c = {
		.status = n->link_up ? VIRTIO_NET_S_LINK_UP : 0,
		.max_virtqueue_pairs = 1,
		.mtu = (uint16_t)n->config.mtu,
	};
	memcpy(c.mac, n->config.mac, sizeof(c.mac));
	memcpy(data, (uint8_t *)&c + off, len); /* inside CONFIG_SIZE: the core checked */
}

static void watch_backend(struct virtio_net *n, bool on)
{
	if (on == n->watching || (on && n->backend.fd < 0))
		return;
	if (on && virtio_watch(&n->vdev, n->backend.fd, TOKEN_BACKEND) < 0) {
		log_warn("virtio-net: cannot watch the backend: %s", strerror(errno));
		return;
	}
	if (!on)
		virtio_unwatch(&n->vdev, n->backend.fd);
	n->watching = on;
}

static void tx_stop_waiting(struct virtio_net *n)
{
	if (n->tx_waiting)
		virtio_unwatch(&n->vdev, n->tx_fd);
	n->tx_waiting = false;
}

/* ---- a link to another VM's NIC: its socket comes and goes ---- */

static void link_close(struct virtio_net *n)
{
	watch_backend(n, false);
	tx_stop_waiting(n);
	if (n->backend.fd >= 0)
		close(n->backend.fd);
	if (n->tx_fd >= 0)
		close(n->tx_fd);
	n->backend.fd = n->tx_fd = -1;
	n->frame_pending = false;
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

/* The other end went (its monitor stopped): the link is down until another socket comes. A
 * TAP or slirp backend that fails keeps its descriptor (as before links existed). */
static void link_lost(struct virtio_net *n, const char *why)
{
	if (!net_kind_handed_over(n->backend.kind) || n->backend.fd < 0)
		return;
	link_close(n);
	link_show(n, false);
	log_link(n, "down: ", why);
}

static bool rx_ready(const struct virtio_net *n)
{
	return virtio_queue_live(&n->vdev, RXQ);
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
static bool stream_frame_read(struct virtio_net *n)
{
	for (;;) {
		uint32_t len;
		enum net_stream_result r = net_stream_read(&n->stream, n->backend.fd, n->frame + HDR_LEN, &len);
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
		memset(n->frame, 0, HDR_LEN);
		n->frame_len = HDR_LEN + len;
		n->frame_pending = true;
		return true;
	}
}

/* Reads the next frame from the backend into frame[], header first. False when none is there. */
static bool frame_read(struct virtio_net *n)
{
	if (n->backend.kind == NET_PASST)
		return stream_frame_read(n);
	unsigned skip = HDR_LEN - n->backend.vnet_hdr_len;
	for (;;) {
		ssize_t r = read(n->backend.fd, n->frame + skip, VIRTIO_NET_FRAME_MAX - skip);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 || (r < 0 && errno != EAGAIN && net_kind_handed_over(n->backend.kind))) {
			link_lost(n, r == 0 ? "the other end closed it" : strerror(errno));
			return false;
		}
		if (r < 0)
			return false;
		if ((size_t)r < n->backend.vnet_hdr_len) {
			n->rx_dropped++;
			continue;
		}
		memset(n->frame, 0, skip);
		n->frame_len = (uint32_t)r + skip;
		n->frame_pending = true;
		return true;
	}
}

/* Puts the pending frame into the guest's receive buffers. Returns 1 when delivered (or dropped
 * as undeliverable), 0 when the guest has too few buffers now (they are given back and the frame
 * kept), -1 when the queue is broken. */
static int frame_deliver(struct virtio_net *n)
{
	struct virtio_dev *vdev = &n->vdev;
	struct virtq *vq = &vdev->queues[RXQ].vq;
	bool mergeable = vdev->driver_features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	struct virtq_chain chain[VIRTIO_NET_RX_CHAINS];
	uint32_t put[VIRTIO_NET_RX_CHAINS];
	uint32_t off = 0;
	unsigned k = 0;
	struct err e;
	while (off < n->frame_len) {
		if (k == VIRTIO_NET_RX_CHAINS || (k == 1 && !mergeable)) {
			virtq_rewind(vq, (uint16_t)k); /* cannot fit: drop the frame, keep the buffers */
			n->rx_dropped++;
			n->frame_pending = false;
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
		uint32_t len = n->frame_len - off < room ? n->frame_len - off : (uint32_t)room;
		put[k] = (uint32_t)iov_from_buf(virtq_chain_writable(&chain[k]), chain[k].n_writable, 0, n->frame + off,
						len);
		off += len;
		k++;
	}
	n->frame_pending = false;
	if (k == 0)
		return 1; /* frames always have a header: not reached */
	uint16_t nbuf = (uint16_t)k;
	iov_from_buf(virtq_chain_writable(&chain[0]), chain[0].n_writable, HDR_NUM_BUFFERS, &nbuf, 2);
	for (unsigned i = 0; i < k; i++)
		virtq_push(vq, chain[i].head, put[i]);
	return 1;
}

/* Moves frames from the backend to the guest while both have some; a guest without buffers
 * stops the backend being read until it gives more. */
static void rx_fill(struct virtio_net *n)
{
	if (!rx_ready(n))
		return;
	bool pushed = false;
	for (unsigned budget = NET_QUEUE_SIZE; budget; budget--) {
		if (!n->frame_pending && !frame_read(n))
			break;
		int r = frame_deliver(n);
		if (r < 0)
			return;
		if (r == 0) {
			watch_backend(n, false);
			break;
		}
		pushed = true;
	}
	if (pushed)
		virtio_notify_queue(&n->vdev, RXQ);
}

/* Waits for the backend to have room (tx_fd writable); false when it cannot be watched. */
static bool tx_wait_room(struct virtio_net *n)
{
	if (n->tx_fd < 0 || virtio_watch_writable(&n->vdev, n->tx_fd, TOKEN_TX_ROOM) < 0)
		return false;
	n->tx_waiting = true;
	return true;
}

/* One frame onto passt's stream: taken (in part, the rest held until there is room), or later. */
static uint32_t tx_stream(struct virtio_net *n, const struct iovec *out, int k, size_t len)
{
	enum net_stream_result r = net_stream_pending(&n->stream) /* a frame's rest goes first */
		? NET_STREAM_AGAIN
		: net_stream_write(&n->stream, n->backend.fd, out, k, len);
	if (r == NET_STREAM_AGAIN && tx_wait_room(n))
		return VIRTIO_SERVE_LATER;
	if (r != NET_STREAM_FRAME) { /* or room cannot be watched */
		stream_lost(n, r);
		n->tx_dropped++;
		return 0;
	}
	if (net_stream_pending(&n->stream))
		tx_wait_room(n);
	return 0;
}

static uint32_t tx_one(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	struct virtio_net *n = net_of(vdev);
	unsigned skip = HDR_LEN - n->backend.vnet_hdr_len;
	uint64_t len = chain->readable_bytes;
	struct iovec out[VIRTQ_MAX_IOV];
	int k = len < HDR_LEN || len > VIRTIO_NET_FRAME_MAX
		? -1
		: iov_slice(chain->iov, chain->n_readable, skip, len - skip, out, VIRTQ_MAX_IOV);
	if (k <= 0 || n->backend.fd < 0) {
		n->tx_dropped++; /* malformed, or no link: a wire would drop it too */
		return 0;
	}
	if (n->backend.kind == NET_PASST)
		return tx_stream(n, out, k, len - skip);
	if (writev(n->backend.fd, out, k) >= 0)
		return 0;
	if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
		link_lost(n, strerror(errno));
		n->tx_dropped++;
		return 0;
	}
	if ((errno == EAGAIN || errno == ENOBUFS) && tx_wait_room(n))
		return VIRTIO_SERVE_LATER; /* full: try this frame again when there is room */
	n->tx_dropped++;
	return 0;
}

static void tx_run(struct virtio_net *n)
{
	if (!n->tx_waiting)
		virtio_serve_queue(&n->vdev, TXQ, n->tx_iov, VIRTQ_MAX_IOV, tx_one);
}

static void net_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_net *n = net_of(vdev);
	if (q == TXQ) {
		tx_run(n);
		return;
	}
	watch_backend(n, true); /* new receive buffers */
	rx_fill(n);
}

/* passt's stream has room again: what is held of a frame goes first; false while some of it
 * remains (waiting for room again) or the stream broke. */
static bool stream_flushed(struct virtio_net *n)
{
	enum net_stream_result r = net_stream_flush(&n->stream, n->backend.fd);
	if (r == NET_STREAM_AGAIN && tx_wait_room(n))
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
	if (token == TOKEN_TX_ROOM) {
		tx_stop_waiting(n);
		if (n->backend.kind == NET_PASST && !stream_flushed(n))
			return;
		if (rx_ready(n) && vdev->queues[TXQ].enabled)
			tx_run(n);
		return;
	}
	if (!rx_ready(n)) {
		watch_backend(n, false);
		return;
	}
	rx_fill(n);
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

/* ---- vhost-net: the host kernel serves both rings between the guest and the TAP ---- */

/* Both rings' backend: the TAP, or none (-1: the kernel stops serving them). */
static int vhost_set_backend(struct virtio_net *n, int fd)
{
	for (unsigned q = RXQ; q <= TXQ; q++) {
		struct vhost_vring_file f = {.index = q, .fd = fd};
		if (ioctl(n->vhost_fd, VHOST_NET_SET_BACKEND, &f) < 0)
			return -1;
	}
	n->vhost_running = fd >= 0;
	return 0;
}

static void net_vhost_driver_ok(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	set_tap_offloads(n);
	const char *what;
	if (vhost_start_rings(n->vhost_fd, vdev, n->vhost_features, 2, &what) < 0 ||
	    (what = "TAP", vhost_set_backend(n, n->backend.fd) < 0)) {
		log_warn("virtio-net: vhost-net refused the %s: %s", what, strerror(errno));
		virtio_set_needs_reset(vdev);
	}
}

static void net_vhost_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	if (n->vhost_running && vhost_set_backend(n, -1) < 0)
		log_warn("virtio-net: cannot stop vhost-net: %s", strerror(errno));
}

static void net_driver_ok(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	if (n->vhost_fd >= 0) {
		net_vhost_driver_ok(vdev);
		return;
	}
	if (n->backend.kind == NET_TAP)
		set_tap_offloads(n);
	watch_backend(n, true);
}

static void net_reset(struct virtio_dev *vdev)
{
	struct virtio_net *n = net_of(vdev);
	if (n->vhost_fd >= 0)
		net_vhost_reset(vdev);
	else if (n->backend.fd >= 0)
		watch_backend(n, false);
	tx_stop_waiting(n);
	n->frame_pending = false;
}

static const struct virtio_device_ops net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.features = BASE_FEATURES,
	.num_queues = 2,
	.queue_max_size = NET_QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = config_read,
	.queue_notify = net_notify,
	.driver_ok = net_driver_ok,
	.reset = net_reset,
	.fd_ready = net_fd_ready,
};

/* vhost-net for a TAP NIC as its configuration asks: 1 when opened, 0 when not wanted or (auto)
 * not available here, -1 when asked for (vhost=on) and not available. */
static int vhost_wanted(struct virtio_net *n, const struct net_config *c, struct err *e)
{
	if (c->kind != NET_TAP || c->vhost == VHOST_OFF)
		return 0;
	n->vhost_fd = vhost_open("/dev/vhost-net", &n->vhost_features);
	if (n->vhost_fd >= 0) {
		log_info("virtio-net: TAP '%s': the rings are served by vhost-net", c->ifname);
		return 1;
	}
	if (c->vhost == VHOST_ON)
		return err_errno(e, errno,
				 "--net tap=%s,vhost=on: cannot use /dev/vhost-net (load the vhost_net module: "
				 "'modprobe vhost_net', give this user access to it, or use vhost=auto)",
				 c->ifname);
	log_info("virtio-net: TAP '%s': no vhost-net here (%s): frames pass through the monitor", c->ifname,
		 strerror(errno));
	return 0;
}

int virtio_net_init(struct virtio_net *n, const struct net_config *c, struct machine *m, const struct guest_mem *mem,
		    struct err *e)
{
	memset(n, 0, sizeof(*n));
	n->backend.fd = n->tx_fd = n->vhost_fd = -1;
	n->config = *c;
	int vhost = vhost_wanted(n, c, e);
	if (vhost < 0 || virtio_dev_init(&n->vdev, &net_ops, n, m, mem, e) < 0 ||
	    net_backend_open(&n->backend, c, e) < 0)
		return -1;
	n->link_up = !net_kind_handed_over(c->kind); /* down until its socket comes */
	if (c->kind == NET_PASST && net_stream_init(&n->stream, VIRTIO_NET_FRAME_MAX - HDR_LEN, e) < 0)
		return -1;
	/* vhost: the kernel's rings know MRG_RXBUF too; no frame passes through here */
	if (vhost)
		vhost_attach(&n->vdev, n->vhost_features, VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF));
	else if (!(n->frame = malloc(VIRTIO_NET_FRAME_MAX)))
		return err_set(e, "out of memory");
	else if (n->backend.fd >= 0 && (n->tx_fd = fcntl(n->backend.fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return err_errno(e, errno, "virtio-net: cannot duplicate the backend's descriptor");
	if (n->backend.vnet_hdr_len)
		n->vdev.device_features |= OFFLOAD_FEATURES;
	if (c->mtu)
		n->vdev.device_features |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
	return 0;
}

void virtio_net_destroy(struct virtio_net *n)
{
	virtio_dev_destroy(&n->vdev); /* stops the I/O thread first */
	if (n->vhost_fd >= 0) {
		if (n->vhost_running)
			vhost_set_backend(n, -1);
		close(n->vhost_fd);
	}
	n->vhost_fd = -1;
	if (n->tx_fd >= 0)
		close(n->tx_fd);
	n->tx_fd = -1;
	net_backend_close(&n->backend);
	free(n->frame);
	n->frame = NULL;
	net_stream_destroy(&n->stream);
	if (n->rx_dropped || n->tx_dropped)
		log_info("virtio-net: dropped %llu received and %llu sent frames", (unsigned long long)n->rx_dropped,
			 (unsigned long long)n->tx_dropped);
}

/* A link's socket carries one frame a message: a SOCK_SEQPACKET Unix socket; passt's is a
 * SOCK_STREAM one. */
static int link_socket_ok(int fd, enum net_kind kind, struct err *e)
{
	int type = 0, domain = 0, want = kind == NET_PASST ? SOCK_STREAM : SOCK_SEQPACKET;
	socklen_t len = sizeof(type), dlen = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0 || type != want || domain != AF_UNIX)
		return err_set(e, "a %s NIC's descriptor must be a %s Unix socket",
			       kind == NET_PASST ? "passt" : "link",
			       kind == NET_PASST ? "SOCK_STREAM" : "SOCK_SEQPACKET");
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return err_errno(e, errno, "cannot make the link's socket non-blocking");
	return 0;
}

int virtio_net_link_set(struct virtio_net *n, int fd, struct err *e)
{
	int tx = -1;
	if (!net_kind_handed_over(n->config.kind)) {
		close(fd);
		return err_set(e,
			       "this NIC takes no socket: it is neither a link to another VM (--net link) nor "
			       "a passt NIC (--net passt)");
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
	pthread_mutex_lock(&n->vdev.lock);
	link_close(n); /* the socket it replaces, if any */
	n->backend.fd = fd;
	n->tx_fd = tx;
	if (rx_ready(n))
		watch_backend(n, true);
	link_show(n, true);
	pthread_mutex_unlock(&n->vdev.lock);
	/* A frame held for the old socket's room was given back to the ring: the guest may not
	 * notify again (EVENT_IDX), so the queue runs now. */
	virtio_requeue(&n->vdev, TXQ);
	log_link(n, "up", "");
	return 0;
}

/* A link whose backend is not watched (the guest posts no receive buffers) sees the other end
 * close only here: asked from the status path, so what shojid and shoji net read is true. */
static void link_probe(struct virtio_net *n)
{
	struct pollfd p = {.fd = n->backend.fd, .events = POLLRDHUP};
	if (!net_kind_handed_over(n->backend.kind) || n->backend.fd < 0 || n->watching)
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

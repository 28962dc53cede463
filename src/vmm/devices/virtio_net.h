/* virtio_net: the virtio network device (type 1) with one receive and one transmit queue, in
 * front of a net backend (TAP or user-mode NAT; see net/net.h). Frames from the backend go into
 * the guest's receive buffers, merged over several when one is too small (MRG_RXBUF); with a
 * TAP, checksum and segmentation offloads pass through in the virtio-net header. Served on the
 * device's I/O thread; the backend is read only while the guest has receive buffers, so a guest
 * that gives none stalls only its own NIC, and a full backend holds the transmit queue until it
 * has room (the guest's qdisc then holds its packets), as a NIC's link would. A TAP NIC's rings
 * are served by the host kernel's vhost-net instead where it is there (--net tap=IF,vhost=):
 * QEMU's fast path, with the guest's ring parsing in the kernel as for QEMU and vhost-vsock.
 * A link NIC (--net link) joins another VM's NIC through a socket the toolstack hands over
 * (virtio_net_link_set); the guest sees its link up while the socket is there and down (link
 * status, a configuration interrupt) from the moment the other end goes, until another comes.
 * A passt NIC (--net passt) is handed its socket the same way: a stream to a passt process,
 * frames after their lengths (net/stream.h). */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_NET_H
#define SHOJI_VMM_DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "../net/net.h"
#include "../net/stream.h"
#include "../virtio/virtio.h"

#define VIRTIO_NET_RX_CHAINS 64 /* most receive buffers one frame may fill */
#define VIRTIO_NET_RX_IOV    8  /* most descriptors one receive buffer may have */
#define VIRTIO_NET_FRAME_MAX (12 + 65550)

struct virtio_net {
	struct virtio_dev vdev;
	struct net_config config;
	struct net_backend backend;
	bool watching;      /* the backend's descriptor is in the I/O thread's epoll */
	int tx_fd;          /* a dup() of it, watched for room while transmission waits */
	bool tx_waiting;    /* the backend was full: the transmit queue waits for tx_fd */
	bool frame_pending; /* frame[] holds a frame read from the backend, not yet delivered */
	uint32_t frame_len;
	uint8_t *frame; /* virtio-net header, then the Ethernet frame */
	struct virtq_iov rx_iov[VIRTIO_NET_RX_CHAINS][VIRTIO_NET_RX_IOV];
	struct virtq_iov tx_iov[VIRTQ_MAX_IOV];
	uint64_t rx_dropped, tx_dropped;
	int vhost_fd; /* vhost-net serves the rings (a TAP NIC where the host has it); -1: this device */
	uint64_t vhost_features;
	bool vhost_running;       /* the kernel has the TAP as the rings' backend */
	bool link_up;             /* what the guest sees (VIRTIO_NET_S_LINK_UP): always, but for a link NIC */
	struct net_stream stream; /* passt: what is held between frames on its stream socket */
};

int virtio_net_init(struct virtio_net *n, const struct net_config *c, struct machine *m, const struct guest_mem *mem,
		    struct err *e);
void virtio_net_destroy(struct virtio_net *n);
/* A link NIC's socket (a SOCK_SEQPACKET Unix socket) or a passt NIC's (a SOCK_STREAM one),
 * taken over (closed on failure): replaces the one it had, and the link is up. Any thread but the device's I/O thread;
 * takes vdev.lock. */
int virtio_net_link_set(struct virtio_net *n, int fd, struct err *e);
/* Whether the guest sees the link up, and the frames dropped each way; a link whose other end
 * closed while nothing read it goes down here. Takes vdev.lock. */
void virtio_net_state(struct virtio_net *n, bool *link_up, uint64_t *rx_dropped, uint64_t *tx_dropped);

#endif

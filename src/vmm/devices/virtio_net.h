/* virtio_net: the virtio network device (type 1) with a receive and a transmit queue, in front
 * of a net backend (TAP or user-mode NAT; see net/net.h), or several such pairs in front of a
 * multiqueue TAP (one a vCPU unless --net tap=IF,queues=N says), the driver choosing how many it
 * uses on a control queue (VIRTIO_NET_F_MQ); without vhost-net one I/O thread serves them all. Frames from the backend
 * go into the guest's receive buffers, merged over several when one is too small (MRG_RXBUF); with a TAP, checksum and
 * segmentation offloads pass through in the virtio-net header. Served on the device's I/O thread; the backend is read
 * only while the guest has receive buffers, so a guest that gives none stalls only its own NIC, and a full backend
 * holds the transmit queue until it has room (the guest's qdisc then holds its packets), as a NIC's link would. A TAP
 * NIC's rings are served by the host kernel's vhost-net instead where it is there (--net tap=IF,vhost=): QEMU's fast
 * path, with the guest's ring parsing in the kernel as for QEMU and vhost-vsock. A link NIC (--net link) joins another
 * VM's NIC through a socket the toolstack hands over (virtio_net_link_set); the guest sees its link up while the socket
 * is there and down (link status, a configuration interrupt) from the moment the other end goes, until another comes.
 * A passt NIC (--net passt) is handed its socket the same way: a stream to a passt process,
 * frames after their lengths (net/stream.h). */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_NET_H
#define SHOJI_VMM_DEVICES_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "../net/net.h"
#include "../net/offload.h"
#include "../net/stream.h"
#include "../virtio/virtio.h"

#define VIRTIO_NET_RX_CHAINS 64 /* most receive buffers one frame may fill */
#define VIRTIO_NET_RX_IOV    8  /* most descriptors one receive buffer may have */
#define VIRTIO_NET_FRAME_MAX (12 + 65550)

/* A receive and a transmit queue and the backend descriptor they share (net_backend's fd for
 * pair 0, a further TAP queue's for the others). */
struct virtio_net_pair {
	bool watching;      /* the descriptor is in the I/O thread's epoll */
	int tx_fd;          /* a dup() of it, watched for room while transmission waits */
	bool tx_waiting;    /* the descriptor was full: the transmit queue waits for tx_fd */
	bool frame_pending; /* frame[] holds a frame read from the descriptor, not yet delivered */
	bool attached;      /* the TAP steers frames to this queue (the driver uses the pair) */
	bool vhost_running; /* vhost-net has the descriptor as the rings' backend */
	uint32_t frame_len;
	uint8_t *frame; /* virtio-net header, then the Ethernet frame */
	/* A TCP segment from a link being cut for a guest that does not take it whole: frame[]
	 * holds it while its pieces go one by one through cut[] (allocated at the first). */
	bool cutting;
	uint32_t cut_len;
	uint8_t *cut;
	struct offload_seg seg;
	struct virtio_held tx_held; /* frames sent whose buffers are not yet given back */
	uint64_t tx_held_bytes;     /* their bytes (the chains', headers included) */
};

struct virtio_net {
	struct virtio_dev vdev;
	struct net_config config;
	struct net_backend backend;
	unsigned npairs;       /* queue pairs offered: the backend's (a multiqueue TAP's) */
	unsigned active_pairs; /* those the driver uses: 1 until it says (VIRTIO_NET_CTRL_MQ) */
	struct virtio_net_pair pairs[NET_MAX_PAIRS];
	struct virtio_net_pair *tx_pair; /* the pair whose transmit queue is being served */
	/* The I/O thread's scratch, for one chain at a time. */
	struct virtq_iov rx_iov[VIRTIO_NET_RX_CHAINS][VIRTIO_NET_RX_IOV];
	struct virtq_iov tx_iov[VIRTQ_MAX_IOV];
	/* A frame finished here for a link of bare frames (tx_finish): copied into tx_buf, cut
	 * through tx_cut, tx_piece bytes of it there not yet sent (the socket was full). */
	uint8_t *tx_buf, *tx_cut;
	bool tx_cutting;
	size_t tx_piece;
	struct offload_seg tx_seg;
	uint64_t rx_dropped, tx_dropped;
	/* vhost-net serves the rings, a descriptor a pair (a TAP NIC where the host has it); -1:
	 * this device */
	int vhost_fd[NET_MAX_PAIRS];
	unsigned vhost_pairs; /* the pairs vhost-net serves since DRIVER_OK: those the driver set up */
	uint64_t vhost_features;
	bool link_up;             /* what the guest sees (VIRTIO_NET_S_LINK_UP): always, but for a link NIC */
	struct net_stream stream; /* passt: what is held between frames on its stream socket */
};

/* A NIC on c's backend; a TAP NIC has c->queues queue pairs, or (0) one a vCPU (cpus), where
 * the TAP is multiqueue. */
int virtio_net_init(struct virtio_net *n, const struct net_config *c, unsigned cpus, struct machine *m,
		    const struct guest_mem *mem, struct err *e);
void virtio_net_destroy(struct virtio_net *n);
/* A link NIC's socket (a SOCK_SEQPACKET Unix socket) or a passt NIC's (a SOCK_STREAM one),
 * taken over (closed on failure): replaces the one it had, and the link is up. With offload (a
 * link's only, where the monitor at the other end does the same) each frame crosses after its
 * virtio-net header, checksum and segmentation left to the other side (net/offload.h); without,
 * frames cross bare. Any thread but the device's I/O thread; takes vdev.lock. */
int virtio_net_link_set(struct virtio_net *n, int fd, bool offload, struct err *e);
/* Whether the guest sees the link up, and the frames dropped each way; a link whose other end
 * closed while nothing read it goes down here. Takes vdev.lock. */
void virtio_net_state(struct virtio_net *n, bool *link_up, uint64_t *rx_dropped, uint64_t *tx_dropped);

#endif

/* net: the host side of a guest NIC. A backend is one non-blocking descriptor that carries whole
 * Ethernet frames, one per read and one per write: a TAP device, a socket to the user-mode NAT
 * (libslirp) running on its own thread, one end of a link to another VM's NIC (a
 * SOCK_SEQPACKET socket pair the toolstack hands to both monitors), or a stream socket to a
 * passt process (user-mode networking outside the monitor). Also the --net option's parser. */
#ifndef SHOJI_VMM_NET_NET_H
#define SHOJI_VMM_NET_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../../common/limits.h"
#include "../../common/vhost_mode.h"

#define NET_MAX_FORWARDS SHOJI_MAX_FWDS
/* The user-mode network: the guest is 10.0.2.15, the host (and its loopback) 10.0.2.2, DNS 10.0.2.3. */
#define NET_SLIRP_NETWORK "10.0.2.0"
#define NET_SLIRP_GUEST   "10.0.2.15"
/* The user-mode network's default MTU: slirp ends the guest's TCP connections on the host, so
 * no real link limits it, and 64 KiB frames cut the per-packet work and exits (passt does the
 * same). */
#define NET_SLIRP_MTU 65520
#define NET_MIN_MTU   576
/* A link's default MTU: that of the Ethernet it stands for, as the VMs at its ends route to
 * networks that have it. */
#define NET_LINK_MTU 1500
/* The most receive/transmit queue pairs a TAP NIC has (queues=N; the default, one per vCPU, is
 * cut to it). */
#define NET_MAX_PAIRS SHOJI_MAX_NIC_QUEUES

enum net_kind {
	NET_SLIRP,
	NET_TAP,
	NET_LINK,  /* a link to another VM's NIC: bare frames on a SOCK_SEQPACKET socket, handed over
		    * later (virtio_net_link_set); no descriptor, and the link down, until then */
	NET_PASST, /* user-mode networking in its own process (passt): bare frames, each after its
		    * length (net/stream.h), on a SOCK_STREAM socket handed over as a link's is */
};

/* Whether the backend's socket is handed over after the start (net-link) rather than opened by
 * the monitor; such a NIC needs no host network of its own. */
static inline bool net_kind_handed_over(enum net_kind k)
{
	return k == NET_LINK || k == NET_PASST;
}

/* A host port forwarded to a guest port (slirp only). */
struct net_forward {
	bool udp;
	struct in_addr host_addr;
	uint16_t host_port, guest_port;
};

struct net_config {
	enum net_kind kind;
	char ifname[16]; /* tap */
	uint8_t mac[6];
	unsigned mtu; /* offered to the guest (VIRTIO_NET_F_MTU); 0: none offered (tap) */
	struct net_forward fwd[NET_MAX_FORWARDS];
	unsigned nfwd;
	bool host_loopback;    /* slirp: the guest reaches the host's loopback through 10.0.2.2 */
	enum vhost_mode vhost; /* tap: vhost-net serves the rings (frames then never pass here) */
	unsigned queues;       /* tap: queue pairs, 1 to NET_MAX_PAIRS (queues=N); 0: one per vCPU */
	bool queues_auto;      /* queues is the vCPU count, not asked for: a TAP that cannot have
				* that many queues gets one */
};

struct net_backend {
	int fd;                          /* frames in and out (the first queue pair's); -1 when closed */
	int queue_fd[NET_MAX_PAIRS - 1]; /* a multiqueue TAP's further queues', for pairs 1.. */
	unsigned pairs;                  /* 1, or the TAP's queues */
	unsigned vnet_hdr_len;           /* 12: every frame starts with a virtio_net_hdr (tap); 0: bare frames */
	enum net_kind kind;
	void *priv; /* the backend's own state */
};

/* Parses "slirp[,mac=MAC][,mtu=N][,host-loopback=on|off][,fwd=tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT]...",
 * "tap=IFNAME[,mac=MAC][,vhost=auto|on|off][,queues=N]", "link[,mac=MAC][,mtu=N]" or "passt[,mac=MAC][,mtu=N]". A
 * forward without HOSTADDR binds 127.0.0.1 only (never every address: a guest service is not published to the network
 * unless an address says so); the guest reaches the host's own loopback services only with host-loopback=on. NIC number
 * `index` gets the MAC 52:54:00:12:34:(56 + index) unless one is given. */
int net_config_parse(struct net_config *c, const char *spec, unsigned index, struct err *e);

/* mac as "aa:bb:cc:dd:ee:ff" into out. */
void net_mac_text(const uint8_t mac[6], char out[18]);

/* Opens c's backend; a TAP with c->queues queue pairs (IFF_MULTI_QUEUE, each its descriptor)
 * where it was made multiqueue, else one ('ip tuntap add IF mode tap' makes one that is not: an
 * error where queues= asked for more, said at the info level where queues_auto). */
int net_backend_open(struct net_backend *b, const struct net_config *c, struct err *e);
void net_backend_close(struct net_backend *b);

/* The backends behind net_backend_open. */
int net_tap_open(struct net_backend *b, const struct net_config *c, struct err *e);
/* Whether the kernel steers the TAP's frames to queue fd (IFF_ATTACH_QUEUE) or not (detached:
 * frames go to the other queues). */
int net_tap_attach_queue(int fd, bool attach);
/* Asks the TAP device to accept frames with partial checksums / TSO (TUN_F_* flags). */
int net_tap_set_offload(struct net_backend *b, unsigned tun_flags);
int net_slirp_open(struct net_backend *b, const struct net_config *c, struct err *e);
void net_slirp_close(struct net_backend *b);

#endif

/* net: the host side of a guest NIC. A backend is one non-blocking descriptor that carries whole
 * Ethernet frames, one per read and one per write: a TAP device, a socket to the user-mode NAT
 * (libslirp in shoji-slirp, a process of its own the monitor starts), one end of a link to another VM's NIC (a
 * SOCK_SEQPACKET socket pair the toolstack hands to both monitors), or a stream socket to a
 * passt process (user-mode networking outside the monitor). Also the --net option's parser. */
#ifndef SHOJI_VMM_NET_NET_H
#define SHOJI_VMM_NET_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../common/err.h"
#include "../../common/identity.h"
#include "../../common/limits.h"
#include "../../common/usernet.h"
#include "../../common/vhost_mode.h"

#define NET_MAX_FORWARDS USERNET_MAX_FORWARDS
#define NET_SLIRP_MTU    USERNET_MTU /* the user-mode network's default MTU (usernet.h) */
#define NET_MIN_MTU      576
/* A link's default MTU: that of the Ethernet it stands for, as the VMs at its ends route to
 * networks that have it. */
#define NET_LINK_MTU 1500
/* The most receive/transmit queue pairs a TAP NIC has (queues=N; the default, one per vCPU, is
 * cut to it). */
#define NET_MAX_PAIRS SHOJI_MAX_NIC_QUEUES

enum net_kind {
	NET_SLIRP,
	NET_TAP,
	NET_LINK,  /* a link to another VM's NIC: frames (after their virtio-net headers, with offload)
		    * on a SOCK_SEQPACKET socket, handed over later (virtio_net_link_set); no
		    * descriptor, and the link down, until then */
	NET_PASST, /* user-mode networking in its own process (passt): bare frames, each after its
		    * length (net/stream.h), on a SOCK_STREAM socket handed over as a link's is */
};

/* Whether the backend's socket is handed over after the start (net-link) rather than opened by
 * the monitor. */
static inline bool net_kind_handed_over(enum net_kind k)
{
	return k == NET_LINK || k == NET_PASST;
}

/* Whether net-link may give the NIC a socket: a link's or passt's, and a slirp NIC's new
 * shoji-slirp (shojid starts one where the monitor's own has ended). */
static inline bool net_kind_takes_socket(enum net_kind k)
{
	return k != NET_TAP;
}

/* Whether the other end is a process that may end (another monitor, passt, shoji-slirp): its
 * socket closing takes the NIC's link down. */
static inline bool net_kind_peer_ends(enum net_kind k)
{
	return k != NET_TAP;
}

/* Whether the NIC needs the host's network in the monitor itself (a TAP's interface); the
 * others reach it through another process's socket, so the monitor's network namespace can be
 * empty. */
static inline bool net_kind_needs_host_net(enum net_kind k)
{
	return k == NET_TAP;
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
	int helper_fd;         /* slirp: the monitor's end of shoji-slirp's socket (net_slirp_spawn); -1 */
	pid_t helper_pid;      /* slirp: shoji-slirp's pid */
};

/* Who a helper process runs as (the identity the jailed monitor takes); uid 0: the monitor's own. */
#define NET_NOBODY IDENTITY_NOBODY /* the helper's identity where the monitor runs as root, unjailed */
struct net_identity {
	uid_t uid;
	gid_t gid;
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
/* The path of shoji-slirp: beside the monitor's own program, where it is installed and built. */
int net_slirp_helper(char *out, size_t n, struct err *e);
/* Starts c's helper (the program at `helper`) as `as` (NULL: the monitor's identity), its
 * forwards bound, and keeps its socket in c->helper_fd. Main thread, before the monitor
 * confines itself. */
int net_slirp_spawn(struct net_config *c, const char *helper, const struct net_identity *as, struct err *e);
/* The backend for one boot: a duplicate of c->helper_fd. */
int net_slirp_open(struct net_backend *b, const struct net_config *c, struct err *e);
/* NIC nic's shoji-slirp, if it has ended: reaped, and how it ended logged (a system-call filter's
 * kill, an error's exit status), since its link only goes down. Main thread, on SIGCHLD. */
void net_slirp_reap(struct net_config *c, unsigned nic);

#endif

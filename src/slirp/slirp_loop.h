/* slirp_loop: libslirp serving one guest NIC's frames, one frame a message on a SOCK_SEQPACKET
 * socket (the monitor's end is the NIC's backend). The guest's network is 10.0.2.0/24 with DHCP
 * and DNS; 10.0.2.2 is the host, its loopback only when asked for; host port forwards are bound
 * by slirp_loop_open, so a port already taken is an error before the guest runs. Frames for the
 * guest wait in a queue (up to SLIRP_LOOP_QUEUE_MAX bytes) while the socket is full and are
 * dropped past that, as a full NIC would drop them (TCP sends again). One thread: shoji-slirp's
 * only one. */
#ifndef SHOJI_SLIRP_SLIRP_LOOP_H
#define SHOJI_SLIRP_SLIRP_LOOP_H

#include <stdbool.h>

#include "../common/err.h"
#include "../common/portfwd.h"
#include "../common/usernet.h"

#define SLIRP_LOOP_QUEUE_MAX (8u << 20)

struct slirp_loop_config {
	int fd; /* the frames' socket */
	unsigned mtu;
	bool host_loopback;
	struct portfwd fwd[USERNET_MAX_FORWARDS]; /* without an address: 127.0.0.1 */
	unsigned nfwd;
};

struct slirp_loop;

/* libslirp's network on c->fd, its forwards bound; NULL with e set. */
struct slirp_loop *slirp_loop_open(const struct slirp_loop_config *c, struct err *e);
/* Serves until the socket's other end closes (0) or poll fails (-1, e says so). */
int slirp_loop_run(struct slirp_loop *s, struct err *e);
void slirp_loop_close(struct slirp_loop *s);
/* Frames dropped for a guest that did not read. */
unsigned long long slirp_loop_dropped(const struct slirp_loop *s);

#endif

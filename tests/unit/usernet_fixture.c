/* usernet_fixture: a NIC on the fake machine asking a user-mode NAT for DHCP (usernet_fixture.h). */
#include "unit.h"

#include <linux/virtio_net.h>
#include <poll.h>

#include "usernet_fixture.h"

#define RXQ   0
#define TXQ   1
#define HDR   12
#define RXBUF 0x20000ull
#define TXBUF 0x40000ull

const uint8_t usernet_mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};

/* A DHCP discover from mac, broadcast: Ethernet, IPv4 (checksummed), UDP 68 -> 67, BOOTP. */
static size_t dhcp_discover(uint8_t *f)
{
	memset(f, 0, 400);
	memset(f, 0xff, 6);
	memcpy(f + 6, usernet_mac, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *udp = ip + 20, *bootp = udp + 8;
	bootp[0] = 1; /* request */
	bootp[1] = 1; /* Ethernet */
	bootp[2] = 6;
	bootp[7] = 0x42;  /* xid */
	bootp[10] = 0x80; /* broadcast reply */
	memcpy(bootp + 28, usernet_mac, 6);
	static const uint8_t opts[] = {0x63, 0x82, 0x53, 0x63, 53, 1, 1, 0xff};
	memcpy(bootp + 236, opts, sizeof(opts));
	size_t blen = 236 + sizeof(opts), ulen = 8 + blen, ilen = 20 + ulen;
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ilen >> 8);
	ip[3] = (uint8_t)ilen;
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	uint32_t sum = 0;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
	return 14 + ilen;
}

/* The NIC n (its queues up) sends a DHCP discover (asking for a broadcast answer) and takes the
 * NAT's answer: true when a DHCP reply for its MAC came. */
bool usernet_dhcp_offered(struct vfx *v, struct virtio_net *n)
{
	vfx_desc_q(v, RXQ, 0, RXBUF, 2048, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(v, RXQ, 0);
	vfx_run_q(v, RXQ);
	memset(guest_mem_ptr(&v->mem, TXBUF, HDR), 0, HDR);
	size_t len = dhcp_discover(guest_mem_ptr(&v->mem, TXBUF + 0x1000, 400));
	vfx_desc_q(v, TXQ, 0, TXBUF, HDR, VRING_DESC_F_NEXT, 1);
	vfx_desc_q(v, TXQ, 1, TXBUF + 0x1000, (uint32_t)len, 0, 0);
	vfx_offer_q(v, TXQ, 0);
	vfx_run_q(v, TXQ);
	assert_int_equal(vfx_used_idx_q(v, TXQ), 1);

	/* The NAT answers within seconds: each time its socket is readable, the NIC reads it. */
	struct pollfd p = {.fd = n->backend.fd, .events = POLLIN};
	for (int waited = 0; vfx_used_idx_q(v, RXQ) == 0 && waited < 100; waited++) {
		if (poll(&p, 1, 100) > 0) {
			pthread_mutex_lock(&n->vdev.lock);
			n->vdev.ops->fd_ready(&n->vdev, 0);
			pthread_mutex_unlock(&n->vdev.lock);
		}
	}
	static const uint8_t broadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t *got = guest_mem_ptr(&v->mem, RXBUF + HDR, 80), *bootp = got + 42;
	return vfx_used_idx_q(v, RXQ) == 1 &&
		(memcmp(got, usernet_mac, 6) == 0 || memcmp(got, broadcast, 6) == 0) /* to us, or all (its flag) */
		&& (got[12] << 8 | got[13]) == 0x0800                                /* IPv4 */
		&& got[23] == 17                                                     /* UDP */
		&& (got[34] << 8 | got[35]) == 67                                    /* from the DHCP server */
		&& (got[36] << 8 | got[37]) == 68 && bootp[0] == 2                   /* a reply */
		&& memcmp(bootp + 28, usernet_mac, 6) == 0;                          /* for our MAC */
}

/* A NIC of spec, its queues up. */
void usernet_nic_up(struct vfx *v, struct virtio_net *n, struct net_config *c)
{
	struct err e;
	assert_int_equal(vfx_init(v), 0);
	assert_int_equal(virtio_net_init(n, c, 1, &v->fm.m, &v->mem, &e), 0);
	assert_int_equal(vfx_attach(v, &n->vdev), 0);
	vfx_bring_up_queues(v, VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF), 2);
}

/* test_passt: a passt NIC against the real passt (Debian's), not a stand-in: passt is started
 * on one end of a stream socket pair (--fd), the NIC is handed the other, and the guest's DHCP
 * discover, sent on the transmit queue, brings passt's offer into the guest's receive buffer,
 * addressed to the NIC's MAC. Exits 77 (skipped) where passt is not installed. */
#include "unit.h"

#include <fcntl.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "virtio_fixture.h"
#include "vmm/devices/virtio_net.h"

#define RXQ   0
#define TXQ   1
#define HDR   12
#define RXBUF 0x20000ull
#define TXBUF 0x40000ull
#define PASST "/usr/bin/passt"

static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};

/* A DHCP discover from mac, broadcast: Ethernet, IPv4 (checksummed), UDP 68 -> 67, BOOTP. */
static size_t dhcp_discover(uint8_t *f)
{
	memset(f, 0, 400);
	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *udp = ip + 20, *bootp = udp + 8;
	bootp[0] = 1; /* request */
	bootp[1] = 1; /* Ethernet */
	bootp[2] = 6;
	bootp[7] = 0x42;  /* xid */
	bootp[10] = 0x80; /* broadcast reply */
	memcpy(bootp + 28, mac, 6);
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

static pid_t start_passt(int fd)
{
	pid_t pid = fork();
	if (pid == 0) {
		char arg[16];
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		fcntl(fd, F_SETFD, 0);
		snprintf(arg, sizeof(arg), "%d", fd);
		execl(PASST, "passt", "-f", "-1", "-4", "-q", "--fd", arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void dhcp_through_passt(void **state)
{
	(void)state;
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	int sv[2];
	assert_int_equal(net_config_parse(&c, "passt,mac=52:54:00:aa:bb:cc", 0, &e), 0);
	assert_int_equal(vfx_init(&v), 0);
	assert_int_equal(virtio_net_init(&n, &c, 1, &v.fm.m, &v.mem, &e), 0);
	assert_int_equal(vfx_attach(&v, &n.vdev), 0);
	vfx_bring_up_queues(&v, VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF), 2);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = start_passt(sv[1]);
	assert_true(pid > 0);
	close(sv[1]);
	assert_int_equal(virtio_net_link_set(&n, sv[0], &e), 0);

	vfx_desc_q(&v, RXQ, 0, RXBUF, 2048, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(&v, RXQ, 0);
	vfx_run_q(&v, RXQ);
	memset(guest_mem_ptr(&v.mem, TXBUF, HDR), 0, HDR);
	size_t len = dhcp_discover(guest_mem_ptr(&v.mem, TXBUF + 0x1000, 400));
	vfx_desc_q(&v, TXQ, 0, TXBUF, HDR, VRING_DESC_F_NEXT, 1);
	vfx_desc_q(&v, TXQ, 1, TXBUF + 0x1000, (uint32_t)len, 0, 0);
	vfx_offer_q(&v, TXQ, 0);
	vfx_run_q(&v, TXQ);
	assert_int_equal(vfx_used_idx_q(&v, TXQ), 1);

	/* passt answers within seconds: each time its socket is readable, the NIC reads it. */
	struct pollfd p = {.fd = n.backend.fd, .events = POLLIN};
	for (int waited = 0; vfx_used_idx_q(&v, RXQ) == 0 && waited < 100; waited++) {
		if (poll(&p, 1, 100) > 0) {
			pthread_mutex_lock(&n.vdev.lock);
			n.vdev.ops->fd_ready(&n.vdev, 0);
			pthread_mutex_unlock(&n.vdev.lock);
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(vfx_used_idx_q(&v, RXQ), 1);
	const uint8_t *got = guest_mem_ptr(&v.mem, RXBUF + HDR, 64);
	assert_memory_equal(got, mac, 6);                 /* to our MAC */
	assert_int_equal(got[12] << 8 | got[13], 0x0800); /* IPv4 */
	assert_int_equal(got[23], 17);                    /* UDP */
	assert_int_equal(got[34] << 8 | got[35], 67);     /* from the DHCP server */
	assert_int_equal(got[36] << 8 | got[37], 68);
	virtio_net_destroy(&n);
	vfx_destroy(&v);
}

int main(void)
{
	if (access(PASST, X_OK) != 0) {
		printf("SKIP: %s is not installed (apt install passt)\n", PASST);
		return 77;
	}
	const struct CMUnitTest tests[] = {cmocka_unit_test(dhcp_through_passt)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_virtio_net_mq: a NIC on a multiqueue TAP (made here, gone with its last descriptor): two
 * queue pairs and a control queue offered; the driver uses one pair until it says how many on
 * the control queue, and the TAP's second queue is detached until then; hostile and unknown
 * commands are refused or dropped, and a driver without MQ finds the control queue at 2; a frame sent on pair 1 reaches
 * the TAP; queues=N asked of a TAP that is not multiqueue is an error, and the vCPU count a single pair. Exits 77
 * (skipped) where this process cannot make a TAP (no /dev/net/tun, or no CAP_NET_ADMIN). */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "virtio_fixture.h"
#include "vmm/devices/virtio_net.h"

#define F_MAC   VIRTIO_BIT(VIRTIO_NET_F_MAC)
#define F_MQ    (VIRTIO_BIT(VIRTIO_NET_F_MQ) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ))
#define CTRLQ   4
#define TXQ1    3
#define BUF     0x80000ull /* past the five queues' rings */
#define HDR     12
#define NQUEUES 0x12 /* common configuration: num_queues */

static char ifname[IFNAMSIZ];

struct mfx {
	struct vfx v;
	struct virtio_net net;
};

static int tap_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	int r = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -1 : 0;
	ifr.ifr_flags |= IFF_UP;
	r = r || ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -1 : 0;
	if (s >= 0)
		close(s);
	return r;
}

static int setup(void **state)
{
	struct mfx *f = calloc(1, sizeof(*f));
	struct net_config c;
	struct err e;
	char spec[64];
	snprintf(spec, sizeof(spec), "tap=%s,queues=2,vhost=off", ifname);
	if (!f || net_config_parse(&c, spec, 0, &e) < 0 || vfx_init(&f->v) < 0 ||
	    virtio_net_init(&f->net, &c, 1, &f->v.fm.m, &f->v.mem, &e) < 0 || vfx_attach(&f->v, &f->net.vdev) < 0 ||
	    tap_up() < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct mfx *f = *state;
	virtio_net_destroy(&f->net);
	vfx_destroy(&f->v);
	free(f);
	return 0;
}

/* A control command (class, cmd, then len bytes of data) and a writable byte for the answer;
 * the answer, or -1 when the device gave none. */
static int command(struct mfx *f, uint8_t class, uint8_t cmd, const void *data, uint32_t len)
{
	uint8_t *b = guest_mem_ptr(&f->v.mem, BUF, 0x100);
	uint16_t before = vfx_used_idx_q(&f->v, CTRLQ);
	b[0] = class;
	b[1] = cmd;
	memcpy(b + 2, data, len);
	b[0x80] = 0xee;
	vfx_desc_q(&f->v, CTRLQ, 0, BUF, 2 + len, VRING_DESC_F_NEXT, 1);
	vfx_desc_q(&f->v, CTRLQ, 1, BUF + 0x80, 1, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(&f->v, CTRLQ, 0);
	vfx_run_q(&f->v, CTRLQ);
	assert_int_equal(vfx_used_idx_q(&f->v, CTRLQ), (uint16_t)(before + 1));
	return vfx_used_len_q(&f->v, CTRLQ, before) == 1 ? b[0x80] : -1;
}

static uint64_t tap_rx_packets(void)
{
	char path[128];
	unsigned long long n = 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/rx_packets", ifname);
	FILE *fp = fopen(path, "r");
	if (fp) {
		if (fscanf(fp, "%llu", &n) != 1)
			n = 0;
		fclose(fp);
	}
	return n;
}

static void pairs_offered_and_chosen(void **state)
{
	struct mfx *f = *state;
	assert_int_equal(f->net.npairs, 2);
	assert_true((f->net.vdev.device_features & F_MQ) == F_MQ);
	vfx_bring_up_queues(&f->v, F_MAC | F_MQ, 5);
	assert_int_equal(vfx_rd(&f->v, NQUEUES, 2), 5);
	assert_int_equal(vfx_rd(&f->v, 0x2000 + offsetof(struct virtio_net_config, max_virtqueue_pairs), 2), 2);
	/* Until the driver says: pair 0 only, the TAP's second queue detached, and receive buffers
	 * given to pair 1 do not make the device read it (a detached queue polls as an error). */
	assert_int_equal(f->net.active_pairs, 1);
	assert_false(f->net.pairs[1].attached);
	vfx_desc_q(&f->v, 2, 0, BUF + 0x2000, 2048, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(&f->v, 2, 0);
	vfx_run_q(&f->v, 2);
	assert_false(f->net.pairs[1].watching);
	assert_int_equal(vfx_used_idx_q(&f->v, 2), 0);
	uint16_t two = 2, three = 3, zero = 0;
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2), VIRTIO_NET_OK);
	assert_int_equal(f->net.active_pairs, 2);
	assert_true(f->net.pairs[1].attached);
	vfx_run_q(&f->v, 2); /* now its buffers are waited for */
	assert_true(f->net.pairs[1].watching);
	/* More pairs than offered, none, a short or long command, another class: refused. */
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &three, 2), VIRTIO_NET_ERR);
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &zero, 2), VIRTIO_NET_ERR);
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 1), VIRTIO_NET_ERR);
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, "\2\0\0", 3), VIRTIO_NET_ERR);
	assert_int_equal(command(f, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, "\1", 1), VIRTIO_NET_ERR);
	assert_int_equal(f->net.active_pairs, 2);
	/* Back to one: the second queue detached again. */
	uint16_t one = 1;
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &one, 2), VIRTIO_NET_OK);
	assert_false(f->net.pairs[1].attached);
	assert_false(f->net.pairs[1].watching);
	assert_int_equal(f->net.active_pairs, 1);
}

static void hostile_commands(void **state)
{
	struct mfx *f = *state;
	vfx_bring_up_queues(&f->v, F_MAC | F_MQ, 5);
	/* No room for the answer: nothing written, the queue goes on. */
	vfx_desc_q(&f->v, CTRLQ, 0, BUF, 4, 0, 0);
	vfx_offer_q(&f->v, CTRLQ, 0);
	vfx_run_q(&f->v, CTRLQ);
	assert_int_equal(vfx_used_idx_q(&f->v, CTRLQ), 1);
	assert_int_equal(vfx_used_len_q(&f->v, CTRLQ, 0), 0);
	/* A header of one byte: no answer. */
	vfx_desc_q(&f->v, CTRLQ, 0, BUF, 1, VRING_DESC_F_NEXT, 1);
	vfx_desc_q(&f->v, CTRLQ, 1, BUF + 0x80, 1, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(&f->v, CTRLQ, 0);
	vfx_run_q(&f->v, CTRLQ);
	assert_int_equal(vfx_used_idx_q(&f->v, CTRLQ), 2);
	assert_int_equal(vfx_used_len_q(&f->v, CTRLQ, 1), 0);
	assert_false(vfx_rd(&f->v, 0x14, 1) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(f->net.active_pairs, 1);
}

static void frame_sent_on_the_second_pair(void **state)
{
	struct mfx *f = *state;
	vfx_bring_up_queues(&f->v, F_MAC | F_MQ, 5);
	uint16_t two = 2;
	assert_int_equal(command(f, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &two, 2), VIRTIO_NET_OK);
	uint64_t before = tap_rx_packets();
	uint8_t *b = guest_mem_ptr(&f->v.mem, BUF + 0x1000, 0x100);
	memset(b, 0, HDR);
	memset(b + HDR, 0xff, 6);                                   /* broadcast */
	memcpy(b + HDR + 6, "\x52\x54\x00\x12\x34\x56\x88\xb5", 8); /* a local experimental EtherType */
	memset(b + HDR + 14, 'x', 46);
	vfx_desc_q(&f->v, TXQ1, 0, BUF + 0x1000, HDR + 60, 0, 0);
	vfx_offer_q(&f->v, TXQ1, 0);
	vfx_run_q(&f->v, TXQ1);
	assert_int_equal(vfx_used_idx_q(&f->v, TXQ1), 1);
	assert_int_equal(f->net.tx_dropped, 0);
	assert_int_equal(tap_rx_packets(), before + 1);
}

/* A driver that takes the control queue but not MQ finds it at 2, and cannot choose pairs. */
static void control_queue_without_mq(void **state)
{
	struct mfx *f = *state;
	vfx_bring_up_queues(&f->v, F_MAC | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ), 3);
	uint8_t *b = guest_mem_ptr(&f->v.mem, BUF, 0x100);
	memcpy(b, "\4\0\2\0", 4);
	vfx_desc_q(&f->v, 2, 0, BUF, 4, VRING_DESC_F_NEXT, 1);
	vfx_desc_q(&f->v, 2, 1, BUF + 0x80, 1, VRING_DESC_F_WRITE, 0);
	vfx_offer_q(&f->v, 2, 0);
	vfx_run_q(&f->v, 2);
	assert_int_equal(vfx_used_idx_q(&f->v, 2), 1);
	assert_int_equal(b[0x80], VIRTIO_NET_ERR);
	assert_int_equal(f->net.active_pairs, 1);
	assert_false(f->net.pairs[1].attached);
}

/* queues=N of a TAP that is not multiqueue: an error that says how to make one; the vCPU count
 * (queues not given): one pair. */
static void single_queue_tap(void **state)
{
	(void)state;
	char name[IFNAMSIZ], spec[64];
	snprintf(name, sizeof(name), "shojisq%d", (int)getpid() % 100000);
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = {0};
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	assert_true(fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, 1) == 0);
	close(fd); /* persistent, unattached: as 'ip tuntap add' leaves it */
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	assert_int_equal(vfx_init(&v), 0);
	snprintf(spec, sizeof(spec), "tap=%s,queues=2,vhost=off", name);
	assert_int_equal(net_config_parse(&c, spec, 0, &e), 0);
	assert_int_equal(virtio_net_init(&n, &c, 1, &v.fm.m, &v.mem, &e), -1);
	assert_contains(e.msg, "mode tap multi_queue");
	virtio_net_destroy(&n);
	snprintf(spec, sizeof(spec), "tap=%s,vhost=off", name);
	assert_int_equal(net_config_parse(&c, spec, 0, &e), 0);
	assert_int_equal(virtio_net_init(&n, &c, 4, &v.fm.m, &v.mem, &e), 0);
	assert_int_equal(n.npairs, 1);
	assert_int_equal(n.vdev.num_queues, 2);
	assert_false(n.vdev.device_features & F_MQ);
	virtio_net_destroy(&n);
	vfx_destroy(&v);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0 && ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETPERSIST, 0) == 0);
	close(fd);
}

int main(void)
{
	snprintf(ifname, sizeof(ifname), "shojimq%d", (int)getpid() % 100000);
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = {0};
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "shojiprobe%d", (int)getpid() % 10000);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "test_virtio_net_mq: skipped: cannot make a TAP here (%s)\n", strerror(errno));
		return 77;
	}
	close(fd);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pairs_offered_and_chosen, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_commands, setup, teardown),
		cmocka_unit_test_setup_teardown(frame_sent_on_the_second_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(control_queue_without_mq, setup, teardown),
		cmocka_unit_test(single_queue_tap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

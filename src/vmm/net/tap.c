/* net/tap: a TAP device as a NIC's backend (see net.h). Opened with IFF_VNET_HDR so that frames
 * carry the virtio-net header both ways, and checksum and segmentation offloads pass through
 * unchanged; with IFF_MULTI_QUEUE once per queue pair where the NIC has several, the kernel then
 * spreading flows over the descriptors. The interface may exist already (persistent, owned by
 * the user) or is created, which needs CAP_NET_ADMIN. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../common/log.h"
#include "net.h"

/* virtio 1.x always has num_buffers */
#define VNET_HDR_LEN ((int)sizeof(struct virtio_net_hdr_mrg_rxbuf))

/* One queue of TAP ifname: its descriptor, or -1 with errno (EPERM, or EINVAL where a
 * multiqueue open meets a TAP that is not multiqueue, or the reverse). */
static int tap_queue(const char *ifname, bool multi)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ifreq ifr = {0};
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0));
	memcpy(ifr.ifr_name, ifname, strnlen(ifname, IFNAMSIZ - 1));
	int hdr = VNET_HDR_LEN;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int tap_error(const char *ifname, int err, struct err *e)
{
	if (err == ENOENT || err == ENODEV)
		return err_errno(e, err,
				 "cannot open /dev/net/tun for TAP '%s' (load the 'tun' module, "
				 "or use --net slirp)",
				 ifname);
	if (err == EPERM)
		return err_set(e,
			       "cannot attach TAP '%s': permission denied (create it first with "
			       "'ip tuntap add %s mode tap user $USER', or run as root)",
			       ifname, ifname);
	return err_errno(e, err, "cannot attach TAP '%s'", ifname);
}

/* The first queue: multiqueue when more than one is wanted and the TAP allows it. */
static int first_queue(struct net_backend *b, const struct net_config *c, struct err *e)
{
	bool multi = c->queues > 1;
	int fd = tap_queue(c->ifname, multi);
	if (fd < 0 && !multi && errno == EINVAL) /* a multiqueue TAP: one of its queues */
		fd = tap_queue(c->ifname, true);
	else if (fd < 0 && multi && errno == EINVAL) {
		if (!c->queues_auto)
			return err_set(e,
				       "--net tap=%s,queues=%u: the TAP is not multiqueue; make it so "
				       "('ip tuntap add %s mode tap multi_queue') or give queues=1",
				       c->ifname, c->queues, c->ifname);
		log_info("TAP '%s' is not multiqueue: one queue pair (for one a vCPU: 'ip tuntap add %s mode "
			 "tap multi_queue')",
			 c->ifname, c->ifname);
		multi = false;
		fd = tap_queue(c->ifname, false);
	}
	if (fd < 0)
		return tap_error(c->ifname, errno, e);
	b->fd = fd;
	b->pairs = multi ? c->queues : 1;
	return 0;
}

int net_tap_open(struct net_backend *b, const struct net_config *c, struct err *e)
{
	if (first_queue(b, c, e) < 0)
		return -1;
	b->vnet_hdr_len = VNET_HDR_LEN;
	for (unsigned i = 1; i < b->pairs; i++) {
		if ((b->queue_fd[i - 1] = tap_queue(c->ifname, true)) < 0) {
			int err = errno;
			b->pairs = i; /* the queues opened so far */
			net_backend_close(b);
			struct err why;
			tap_error(c->ifname, err, &why);
			return err_set(e, "%s (queue %u of %u)", why.msg, i, c->queues);
		}
	}
	return 0;
}

int net_tap_attach_queue(int fd, bool attach)
{
	struct ifreq ifr = {0};
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr);
}

int net_tap_set_offload(struct net_backend *b, unsigned tun_flags)
{
	return ioctl(b->fd, TUNSETOFFLOAD, (unsigned long)tun_flags);
}

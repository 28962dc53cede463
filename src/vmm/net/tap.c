/* net/tap: a TAP device as a NIC's backend (see net.h). Opened with IFF_VNET_HDR so that frames
 * carry the virtio-net header both ways, and checksum and segmentation offloads pass through
 * unchanged. The interface may exist already (persistent, owned by the user) or is created,
 * which needs CAP_NET_ADMIN. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net.h"

/* virtio 1.x always has num_buffers */
#define VNET_HDR_LEN ((int)sizeof(struct virtio_net_hdr_mrg_rxbuf))

int net_tap_open(struct net_backend *b, const char *ifname, struct err *e)
{
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno,
				 "cannot open /dev/net/tun for TAP '%s' (load the 'tun' module, "
				 "or use --net slirp)",
				 ifname);
	struct ifreq ifr = {0};
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
	int hdr = VNET_HDR_LEN;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = errno;
		close(fd);
		if (err == EPERM)
			return err_set(e,
				       "cannot attach TAP '%s': permission denied (create it first with "
				       "'ip tuntap add %s mode tap user $USER', or run as root)",
				       ifname, ifname);
		return err_errno(e, err, "cannot attach TAP '%s'", ifname);
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int err = errno;
		close(fd);
		return err_errno(e, err, "TAP '%s': cannot set the virtio-net header size", ifname);
	}
	b->fd = fd;
	b->vnet_hdr_len = VNET_HDR_LEN;
	return 0;
}

int net_tap_set_offload(struct net_backend *b, unsigned tun_flags)
{
	return ioctl(b->fd, TUNSETOFFLOAD, (unsigned long)tun_flags);
}

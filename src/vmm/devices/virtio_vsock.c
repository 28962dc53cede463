/* virtio_vsock: a virtio device whose data queues vhost-vsock serves (see virtio_vsock.h;
 * virtio 1.x section 5.10). */
#include "virtio_vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../virtio/vhost.h"

#define VSOCK_QUEUE_SIZE 256
#define DATA_QUEUES      2 /* rx, tx: the kernel's; queue 2 (events) stays with the monitor */

static struct virtio_vsock *vsock_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

static void config_read(struct virtio_dev *vdev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_vsock_config c = {.guest_cid = vsock_of(vdev)->cid};
	memcpy(data, (uint8_t *)&c + off, len); /* inside config_size: the core checked */
}

static int set_running(struct virtio_vsock *v, bool on)
{
	int run = on;
	if (ioctl(v->vhost_fd, VHOST_VSOCK_SET_RUNNING, &run) < 0)
		return -1;
	v->running = on;
	return 0;
}

/* The driver is ready: give the kernel the memory map and the data rings, then start it. */
static void vsock_driver_ok(struct virtio_dev *vdev)
{
	struct virtio_vsock *v = vsock_of(vdev);
	const char *what;
	if (vhost_start_rings(v->vhost_fd, vdev, v->vhost_features, 0, DATA_QUEUES, &what) < 0)
		goto fail;
	what = "start";
	if (set_running(v, true) < 0)
		goto fail;
	return;
fail:
	log_warn("virtio-vsock: vhost-vsock refused the %s: %s", what, strerror(errno));
	virtio_set_needs_reset(vdev);
}

static void vsock_reset(struct virtio_dev *vdev)
{
	struct virtio_vsock *v = vsock_of(vdev);
	if (v->running && set_running(v, false) < 0)
		log_warn("virtio-vsock: cannot stop vhost-vsock: %s", strerror(errno));
}

static void vsock_notify(struct virtio_dev *vdev, unsigned q)
{
	(void)vdev, (void)q; /* only the event queue's kicks would come here; it needs nothing */
}

static const struct virtio_device_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.features = VIRTIO_BIT(VIRTIO_VSOCK_F_SEQPACKET),
	.num_queues = 3,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_vsock_config),
	.config_read = config_read,
	.queue_notify = vsock_notify,
	.driver_ok = vsock_driver_ok,
	.reset = vsock_reset,
};

int virtio_vsock_init(struct virtio_vsock *v, uint64_t cid, struct machine *m, const struct guest_mem *mem,
		      struct err *e)
{
	memset(v, 0, sizeof(*v));
	v->vhost_fd = -1;
	v->cid = cid;
	if (virtio_dev_init(&v->vdev, &vsock_ops, v, m, mem, e) < 0)
		return -1;
	if (cid < 3 || cid >= 0xffffffffull)
		return err_set(e,
			       "--vsock %llu: a guest CID must be between 3 and 4294967294 (0-2 are the "
			       "hypervisor, local and host addresses)",
			       (unsigned long long)cid);
	v->vhost_fd = vhost_open("/dev/vhost-vsock", &v->vhost_features);
	if (v->vhost_fd < 0 && (errno == EACCES || errno == EPERM))
		return err_errno(e, errno,
				 "cannot open /dev/vhost-vsock (give this user access to it: "
				 "udev's default rule makes it 0666)");
	if (v->vhost_fd < 0 && errno == ENOENT)
		return err_errno(e, errno,
				 "cannot open /dev/vhost-vsock (load the vhost_vsock module: "
				 "'modprobe vhost_vsock')");
	if (v->vhost_fd < 0)
		return err_errno(e, errno, "vhost-vsock: cannot open /dev/vhost-vsock and take ownership");
	if (ioctl(v->vhost_fd, VHOST_VSOCK_SET_GUEST_CID, &v->cid) < 0) {
		if (errno == EADDRINUSE)
			return err_set(e,
				       "--vsock %llu: another VM on this host already has that CID; pick "
				       "another",
				       (unsigned long long)cid);
		return err_errno(e, errno, "vhost-vsock: cannot set guest CID %llu", (unsigned long long)cid);
	}
	/* Offer only what the kernel's rings can do (it knows VERSION_1, EVENT_IDX, INDIRECT). */
	vhost_attach(&v->vdev, v->vdev.num_queues, v->vhost_features, VIRTIO_BIT(VIRTIO_VSOCK_F_SEQPACKET));
	if (!(v->vdev.device_features & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return err_set(e, "vhost-vsock: this kernel's vhost-vsock lacks virtio 1.0 support");
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	virtio_dev_destroy(&v->vdev);
	if (v->vhost_fd >= 0) {
		if (v->running)
			set_running(v, false);
		close(v->vhost_fd);
	}
	v->vhost_fd = -1;
}

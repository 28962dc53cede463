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

static int set_mem_table(struct virtio_vsock *v)
{
	const struct guest_mem *mem = v->vdev.mem;
	struct vhost_memory *t = calloc(1, sizeof(*t) + 2 * sizeof(struct vhost_memory_region));
	if (!t)
		return -1;
	t->nregions = (uint32_t)mem->nregions;
	for (int i = 0; i < mem->nregions; i++)
		t->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem->host + mem->host_offset[i]),
		};
	int r = ioctl(v->vhost_fd, VHOST_SET_MEM_TABLE, t);
	free(t);
	return r;
}

static int set_vring(struct virtio_vsock *v, unsigned q)
{
	struct virtio_queue *vq = &v->vdev.queues[q];
	int call = virtio_queue_call_fd(&v->vdev, q);
	if (!vq->enabled || call < 0)
		return errno = EINVAL, -1;
	struct vhost_vring_state num = {.index = q, .num = vq->size}, base = {.index = q, .num = 0};
	struct vhost_vring_addr addr = {
		.index = q,
		.desc_user_addr = (uint64_t)(uintptr_t)vq->vq.desc,
		.avail_user_addr = (uint64_t)(uintptr_t)vq->vq.avail,
		.used_user_addr = (uint64_t)(uintptr_t)vq->vq.used,
	};
	struct vhost_vring_file kick = {.index = q, .fd = vq->kick_fd}, callf = {.index = q, .fd = call};
	if (ioctl(v->vhost_fd, VHOST_SET_VRING_NUM, &num) < 0 || ioctl(v->vhost_fd, VHOST_SET_VRING_BASE, &base) < 0 ||
	    ioctl(v->vhost_fd, VHOST_SET_VRING_ADDR, &addr) < 0 ||
	    ioctl(v->vhost_fd, VHOST_SET_VRING_KICK, &kick) < 0 || ioctl(v->vhost_fd, VHOST_SET_VRING_CALL, &callf) < 0)
		return -1;
	return 0;
}

/* The driver is ready: give the kernel the memory map and the data rings, then start it. */
static void vsock_driver_ok(struct virtio_dev *vdev)
{
	struct virtio_vsock *v = vsock_of(vdev);
	uint64_t features = vdev->driver_features & v->vhost_features;
	const char *what = "features";
	if (ioctl(v->vhost_fd, VHOST_SET_FEATURES, &features) < 0)
		goto fail;
	what = "memory map";
	if (set_mem_table(v) < 0)
		goto fail;
	what = "rings";
	for (unsigned q = 0; q < DATA_QUEUES; q++)
		if (set_vring(v, q) < 0)
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
	.kernel_queues = true,
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
	v->vhost_fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
	if (v->vhost_fd < 0 && (errno == EACCES || errno == EPERM))
		return err_errno(e, errno,
				 "cannot open /dev/vhost-vsock (give this user access to it: "
				 "udev's default rule makes it 0666)");
	if (v->vhost_fd < 0)
		return err_errno(e, errno,
				 "cannot open /dev/vhost-vsock (load the vhost_vsock module: "
				 "'modprobe vhost_vsock')");
	if (ioctl(v->vhost_fd, VHOST_SET_OWNER, NULL) < 0 ||
	    ioctl(v->vhost_fd, VHOST_GET_FEATURES, &v->vhost_features) < 0)
		return err_errno(e, errno, "vhost-vsock: cannot take ownership");
	if (ioctl(v->vhost_fd, VHOST_VSOCK_SET_GUEST_CID, &v->cid) < 0) {
		if (errno == EADDRINUSE)
			return err_set(e,
				       "--vsock %llu: another VM on this host already has that CID; pick "
				       "another",
				       (unsigned long long)cid);
		return err_errno(e, errno, "vhost-vsock: cannot set guest CID %llu", (unsigned long long)cid);
	}
	/* Offer only what the kernel's rings can do (it knows VERSION_1, EVENT_IDX, INDIRECT). */
	v->vdev.device_features &= v->vhost_features;
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

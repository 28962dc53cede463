/* vhost: the vhost descriptor's set-up, shared by the kernel-served devices (see vhost.h). The
 * ioctls are those of <linux/vhost.h>; the seccomp list names each (sandbox/syscall_filter.c). */
#include "vhost.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* The ring features every vhost device's kernel side must itself support. */
#define VHOST_RING_FEATURES                                                                                            \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC))

int vhost_open(const char *path, uint64_t *features)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ioctl(fd, VHOST_SET_OWNER, NULL) < 0 || ioctl(fd, VHOST_GET_FEATURES, features) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

void vhost_attach(struct virtio_dev *vdev, unsigned nrings, uint64_t kernel_features, uint64_t ring_bits)
{
	virtio_set_kernel_queues(vdev, nrings);
	uint64_t kernel_owned = VHOST_RING_FEATURES | ring_bits;
	vdev->device_features &= ~kernel_owned | kernel_features;
}

static int set_mem_table(int fd, const struct guest_mem *mem)
{
	struct vhost_memory *t = calloc(1, sizeof(*t) + (size_t)mem->nregions * sizeof(struct vhost_memory_region));
	if (!t)
		return errno = ENOMEM, -1;
	t->nregions = (uint32_t)mem->nregions;
	for (int i = 0; i < mem->nregions; i++)
		t->regions[i] = (struct vhost_memory_region){
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)(mem->host + mem->host_offset[i]),
		};
	int r = ioctl(fd, VHOST_SET_MEM_TABLE, t);
	free(t);
	return r;
}

/* The device's queue q as the descriptor's ring `ring`: as the driver set it up, its kick
 * eventfd and the transport's interrupt eventfd. */
static int set_vring(int fd, struct virtio_dev *vdev, unsigned q, unsigned ring)
{
	struct virtio_queue *vq = &vdev->queues[q];
	int call = virtio_queue_call_fd(vdev, q);
	if (!vq->enabled || call < 0)
		return errno = EINVAL, -1;
	struct vhost_vring_state num = {.index = ring, .num = vq->size}, base = {.index = ring, .num = 0};
	struct vhost_vring_addr addr = {
		.index = ring,
		.desc_user_addr = (uint64_t)(uintptr_t)vq->vq.desc,
		.avail_user_addr = (uint64_t)(uintptr_t)vq->vq.avail,
		.used_user_addr = (uint64_t)(uintptr_t)vq->vq.used,
	};
	struct vhost_vring_file kick = {.index = ring, .fd = vq->kick_fd}, callf = {.index = ring, .fd = call};
	if (ioctl(fd, VHOST_SET_VRING_NUM, &num) < 0 || ioctl(fd, VHOST_SET_VRING_BASE, &base) < 0 ||
	    ioctl(fd, VHOST_SET_VRING_ADDR, &addr) < 0 || ioctl(fd, VHOST_SET_VRING_KICK, &kick) < 0 ||
	    ioctl(fd, VHOST_SET_VRING_CALL, &callf) < 0)
		return -1;
	return 0;
}

int vhost_start_rings(int fd, struct virtio_dev *vdev, uint64_t kernel_features, unsigned first, unsigned nrings,
		      const char **what)
{
	uint64_t features = vdev->driver_features & kernel_features;
	*what = "features";
	if (ioctl(fd, VHOST_SET_FEATURES, &features) < 0)
		return -1;
	*what = "memory map";
	if (set_mem_table(fd, vdev->mem) < 0)
		return -1;
	*what = "rings";
	for (unsigned r = 0; r < nrings; r++)
		if (set_vring(fd, vdev, first + r, r) < 0)
			return -1;
	return 0;
}

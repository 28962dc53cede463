/* virtio_vsock: the virtio socket device (type 19) served by the host kernel's vhost-vsock. The
 * monitor only presents the virtio device and, once the driver is ready, hands the kernel the
 * guest's memory map, the two data rings and each ring's kick and interrupt eventfds; data never
 * passes through the monitor. Host programs reach the guest with AF_VSOCK at its CID, which the
 * kernel reserves for as long as the device is open (a CID in use is a start-up error). The
 * event queue is never written: it only reports transport resets after migration. */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_VSOCK_H
#define SHOJI_VMM_DEVICES_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "../virtio/virtio.h"

struct virtio_vsock {
	struct virtio_dev vdev;
	int vhost_fd;
	uint64_t cid;
	uint64_t vhost_features;
	bool running;
};

/* Opens /dev/vhost-vsock and claims `cid` (3 or more; 0-2 are reserved) for this guest. */
int virtio_vsock_init(struct virtio_vsock *v, uint64_t cid, struct machine *m, const struct guest_mem *mem,
		      struct err *e);
void virtio_vsock_destroy(struct virtio_vsock *v);

#endif

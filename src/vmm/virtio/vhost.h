/* vhost: what every device whose data rings the host kernel serves (vhost-vsock, vhost-net)
 * does with its vhost descriptor: open it and take ownership, limit the offered ring features
 * to the kernel's, and, once the driver is ready, hand the kernel the negotiated features, the
 * guest's memory map and each ring (addresses, size, kick and call eventfds). */
#ifndef SHOJI_VMM_VIRTIO_VHOST_H
#define SHOJI_VMM_VIRTIO_VHOST_H

#include <stdint.h>

#include "../../common/err.h"
#include "virtio.h"

/* Opens `path` (/dev/vhost-*), takes ownership and reads the kernel's features (*features).
 * Returns the descriptor, or -1 with errno set (the caller words the error: it knows the
 * module and the fix). Before the sandbox, or under it on a rebuild (the jail shows the node). */
int vhost_open(const char *path, uint64_t *features);

/* Hands the device's rings 0..nrings-1 to the kernel: the I/O thread stops watching their kicks
 * (virtio_set_kernel_queues), and the ring features offered are cut to those the kernel's
 * rings handle (VERSION_1, EVENT_IDX, INDIRECT_DESC, and those in `ring_bits`: device bits the
 * kernel must know, e.g. MRG_RXBUF for vhost-net); device bits outside these stay as the model
 * offers them. After virtio_dev_init, before a transport is bound. */
void vhost_attach(struct virtio_dev *vdev, unsigned nrings, uint64_t kernel_features, uint64_t ring_bits);

/* From driver_ok (vCPU thread, lock held): the negotiated features (those the kernel knows),
 * the memory map, then the device's queues first..first+nrings-1 as this vhost descriptor's
 * rings 0..nrings-1 (a multiqueue NIC has a descriptor a queue pair). Returns -1 with errno set
 * and *what naming the step that failed. */
int vhost_start_rings(int fd, struct virtio_dev *vdev, uint64_t kernel_features, unsigned first, unsigned nrings,
		      const char **what);

#endif

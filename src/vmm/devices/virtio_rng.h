/* virtio_rng: the virtio entropy device (type 4): fills each buffer the driver offers with bytes
 * from the host's getrandom(). */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_RNG_H
#define SHOJI_VMM_DEVICES_VIRTIO_RNG_H

#include "../virtio/virtio.h"

int virtio_rng_init(struct virtio_dev *vdev, struct machine *m, const struct guest_mem *mem, struct err *e);

#endif

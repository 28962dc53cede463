/* virtio_input: a virtio input device (type 18; virtio 1.x section 5.8): a keyboard, an
 * absolute tablet or a relative mouse, whose events come from the seat over the display channel
 * (virtio_input_inject, called from the GPU device's I/O thread). Events wait in a bounded
 * buffer while the guest has posted no event buffers; a batch that does not fit is dropped
 * whole, so the injector never blocks. The status queue (LEDs) is read and ignored. */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_INPUT_H
#define SHOJI_VMM_DEVICES_VIRTIO_INPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/display_proto.h"
#include "../virtio/virtio.h"

#define VIRTIO_INPUT_PENDING 1024 /* events held for a guest with no buffers */

struct virtio_input {
	struct virtio_dev vdev;
	uint32_t kind; /* enum display_input_device */
	uint8_t select, subsel;
	struct display_input_event pending[VIRTIO_INPUT_PENDING];
	unsigned head, count;
	uint64_t dropped; /* events dropped because the buffer was full */
};

int virtio_input_init(struct virtio_input *vi, uint32_t kind, struct machine *m, const struct guest_mem *mem,
		      struct err *e);
/* Queues n events (one batch, ending with SYN_REPORT) and delivers what the guest has room
 * for. Takes the device's lock. */
void virtio_input_inject(struct virtio_input *vi, const struct display_input_event *ev, unsigned n);
/* Whether the guest's driver runs the device (DRIVER_OK, event queue enabled): the seat's
 * input goes here only then, when the machine has another way in (a PS/2 keyboard for
 * firmware). Takes the device's lock. */
bool virtio_input_live(struct virtio_input *vi);

#endif

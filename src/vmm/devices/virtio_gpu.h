/* virtio_gpu: the virtio GPU device (type 16; virtio 1.x section 5.7), 2D only with one
 * scanout, EDID and blobs in guest memory (a framebuffer with no host copy), whose scanout is
 * published to the seat through the display channel. The commands run on the device's I/O
 * thread (display/gpu_2d.c); so does the channel (display/display_server.c: its listening
 * socket and the seat's socket sit in the same epoll), and the seat's input events are handed
 * to the three virtio-input devices from there, or, on a machine with a firmware, to the PS/2
 * keyboard and mouse while the firmware (or a boot loader) drives them and the guest's
 * virtio-input driver does not: never to both. */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_GPU_H
#define SHOJI_VMM_DEVICES_VIRTIO_GPU_H

#include "../display/display_server.h"
#include "../display/gpu_2d.h"
#include "../virtio/virtio.h"
#include "i8042.h"
#include "virtio_input.h"

struct virtio_gpu {
	struct virtio_dev vdev;
	struct gpu_2d g;
	struct display_server *ds;
	struct virtio_input *inputs[3]; /* by enum display_input_device; may be NULL */
	struct i8042 *ps2;              /* the firmware's way in, or NULL (set after init) */
	uint32_t events_read;
	/* The seat's last area, for the guest's agent: (width << 32 | height), written on the I/O
	 * thread, then size_fd (an eventfd, -1 when it could not be made) is signalled for the main
	 * loop, which reads both (virtio_gpu_take_size). */
	uint64_t seat_size;
	int size_fd;
	struct virtq_iov iov[VIRTQ_MAX_IOV];
	uint8_t resp[GPU_2D_RESP_MAX];
};

/* The display server outlives the device (a reboot makes a new one); inputs may be NULL. */
int virtio_gpu_init(struct virtio_gpu *gpu, struct display_server *ds, struct virtio_input *inputs[3],
		    struct machine *m, const struct guest_mem *mem, struct err *e);
void virtio_gpu_destroy(struct virtio_gpu *gpu);
/* One batch of the seat's input for `device` (enum display_input_device), on the I/O thread:
 * to the PS/2 device when there is one, the guest drives it and the matching virtio-input is
 * not live; else to the virtio-input device. */
/* On the main thread, once size_fd is readable: the seat's last area (false: none since). */
bool virtio_gpu_take_size(struct virtio_gpu *gpu, uint32_t *width, uint32_t *height);
void virtio_gpu_seat_input(struct virtio_gpu *gpu, uint32_t device, const struct display_input_event *ev, unsigned n);

#endif

/* virtio_console: the virtio console device (type 3), one port (hvc0 in a Linux guest), whose
 * host side is a Unix socket the monitor listens on: one client at a time gets the guest's
 * output and its bytes become the guest's input. With no client, output is dropped, as on a
 * serial line with nothing attached. */
#ifndef SHOJI_VMM_DEVICES_VIRTIO_CONSOLE_H
#define SHOJI_VMM_DEVICES_VIRTIO_CONSOLE_H

#include <stdbool.h>

#include "../virtio/virtio.h"

struct virtio_console {
	struct virtio_dev vdev;
	const char *path;
	int listen_fd, client_fd;
	bool input_paused; /* the guest has no receive buffers: stop reading the client */
};

/* Creates and listens on the socket at `path` (a stale socket there is replaced). */
int virtio_console_init(struct virtio_console *c, const char *path, struct machine *m, const struct guest_mem *mem,
			struct err *e);
void virtio_console_destroy(struct virtio_console *c);

#endif

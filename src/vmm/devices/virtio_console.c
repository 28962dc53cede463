/* virtio_console: one console port over a Unix socket (see virtio_console.h; virtio 1.x
 * section 5.3, without MULTIPORT or SIZE). Queue 0 carries input to the guest, queue 1 its
 * output. */
#include "virtio_console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/unix_socket.h"
#include "../virtio/iov.h"

#define RXQ                0
#define TXQ                1
#define CONSOLE_QUEUE_SIZE 256
#define TOKEN_LISTEN       0
#define TOKEN_CLIENT       1

static struct virtio_console *con_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

static void drop_client(struct virtio_console *c)
{
	if (c->client_fd < 0)
		return;
	virtio_unwatch(&c->vdev, c->client_fd);
	close(c->client_fd);
	c->client_fd = -1;
	c->input_paused = false;
}

/* Moves what the client sent into the guest's receive buffers. */
static void feed_guest(struct virtio_console *c)
{
	struct virtio_dev *vdev = &c->vdev;
	if (c->client_fd < 0 || !(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) || !vdev->queues[RXQ].enabled)
		return;
	struct virtq *vq = &vdev->queues[RXQ].vq;
	struct virtq_iov iov[64];
	struct virtq_chain chain;
	struct err e;
	virtq_chain_init(&chain, iov, 64);
	for (;;) {
		char buf[4096];
		ssize_t avail = recv(c->client_fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
		if (avail == 0) {
			drop_client(c);
			break;
		}
		if (avail < 0)
			break; /* nothing more for now */
		int r = virtq_pop(vq, &chain, &e);
		if (r < 0) {
			log_guest(LOG_WARN, "virtio-console: %s", e.msg);
			virtio_set_needs_reset(vdev);
			return;
		}
		if (r == 0) { /* no buffers: wait for the guest to give some */
			virtio_unwatch(vdev, c->client_fd);
			c->input_paused = true;
			break;
		}
		size_t room = chain.writable_bytes < sizeof(buf) ? (size_t)chain.writable_bytes : sizeof(buf);
		ssize_t n = recv(c->client_fd, buf, room, MSG_DONTWAIT);
		size_t put =
			n > 0 ? iov_from_buf(virtq_chain_writable(&chain), chain.n_writable, 0, buf, (size_t)n) : 0;
		virtq_push(vq, chain.head, (uint32_t)put);
	}
	virtio_notify_queue(vdev, RXQ);
}

/* Sends one chain of the guest's output to the client, or drops it when there is none. */
static uint32_t console_output(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	struct virtio_console *c = con_of(vdev);
	for (unsigned i = 0; i < chain->n_readable && c->client_fd >= 0; i++) {
		size_t off = 0;
		while (off < chain->iov[i].len) {
			ssize_t n = send(c->client_fd, (uint8_t *)chain->iov[i].base + off, chain->iov[i].len - off,
					 MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				drop_client(c);
				break;
			}
			off += (size_t)n;
		}
	}
	return 0;
}

static void drain_guest(struct virtio_console *c)
{
	struct virtq_iov iov[64];
	virtio_serve_queue(&c->vdev, TXQ, iov, 64, console_output);
}

static void console_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_console *c = con_of(vdev);
	if (q == TXQ) {
		drain_guest(c);
		return;
	}
	if (c->input_paused && c->client_fd >= 0) { /* new receive buffers */
		c->input_paused = false;
		virtio_watch(vdev, c->client_fd, TOKEN_CLIENT);
	}
	feed_guest(c);
}

static void console_fd_ready(struct virtio_dev *vdev, unsigned token)
{
	struct virtio_console *c = con_of(vdev);
	if (token == TOKEN_CLIENT) {
		feed_guest(c);
		return;
	}
	if (unix_socket_accept_one(c->listen_fd, &c->client_fd, UNIX_SOCKET_CONSOLE_BUSY) &&
	    virtio_watch(vdev, c->client_fd, TOKEN_CLIENT) < 0)
		drop_client(c);
}

static void console_reset(struct virtio_dev *vdev)
{
	struct virtio_console *c = con_of(vdev);
	if (c->input_paused && c->client_fd >= 0)
		virtio_watch(vdev, c->client_fd, TOKEN_CLIENT);
	c->input_paused = false;
}

/* Before the I/O thread starts: the listening socket goes into its epoll. */
static int console_start(struct virtio_dev *vdev, struct err *e)
{
	struct virtio_console *c = con_of(vdev);
	if (virtio_watch(vdev, c->listen_fd, TOKEN_LISTEN) < 0)
		return err_errno(e, errno, "cannot watch console socket '%s'", c->path);
	return 0;
}

static const struct virtio_device_ops console_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.num_queues = 2,
	.queue_max_size = CONSOLE_QUEUE_SIZE,
	.queue_notify = console_notify,
	.reset = console_reset,
	.fd_ready = console_fd_ready,
	.start = console_start,
};

int virtio_console_init(struct virtio_console *c, const char *path, struct machine *m, const struct guest_mem *mem,
			struct err *e)
{
	memset(c, 0, sizeof(*c));
	c->listen_fd = c->client_fd = -1;
	c->path = path;
	if (unix_socket_listen(path, "console socket", 1, &c->listen_fd, e) < 0)
		return -1;
	return virtio_dev_init(&c->vdev, &console_ops, c, m, mem, e);
}

void virtio_console_destroy(struct virtio_console *c)
{
	virtio_dev_destroy(&c->vdev); /* stops the I/O thread first */
	if (c->client_fd >= 0)
		close(c->client_fd);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	c->client_fd = c->listen_fd = -1;
}

/* virtio: the transport-independent device core (see virtio.h). Feature negotiation and status
 * per virtio 1.x sections 2.1-2.2 and 3.1; every queue index, size and feature word a transport
 * passes on from the driver is checked here. */
#include "virtio.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/virtio_ring.h> /* VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/thread.h"

/* What the core offers whatever the device: virtio 1.x, and what virtqueue.c can do. */
#define CORE_FEATURES                                                                                                  \
	(VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX))

/* epoll tokens: queue indices below, watched descriptors from here, and the stop eventfd. */
#define WATCH_TOKEN_BASE 0x10000u
#define STOP_TOKEN       UINT32_MAX

static void interrupt(struct virtio_dev *vdev, unsigned source)
{
	if (vdev->transport_ops)
		vdev->transport_ops->interrupt(vdev, source);
}

/* --- status, features, configuration ------------------------------------------------------- */

static void device_reset(struct virtio_dev *vdev)
{
	for (unsigned q = 0; q < vdev->num_queues; q++) {
		struct virtio_queue *vq = &vdev->queues[q];
		virtq_reset(&vq->vq);
		vq->enabled = false;
		vq->size = vdev->ops->queue_max_size;
		vq->desc = vq->avail = vq->used = 0;
	}
	vdev->status = 0;
	vdev->driver_features = 0;
	if (vdev->transport_ops)
		vdev->transport_ops->reset(vdev);
	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
}

static void kick_enabled_queues(struct virtio_dev *vdev);

void virtio_set_status(struct virtio_dev *vdev, uint8_t v)
{
	if (v == 0) {
		device_reset(vdev);
		return;
	}
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(vdev->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		uint64_t f = vdev->driver_features;
		if ((f & ~vdev->device_features) || !(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
			v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK; /* refused: the driver sees it clear */
	}
	bool going_live = (v & VIRTIO_CONFIG_S_DRIVER_OK) && !(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK);
	vdev->status = (uint8_t)(v | (vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET));
	if (going_live && vdev->ops->driver_ok)
		vdev->ops->driver_ok(vdev);
	if (going_live)
		kick_enabled_queues(vdev);
}

static uint32_t feature_word(uint64_t features, uint32_t select)
{
	return select == 0 ? (uint32_t)features : select == 1 ? (uint32_t)(features >> 32) : 0;
}

uint32_t virtio_device_features_word(const struct virtio_dev *vdev, uint32_t select)
{
	return feature_word(vdev->device_features, select);
}

uint32_t virtio_driver_features_word(const struct virtio_dev *vdev, uint32_t select)
{
	return feature_word(vdev->driver_features, select);
}

void virtio_set_driver_features_word(struct virtio_dev *vdev, uint32_t select, uint32_t v)
{
	uint64_t *f = &vdev->driver_features;
	if (vdev->status & VIRTIO_CONFIG_S_FEATURES_OK)
		return;
	if (select == 0)
		*f = (*f & ~0xffffffffull) | v;
	else if (select == 1)
		*f = (*f & 0xffffffffull) | ((uint64_t)v << 32);
}

void virtio_config_access(struct virtio_dev *vdev, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t size = vdev->ops->config_size;
	bool inside = off < size && len <= size - off;
	if (inside && is_write && vdev->ops->config_write)
		vdev->ops->config_write(vdev, (uint32_t)off, data, len);
	else if (inside && !is_write && vdev->ops->config_read)
		vdev->ops->config_read(vdev, (uint32_t)off, data, len);
	else if (!is_write)
		memset(data, 0, len);
}

void virtio_config_changed(struct virtio_dev *vdev)
{
	vdev->config_generation++;
	interrupt(vdev, VIRTIO_IRQ_CONFIG);
}

void virtio_set_needs_reset(struct virtio_dev *vdev)
{
	if (vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	vdev->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	virtio_config_changed(vdev);
}

/* --- queue set-up --------------------------------------------------------------------------- */

struct virtio_queue *virtio_queue_setup(struct virtio_dev *vdev, unsigned q)
{
	if (q >= vdev->num_queues || vdev->queues[q].enabled)
		return NULL;
	return &vdev->queues[q];
}

void virtio_set_queue_size(struct virtio_dev *vdev, unsigned q, uint64_t v)
{
	struct virtio_queue *vq = virtio_queue_setup(vdev, q);
	if (vq && v && !(v & (v - 1)) && v <= vdev->ops->queue_max_size)
		vq->size = (uint16_t)v;
}

int virtio_enable_queue(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_queue *vq = virtio_queue_setup(vdev, q);
	struct err e;
	if (!vq)
		return -1;
	if (virtq_init(&vq->vq, vdev->mem, vq->size, vq->desc, vq->avail, vq->used,
		       vdev->driver_features & VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX),
		       vdev->driver_features & VIRTIO_BIT(VIRTIO_RING_F_INDIRECT_DESC), &e) < 0) {
		log_guest(LOG_WARN, "%s: queue %u: %s", vdev->ops->name, q, e.msg);
		virtio_set_needs_reset(vdev);
		return -1;
	}
	vq->enabled = true;
	return 0;
}

bool virtio_queue_live(const struct virtio_dev *vdev, unsigned q)
{
	return (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !(vdev->status & VIRTIO_CONFIG_S_NEEDS_RESET) &&
		q < vdev->num_queues && vdev->queues[q].enabled;
}

int virtio_queue_call_fd(struct virtio_dev *vdev, unsigned q)
{
	if (q >= vdev->num_queues || !vdev->transport_ops)
		return -1;
	return vdev->transport_ops->queue_call_fd(vdev, q);
}

/* --- serving the queues --------------------------------------------------------------------- */

/* Signals queue q's kick eventfd, as the driver's notification does: the I/O thread runs it. */
static int kick(struct virtio_dev *vdev, unsigned q)
{
	uint64_t one = 1;
	if (q >= vdev->num_queues)
		return 0;
	return write(vdev->queues[q].kick_fd, &one, sizeof(one)) < 0 ? -1 : 0;
}

void virtio_kick(struct virtio_dev *vdev, unsigned q)
{
	if (kick(vdev, q) < 0)
		log_debug("%s: kick lost: %s", vdev->ops->name, strerror(errno));
}

/* At DRIVER_OK every enabled queue is looked at once: a notification the driver sent before then
 * was dropped (the queue was not live), and buffers it made available must not wait for the next. */
static void kick_enabled_queues(struct virtio_dev *vdev)
{
	for (unsigned q = 0; q < vdev->num_queues; q++)
		if (vdev->queues[q].enabled && vdev->queues[q].kick_fd >= 0)
			virtio_kick(vdev, q);
}

void virtio_requeue(struct virtio_dev *vdev, unsigned q)
{
	if (kick(vdev, q) < 0)
		log_warn("%s: cannot requeue queue %u: %s", vdev->ops->name, q, strerror(errno));
}

void virtio_notify_queue(struct virtio_dev *vdev, unsigned q)
{
	if (q >= vdev->num_queues)
		return;
	struct virtio_queue *vq = &vdev->queues[q];
	uint16_t added = (uint16_t)(vq->vq.used_idx - vq->vq.signalled_used);
	vq->given_back += added;
	vq->chances += added != 0;
	if (virtq_should_notify(&vq->vq)) {
		vq->interrupts++;
		interrupt(vdev, q);
	}
}

void virtio_queue_stats(struct virtio_dev *vdev, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	pthread_mutex_lock(&vdev->lock);
	for (unsigned q = 0; q < vdev->num_queues && used < size; q++) {
		const struct virtio_queue *vq = &vdev->queues[q];
		if (!vq->kicks && !vq->chances)
			continue;
		int n = snprintf(buf + used, size - used,
				 "%sq%u kicks %" PRIu64 " (%" PRIu64 " wake-ups), buffers %" PRIu64
				 ", interrupts %" PRIu64 " of %" PRIu64,
				 used ? "; " : "", q, vq->kicks, vq->wakeups, vq->given_back, vq->interrupts,
				 vq->chances);
		used += n > 0 ? (size_t)n : 0;
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* One pass over queue q: each chain served is given back, or kept in held when there is one.
 * False when the queue turned out broken. */
static bool serve_pass(struct virtio_dev *vdev, unsigned q, struct virtq_iov *iov, unsigned cap, virtio_serve_fn serve,
		       struct virtio_held *held)
{
	struct virtq *vq = &vdev->queues[q].vq;
	struct virtq_chain chain;
	struct err e;
	virtq_chain_init(&chain, iov, cap);
	for (unsigned budget = vdev->queues[q].size;; budget--) {
		if (budget == 0 || (held && held->n == VIRTIO_HELD_MAX)) {
			virtio_requeue(vdev, q); /* more may be waiting: come back after the others */
			return true;
		}
		int r = virtq_pop(vq, &chain, &e);
		if (r == 0)
			return true;
		if (r < 0) {
			log_guest(LOG_WARN, "%s: queue %u: %s", vdev->ops->name, q, e.msg);
			virtio_set_needs_reset(vdev);
			return false;
		}
		uint32_t written = serve(vdev, &chain);
		if (written == VIRTIO_SERVE_LATER) {
			virtq_rewind(vq, 1);
			return true;
		}
		if (held)
			held->head[held->n++] = chain.head;
		else
			virtq_push(vq, chain.head, written);
	}
}

void virtio_serve_queue(struct virtio_dev *vdev, unsigned q, struct virtq_iov *iov, unsigned cap, virtio_serve_fn serve)
{
	if (serve_pass(vdev, q, iov, cap, serve, NULL))
		virtio_notify_queue(vdev, q);
}

void virtio_serve_queue_held(struct virtio_dev *vdev, unsigned q, struct virtq_iov *iov, unsigned cap,
			     virtio_serve_fn serve, struct virtio_held *held)
{
	serve_pass(vdev, q, iov, cap, serve, held);
}

void virtio_give_back(struct virtio_dev *vdev, unsigned q, struct virtio_held *held)
{
	for (unsigned i = 0; i < held->n; i++)
		virtq_push(&vdev->queues[q].vq, held->head[i], 0);
	held->n = 0;
	virtio_notify_queue(vdev, q);
}

/* --- watched descriptors and the I/O thread ------------------------------------------------- */

static int watch(struct virtio_dev *vdev, int fd, unsigned token, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = WATCH_TOKEN_BASE + token};
	if (epoll_ctl(vdev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return 0;
	return errno == EEXIST ? 0 : -1;
}

int virtio_watch(struct virtio_dev *vdev, int fd, unsigned token)
{
	return watch(vdev, fd, token, EPOLLIN);
}

int virtio_watch_writable(struct virtio_dev *vdev, int fd, unsigned token)
{
	return watch(vdev, fd, token, EPOLLOUT);
}

void virtio_unwatch(struct virtio_dev *vdev, int fd)
{
	epoll_ctl(vdev->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/* One epoll event: a watched descriptor or a queue's kick. */
static void io_event(struct virtio_dev *vdev, uint32_t token)
{
	if (token >= WATCH_TOKEN_BASE) {
		pthread_mutex_lock(&vdev->lock);
		if (vdev->ops->fd_ready)
			vdev->ops->fd_ready(vdev, token - WATCH_TOKEN_BASE);
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	uint64_t count;
	if (read(vdev->queues[token].kick_fd, &count, sizeof(count)) < 0)
		return;
	pthread_mutex_lock(&vdev->lock);
	vdev->queues[token].kicks += count;
	vdev->queues[token].wakeups++;
	if (virtio_queue_live(vdev, token))
		vdev->ops->queue_notify(vdev, token);
	pthread_mutex_unlock(&vdev->lock);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void virtio_timer_arm(struct virtio_dev *vdev, uint64_t delay_ns)
{
	uint64_t at = now_ns() + delay_ns;
	if (!vdev->timer_at || at < vdev->timer_at)
		vdev->timer_at = at;
}

void virtio_timer_fire(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->timer_at = 0;
	if (vdev->ops->timer)
		vdev->ops->timer(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

/* The timer's turn, if it has come. */
static void timer_check(struct virtio_dev *vdev)
{
	if (vdev->timer_at && now_ns() >= vdev->timer_at)
		virtio_timer_fire(vdev);
}

/* epoll_wait, no longer than until the timer's time if one is asked for: ppoll on the epoll
 * descriptor waits that long to the nanosecond (epoll_pwait2 would too, but only on Linux 5.11
 * and later), then epoll_wait collects what is ready. */
static int io_wait(struct virtio_dev *vdev, struct epoll_event *ev, int max)
{
	if (!vdev->timer_at)
		return epoll_wait(vdev->epoll_fd, ev, max, -1);
	uint64_t now = now_ns(), left = vdev->timer_at > now ? vdev->timer_at - now : 0;
	struct timespec t = {.tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u)};
	struct pollfd p = {.fd = vdev->epoll_fd, .events = POLLIN};
	int r = ppoll(&p, 1, &t, NULL);
	return r <= 0 ? r : epoll_wait(vdev->epoll_fd, ev, max, 0);
}

static void *io_thread(void *arg)
{
	struct virtio_dev *vdev = arg;
	char name[16];
	snprintf(name, sizeof(name), "io-%s", vdev->ops->name);
	pthread_setname_np(pthread_self(), name);
	for (;;) {
		struct epoll_event ev[VIRTIO_MAX_QUEUES + 1];
		int n = io_wait(vdev, ev, VIRTIO_MAX_QUEUES + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("%s: the I/O thread stops: epoll_wait: %s; the device no longer serves its queues",
				  vdev->ops->name, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.u32 == STOP_TOKEN)
				return NULL;
			io_event(vdev, ev[i].data.u32);
		}
		timer_check(vdev);
	}
	return NULL;
}

/* --- set-up --------------------------------------------------------------------------------- */

int virtio_queue_kicks_here(struct virtio_dev *vdev, unsigned q, bool here)
{
	if (q >= vdev->ops->num_queues)
		return errno = EINVAL, -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = q};
	return epoll_ctl(vdev->epoll_fd, here ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, vdev->queues[q].kick_fd,
			 here ? &ev : NULL);
}

/* The I/O thread's epoll with its stop eventfd, and each queue's kick eventfd in it. */
static int io_fds_init(struct virtio_dev *vdev, struct err *e)
{
	const struct virtio_device_ops *ops = vdev->ops;
	vdev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	vdev->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vdev->epoll_fd < 0 || vdev->stop_fd < 0)
		return err_errno(e, errno, "%s: cannot create the I/O thread's descriptors", ops->name);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = STOP_TOKEN};
	epoll_ctl(vdev->epoll_fd, EPOLL_CTL_ADD, vdev->stop_fd, &ev);
	for (unsigned q = 0; q < ops->num_queues; q++) {
		vdev->queues[q].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vdev->queues[q].kick_fd < 0 || virtio_queue_kicks_here(vdev, q, true) < 0)
			return err_errno(e, errno, "%s: cannot set up queue %u's notification", ops->name, q);
	}
	return 0;
}

void virtio_set_kernel_queues(struct virtio_dev *vdev, unsigned n)
{
	for (unsigned q = 0; q < n; q++)
		virtio_queue_kicks_here(vdev, q, false);
}

int virtio_dev_init(struct virtio_dev *vdev, const struct virtio_device_ops *ops, void *device, struct machine *m,
		    const struct guest_mem *mem, struct err *e)
{
	memset(vdev, 0, sizeof(*vdev));
	vdev->epoll_fd = vdev->stop_fd = -1;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vdev->queues[q].kick_fd = -1;
	if (ops->num_queues == 0 || ops->num_queues > VIRTIO_MAX_QUEUES)
		return err_set(e, "%s: unsupported queue count", ops->name);
	vdev->ops = ops;
	vdev->num_queues = ops->num_queues;
	vdev->device_features = ops->features | CORE_FEATURES;
	vdev->device = device;
	vdev->machine = m;
	vdev->mem = mem;
	pthread_mutex_init(&vdev->lock, NULL);
	if (io_fds_init(vdev, e) < 0)
		return -1;
	device_reset(vdev);
	return 0;
}

void virtio_set_num_queues(struct virtio_dev *vdev, uint16_t n)
{
	if (n >= 1 && n <= vdev->ops->num_queues && !vdev->transport_ops)
		vdev->num_queues = n;
}

int virtio_dev_start(struct virtio_dev *vdev, struct err *e)
{
	if (vdev->ops->start && vdev->ops->start(vdev, e) < 0)
		return -1;
	int r = thread_start(&vdev->thread, io_thread, vdev);
	if (r)
		return err_errno(e, r, "%s: cannot start its I/O thread", vdev->ops->name);
	vdev->thread_started = true;
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *vdev)
{
	if (!vdev->ops)
		return;
	if (vdev->thread_started) {
		uint64_t one = 1;
		if (write(vdev->stop_fd, &one, sizeof(one)) < 0)
			log_warn("%s: cannot stop the I/O thread", vdev->ops->name);
		pthread_join(vdev->thread, NULL);
		vdev->thread_started = false;
	}
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		if (vdev->queues[q].kick_fd >= 0)
			close(vdev->queues[q].kick_fd);
	if (vdev->epoll_fd >= 0)
		close(vdev->epoll_fd);
	if (vdev->stop_fd >= 0)
		close(vdev->stop_fd);
	pthread_mutex_destroy(&vdev->lock);
	vdev->ops = NULL;
}

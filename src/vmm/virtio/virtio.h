/* virtio: the transport-independent core of one virtio 1.x device (spec 2 and 3), which is all
 * a device model sees: feature negotiation and device status, the configuration space and its
 * generation, the queues (set-up, reset, serving), and the device's own I/O thread, which runs
 * the model's queue handler when the driver notifies a queue and its handler for host
 * descriptors it watches; never on a vCPU thread. A transport (virtio_pci.h) maps its registers
 * onto the functions under "For transports" and delivers the interrupts the core raises through
 * struct virtio_transport_ops; a device model never sees which transport it is bound to.
 * vdev->lock guards the whole device: transports take it around each register access (on a
 * vCPU thread), the I/O thread around each handler it runs. */
#ifndef SHOJI_VMM_VIRTIO_VIRTIO_H
#define SHOJI_VMM_VIRTIO_VIRTIO_H

#include <linux/virtio_config.h> /* VIRTIO_CONFIG_S_* status bits, VIRTIO_F_* feature bits */
#include <linux/virtio_ids.h>    /* VIRTIO_ID_* device types */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../machine.h"
#include "../memory.h"
#include "virtqueue.h"

#define VIRTIO_MAX_QUEUES 17 /* a NIC's 8 queue pairs and its control queue */
/* A feature bit number (VIRTIO_F_*, VIRTIO_RING_F_*, VIRTIO_BLK_F_*, ...) as a mask. */
#define VIRTIO_BIT(bit) (1ull << (bit))

struct virtio_dev;

/* What a device model supplies. The handlers run with vdev->lock held. */
struct virtio_device_ops {
	const char *name;
	uint16_t device_id;  /* VIRTIO_ID_* */
	uint64_t features;   /* device-specific feature masks; the core adds its own */
	uint16_t num_queues; /* 1 to VIRTIO_MAX_QUEUES: the most; virtio_set_num_queues may offer fewer */
	uint16_t queue_max_size;
	uint32_t config_size; /* bytes of device configuration space */
	/* Bytes [offset, offset + len) of the configuration space, inside config_size; on a vCPU
	 * thread. NULL: reads are zeroes, writes vanish. */
	void (*config_read)(struct virtio_dev *vdev, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(struct virtio_dev *vdev, uint32_t offset, const uint8_t *data, uint32_t len);
	/* On the I/O thread: the driver notified queue q, which is live (may find nothing to do). */
	void (*queue_notify)(struct virtio_dev *vdev, unsigned q);
	/* The driver reset the device: forget all requests. On a vCPU thread (or in
	 * virtio_dev_init). */
	void (*reset)(struct virtio_dev *vdev);
	/* The driver set DRIVER_OK: the queues are set up. On a vCPU thread. */
	void (*driver_ok)(struct virtio_dev *vdev);
	/* On the I/O thread: a host descriptor the device watches (virtio_watch) is ready. */
	void (*fd_ready)(struct virtio_dev *vdev, unsigned token);
	/* In virtio_dev_start, before the I/O thread starts, lock not held: watch the device's
	 * host descriptors (may be NULL). */
	int (*start)(struct virtio_dev *vdev, struct err *e);
	/* On the I/O thread: the time virtio_timer_arm asked for has come (may be NULL). */
	void (*timer)(struct virtio_dev *vdev);
};

/* An interrupt source that is not a queue: the configuration changed. */
#define VIRTIO_IRQ_CONFIG 0xffffu

/* What a transport supplies when it binds a device (virtio_pci_init). Lock held. */
struct virtio_transport_ops {
	/* Interrupts the driver for `source`: a queue index (used buffers) or VIRTIO_IRQ_CONFIG. */
	void (*interrupt)(struct virtio_dev *vdev, unsigned source);
	/* The eventfd that raises queue q's interrupt when signalled, for the host kernel; -1 when
	 * the driver gave the queue no usable interrupt. */
	int (*queue_call_fd)(struct virtio_dev *vdev, unsigned q);
	/* The device was reset: the transport's registers return to their reset values. */
	void (*reset)(struct virtio_dev *vdev);
};

struct virtio_queue {
	struct virtq vq;
	uint16_t size;
	bool enabled;
	uint64_t desc, avail, used; /* ring addresses, as the driver wrote them */
	int kick_fd;                /* eventfd the driver's notification signals; the I/O thread reads it */
	/* For --stats, under the device's lock: the driver's notifications (kicks), the I/O
	 * thread's wake-ups for them (several kicks may make one), the buffers given back (used
	 * entries), the chances to interrupt the driver (used entries added since the last) and
	 * the interrupts sent. */
	uint64_t kicks, wakeups, given_back, chances, interrupts;
};

struct virtio_dev {
	const struct virtio_device_ops *ops;
	void *device; /* the device model's own state */
	struct machine *machine;
	const struct guest_mem *mem;
	pthread_mutex_t lock;
	/* What is offered: ops->features and the core's; a model may change it after
	 * virtio_dev_init, before a transport is bound. */
	uint64_t device_features;
	uint16_t num_queues; /* ops->num_queues, or fewer (virtio_set_num_queues) */
	uint64_t driver_features;
	uint8_t status, config_generation;
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
	const struct virtio_transport_ops *transport_ops; /* NULL until a transport binds it */
	void *transport;
	int epoll_fd, stop_fd;
	uint64_t timer_at; /* CLOCK_MONOTONIC ns when ops->timer runs; 0: none. I/O thread only */
	pthread_t thread;
	bool thread_started;
};

/* Sets the device up, reset, with its queues' kick eventfds and the I/O thread's epoll. */
int virtio_dev_init(struct virtio_dev *vdev, const struct virtio_device_ops *ops, void *device, struct machine *m,
		    const struct guest_mem *mem, struct err *e);
/* Offers n queues (1 to ops->num_queues) instead of ops->num_queues; after virtio_dev_init,
 * before a transport is bound (ignored otherwise). */
void virtio_set_num_queues(struct virtio_dev *vdev, uint16_t n);
/* Queues 0..n-1 are served by the host kernel (vhost) from their kick and call eventfds: the
 * I/O thread stops watching their kicks (a queue after them, such as a NIC's control queue,
 * stays the device's). After virtio_dev_init, before virtio_dev_start. */
void virtio_set_kernel_queues(struct virtio_dev *vdev, unsigned n);
/* Whether the I/O thread watches queue q's kicks (the device serves it) or not (the kernel
 * does): for a device whose queues change hands as the driver sets it up. Any thread; -1 with
 * errno where epoll refused. */
int virtio_queue_kicks_here(struct virtio_dev *vdev, unsigned q, bool here);
/* Runs ops->start, then starts the I/O thread; once bound to a transport. */
int virtio_dev_start(struct virtio_dev *vdev, struct err *e);
/* Stops the I/O thread and closes the core's descriptors; before the transport is destroyed.
 * Copes with a device whose virtio_dev_init failed or never ran (zeroed). */
void virtio_dev_destroy(struct virtio_dev *vdev);

/* --- For device models: on the I/O thread (or another with the lock held) ---------------- */

/* Whether queue q may be served now: DRIVER_OK, not NEEDS_RESET, and q enabled. */
bool virtio_queue_live(const struct virtio_dev *vdev, unsigned q);

/* Serves queue q: pops each available chain into iov (room for cap buffers), hands it to
 * `serve`, which returns the bytes it wrote into the chain's writable buffers, and pushes it
 * back; then interrupts the driver if it wants that. A malformed chain marks the device
 * NEEDS_RESET; after the queue's size in chains it requeues itself rather than starve others. */
typedef uint32_t (*virtio_serve_fn)(struct virtio_dev *vdev, const struct virtq_chain *chain);
/* What `serve` returns when it cannot take the chain now (its host side is full): the chain is
 * given back, to be popped again, and the pass ends; the device runs the queue again later. */
#define VIRTIO_SERVE_LATER UINT32_MAX
void virtio_serve_queue(struct virtio_dev *vdev, unsigned q, struct virtq_iov *iov, unsigned cap,
			virtio_serve_fn serve);

/* Chains served and not yet given back to the driver, for a device that completes them in
 * batches (a NIC's transmit completions); each of them had nothing written into it. */
#define VIRTIO_HELD_MAX 256 /* the most a ring may have here (a pass stops when full) */
struct virtio_held {
	unsigned n;
	uint16_t head[VIRTIO_HELD_MAX];
};
/* As virtio_serve_queue, but the chains served are kept in `held` (serve must write nothing into them)
 * rather than given back, and no interrupt is sent; the pass ends, and the queue is run again
 * later, when held is full. */
void virtio_serve_queue_held(struct virtio_dev *vdev, unsigned q, struct virtq_iov *iov, unsigned cap,
			     virtio_serve_fn serve, struct virtio_held *held);
/* Gives back every chain in held (queue q's), then interrupts the driver if it wants that. */
void virtio_give_back(struct virtio_dev *vdev, unsigned q, struct virtio_held *held);

/* ops->timer runs once, delay_ns from now or at the time already asked for if that is sooner.
 * On the I/O thread, lock held. */
void virtio_timer_arm(struct virtio_dev *vdev, uint64_t delay_ns);
/* Runs ops->timer now and forgets the time asked for; takes the lock. The I/O thread's, when
 * the time has come (a device test calls it in its place). */
void virtio_timer_fire(struct virtio_dev *vdev);

/* After pushing to queue q: interrupts the driver if it wants that. */
void virtio_notify_queue(struct virtio_dev *vdev, unsigned q);

/* --stats: each queue that moved, "qN kicks K (W wake-ups), buffers B, interrupts I of C", into
 * buf; takes the device's lock. */
void virtio_queue_stats(struct virtio_dev *vdev, char *buf, size_t size);
/* A device that stops serving queue q with work left (its per-pass budget spent) calls this to
 * be run again after the other queues: with EVENT_IDX the driver will not notify for buffers it
 * already queued. */
void virtio_requeue(struct virtio_dev *vdev, unsigned q);
/* Marks the device broken: NEEDS_RESET and a configuration interrupt (once). */
void virtio_set_needs_reset(struct virtio_dev *vdev);
/* The device's configuration changed: a new generation and a configuration interrupt. */
void virtio_config_changed(struct virtio_dev *vdev);

/* Device models' own descriptors (sockets, taps) in the I/O thread's epoll: fd_ready(token)
 * runs, with the lock held, while fd is readable. Unwatch before closing fd. One descriptor is
 * watched one way: watch a dup() of it for the other. */
int virtio_watch(struct virtio_dev *vdev, int fd, unsigned token);
/* The same for writability: fd_ready(token) runs while fd is writable. */
int virtio_watch_writable(struct virtio_dev *vdev, int fd, unsigned token);
void virtio_unwatch(struct virtio_dev *vdev, int fd);

/* For kernel-served queues: the eventfd that raises queue q's interrupt (the transport binds it
 * to the queue's interrupt route); -1 when the queue has none usable. Such interrupts bypass
 * the transport's masking. On a vCPU thread (driver_ok), lock held. */
int virtio_queue_call_fd(struct virtio_dev *vdev, unsigned q);

/* --- For transports: on a vCPU thread, lock held ------------------------------------------ */

/* 32-bit word `select` of the offered and of the driver's features (0 past the second). */
uint32_t virtio_device_features_word(const struct virtio_dev *vdev, uint32_t select);
uint32_t virtio_driver_features_word(const struct virtio_dev *vdev, uint32_t select);
/* The driver's features, word `select`; ignored once FEATURES_OK is set or past word 1. */
void virtio_set_driver_features_word(struct virtio_dev *vdev, uint32_t select, uint32_t value);
/* The driver writes the device status: 0 resets the device (and the transport); FEATURES_OK
 * sticks only for offered features that include VERSION_1; DRIVER_OK runs ops->driver_ok once;
 * NEEDS_RESET stays until reset. */
void virtio_set_status(struct virtio_dev *vdev, uint8_t status);
/* Bytes [offset, offset + len) of the device configuration space; what lies outside
 * config_size reads as zeroes and ignores writes. */
void virtio_config_access(struct virtio_dev *vdev, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Queue q while the driver may set it up (it exists and is not enabled); NULL otherwise. */
struct virtio_queue *virtio_queue_setup(struct virtio_dev *vdev, unsigned q);
/* A new size for queue q: kept only while it is being set up, a power of two and at most
 * ops->queue_max_size. */
void virtio_set_queue_size(struct virtio_dev *vdev, unsigned q, uint64_t size);
/* The driver enables queue q: its rings are checked against guest RAM. Returns 0 when the
 * queue went live now; -1 when it does not exist, was live already, or its rings are bad
 * (then the device is marked NEEDS_RESET). */
int virtio_enable_queue(struct virtio_dev *vdev, unsigned q);
/* The driver notified queue q by some way other than the kick eventfd: the I/O thread runs it. */
void virtio_kick(struct virtio_dev *vdev, unsigned q);

#endif

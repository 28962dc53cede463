/* virtio_pci: the virtio 1.x modern PCI transport (spec 4.1) for one device: the common,
 * notification, ISR and device-configuration structures in BAR 0, described by vendor
 * capabilities; feature negotiation, device status and reset; MSI-X (table and PBA in BAR 0)
 * delivered through KVM irqfds and GSI routes; queue notifications through ioeventfds, served on
 * the device's own I/O thread, never on a vCPU thread. A device model supplies its ID, features,
 * configuration space and a queue handler (struct virtio_device_ops). */
#ifndef SHOJI_VMM_VIRTIO_VIRTIO_PCI_H
#define SHOJI_VMM_VIRTIO_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../machine.h"
#include "../memory.h"
#include "../pci/pci.h"
#include "virtqueue.h"

#define VIRTIO_PCI_MAX_QUEUES 8
/* Feature masks (not bit numbers, which <linux/virtio_config.h> names VIRTIO_F_*). */
#define VIRTIO_FEATURE_INDIRECT_DESC (1ull << 28)
#define VIRTIO_FEATURE_EVENT_IDX (1ull << 29)
#define VIRTIO_FEATURE_VERSION_1 (1ull << 32)

#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80
#define VIRTIO_MSI_NO_VECTOR 0xffff

struct virtio_pci;

struct virtio_device_ops {
	const char *name;
	uint16_t device_id;  /* virtio device type: 4 entropy, 2 block, 1 net, ... */
	uint32_t class_code; /* PCI class */
	uint64_t features;   /* device-specific feature bits; the transport adds its own */
	                     /* (a device may add more to vp->device_features after init) */
	uint16_t num_queues;
	uint16_t queue_max_size;
	uint32_t config_size;
	void (*config_read)(struct virtio_pci *vp, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(struct virtio_pci *vp, uint32_t offset, const uint8_t *data, uint32_t len);
	/* Runs on the I/O thread when the driver notified queue q (may find nothing to do). */
	void (*queue_notify)(struct virtio_pci *vp, unsigned q);
	/* The driver reset the device: forget all requests. */
	void (*reset)(struct virtio_pci *vp);
	/* The driver set DRIVER_OK: the queues are set up. On a vCPU thread, lock held. */
	void (*driver_ok)(struct virtio_pci *vp);
	/* The queues are served by the host kernel (vhost) from their kick and call eventfds: the
	 * I/O thread does not watch the kicks. */
	bool kernel_queues;
	/* A host descriptor the device watches (virtio_pci_watch) is ready; on the I/O thread. */
	void (*fd_ready)(struct virtio_pci *vp, unsigned token);
};

struct virtio_queue {
	struct virtq vq;
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc, avail, used;
	int kick_fd;        /* eventfd the guest's notification signals (through an ioeventfd) */
	uint64_t kick_addr; /* where that ioeventfd is registered; 0: nowhere */
};

/* An interrupt source (a queue, or the configuration change): the eventfd that raises it and
 * the GSI it is bound to as an irqfd. */
struct virtio_irq {
	int fd;
	unsigned bound_gsi; /* 0: not bound */
};

struct msix_entry {
	uint32_t addr_lo, addr_hi, data, ctrl;
};

struct virtio_pci {
	struct pci_device pci; /* first: the bus hands back this pointer */
	const struct virtio_device_ops *ops;
	void *device; /* the device model's own state */
	struct machine *machine;
	const struct guest_mem *mem;
	pthread_mutex_t lock;
	uint64_t device_features; /* what is offered: ops->features, the device's, the transport's */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint8_t status, config_generation, isr;
	uint16_t queue_select, msix_config;
	struct virtio_queue queues[VIRTIO_PCI_MAX_QUEUES];
	struct virtio_irq irqs[VIRTIO_PCI_MAX_QUEUES + 1]; /* per queue, then configuration */
	struct msix_entry msix[VIRTIO_PCI_MAX_QUEUES + 1];
	unsigned msix_gsi[VIRTIO_PCI_MAX_QUEUES + 1]; /* 0: no route yet */
	uint64_t msix_pending;
	uint8_t msix_cap;
	uint8_t pci_cfg_cap; /* offset of the VIRTIO_PCI_CAP_PCI_CFG capability */
	int epoll_fd, stop_fd;
	pthread_t thread;
	bool thread_started;
};

int virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *device,
		    struct machine *m, const struct guest_mem *mem, struct err *e);
/* Starts the I/O thread; after pci_bus_add. */
int virtio_pci_start(struct virtio_pci *vp, struct err *e);
void virtio_pci_destroy(struct virtio_pci *vp);

/* Serves queue q: pops each available chain into iov (room for cap buffers), hands it to
 * `serve`, which returns the bytes it wrote into the chain's writable buffers, and pushes it
 * back; then interrupts the driver if it wants that. A malformed chain marks the device
 * NEEDS_RESET; after the queue's size in chains it requeues itself rather than starve others. */
typedef uint32_t (*virtio_serve_fn)(struct virtio_pci *vp, const struct virtq_chain *chain);
/* What `serve` returns when it cannot take the chain now (its host side is full): the chain is
 * given back, to be popped again, and the pass ends; the device runs the queue again later. */
#define VIRTIO_SERVE_LATER UINT32_MAX
void virtio_pci_serve_queue(struct virtio_pci *vp, unsigned q, struct virtq_iov *iov, unsigned cap,
			    virtio_serve_fn serve);

/* Device models' own descriptors (sockets, taps) in the I/O thread's epoll: fd_ready(token)
 * runs, with the transport lock held, while fd is readable. Unwatch before closing fd. One
 * descriptor is watched one way: watch a dup() of it for the other. */
int virtio_pci_watch(struct virtio_pci *vp, int fd, unsigned token);
/* The same for writability: fd_ready(token) runs while fd is writable. */
int virtio_pci_watch_writable(struct virtio_pci *vp, int fd, unsigned token);
void virtio_pci_unwatch(struct virtio_pci *vp, int fd);

/* For device models, on the I/O thread: after pushing to queue q, interrupt the driver if it
 * wants that; and mark the device broken (NEEDS_RESET and a configuration interrupt). */
void virtio_pci_notify_queue(struct virtio_pci *vp, unsigned q);
/* A device that stops serving queue q with work left (its per-pass budget spent) calls this to
 * be run again after the other queues: with EVENT_IDX the driver will not notify for buffers it
 * already queued. */
void virtio_pci_requeue(struct virtio_pci *vp, unsigned q);
void virtio_pci_set_needs_reset(struct virtio_pci *vp);
/* The device's configuration changed (a new generation and a configuration interrupt). */
void virtio_pci_config_changed(struct virtio_pci *vp);

/* For kernel-served queues: the eventfd that raises queue q's interrupt, bound as an irqfd to its
 * MSI-X vector's route; -1 when the queue has no usable vector. Such interrupts bypass MSI-X
 * masking. Lock held. */
int virtio_pci_queue_call_fd(struct virtio_pci *vp, unsigned q);

#endif

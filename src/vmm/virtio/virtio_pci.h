/* virtio_pci: the virtio 1.x modern PCI transport (spec 4.1) for one virtio device (virtio.h):
 * a PCI function whose BAR 0 holds the common, notification, ISR and device-configuration
 * structures, described by vendor capabilities (and reachable through the PCI_CFG window), each
 * mapped onto the device core; MSI-X (table and PBA in BAR 0) delivered through KVM irqfds and
 * GSI routes; the queues' kick eventfds registered as ioeventfds at their notification
 * addresses, following BAR 0 when the guest moves it. Device models never include this: the
 * machine binds each of them here (vm.c). */
#ifndef SHOJI_VMM_VIRTIO_VIRTIO_PCI_H
#define SHOJI_VMM_VIRTIO_VIRTIO_PCI_H

#include <stdint.h>

#include "../../common/err.h"
#include "../pci/pci.h"
#include "virtio.h"

#define VIRTIO_PCI_VECTORS (VIRTIO_MAX_QUEUES + 1) /* one a queue, then configuration changes */

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
	struct pci_device pci;   /* first: the bus hands back this pointer */
	struct virtio_dev *vdev; /* the device this transport presents; NULL before init */
	/* Common configuration registers that are the transport's own. */
	uint32_t dfselect, gfselect;
	uint16_t queue_select, msix_config;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES]; /* MSI-X vector of each queue */
	uint8_t isr;
	/* Interrupt sources, by queue then configuration (index num_queues). */
	struct virtio_irq irqs[VIRTIO_PCI_VECTORS];
	struct msix_entry msix[VIRTIO_PCI_VECTORS];
	unsigned msix_gsi[VIRTIO_PCI_VECTORS]; /* 0: no route yet */
	uint64_t msix_pending;
	uint8_t msix_cap;
	uint8_t pci_cfg_cap;                   /* offset of the VIRTIO_PCI_CAP_PCI_CFG capability */
	uint64_t kick_addr[VIRTIO_MAX_QUEUES]; /* where each kick ioeventfd is; 0: nowhere */
};

/* On the main thread while the machine is assembled (vm.c's plug), before any vCPU or the
 * device's I/O thread runs: binds vdev (after virtio_dev_init and any change to its offered
 * features) to this transport and builds the PCI function; then pci_bus_add it and
 * virtio_dev_start the device. The PCI callbacks then run on vCPU threads and take vdev->lock. */
int virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *vdev, struct err *e);
/* Closes the interrupt eventfds; after virtio_dev_destroy, never touching the device (which may
 * be freed already). A zeroed, never initialised transport is fine. */
void virtio_pci_destroy(struct virtio_pci *vp);

#endif

/* vm: one virtual machine: KVM VM, guest RAM, vCPUs, buses and the platform devices, from
 * creation through the run to tear-down. A reboot that restarts the guest destroys the vm and
 * creates a fresh one, so no device state survives a reset by accident. */
#ifndef SHOJI_VMM_VM_H
#define SHOJI_VMM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "cpu/vcpu.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "io/bus.h"
#include "kvm/kvm.h"
#include "machine.h"
#include "memory.h"
#include "pci/pci.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_net.h"
#include "devices/virtio_vsock.h"
#include "virtio/virtio_pci.h"

#define VM_MAX_DISKS 8
#define VM_MAX_NICS 4

struct vm_disk_config {
	const char *path;
	bool read_only;
	enum block_format format; /* BLOCK_FORMAT_PROBE: raw, refusing a file that looks like qcow2 */
	const char *serial; /* may be NULL */
};

struct vm_config {
	const char *kernel_path, *initrd_path, *cmdline; /* initrd_path may be NULL */
	uint64_t mem_size;
	unsigned ncpus;
	int serial_out_fd; /* -1: discard */
	bool rng;          /* a virtio-rng device */
	struct vm_disk_config disks[VM_MAX_DISKS];
	unsigned ndisks;
	const char *console_socket; /* a virtio-console on this Unix socket, or NULL */
	struct net_config nics[VM_MAX_NICS];
	unsigned nnics;
	uint64_t vsock_cid; /* 0: no virtio-vsock */
};

struct vm {
	struct machine machine; /* what devices see */
	struct vm_config cfg;
	struct kvm kvm;
	struct guest_mem mem;
	struct boot_entry entry; /* where the boot vCPU starts */
	struct vcpu *vcpus;
	unsigned nvcpus_created;
	struct io_bus pio, mmio;
	struct serial serial;
	struct rtc rtc;
	struct pci_bus pci;
	struct virtio_pci *rng;
	struct virtio_blk *disks[VM_MAX_DISKS];
	struct virtio_console *console;
	struct virtio_net *nics[VM_MAX_NICS];
	struct virtio_vsock *vsock;
	int stop_fd; /* eventfd: readable once an exit was requested */
	int stopping;
	int exit_reason; /* enum machine_exit */
	char exit_why[256];
};

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e);
int vm_start(struct vm *vm, struct err *e);
/* Asks every vCPU to stop and waits for them. */
void vm_stop(struct vm *vm);
void vm_destroy(struct vm *vm);

static inline bool vm_stopping(const struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE);
}

/* Host memory the monitor itself uses, beyond the guest RAM it has touched (bytes). */
uint64_t vm_overhead_bytes(const struct vm *vm, uint64_t *rss_out, uint64_t *guest_out);

#endif

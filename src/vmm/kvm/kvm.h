/* kvm: the KVM system and VM file descriptors, capability checks, memory slots and interrupt
 * lines, with errors that tell a user what to do. */
#ifndef SHOJI_VMM_KVM_KVM_H
#define SHOJI_VMM_KVM_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"

#define KVM_MAX_ROUTES    256
#define KVM_FIRST_MSI_GSI 24 /* after the I/O APIC's pins */

struct kvm {
	int sys_fd;
	int vm_fd;
	int vcpu_mmap_size;
	unsigned max_vcpus;
	/* The GSI routing table: the irqchip pins, then MSI routes, set whole on each change. */
	pthread_mutex_t routes_lock;
	struct kvm_irq_routing_entry *routes;
	unsigned nroutes;
	unsigned next_msi_gsi;
};

/* Opens /dev/kvm (or $SHOJI_KVM_DEVICE) and checks the API version and the capabilities the
 * monitor relies on. */
int kvm_open(struct kvm *k, struct err *e);
/* Creates the VM with its in-kernel irqchip and PIT. */
int kvm_create_vm(struct kvm *k, struct err *e);
/* Gives KVM memory slot `slot`: [host, host+size) at guest-physical gpa, read and written by the
 * guest without exits. */
int kvm_set_memory(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host, struct err *e);
/* The same read-only (KVM_MEM_READONLY): reads hit host memory, a write exits as KVM_EXIT_MMIO
 * with is_write and changes nothing. size 0 removes the slot, after which reads exit too. Any
 * thread, also while vCPUs run (KVM waits until no vCPU uses the old slot); the caller
 * serialises calls for the same slot. */
int kvm_set_rom(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, const void *host, struct err *e);
int kvm_irq_line(struct kvm *k, unsigned gsi, int level);
/* Sets (or, with *gsi == 0, allocates) the MSI route of *gsi and installs the routing table. If
 * KVM refuses the table, the route is left as it was and a fresh GSI is not handed out (*gsi
 * stays 0), so no irqfd is ever bound to a GSI KVM has no route for. */
int kvm_msi_route(struct kvm *k, unsigned *gsi, uint64_t addr, uint32_t data);
int kvm_irqfd(struct kvm *k, int fd, unsigned gsi, bool assign);
int kvm_ioeventfd(struct kvm *k, int fd, uint64_t addr, unsigned len, bool assign);
void kvm_close(struct kvm *k);

#endif

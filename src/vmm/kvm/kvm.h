/* kvm: the KVM system and VM file descriptors, capability checks, memory slots and interrupt
 * lines, with errors that tell a user what to do. */
#ifndef SHOJI_VMM_KVM_KVM_H
#define SHOJI_VMM_KVM_KVM_H

#include <stdint.h>

#include "../../common/err.h"

struct kvm {
	int sys_fd;
	int vm_fd;
	int vcpu_mmap_size;
	unsigned max_vcpus;
};

/* Opens /dev/kvm (or $SHOJI_KVM_DEVICE) and checks the API version and the capabilities the
 * monitor relies on. */
int kvm_open(struct kvm *k, struct err *e);
/* Creates the VM with its in-kernel irqchip and PIT. */
int kvm_create_vm(struct kvm *k, struct err *e);
int kvm_set_memory(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
		   struct err *e);
int kvm_irq_line(struct kvm *k, unsigned gsi, int level);
void kvm_close(struct kvm *k);

#endif

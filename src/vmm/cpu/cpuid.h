/* cpuid: the CPUID a vCPU sees: what KVM supports, with a coherent topology (one socket of
 * ncpus cores, one thread each), the vCPU's APIC ID and the hypervisor bit. */
#ifndef SHOJI_VMM_CPU_CPUID_H
#define SHOJI_VMM_CPU_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "../../common/err.h"

/* Allocates *out with KVM_GET_SUPPORTED_CPUID's answer, cpuid_features applied. */
int cpuid_supported(int kvm_sys_fd, struct kvm_cpuid2 **out, struct err *e);

/* What the guest sees beside KVM's list: the TSC-deadline timer where KVM emulates it
 * (tsc_deadline; KVM lists it apart, as QEMU and Firecracker offer it: a timer is one MSR
 * write, not the LAPIC's count); no hardware virtualization (VMX, SVM and AMD's SVM leaf
 * cleared): a guest runs no VMs of its own, so KVM's nested-virtualization code, a large and
 * often-mended part of it, stays out of the guest's reach, and a guest's kvm module does not
 * load; and no 5-level paging (LA57): a guest's RAM is far below 4-level paging's 64 TiB, and
 * a fifth level only makes each of its TLB misses walk further, through the host's tables
 * too. */
void cpuid_features(struct kvm_cpuid2 *c, bool tsc_deadline);

/* Rewrites the topology leaves of c in place for vCPU `apic_id` of `ncpus`. */
void cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus);

/* Bits needed to number n items (ceil(log2(n))). */
unsigned cpuid_order(unsigned n);

#endif

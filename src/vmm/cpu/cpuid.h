/* cpuid: the CPUID a vCPU sees: what KVM supports, with a coherent topology (one socket of
 * ncpus cores, one thread each), the vCPU's APIC ID and the hypervisor bit. */
#ifndef SHOJI_VMM_CPU_CPUID_H
#define SHOJI_VMM_CPU_CPUID_H

#include <linux/kvm.h>

#include "../../common/err.h"

/* Allocates *out with KVM_GET_SUPPORTED_CPUID's answer. */
int cpuid_supported(int kvm_sys_fd, struct kvm_cpuid2 **out, struct err *e);

/* Rewrites the topology leaves of c in place for vCPU `apic_id` of `ncpus`. */
void cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus);

/* Bits needed to number n items (ceil(log2(n))). */
unsigned cpuid_order(unsigned n);

#endif

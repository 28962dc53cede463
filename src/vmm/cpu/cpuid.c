/* cpuid: CPUID leaves for each vCPU (see cpuid.h). Leaves: 1 (APIC ID, logical count,
 * hypervisor; TSC deadline; no VMX), 4 (Intel cores per package), 7 (no LA57), 0xB/0x1F
 * (x2APIC topology), 0x80000001 (no SVM), 0x8000000A (SVM's, emptied), 0x80000008 and
 * 0x8000001E (AMD core count and IDs). */
#include "cpuid.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#define CPUID_1_ECX_VMX          (1u << 5)
#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR   (1u << 31)
#define CPUID_7_ECX_LA57         (1u << 16)
#define CPUID_80000001_ECX_SVM   (1u << 2)
#define CPUID_SVM_LEAF           0x8000000au
#define CPUID_1_EDX_HTT          (1u << 28)
#define TOPO_LEVEL_SMT           1u
#define TOPO_LEVEL_CORE          2u

int cpuid_supported(int kvm_sys_fd, struct kvm_cpuid2 **out, struct err *e)
{
	for (unsigned n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return err_set(e, "out of memory for CPUID");
		c->nent = n;
		if (ioctl(kvm_sys_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			cpuid_features(c, ioctl(kvm_sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0);
			*out = c;
			return 0;
		}
		int saved = errno;
		free(c);
		if (saved != E2BIG)
			return err_errno(e, saved, "KVM_GET_SUPPORTED_CPUID failed");
	}
	return err_set(e, "KVM_GET_SUPPORTED_CPUID returned too many entries");
}

void cpuid_features(struct kvm_cpuid2 *c, bool tsc_deadline)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *en = &c->entries[i];
		if (en->function == 0x1) {
			en->ecx &= ~CPUID_1_ECX_VMX;
			if (tsc_deadline)
				en->ecx |= CPUID_1_ECX_TSC_DEADLINE;
		} else if (en->function == 0x7 && en->index == 0) {
			en->ecx &= ~CPUID_7_ECX_LA57;
		} else if (en->function == 0x80000001) {
			en->ecx &= ~CPUID_80000001_ECX_SVM;
		} else if (en->function == CPUID_SVM_LEAF) {
			en->eax = en->ebx = en->ecx = en->edx = 0;
		}
	}
}

unsigned cpuid_order(unsigned n)
{
	unsigned bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

void cpuid_patch(struct kvm_cpuid2 *c, unsigned apic_id, unsigned ncpus)
{
	unsigned core_bits = cpuid_order(ncpus);
	/* Leaf 1 has eight bits for the logical count, leaf 4 six for cores per package - 1. */
	unsigned logical = (1u << core_bits) > 255 ? 255 : 1u << core_bits;
	unsigned cores_m1 = (1u << core_bits) - 1 > 63 ? 63 : (1u << core_bits) - 1;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *en = &c->entries[i];
		switch (en->function) {
		case 0x1:
			en->ebx = (en->ebx & 0x0000ffffu) | ((apic_id & 0xff) << 24) | (logical << 16);
			en->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (ncpus > 1)
				en->edx |= CPUID_1_EDX_HTT;
			else
				en->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0x4:
			/* Cores per package - 1 in 31:26; threads sharing the cache - 1 in 25:14. */
			if ((en->eax & 0x1f) == 0)
				break; /* no cache at this index */
			en->eax &= 0x3fff;
			en->eax |= cores_m1 << 26;
			if (((en->eax >> 5) & 0x7) >= 3) /* L3 is shared by every core */
				en->eax |= (((1u << core_bits) - 1) & 0xfff) << 14;
			break;
		case 0xb:
		case 0x1f:
			en->edx = apic_id;
			if (en->index == 0) {
				en->eax = 0;
				en->ebx = 1;
				en->ecx = (TOPO_LEVEL_SMT << 8) | 0;
			} else if (en->index == 1) {
				en->eax = core_bits;
				en->ebx = ncpus;
				en->ecx = (TOPO_LEVEL_CORE << 8) | 1;
			} else {
				en->eax = 0;
				en->ebx = 0;
				en->ecx = en->index;
			}
			break;
		case 0x80000008: en->ecx = (en->ecx & ~0xf0ffu) | (core_bits << 12) | (ncpus - 1); break;
		case 0x8000001e:
			en->eax = apic_id;
			en->ebx = apic_id & 0xff; /* compute unit ID; one thread per unit */
			en->ecx = 0;              /* one node */
			break;
		default: break;
		}
	}
}

/* vcpu: one KVM vCPU: its creation (CPUID, MSRs, local APIC lines), the boot processor's
 * 64-bit entry state, and the thread that runs it and dispatches its exits. */
#ifndef SHOJI_VMM_CPU_VCPU_H
#define SHOJI_VMM_CPU_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../boot/loader.h"

struct vm;

struct vcpu_stats {
	uint64_t exits; /* returns from KVM_RUN to user space */
	uint64_t io, mmio;
};

struct vcpu {
	unsigned id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	struct vm *vm;
	struct vcpu_stats stats;
};

/* The signal that kicks a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *supported, struct err *e);
/* Registers and segments for the boot vCPU: 64-bit mode, paging on, at the kernel's entry. */
int vcpu_setup_boot(struct vcpu *v, const struct boot_entry *b, struct err *e);
int vcpu_start(struct vcpu *v, struct err *e);
/* Makes the vCPU leave KVM_RUN soon; the caller has already set the VM's stop flag. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Installs the (empty) handler for VCPU_KICK_SIGNAL; once per process. */
void vcpu_install_kick_handler(void);

#endif

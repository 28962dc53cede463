/* vm_control: what the host does to a running VM from outside: pause, resume and the ACPI
 * power button (see vm.h).
 *
 * Pause: the pause flag is set, every vCPU is kicked out of KVM_RUN (immediate_exit and
 * VCPU_KICK_SIGNAL) and parks in vm_park until resumed or stopped; vm_pause returns once all
 * have parked. The KVM clock (kvmclock) is read at pause and written back at resume, as QEMU
 * does, so a guest that keeps time with kvmclock sees no time pass while paused; its wall
 * clock is then behind by the pause until it resynchronises. A guest clocked by the TSC sees the
 * TSC keep running. Device I/O threads keep running: a request the guest had already submitted
 * may complete during the pause. */
#include "vm.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "../common/log.h"
#include "platform.h"

#define PAUSE_WAIT_MS 2000

void vm_pause_init(struct vm *vm)
{
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->pause_cond, &a);
	pthread_condattr_destroy(&a);
}

void vm_pause_destroy(struct vm *vm)
{
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
}

void vm_pause_wake(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (vm_pause_requested(vm) && !vm_stopping(vm))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

bool vm_paused(struct vm *vm)
{
	return vm_pause_requested(vm);
}

int vm_pause(struct vm *vm, struct err *e)
{
	if (vm_pause_requested(vm))
		return 0;
	__atomic_store_n(&vm->pause_requested, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < vm->nvcpus_created; i++)
		vcpu_kick(&vm->vcpus[i]);
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += PAUSE_WAIT_MS / 1000;
	pthread_mutex_lock(&vm->pause_lock);
	int r = 0;
	while (vm->parked < vm->nvcpus_created && !vm_stopping(vm) && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &deadline);
	bool all = vm->parked == vm->nvcpus_created;
	pthread_mutex_unlock(&vm->pause_lock);
	if (!all) {
		vm_resume(vm);
		return err_set(e, "the vCPUs did not stop within %d ms; the VM keeps running", PAUSE_WAIT_MS);
	}
	vm->clock_saved = ioctl(vm->kvm.vm_fd, KVM_GET_CLOCK, &vm->paused_clock) == 0;
	if (!vm->clock_saved)
		log_warn("cannot read the KVM clock at pause: %s", strerror(errno));
	return 0;
}

void vm_resume(struct vm *vm)
{
	if (!vm_pause_requested(vm))
		return;
	if (vm->clock_saved) {
		struct kvm_clock_data c = {.clock = vm->paused_clock.clock};
		if (ioctl(vm->kvm.vm_fd, KVM_SET_CLOCK, &c) < 0)
			log_warn("cannot restore the KVM clock at resume: %s", strerror(errno));
		vm->clock_saved = false;
	}
	pthread_mutex_lock(&vm->pause_lock);
	__atomic_store_n(&vm->pause_requested, 0, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_power_button(struct vm *vm)
{
	/* An edge on the Generic Event Device's line: its _EVT notifies PWRB (boot/acpi.c). */
	vm->machine.set_irq(&vm->machine, GSI_POWER_BUTTON, 1);
	vm->machine.set_irq(&vm->machine, GSI_POWER_BUTTON, 0);
}

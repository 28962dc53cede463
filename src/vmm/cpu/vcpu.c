/* vcpu: vCPU set-up and run loop (see vcpu.h). */
#include "vcpu.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/thread.h"
#include "../vm.h"
#include "cpuid.h"

#define CR0_PE   0x1ull
#define CR0_ET   0x10ull
#define CR0_PG   0x80000000ull
#define CR4_PAE  0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define MSR_IA32_TSC          0x10
#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 0x1ull
#define MTRR_ENABLE_WRITEBACK   ((1ull << 11) | 6ull)

#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static int set_msrs(struct vcpu *v, struct err *e)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} boot_msrs[] = {
		{MSR_IA32_SYSENTER_CS, 0},
		{MSR_IA32_SYSENTER_ESP, 0},
		{MSR_IA32_SYSENTER_EIP, 0},
		{MSR_STAR, 0},
		{MSR_LSTAR, 0},
		{MSR_CSTAR, 0},
		{MSR_SYSCALL_MASK, 0},
		{MSR_KERNEL_GS_BASE, 0},
		{MSR_IA32_TSC, 0},
		{MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
		{MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITEBACK},
	};
	const unsigned n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	/* struct kvm_msrs ends in a flexible array: room for the entries follows it. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) +
			      sizeof(boot_msrs) / sizeof(boot_msrs[0]) * sizeof(struct kvm_msr_entry)];
	} msrs;
	memset(&msrs, 0, sizeof(msrs));
	msrs.hdr.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		msrs.hdr.entries[i].index = boot_msrs[i].index;
		msrs.hdr.entries[i].data = boot_msrs[i].value;
	}
	int done = ioctl(v->fd, KVM_SET_MSRS, &msrs);
	if (done < 0)
		return err_errno(e, errno, "vCPU %u: KVM_SET_MSRS failed", v->id);
	if ((unsigned)done != n)
		return err_set(e, "vCPU %u: KVM refused MSR 0x%x", v->id, msrs.hdr.entries[done].index);
	return 0;
}

static void lapic_lvt(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;
	memcpy(&v, l->regs + reg, 4);
	v = (v & ~0x700u) | (mode << 8);
	memcpy(l->regs + reg, &v, 4);
}

static int set_lapic(struct vcpu *v, struct err *e)
{
	struct kvm_lapic_state l;
	if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
		return err_errno(e, errno, "vCPU %u: KVM_GET_LAPIC failed", v->id);
	lapic_lvt(&l, APIC_LVT_LINT0, APIC_MODE_EXTINT); /* the 8259 behind LINT0 */
	lapic_lvt(&l, APIC_LVT_LINT1, APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
		return err_errno(e, errno, "vCPU %u: KVM_SET_LAPIC failed", v->id);
	return 0;
}

int vcpu_create(struct vcpu *v, struct vm *vm, unsigned id, const struct kvm_cpuid2 *supported, struct err *e)
{
	memset(v, 0, sizeof(*v));
	v->id = id;
	v->vm = vm;
	v->fd = ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return err_errno(e, errno, "cannot create vCPU %u", id);
	v->run_size = (size_t)vm->kvm.vcpu_mmap_size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return err_errno(e, errno, "cannot map vCPU %u's run area", id);
	}
	size_t bytes = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(bytes);
	if (!c)
		return err_set(e, "out of memory for vCPU %u's CPUID", id);
	memcpy(c, supported, bytes);
	cpuid_patch(c, id, vm->cfg.ncpus);
	int r = ioctl(v->fd, KVM_SET_CPUID2, c);
	int saved = errno;
	free(c);
	if (r < 0)
		return err_errno(e, saved, "vCPU %u: KVM_SET_CPUID2 failed", id);
	if (set_msrs(v, e) < 0 || set_lapic(v, e) < 0)
		return -1;
	return 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type, int code)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code ? 0 : 1,
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
}

int vcpu_setup_boot(struct vcpu *v, const struct boot_entry *b, struct err *e)
{
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return err_errno(e, errno, "vCPU %u: KVM_GET_SREGS failed", v->id);
	flat_segment(&s.cs, BOOT_CS, 0xb, 1);
	flat_segment(&s.ds, BOOT_DS, 0x3, 0);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.tr = (struct kvm_segment){
		.base = 0,
		.limit = 0x67,
		.selector = BOOT_TSS,
		.type = 0xb,
		.present = 1,
	};
	s.gdt.base = b->gdt_base;
	s.gdt.limit = b->gdt_limit;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_ET | CR0_PG;
	s.cr3 = b->cr3;
	s.cr4 = CR4_PAE;
	s.efer = EFER_LME | EFER_LMA;
	if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
		return err_errno(e, errno, "vCPU %u: KVM_SET_SREGS failed", v->id);

	struct kvm_regs r = {
		.rflags = 0x2,
		.rip = b->rip,
		.rsi = b->rsi,
		.rsp = b->rsp,
		.rbp = b->rsp,
	};
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
		return err_errno(e, errno, "vCPU %u: KVM_SET_REGS failed", v->id);

	struct kvm_fpu f = {.fcw = 0x37f, .mxcsr = 0x1f80};
	if (ioctl(v->fd, KVM_SET_FPU, &f) < 0)
		return err_errno(e, errno, "vCPU %u: KVM_SET_FPU failed", v->id);
	return 0;
}

static uint64_t rip_of(struct vcpu *v)
{
	struct kvm_regs r;
	return ioctl(v->fd, KVM_GET_REGS, &r) == 0 ? r.rip : 0;
}

static void stop(struct vcpu *v, enum machine_exit reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void stop(struct vcpu *v, enum machine_exit reason, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	v->vm->machine.request_exit(&v->vm->machine, reason, why);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t bytes = (uint64_t)run->io.size * run->io.count;
	if (run->io.data_offset > v->run_size || bytes > v->run_size - run->io.data_offset) {
		stop(v, MACHINE_INTERNAL_ERROR, "vCPU %u: KVM reported port I/O outside the run area", v->id);
		return;
	}
	uint8_t *p = (uint8_t *)run + run->io.data_offset;
	for (uint32_t i = 0; i < run->io.count; i++, p += run->io.size)
		io_bus_dispatch(&v->vm->pio, run->io.port, p, run->io.size, run->io.direction == KVM_EXIT_IO_OUT);
	v->stats.io++;
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN: stop(v, MACHINE_POWEROFF, "guest powered off"); break;
	case KVM_SYSTEM_EVENT_RESET: stop(v, MACHINE_REBOOT, "guest reset the machine"); break;
	case KVM_SYSTEM_EVENT_CRASH: stop(v, MACHINE_PANIC, "guest reported a crash"); break;
	default:
		stop(v, MACHINE_INTERNAL_ERROR, "vCPU %u: unknown KVM system event %u", v->id,
		     v->run->system_event.type);
	}
}

static void handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO: handle_io(v); break;
	case KVM_EXIT_MMIO:
		io_bus_dispatch(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data,
				run->mmio.len <= 8 ? run->mmio.len : 8, run->mmio.is_write);
		v->stats.mmio++;
		break;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
	case KVM_EXIT_HLT: break;
	case KVM_EXIT_SHUTDOWN:
		stop(v, MACHINE_TRIPLE_FAULT, "guest triple fault on vCPU %u (rip 0x%" PRIx64 ")", v->id, rip_of(v));
		break;
	case KVM_EXIT_SYSTEM_EVENT: handle_system_event(v); break;
	case KVM_EXIT_FAIL_ENTRY:
		stop(v, MACHINE_INTERNAL_ERROR, "KVM could not enter vCPU %u (hardware reason 0x%llx)", v->id,
		     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		stop(v, MACHINE_INTERNAL_ERROR, "KVM internal error on vCPU %u (suberror %u, rip 0x%" PRIx64 ")", v->id,
		     run->internal.suberror, rip_of(v));
		break;
	default: stop(v, MACHINE_INTERNAL_ERROR, "vCPU %u: unexpected KVM exit reason %u", v->id, run->exit_reason);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!vm_stopping(v->vm)) {
		if (vm_pause_requested(v->vm)) {
			vm_park(v->vm);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A kick: cleared before the loop looks at why, which the kicker set
				 * before kicking, so no request is missed. */
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			stop(v, MACHINE_INTERNAL_ERROR, "KVM_RUN failed on vCPU %u: %s", v->id, strerror(errno));
			break;
		}
		v->stats.exits++;
		handle_exit(v);
	}
	if (log_enabled(LOG_DEBUG))
		log_debug("vCPU %u stopped at rip 0x%" PRIx64 " after %" PRIu64 " exits", v->id, rip_of(v),
			  v->stats.exits);
	return NULL;
}

static void kick_handler(int sig)
{
	(void)sig;
}

void vcpu_install_kick_handler(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

int vcpu_start(struct vcpu *v, struct err *e)
{
	int r = thread_start(&v->thread, vcpu_thread, v);
	if (r != 0)
		return err_errno(e, r, "cannot start the thread of vCPU %u", v->id);
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started)
		pthread_join(v->thread, NULL);
	v->started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->run)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

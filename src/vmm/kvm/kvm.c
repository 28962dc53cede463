/* kvm: /dev/kvm and VM set-up (see kvm.h). */
#include "kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../boot/layout.h"

static const char *device_path(void)
{
	const char *p = getenv("SHOJI_KVM_DEVICE");
	return p && *p ? p : "/dev/kvm";
}

/* True when the CPU offers VT-x or AMD-V, without which KVM here is a software variant (such
 * as kvm-pvm) that cannot run an unmodified kernel. */
static bool hardware_virtualization(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return true; /* cannot tell: let KVM decide */
	char line[8192];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		found = strstr(line, " vmx") || strstr(line, " svm");
		break;
	}
	fclose(f);
	return found;
}

int kvm_open(struct kvm *k, struct err *e)
{
	k->sys_fd = k->vm_fd = -1;
	const char *path = device_path();
	k->sys_fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->sys_fd < 0) {
		int saved = errno;
		if (saved == ENOENT)
			return err_set(e, "%s does not exist: this machine offers no KVM. Enable VT-x/AMD-V "
					  "in the firmware and load kvm_intel or kvm_amd, or run under "
					  "tests/harness/kvm-run, which provides an emulated machine with KVM",
				       path);
		if (saved == EACCES || saved == EPERM)
			return err_set(e, "permission denied opening %s: add this user to the 'kvm' group "
					  "(usermod -aG kvm USER, then log in again) or run as root", path);
		return err_errno(e, saved, "cannot open %s", path);
	}
	const char *any = getenv("SHOJI_KVM_ANY");
	if (!hardware_virtualization() && !(any && *any == '1')) {
		kvm_close(k);
		return err_set(e, "%s is not backed by VT-x or AMD-V on this machine (a software KVM "
				  "such as kvm-pvm), which cannot boot an unmodified kernel; run under "
				  "tests/harness/kvm-run, which provides an emulated machine with KVM "
				  "(SHOJI_KVM_ANY=1 skips this check)", path);
	}
	int version = ioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		kvm_close(k);
		return err_set(e, "%s speaks KVM API %d; shoji-vmm needs %d", path, version,
			       KVM_API_VERSION);
	}
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
		{KVM_CAP_IRQCHIP, "in-kernel irqchip"},     {KVM_CAP_PIT2, "in-kernel PIT"},
		{KVM_CAP_USER_MEMORY, "user memory"},       {KVM_CAP_EXT_CPUID, "CPUID set-up"},
		{KVM_CAP_IMMEDIATE_EXIT, "immediate exit"}, {KVM_CAP_SET_TSS_ADDR, "TSS address"},
		{KVM_CAP_IRQ_ROUTING, "IRQ routing"},
	};
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (ioctl(k->sys_fd, KVM_CHECK_EXTENSION, needed[i].cap) <= 0) {
			kvm_close(k);
			return err_set(e, "this kernel's KVM lacks the %s capability that shoji-vmm needs",
				       needed[i].name);
		}
	}
	int max = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	k->max_vcpus = max > 0 ? (unsigned)max : 4;
	k->vcpu_mmap_size = ioctl(k->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
		kvm_close(k);
		return err_set(e, "KVM reports a bad vCPU mapping size (%d)", k->vcpu_mmap_size);
	}
	return 0;
}

int kvm_create_vm(struct kvm *k, struct err *e)
{
	k->vm_fd = ioctl(k->sys_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		return err_errno(e, errno, "KVM_CREATE_VM failed");
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS_ADDR) < 0)
		return err_errno(e, errno, "KVM_SET_TSS_ADDR failed");
	uint64_t ident = LAYOUT_TSS_ADDR - 0x1000;
	if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		return err_errno(e, errno, "KVM_SET_IDENTITY_MAP_ADDR failed");
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_errno(e, errno, "KVM_CREATE_IRQCHIP failed");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_errno(e, errno, "KVM_CREATE_PIT2 failed");
	return 0;
}

int kvm_set_memory(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host,
		   struct err *e)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return err_errno(e, errno, "cannot give %llu MiB at 0x%llx to KVM",
				 (unsigned long long)(size >> 20), (unsigned long long)gpa);
	return 0;
}

int kvm_irq_line(struct kvm *k, unsigned gsi, int level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
	return ioctl(k->vm_fd, KVM_IRQ_LINE, &l);
}

void kvm_close(struct kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	k->vm_fd = k->sys_fd = -1;
}

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
			return err_set(e,
				       "%s does not exist: this machine offers no KVM. Enable VT-x/AMD-V "
				       "in the firmware and load kvm_intel or kvm_amd, or run under "
				       "tests/harness/kvm-run, which provides an emulated machine with KVM",
				       path);
		if (saved == EACCES || saved == EPERM)
			return err_set(e,
				       "permission denied opening %s: add this user to the 'kvm' group "
				       "(usermod -aG kvm USER, then log in again) or run as root",
				       path);
		return err_errno(e, saved, "cannot open %s", path);
	}
	const char *any = getenv("SHOJI_KVM_ANY");
	if (!hardware_virtualization() && !(any && *any == '1')) {
		kvm_close(k);
		return err_set(e,
			       "%s is not backed by VT-x or AMD-V on this machine (a software KVM "
			       "such as kvm-pvm), which cannot boot an unmodified kernel; run under "
			       "tests/harness/kvm-run, which provides an emulated machine with KVM "
			       "(SHOJI_KVM_ANY=1 skips this check)",
			       path);
	}
	int version = ioctl(k->sys_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		kvm_close(k);
		return err_set(e, "%s speaks KVM API %d; shoji-vmm needs %d", path, version, KVM_API_VERSION);
	}
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
		{KVM_CAP_IRQCHIP, "in-kernel irqchip"},     {KVM_CAP_PIT2, "in-kernel PIT"},
		{KVM_CAP_USER_MEMORY, "user memory"},       {KVM_CAP_EXT_CPUID, "CPUID set-up"},
		{KVM_CAP_IMMEDIATE_EXIT, "immediate exit"}, {KVM_CAP_SET_TSS_ADDR, "TSS address"},
		{KVM_CAP_IRQ_ROUTING, "IRQ routing"},       {KVM_CAP_IRQFD, "irqfd"},
		{KVM_CAP_IOEVENTFD, "ioeventfd"},
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

/* The routes KVM starts with: GSI 0-15 to both PICs and the I/O APIC, 16-23 to the I/O APIC. */
static int routes_init(struct kvm *k, struct err *e)
{
	k->routes = calloc(KVM_MAX_ROUTES, sizeof(k->routes[0]));
	if (!k->routes)
		return err_set(e, "out of memory for interrupt routes");
	pthread_mutex_init(&k->routes_lock, NULL);
	unsigned n = 0;
	for (unsigned gsi = 0; gsi < KVM_FIRST_MSI_GSI; gsi++) {
		k->routes[n++] =
			(struct kvm_irq_routing_entry){.gsi = gsi,
						       .type = KVM_IRQ_ROUTING_IRQCHIP,
						       .u.irqchip = {.irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi}};
		if (gsi < 16)
			k->routes[n++] =
				(struct kvm_irq_routing_entry){.gsi = gsi,
							       .type = KVM_IRQ_ROUTING_IRQCHIP,
							       .u.irqchip = {.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
												: KVM_IRQCHIP_PIC_SLAVE,
									     .pin = gsi % 8}};
	}
	k->nroutes = n;
	k->next_msi_gsi = KVM_FIRST_MSI_GSI;
	return 0;
}

static int routes_commit(struct kvm *k)
{
	size_t bytes = sizeof(struct kvm_irq_routing) + k->nroutes * sizeof(k->routes[0]);
	struct kvm_irq_routing *r = calloc(1, bytes);
	if (!r)
		return -1;
	r->nr = k->nroutes;
	memcpy(r->entries, k->routes, k->nroutes * sizeof(k->routes[0]));
	int ret = ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, r);
	free(r);
	return ret;
}

int kvm_msi_route(struct kvm *k, unsigned *gsi, uint64_t addr, uint32_t data)
{
	pthread_mutex_lock(&k->routes_lock);
	int ret = -1;
	bool fresh = *gsi == 0;
	struct kvm_irq_routing_entry *en = NULL;
	if (fresh) {
		if (k->nroutes < KVM_MAX_ROUTES)
			en = &k->routes[k->nroutes++];
	} else {
		for (unsigned i = 0; i < k->nroutes && !en; i++)
			if (k->routes[i].gsi == *gsi && k->routes[i].type == KVM_IRQ_ROUTING_MSI)
				en = &k->routes[i];
	}
	if (en) {
		struct kvm_irq_routing_entry old = *en;
		*en = (struct kvm_irq_routing_entry){.gsi = fresh ? k->next_msi_gsi : *gsi,
						     .type = KVM_IRQ_ROUTING_MSI,
						     .u.msi = {.address_lo = (uint32_t)addr,
							       .address_hi = (uint32_t)(addr >> 32),
							       .data = data}};
		ret = routes_commit(k);
		if (ret < 0 && fresh)
			k->nroutes--;
		else if (ret < 0)
			*en = old;
		else if (fresh)
			*gsi = k->next_msi_gsi++;
	}
	pthread_mutex_unlock(&k->routes_lock);
	return ret;
}

int kvm_irqfd(struct kvm *k, int fd, unsigned gsi, bool assign)
{
	struct kvm_irqfd f = {.fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};
	return ioctl(k->vm_fd, KVM_IRQFD, &f);
}

int kvm_ioeventfd(struct kvm *k, int fd, uint64_t addr, unsigned len, bool assign)
{
	struct kvm_ioeventfd f = {.addr = addr, .len = len, .fd = fd, .flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN};
	return ioctl(k->vm_fd, KVM_IOEVENTFD, &f);
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
	return routes_init(k, e);
}

static int set_region(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, const void *host, uint32_t flags)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = size ? flags : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	return ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r);
}

int kvm_set_memory(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, void *host, struct err *e)
{
	if (set_region(k, slot, gpa, size, host, 0) < 0)
		return err_errno(e, errno, "cannot give %llu MiB at 0x%llx to KVM", (unsigned long long)(size >> 20),
				 (unsigned long long)gpa);
	return 0;
}

int kvm_set_rom(struct kvm *k, uint32_t slot, uint64_t gpa, uint64_t size, const void *host, struct err *e)
{
	if (size && ioctl(k->sys_fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) <= 0)
		return err_set(e, "this kernel's KVM lacks read-only memory slots, which the firmware flash needs");
	if (set_region(k, slot, gpa, size, host, KVM_MEM_READONLY) < 0)
		return err_errno(e, errno, "cannot %s the read-only memory at 0x%llx (slot %u)", size ? "map" : "unmap",
				 (unsigned long long)gpa, slot);
	return 0;
}

int kvm_irq_line(struct kvm *k, unsigned gsi, int level)
{
	struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
	return ioctl(k->vm_fd, KVM_IRQ_LINE, &l);
}

void kvm_close(struct kvm *k)
{
	if (k->routes) {
		pthread_mutex_destroy(&k->routes_lock);
		free(k->routes);
		k->routes = NULL;
	}
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->sys_fd >= 0)
		close(k->sys_fd);
	k->vm_fd = k->sys_fd = -1;
}

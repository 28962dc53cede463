/* vm: machine assembly and tear-down (see vm.h). The machine: KVM's irqchip and PIT, COM1, the
 * CMOS RTC, the i8042 keyboard controller (PS/2 keyboard and mouse), pvpanic, the ACPI power
 * registers, the PCI bus (host bridge, configuration ports, ECAM, BAR decoding), and quiet sinks
 * for legacy ports that Linux probes but this machine does not have; with a firmware, also
 * vm_firmware.c's chipset, fw_cfg and flash. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "../common/file.h"
#include "../common/log.h"
#include "boot/loader.h"
#include "cpu/cpuid.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/virtio_gpu.h"
#include "devices/virtio_input.h"
#include "devices/virtio_rng.h"
#include "platform.h"
#include "virtio/virtio_pci.h"

static void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct vm *vm = (struct vm *)m;
	if (kvm_irq_line(&vm->kvm, gsi, level) < 0)
		log_warn("cannot set interrupt line %u: %s", gsi, strerror(errno));
}

static int machine_msi_route(struct machine *m, unsigned *gsi, uint64_t addr, uint32_t data)
{
	return kvm_msi_route(&((struct vm *)m)->kvm, gsi, addr, data);
}

static int machine_irqfd(struct machine *m, int fd, unsigned gsi, bool assign)
{
	return kvm_irqfd(&((struct vm *)m)->kvm, fd, gsi, assign);
}

static int machine_ioeventfd(struct machine *m, int fd, uint64_t addr, unsigned len, bool assign)
{
	return kvm_ioeventfd(&((struct vm *)m)->kvm, fd, addr, len, assign);
}

static int machine_map_rom(struct machine *m, unsigned slot, uint64_t gpa, uint64_t size, const void *host, bool mapped)
{
	struct err e;
	if (kvm_set_rom(&((struct vm *)m)->kvm, slot, gpa, mapped ? size : 0, host, &e) < 0) {
		log_warn("%s", e.msg);
		return -1;
	}
	return 0;
}

static void machine_request_exit(struct machine *m, enum machine_exit reason, const char *why)
{
	struct vm *vm = (struct vm *)m;
	int expected = MACHINE_RUNNING;
	if (!__atomic_compare_exchange_n(&vm->exit_reason, &expected, (int)reason, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST))
		return;
	snprintf(vm->exit_why, sizeof(vm->exit_why), "%s", why);
	__atomic_store_n(&vm->stopping, 1, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(vm->stop_fd, &one, sizeof(one)) < 0)
		log_warn("cannot signal the stop request: %s", strerror(errno));
}

static int register_devices(struct vm *vm, struct err *e)
{
	static const struct {
		uint16_t base, len;
		const char *name;
	} absent[] = {
		{0x2e, 2, "Super I/O (absent)"}, {0x4e, 2, "Super I/O (absent)"}, {PORT_POST, 1, "POST port"},
		{0x87, 1, "DMA page (absent)"},  {0x2e8, 8, "COM4 (absent)"},     {0x2f8, 8, "COM2 (absent)"},
		{0x3e8, 8, "COM3 (absent)"},
	};
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (io_bus_register(&vm->pio, absent[i].base, absent[i].len, io_absent, NULL, absent[i].name, e) < 0)
			return -1;
	struct machine *m = &vm->machine;
	if (io_bus_register(&vm->pio, PORT_COM1, 8, serial_io, &vm->serial, "COM1", e) < 0 ||
	    io_bus_register(&vm->pio, PORT_RTC, 2, rtc_io, &vm->rtc, "CMOS RTC", e) < 0 ||
	    io_bus_register(&vm->pio, PORT_I8042_DATA, 1, i8042_data_io, &vm->i8042, "i8042 data", e) < 0 ||
	    io_bus_register(&vm->pio, PORT_I8042_CMD, 1, i8042_cmd_io, &vm->i8042, "i8042 command", e) < 0 ||
	    io_bus_register(&vm->pio, PORT_PVPANIC, 1, pvpanic_io, m, "pvpanic", e) < 0 ||
	    io_bus_register(&vm->pio, PORT_PM_BASE, PORT_PM_LEN, acpi_pm_io, m, "ACPI PM", e) < 0 ||
	    io_bus_register(&vm->pio, PORT_PCI_CONFIG, 8, pci_conf1_io, &vm->pci, "PCI configuration", e) < 0 ||
	    io_bus_register(&vm->mmio, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, pci_ecam_io, &vm->pci, "PCI ECAM", e) < 0)
		return -1;
	io_bus_set_fallback(&vm->mmio, pci_mmio_io, &vm->pci); /* BARs, wherever the guest puts them */
	return 0;
}

void *vm_new_device(struct vm *vm, const char *kind, size_t size, void (*destroy)(void *), struct err *e)
{
	void *p = vm->ndevices < VM_MAX_DEVICES ? calloc(1, size) : NULL;
	if (!p)
		return err_set(e, "out of memory for %s", kind), NULL;
	vm->devices[vm->ndevices++] = (struct vm_device){kind, p, destroy};
	return p;
}

/* Binds the virtio device of the device vm_new_device made last to the PCI transport (the one
 * place where a device model meets a transport): a virtio_pci on the bus, kept in the device's
 * entry; then starts the device's I/O thread. */
static int plug(struct vm *vm, struct virtio_dev *vdev, struct err *e)
{
	struct vm_device *d = &vm->devices[vm->ndevices - 1];
	if (!(d->transport = calloc(1, sizeof(*d->transport))))
		return err_set(e, "out of memory for %s", d->kind);
	if (virtio_pci_init(d->transport, vdev, e) < 0 || pci_bus_add(&vm->pci, &d->transport->pci, e) < 0 ||
	    virtio_dev_start(vdev, e) < 0)
		return -1;
	return 0;
}

static void destroy_rng(void *p)
{
	virtio_dev_destroy(p);
	free(p);
}

static void destroy_blk(void *p)
{
	virtio_blk_destroy(p);
	free(p);
}

static void destroy_console(void *p)
{
	virtio_console_destroy(p);
	free(p);
}

static void destroy_net(void *p)
{
	virtio_net_destroy(p);
	free(p);
}

static void destroy_vsock(void *p)
{
	virtio_vsock_destroy(p);
	free(p);
}

static void destroy_input(void *p)
{
	virtio_dev_destroy(&((struct virtio_input *)p)->vdev);
	free(p);
}

static void destroy_gpu(void *p)
{
	virtio_gpu_destroy(p);
	free(p);
}

static int add_rng(struct vm *vm, unsigned i, struct err *e)
{
	(void)i;
	if (!(vm->rng = vm_new_device(vm, "virtio-rng", sizeof(*vm->rng), destroy_rng, e)) ||
	    virtio_rng_init(vm->rng, &vm->machine, &vm->mem, e) < 0)
		return -1;
	return plug(vm, vm->rng, e);
}

static int add_disk(struct vm *vm, unsigned i, struct err *e)
{
	const struct vm_disk_config *d = &vm->cfg.disks[i];
	if (!(vm->disks[i] = vm_new_device(vm, "virtio-blk", sizeof(*vm->disks[i]), destroy_blk, e)) ||
	    virtio_blk_init(vm->disks[i], d->dev, d->read_only, d->serial, vm->cfg.ncpus, &vm->machine, &vm->mem, e) <
		    0)
		return -1;
	return plug(vm, &vm->disks[i]->vdev, e);
}

static int add_nic(struct vm *vm, unsigned i, struct err *e)
{
	if (!(vm->nics[i] = vm_new_device(vm, "virtio-net", sizeof(*vm->nics[i]), destroy_net, e)) ||
	    virtio_net_init(vm->nics[i], &vm->cfg.nics[i], vm->cfg.ncpus, &vm->machine, &vm->mem, e) < 0)
		return -1;
	return plug(vm, &vm->nics[i]->vdev, e);
}

static int add_vsock(struct vm *vm, unsigned i, struct err *e)
{
	(void)i;
	if (!(vm->vsock = vm_new_device(vm, "virtio-vsock", sizeof(*vm->vsock), destroy_vsock, e)) ||
	    virtio_vsock_init(vm->vsock, vm->cfg.vsock_cid, &vm->machine, &vm->mem, e) < 0)
		return -1;
	return plug(vm, &vm->vsock->vdev, e);
}

static int add_console(struct vm *vm, unsigned i, struct err *e)
{
	(void)i;
	if (!(vm->console = vm_new_device(vm, "virtio-console", sizeof(*vm->console), destroy_console, e)) ||
	    virtio_console_init(vm->console, vm->cfg.console_socket, &vm->machine, &vm->mem, e) < 0 ||
	    plug(vm, &vm->console->vdev, e) < 0)
		return -1;
	return 0;
}

/* The display: three input devices (keyboard, tablet, mouse), then the GPU that feeds them. */
static int add_display(struct vm *vm, unsigned i, struct err *e)
{
	(void)i;
	for (uint32_t k = 0; k < 3; k++) {
		if (!(vm->inputs[k] = vm_new_device(vm, "virtio-input", sizeof(*vm->inputs[k]), destroy_input, e)) ||
		    virtio_input_init(vm->inputs[k], k, &vm->machine, &vm->mem, e) < 0 ||
		    plug(vm, &vm->inputs[k]->vdev, e) < 0)
			return -1;
	}
	if (!(vm->gpu = vm_new_device(vm, "virtio-gpu", sizeof(*vm->gpu), destroy_gpu, e)) ||
	    virtio_gpu_init(vm->gpu, vm->cfg.display, vm->inputs, &vm->machine, &vm->mem, e) < 0)
		return -1;
	/* A firmware has no virtio-input driver: the seat's keys and mouse reach it through PS/2
	 * until the guest's own driver runs (virtio_gpu_seat_input), before the I/O thread starts. */
	if (vm->cfg.firmware_code)
		vm->gpu->ps2 = &vm->i8042;
	return plug(vm, &vm->gpu->vdev, e);
}

static unsigned one_if(bool b)
{
	return b ? 1 : 0;
}

static unsigned rng_count(const struct vm_config *c)
{
	return one_if(c->rng);
}
static unsigned disk_count(const struct vm_config *c)
{
	return c->ndisks;
}
static unsigned console_count(const struct vm_config *c)
{
	return one_if(c->console_socket);
}
static unsigned nic_count(const struct vm_config *c)
{
	return c->nnics;
}
static unsigned vsock_count(const struct vm_config *c)
{
	return one_if(c->vsock_cid);
}
static unsigned display_count(const struct vm_config *c)
{
	return one_if(c->display);
}

/* The machine's optional devices, in the order they are made (and their PCI slots given): how
 * many of each this VM's configuration asks for, and how to make the i-th. A new device is one
 * line here, its add_ and destroy_ functions above, its option and its test. */
static const struct device_kind {
	unsigned (*count)(const struct vm_config *cfg);
	int (*add)(struct vm *vm, unsigned i, struct err *e);
} device_kinds[] = {
	{rng_count, add_rng}, {disk_count, add_disk},   {console_count, add_console},
	{nic_count, add_nic}, {vsock_count, add_vsock}, {display_count, add_display},
};

static int add_devices(struct vm *vm, struct err *e)
{
	for (size_t k = 0; k < sizeof(device_kinds) / sizeof(device_kinds[0]); k++)
		for (unsigned i = 0; i < device_kinds[k].count(&vm->cfg); i++)
			if (device_kinds[k].add(vm, i, e) < 0)
				return -1;
	return 0;
}

static int create_vcpus(struct vm *vm, struct err *e)
{
	vm->vcpus = calloc(vm->cfg.ncpus, sizeof(vm->vcpus[0]));
	if (!vm->vcpus)
		return err_set(e, "out of memory for %u vCPUs", vm->cfg.ncpus);
	struct kvm_cpuid2 *supported;
	if (cpuid_supported(vm->kvm.sys_fd, &supported, e) < 0)
		return -1;
	int r = 0;
	for (unsigned i = 0; i < vm->cfg.ncpus && r == 0; i++) {
		r = vcpu_create(&vm->vcpus[i], vm, i, supported, e);
		vm->nvcpus_created = i + 1;
	}
	free(supported);
	return r;
}

#define KERNEL_MAX (1ull << 30) /* mapped, not read: a vmlinux with its debug sections fits */
#define INITRD_MAX (2048ull << 20)

/* The kernel command line the guest gets: the configured one, each guest parameter as
 * shoji.KEY=VALUE, and the agent's token, which only the guest sees. malloc'd; NULL: no memory. */
static char *guest_cmdline(const struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	size_t size = (cfg->cmdline ? strlen(cfg->cmdline) : 0) + sizeof(AGENT_TOKEN_ARG) + AGENT_TOKEN_LEN + 2 +
		cfg->nparams * (sizeof(GUEST_PARAM_CMDLINE) + GUEST_PARAM_KEY_MAX + GUEST_PARAM_VALUE_MAX + 2);
	char *s = malloc(size);
	if (!s)
		return NULL;
	size_t n = (size_t)snprintf(s, size, "%s", cfg->cmdline ? cfg->cmdline : "");
	for (unsigned i = 0; i < cfg->nparams; i++)
		n += (size_t)snprintf(s + n, size - n, "%s" GUEST_PARAM_CMDLINE "%s=%s", n ? " " : "",
				      cfg->params[i].key, cfg->params[i].value);
	if (vm->agent_token[0])
		snprintf(s + n, size - n, "%s" AGENT_TOKEN_ARG "%s", n ? " " : "", vm->agent_token);
	return s;
}

/* Maps the kernel and initrd just long enough to copy them into guest memory, so that they do
 * not stay resident in the monitor. */
static int load_guest(struct vm *vm, struct err *e)
{
	const struct vm_config *cfg = &vm->cfg;
	struct boot_config bc = {
		.kernel_path = cfg->kernel_path,
		.initrd_path = cfg->initrd_path,
		.cmdline = cfg->cmdline,
		.ncpus = cfg->ncpus,
	};
	char *cmdline = guest_cmdline(vm); /* with the parameters and the agent's token */
	if (!cmdline)
		return err_set(e, "out of memory for the kernel command line");
	bc.cmdline = cmdline;
	if (file_map(cfg->kernel_path, "kernel", KERNEL_MAX, &bc.kernel, &bc.kernel_size, e) < 0) {
		free(cmdline);
		return -1;
	}
	int r = cfg->initrd_path ? file_map(cfg->initrd_path, "initrd", INITRD_MAX, &bc.initrd, &bc.initrd_size, e) : 0;
	if (r == 0 && cfg->initrd_path && !bc.initrd)
		r = err_set(e, "initrd '%s' is empty", cfg->initrd_path);
	struct boot_entry entry = {0};
	if (r == 0)
		r = boot_load(&vm->mem, &bc, &entry, e);
	file_unmap(bc.kernel, bc.kernel_size);
	file_unmap(bc.initrd, bc.initrd_size);
	free(cmdline);
	vm->entry = entry;
	return r;
}

/* A fresh token for this boot's agent (agent_proto.h), when the VM has a vsock device. */
static int draw_agent_token(struct vm *vm, struct err *e)
{
	uint8_t raw[AGENT_TOKEN_LEN / 2];
	if (!vm->cfg.vsock_cid)
		return 0;
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return err_errno(e, errno, "cannot draw the guest agent's token (getrandom)");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(vm->agent_token + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->machine.set_irq = machine_set_irq;
	vm->machine.request_exit = machine_request_exit;
	vm->machine.msi_route = machine_msi_route;
	vm->machine.irqfd = machine_irqfd;
	vm->machine.ioeventfd = machine_ioeventfd;
	vm->machine.map_rom = machine_map_rom;
	vm->kvm.sys_fd = vm->kvm.vm_fd = -1;
	vm_pause_init(vm);
	io_bus_init(&vm->pio, "port");
	io_bus_init(&vm->mmio, "MMIO");
	serial_init(&vm->serial, &vm->machine, IRQ_COM1, cfg->serial_out_fd);
	if (cfg->serial_output)
		serial_set_output(&vm->serial, cfg->serial_output, cfg->serial_output_opaque);
	rtc_init(&vm->rtc);
	rtc_set_memory(&vm->rtc, layout_below_4g(cfg->mem_size), layout_above_4g(cfg->mem_size));
	i8042_init(&vm->i8042, &vm->machine);
	pci_bus_init(&vm->pci, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0)
		return err_errno(e, errno, "cannot create an eventfd");

	/* The guest's files first: a bad kernel or firmware is reported the same with or without
	 * KVM. */
	if (draw_agent_token(vm, e) < 0 || guest_mem_init(&vm->mem, cfg->mem_size, e) < 0 ||
	    (!cfg->firmware_code && load_guest(vm, e) < 0) ||
	    (cfg->firmware_code && pflash_open(&vm->flash, cfg->firmware_code, cfg->firmware_vars, e) < 0))
		return -1;
	if (kvm_open(&vm->kvm, e) < 0)
		return -1;
	if (cfg->ncpus > vm->kvm.max_vcpus)
		return err_set(e,
			       "--cpus %u is more than this host's KVM allows (%u); use --cpus %u or "
			       "fewer",
			       cfg->ncpus, vm->kvm.max_vcpus, vm->kvm.max_vcpus);
	if (kvm_create_vm(&vm->kvm, e) < 0)
		return -1;
	for (int i = 0; i < vm->mem.nregions; i++)
		if (kvm_set_memory(&vm->kvm, (uint32_t)i, vm->mem.regions[i].gpa, vm->mem.regions[i].size,
				   vm->mem.host + vm->mem.host_offset[i], e) < 0)
			return -1;
	/* The chipset's functions take their slot before the optional devices fill the others. */
	if (register_devices(vm, e) < 0 || (cfg->firmware_code && vm_firmware_chipset(vm, e) < 0) ||
	    add_devices(vm, e) < 0 || (cfg->firmware_code && vm_firmware_attach(vm, e) < 0) || create_vcpus(vm, e) < 0)
		return -1;
	/* A firmware starts where KVM leaves a new vCPU: the reset vector, in real mode. */
	return cfg->firmware_code ? 0 : vcpu_setup_boot(&vm->vcpus[0], &vm->entry, e);
}

int vm_start(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->nvcpus_created; i++) {
		if (vcpu_start(&vm->vcpus[i], e) < 0) {
			vm_stop(vm);
			return -1;
		}
	}
	return 0;
}

void vm_stop(struct vm *vm)
{
	int expected = MACHINE_RUNNING;
	__atomic_compare_exchange_n(&vm->exit_reason, &expected, MACHINE_STOPPED, false, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	__atomic_store_n(&vm->stopping, 1, __ATOMIC_RELEASE);
	vm_pause_wake(vm);
	for (unsigned i = 0; i < vm->nvcpus_created; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned i = 0; i < vm->nvcpus_created; i++)
		vcpu_join(&vm->vcpus[i]);
}

void vm_destroy(struct vm *vm)
{
	vm_stop(vm);
	while (vm->ndevices) {
		struct vm_device *d = &vm->devices[--vm->ndevices];
		d->destroy(d->dev); /* its I/O thread stops: nothing calls the transport after */
		if (d->transport)
			virtio_pci_destroy(d->transport);
		free(d->transport);
	}
	vm->rng = NULL;
	vm->console = NULL;
	vm->vsock = NULL;
	vm->gpu = NULL;
	memset(vm->disks, 0, sizeof(vm->disks));
	memset(vm->nics, 0, sizeof(vm->nics));
	memset(vm->inputs, 0, sizeof(vm->inputs));
	for (unsigned i = 0; i < vm->nvcpus_created; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->nvcpus_created = 0;
	pflash_close(&vm->flash); /* its last programs synced */
	kvm_close(&vm->kvm);
	guest_mem_free(&vm->mem);
	serial_destroy(&vm->serial);
	rtc_destroy(&vm->rtc);
	i8042_destroy(&vm->i8042);
	pci_bus_destroy(&vm->pci);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	vm->stop_fd = -1;
	vm_pause_destroy(vm);
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return 0;
	unsigned long size = 0, resident = 0;
	int n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 ? (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

uint64_t vm_overhead_bytes(const struct vm *vm, uint64_t *rss_out, uint64_t *guest_out)
{
	uint64_t rss = rss_bytes();
	uint64_t guest = guest_mem_resident(&vm->mem);
	if (rss_out)
		*rss_out = rss;
	if (guest_out)
		*guest_out = guest;
	return rss > guest ? rss - guest : 0;
}

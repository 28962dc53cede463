/* vm_firmware: what a firmware boot adds to the machine (see vm.h): the chipset OVMF looks for
 * (devices/piix.c), fw_cfg with the memory map, vCPU count, ACPI tables and boot order
 * (boot/fw_cfg_setup.c), quiet sinks for the CPU hotplug block and the TPM interface OVMF
 * probes, and the flash (devices/pflash.c). The boot vCPU then starts where KVM leaves a new one: at the reset
 * vector, in real mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/fw_cfg_setup.h"
#include "devices/fw_cfg.h"
#include "devices/piix.h"
#include "pci/pci.h"
#include "platform.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

#define PORT_CPU_HOTPLUG     0xaf00 /* QEMU's CPU hotplug block on PIIX4: absent, reads all ones */
#define PORT_CPU_HOTPLUG_LEN 12
/* The TPM interface (TIS) OVMF probes: absent, reads all ones, which OVMF takes as no TPM at
 * once (a read of zero would look like a TPM not yet ready, polled until a time-out). */
#define TPM_TIS_BASE 0xfed40000ull
#define TPM_TIS_LEN  0x5000

static void destroy_fw_cfg(void *p)
{
	fw_cfg_destroy(p);
	free(p);
}

/* Every disk's slot, in the order given (the first is the boot disk), for the boot order. */
static int bootorder(const struct vm *vm, char **out, struct err *e)
{
	uint8_t slots[VM_MAX_DISKS], fns[VM_MAX_DISKS];
	unsigned n = 0;
	for (unsigned i = 0; i < vm->ndevices && n < VM_MAX_DISKS; i++) {
		const struct vm_device *d = &vm->devices[i];
		if (d->transport && strcmp(d->kind, "virtio-blk") == 0) {
			slots[n] = d->transport->pci.slot;
			fns[n++] = d->transport->pci.fn;
		}
	}
	return fw_cfg_bootorder(slots, fns, n, out, e);
}

static int add_fw_cfg(struct vm *vm, struct err *e)
{
	struct fw_cfg *f = vm_new_device(vm, "fw_cfg", sizeof(*f), destroy_fw_cfg, e);
	if (!f || fw_cfg_init(f, &vm->mem, e) < 0)
		return -1;
	struct acpi_params ap;
	fw_cfg_acpi_params_ovmf(&ap, vm->cfg.ncpus, &vm->mem, LAYOUT_PCI_ECAM);
	char *order;
	if (bootorder(vm, &order, e) < 0)
		return -1;
	int ret = fw_cfg_setup_firmware(f, &vm->mem, &ap, order, e);
	free(order);
	if (ret == 0 && vm->agent_token[0]) /* for the guest's agent, which reads it through sysfs */
		ret = fw_cfg_add_file(f, AGENT_TOKEN_FW_CFG, vm->agent_token, AGENT_TOKEN_LEN, e);
	for (unsigned i = 0; ret == 0 && i < vm->cfg.nparams; i++) { /* the guest parameters */
		char name[sizeof(GUEST_PARAM_FW_CFG) + GUEST_PARAM_KEY_MAX];
		const struct guest_param *p = &vm->cfg.params[i];
		snprintf(name, sizeof(name), GUEST_PARAM_FW_CFG "%s", p->key);
		ret = fw_cfg_add_file(f, name, p->value, strlen(p->value), e);
	}
	if (ret < 0)
		return -1;
	return io_bus_register(&vm->pio, PORT_FW_CFG, PORT_FW_CFG_LEN, fw_cfg_io, f, "fw_cfg", e);
}

int vm_firmware_chipset(struct vm *vm, struct err *e)
{
	struct piix *chip = vm_new_device(vm, "chipset", sizeof(*chip), free, e);
	if (!chip)
		return -1;
	piix_init(chip, &vm->machine);
	return piix_attach(chip, &vm->pci, &vm->pio, e);
}

int vm_firmware_attach(struct vm *vm, struct err *e)
{
	if (add_fw_cfg(vm, e) < 0 ||
	    io_bus_register(&vm->pio, PORT_CPU_HOTPLUG, PORT_CPU_HOTPLUG_LEN, io_absent, NULL, "CPU hotplug (absent)",
			    e) < 0 ||
	    io_bus_register(&vm->mmio, TPM_TIS_BASE, TPM_TIS_LEN, io_absent, NULL, "TPM (absent)", e) < 0)
		return -1;
	return pflash_attach(&vm->flash, &vm->machine, &vm->mmio, e);
}

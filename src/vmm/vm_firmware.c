/* vm_firmware: what a firmware boot adds to the machine (see vm.h): the chipset OVMF looks for
 * (devices/piix.c), fw_cfg with the memory map, vCPU count and ACPI tables
 * (boot/fw_cfg_setup.c), quiet sinks for the CPU hotplug block OVMF probes, and the flash
 * (devices/pflash.c). The boot vCPU then starts where KVM leaves a new one: at the reset
 * vector, in real mode. */
#include <stdlib.h>

#include "boot/fw_cfg_setup.h"
#include "devices/fw_cfg.h"
#include "devices/piix.h"
#include "platform.h"
#include "vm.h"

#define PORT_CPU_HOTPLUG     0xaf00 /* QEMU's CPU hotplug block on PIIX4: absent, reads all ones */
#define PORT_CPU_HOTPLUG_LEN 12

static void destroy_fw_cfg(void *p)
{
	fw_cfg_destroy(p);
	free(p);
}

static int add_fw_cfg(struct vm *vm, struct err *e)
{
	struct fw_cfg *f = vm_new_device(vm, "fw_cfg", sizeof(*f), destroy_fw_cfg, e);
	if (!f || fw_cfg_init(f, &vm->mem, e) < 0)
		return -1;
	struct acpi_params ap;
	fw_cfg_acpi_params_ovmf(&ap, vm->cfg.ncpus, &vm->mem, LAYOUT_PCI_ECAM);
	if (fw_cfg_setup_firmware(f, &vm->mem, &ap, NULL, e) < 0)
		return -1;
	return io_bus_register(&vm->pio, PORT_FW_CFG, PORT_FW_CFG_LEN, fw_cfg_io, f, "fw_cfg", e);
}

int vm_firmware_attach(struct vm *vm, struct err *e)
{
	struct piix *chip = vm_new_device(vm, "chipset", sizeof(*chip), free, e);
	if (!chip)
		return -1;
	piix_init(chip, &vm->machine);
	if (piix_attach(chip, &vm->pci, &vm->pio, e) < 0 || add_fw_cfg(vm, e) < 0 ||
	    io_bus_register(&vm->pio, PORT_CPU_HOTPLUG, PORT_CPU_HOTPLUG_LEN, io_absent, NULL, "CPU hotplug (absent)",
			    e) < 0)
		return -1;
	return pflash_attach(&vm->flash, &vm->machine, &vm->mmio, e);
}

/* fw_cfg_setup: what a firmware boot puts in fw_cfg (devices/fw_cfg.h) for OVMF (Debian's
 * edk2 2022.11 on i440FX + PIIX4). What OVMF reads, and what this provides:
 *
 *   provided
 *     0x0000 signature, 0x0001 ID    (the device) probed first; ID bit 1 makes OVMF use DMA
 *     0x0005 NB_CPUS                 16-bit: the vCPUs MpInitLib waits for; with no CPU hotplug
 *                                    block at port 0xAF00 (reads all ones) it is also the maximum
 *     0x000f MAX_CPUS, 0x0003 RAM    not read by OVMF 2022.11; SeaBIOS reads them
 *     etc/e820                       RAM below 4 GiB (top of low RAM) and above 4 GiB; only its
 *                                    RAM entries count; without it OVMF falls back to CMOS
 *     etc/table-loader, etc/acpi/tables, etc/acpi/rsdp
 *                                    the ACPI tables (boot/acpi_loader.h); without them
 *                                    OVMF boots with no ACPI tables at all
 *     opt/ovmf/X-PciMmio64Mb = "0"   no 64-bit PCI window: OVMF puts every BAR, 64-bit ones
 *                                    too, in the 32-bit window the DSDT describes
 *                                    (fw_cfg_acpi_params_ovmf), so the OS keeps them there
 *     bootorder (when given)         OpenFirmware device paths, one a line, NUL-terminated
 *   left out, and OVMF copes (absent reads as not found, or as zeros for numbered items)
 *     0x000e BOOT_MENU               zero: the platform's boot time-out; etc/boot-menu-wait is
 *                                    read only when BOOT_MENU is set
 *     kernel, initrd, command line   (0x07-0x18) zero sizes: no direct kernel load by OVMF
 *     etc/reserved-memory-end        only read with a 64-bit PCI window (off, above)
 *     etc/smbios/smbios-anchor, -tables   no SMBIOS tables from the host
 *     etc/system-states              S3 and S4 stay off
 *     etc/msr_feature_control        MSR 0x3a not written by OVMF
 *     etc/smi/... (SMM features)     no SMM: Debian's SMM builds (secboot) need q35 anyway
 *     etc/extra-pci-roots, etc/hardware-info, etc/fdt, etc/ramfb, etc/tpm/config,
 *     etc/edk2/https/..., opt/ovmf/PcdSetNxForStack, opt/org.tianocore/...
 *                                    features not used here; each has a default
 *     etc/boot-fail-wait and other SeaBIOS names   not read by OVMF
 *
 * The functions run on the thread that builds the machine, before any vCPU runs. */
#ifndef SHOJI_VMM_BOOT_FW_CFG_SETUP_H
#define SHOJI_VMM_BOOT_FW_CFG_SETUP_H

#include "../../common/err.h"
#include "../devices/fw_cfg.h"
#include "../memory.h"
#include "acpi.h"

#define FW_CFG_FILE_E820     "etc/e820"
#define FW_CFG_FILE_BOOT     "bootorder"
#define FW_CFG_FILE_MMIO64MB "opt/ovmf/X-PciMmio64Mb"

#define OVMF_PCI_WINDOW_END 0xfc000000ull /* OVMF's 32-bit PCI window ends here on i440FX */

/* ACPI parameters for a firmware boot: ncpus, the MCFG at ecam_base (below 4 GiB, also listed
 * as a motherboard resource since OVMF's memory map does not reserve it), and as PCI0's window the
 * one OVMF on i440FX gives BARs for mem's RAM below 4 GiB: from 4 GiB minus the largest power of
 * two that fits between the top of low RAM and 4 GiB (so at least 2 GiB) to 0xFC000000. */
void fw_cfg_acpi_params_ovmf(struct acpi_params *p, unsigned ncpus, const struct guest_mem *mem, uint64_t ecam_base);

/* Adds etc/acpi/tables, etc/acpi/rsdp and etc/table-loader for the tables of p. */
int fw_cfg_add_acpi(struct fw_cfg *f, const struct acpi_params *p, struct err *e);

/* The boot order for virtio-blk disks at PCI slot slots[i], function fns[i], first to last:
 * the OpenFirmware paths QEMU writes for them ("/pci@i0cf8/scsi@SLOT[,FN]/disk@0,0"), one a
 * line, with no newline after the last (OVMF reads an empty last path as a parse error and
 * then ignores the whole list). *out is a new string, or NULL for n == 0; 0, or -1 with e set.
 * OVMF puts the boot options on these disks first, in this order, keeps its own applications
 * (shell, setup) after them and drops options on other PCI devices (so no network boot
 * attempts); a disk that moved to another slot is still found. */
int fw_cfg_bootorder(const uint8_t *slots, const uint8_t *fns, unsigned n, char **out, struct err *e);

/* Fills f with everything in the list above: CPUs and RAM (p->ncpus, mem), the E820 map, the
 * ACPI tables of p, the 64-bit window switch and, when bootorder is not NULL, the boot order. */
int fw_cfg_setup_firmware(struct fw_cfg *f, const struct guest_mem *mem, const struct acpi_params *p,
			  const char *bootorder, struct err *e);

#endif

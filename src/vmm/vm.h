/* vm: one virtual machine: KVM VM, guest RAM, vCPUs, buses and the platform devices, from
 * creation through the run to tear-down. A reboot that restarts the guest destroys the vm and
 * creates a fresh one, so no device state survives a reset by accident. */
#ifndef SHOJI_VMM_VM_H
#define SHOJI_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/agent_proto.h"
#include "../common/err.h"
#include "../common/guest_param.h"
#include "../common/limits.h"
#include "cpu/vcpu.h"
#include "devices/i8042.h"
#include "devices/pflash.h"
#include "devices/rtc.h"
#include "devices/serial.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_console.h"
#include "devices/virtio_gpu.h"
#include "devices/virtio_input.h"
#include "devices/virtio_net.h"
#include "devices/virtio_vsock.h"
#include "io/bus.h"
#include "kvm/kvm.h"
#include "machine.h"
#include "memory.h"
#include "pci/pci.h"

#define VM_MAX_DISKS SHOJI_MAX_DISKS
#define VM_MAX_NICS  SHOJI_MAX_NICS

struct vm_disk_config {
	const char *path;
	bool read_only;
	enum block_format format; /* BLOCK_FORMAT_PROBE: raw, refusing a file that looks like qcow2 */
	const char *serial;       /* may be NULL */
	const char *volatile_dir; /* writes go to an unnamed overlay made here (disks.c), or NULL */
	struct block_dev *dev;    /* the open image (disks_open); a snapshot replaces it */
};

struct vm_config {
	const char *kernel_path, *initrd_path, *cmdline; /* initrd_path may be NULL */
	/* Firmware boot instead of the kernel: the code image (read-only) and the VM's variable
	 * store (devices/pflash.c, opened again at each boot), or NULL. */
	const char *firmware_code, *firmware_vars;
	uint64_t mem_size;
	unsigned ncpus;
	int serial_out_fd; /* -1: discard */
	/* When set, the UART's output goes here instead (serial_set_output). */
	void (*serial_output)(void *opaque, const uint8_t *buf, size_t n);
	void *serial_output_opaque;
	bool rng; /* a virtio-rng device */
	/* The disks, opened once for the monitor's life (disks.c) and kept across guest reboots:
	 * the VM uses the caller's array, so that a live snapshot's new top outlives this boot. */
	struct vm_disk_config *disks;
	unsigned ndisks;
	const char *console_socket; /* a virtio-console on this Unix socket, or NULL */
	struct net_config nics[VM_MAX_NICS];
	unsigned nnics;
	uint64_t vsock_cid; /* 0: no virtio-vsock */
	/* Guest parameters (common/guest_param.h): on the kernel command line or in fw_cfg. */
	const struct guest_param *params;
	unsigned nparams;
	/* A virtio-gpu and three virtio-input devices served over this display channel, or NULL.
	 * Opened by main before the jail; it outlives the VM (and so a reboot). */
	struct display_server *display;
};

/* One device of the machine, as vm_destroy takes it down: devices are kept in the order they
 * were made and destroyed in reverse (a GPU before the inputs it feeds). */
#define VM_MAX_DEVICES (3 + VM_MAX_DISKS + VM_MAX_NICS + 4 + 2 /* chipset, fw_cfg */)
struct vm_device {
	const char *kind;
	void *dev;
	void (*destroy)(void *dev);   /* stops its threads, releases what it holds, frees it */
	struct virtio_pci *transport; /* a virtio device's PCI side, freed after it; or NULL */
};

struct vm {
	struct machine machine; /* what devices see */
	/* With a vsock device: this boot's guest agent token (common/agent_proto.h), else "". */
	char agent_token[AGENT_TOKEN_LEN + 1];
	struct vm_config cfg;
	struct kvm kvm;
	struct guest_mem mem;
	struct boot_entry entry; /* where the boot vCPU starts */
	struct vcpu *vcpus;
	unsigned nvcpus_created;
	struct io_bus pio, mmio;
	struct serial serial;
	struct rtc rtc;
	struct i8042 i8042; /* the keyboard controller, its keyboard and mouse */
	struct pci_bus pci;
	struct pflash flash; /* firmware boot only */
	struct vm_device devices[VM_MAX_DEVICES];
	unsigned ndevices;
	/* The devices other parts reach by kind (disk snapshots, the display); owned by devices[]. */
	struct virtio_dev *rng;
	struct virtio_blk *disks[VM_MAX_DISKS];
	struct virtio_console *console;
	struct virtio_net *nics[VM_MAX_NICS];
	struct virtio_vsock *vsock;
	struct virtio_input *inputs[3];
	struct virtio_gpu *gpu;
	/* Pause (vm_control.c): the vCPUs park while pause_requested is set. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	int pause_requested;
	unsigned parked;
	bool clock_saved;
	struct kvm_clock_data paused_clock;
	int stop_fd; /* eventfd: readable once an exit was requested */
	int stopping;
	int exit_reason; /* enum machine_exit */
	char exit_why[256];
};

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e);

/* A new device of `size` bytes, zeroed and already in vm->devices, so that vm_destroy takes it
 * down whatever becomes of its initialisation (each destroy copes with a partial one). For
 * vm_create's helpers, on the thread that builds the machine. */
void *vm_new_device(struct vm *vm, const char *kind, size_t size, void (*destroy)(void *), struct err *e);
/* The firmware's chipset (vm_firmware.c), before the optional devices, so that it takes the
 * first slots; then, once they are in place, fw_cfg (whose boot order names the disks' slots)
 * and the flash. */
int vm_firmware_chipset(struct vm *vm, struct err *e);
int vm_firmware_attach(struct vm *vm, struct err *e);
int vm_start(struct vm *vm, struct err *e);
/* Asks every vCPU to stop and waits for them. */
void vm_stop(struct vm *vm);
void vm_destroy(struct vm *vm);

static inline bool vm_stopping(const struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE);
}

static inline bool vm_pause_requested(const struct vm *vm)
{
	return __atomic_load_n(&vm->pause_requested, __ATOMIC_SEQ_CST);
}

/* Host controls of a running VM (vm_control.c). vm_pause returns once every vCPU has left the
 * guest, and vm_resume lets them go on; both are idempotent. vm_power_button presses the ACPI
 * power button. vm_park is where a vCPU thread waits while paused; vm_pause_wake wakes the
 * parked vCPUs after the stop flag was set. */
void vm_pause_init(struct vm *vm);
void vm_pause_destroy(struct vm *vm);
int vm_pause(struct vm *vm, struct err *e);
void vm_resume(struct vm *vm);
bool vm_paused(struct vm *vm);
void vm_power_button(struct vm *vm);
void vm_park(struct vm *vm);
void vm_pause_wake(struct vm *vm);

/* Host memory the monitor itself uses, beyond the guest RAM it has touched (bytes). */
uint64_t vm_overhead_bytes(const struct vm *vm, uint64_t *rss_out, uint64_t *guest_out);

#endif

/* machine: what a device model may ask of the machine it sits in: raise or lower an interrupt
 * line, route MSIs and wire eventfds to them and to MMIO doorbells, map read-only memory into
 * the guest, or end the run (power off, reset, panic). Devices see only this interface, so that unit
 * tests can give them a fake machine. */
#ifndef SHOJI_VMM_MACHINE_H
#define SHOJI_VMM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

enum machine_exit {
	MACHINE_RUNNING = 0,
	MACHINE_POWEROFF,       /* the guest powered off */
	MACHINE_REBOOT,         /* the guest asked for a reset */
	MACHINE_PANIC,          /* the guest reported a panic */
	MACHINE_TRIPLE_FAULT,   /* a vCPU shut down (triple fault) */
	MACHINE_INTERNAL_ERROR, /* KVM could not run the guest */
	MACHINE_STOPPED,        /* stopped from the host: signal or console escape */
};

struct machine {
	void (*set_irq)(struct machine *m, unsigned gsi, int level);
	/* MSI delivery: a GSI whose route is an MSI message, an eventfd that raises it (irqfd),
	 * and an eventfd that a guest write to an MMIO address signals (ioeventfd). Each returns 0
	 * or -1; assign=false undoes. */
	int (*msi_route)(struct machine *m, unsigned *gsi, uint64_t addr, uint32_t data);
	int (*irqfd)(struct machine *m, int fd, unsigned gsi, bool assign);
	int (*ioeventfd)(struct machine *m, int fd, uint64_t addr, unsigned len, bool assign);
	/* Read-only memory that the guest reads without exits and whose writes exit as MMIO to the
	 * io_bus range that covers it: maps [host, host+size) at gpa as KVM memory slot `slot`
	 * (one of those GUEST_MEM_SLOTS leaves free, memory.h), or with mapped=false removes the
	 * slot so that reads exit as well (a flash whose reads return status, not data). host must
	 * stay valid while mapped. Returns 0, or -1 when KVM refused (logged). Called by
	 * devices/pflash.c: on the main thread before any vCPU runs, then on a vCPU thread with the
	 * device's lock held, which serialises calls for one slot. */
	int (*map_rom)(struct machine *m, unsigned slot, uint64_t gpa, uint64_t size, const void *host, bool mapped);
	/* The first request wins; later ones are ignored. `why` is a one-line reason. */
	void (*request_exit)(struct machine *m, enum machine_exit reason, const char *why);
};

#endif

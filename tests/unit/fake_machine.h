/* fake_machine: a struct machine for device tests that records interrupt line changes, MSI
 * routes, irqfds, ioeventfds, read-only memory slots and exit requests instead of acting on
 * them. */
#ifndef SHOJI_TESTS_FAKE_MACHINE_H
#define SHOJI_TESTS_FAKE_MACHINE_H

#include "vmm/machine.h"

#define FAKE_MACHINE_SLOTS 8

/* A read-only memory slot as KVM would hold it. */
struct fake_rom_slot {
	bool mapped;
	uint64_t gpa, size;
	const void *host;
};

struct fake_machine {
	struct machine m; /* first: devices are handed &fake.m */
	unsigned irq_calls;
	unsigned last_gsi;
	int last_level;
	unsigned exit_calls;
	enum machine_exit exit_reason;
	const char *exit_why;
	/* MSI routes, irqfds and ioeventfds asked for. */
	unsigned routes, next_gsi, last_route_gsi;
	uint64_t last_msi_addr;
	uint32_t last_msi_data;
	unsigned irqfds_bound, irqfds_unbound, last_irqfd_gsi;
	int last_irqfd;
	unsigned ioeventfds, ioeventfds_removed;
	uint64_t last_ioeventfd_addr;
	/* map_rom: every call, each slot's state, and a switch that makes calls fail. */
	unsigned rom_maps, rom_unmaps;
	struct fake_rom_slot rom[FAKE_MACHINE_SLOTS];
	bool rom_fail;
};

/* The host byte the guest would read at gpa through a mapped read-only slot, or NULL when no
 * mapped slot covers it (the read would exit to the device). */
const uint8_t *fake_machine_rom_byte(const struct fake_machine *f, uint64_t gpa);

void fake_machine_init(struct fake_machine *f);

#endif

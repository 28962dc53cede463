/* fake_machine: a struct machine for device tests that records interrupt line changes, MSI
 * routes, irqfds, ioeventfds and exit requests instead of acting on them. */
#ifndef SHOJI_TESTS_FAKE_MACHINE_H
#define SHOJI_TESTS_FAKE_MACHINE_H

#include "vmm/machine.h"

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
};

void fake_machine_init(struct fake_machine *f);

#endif

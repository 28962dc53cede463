/* memory: the guest's RAM as one anonymous host mapping, split into the regions of
 * boot/layout.h, and the only way the monitor turns a guest-physical address into a pointer:
 * guest_mem_ptr checks that the whole range lies inside guest RAM. */
#ifndef SHOJI_VMM_MEMORY_H
#define SHOJI_VMM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "boot/layout.h"

/* KVM memory slots 0 .. GUEST_MEM_SLOTS-1 hold the RAM regions (vm.c gives region i slot i);
 * the slots from GUEST_MEM_SLOTS on are free for read-only memory (devices/pflash.h). */
#define GUEST_MEM_SLOTS 2

struct guest_mem {
	uint8_t *host; /* mapping of all RAM, regions back to back */
	uint64_t size;
	struct ram_region regions[GUEST_MEM_SLOTS];
	uint64_t host_offset[GUEST_MEM_SLOTS];
	int nregions;
};

int guest_mem_init(struct guest_mem *m, uint64_t size, struct err *e);
void guest_mem_free(struct guest_mem *m);

/* Host pointer to [gpa, gpa+len) when the range lies inside one RAM region, else NULL. */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Bytes of guest RAM currently resident in host memory. */
uint64_t guest_mem_resident(const struct guest_mem *m);

#endif

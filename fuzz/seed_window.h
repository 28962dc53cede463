/* seed_window: for the device targets' seed writers, which lay out a guest-memory window that
 * starts at VFX_DESC: copy bytes to a guest address in it, and write a descriptor. */
#ifndef SHOJI_FUZZ_SEED_WINDOW_H
#define SHOJI_FUZZ_SEED_WINDOW_H

#include <stdint.h>
#include <string.h>

#include "../tests/unit/virtio_fixture.h"

static inline void seed_put(uint8_t *w, uint64_t gpa, const void *v, size_t n)
{
	memcpy(w + (gpa - VFX_DESC), v, n);
}

/* Descriptor i of the table at guest address `table`. */
static inline void seed_desc(uint8_t *w, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
			     uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	seed_put(w, table + 16ull * i, d, 16);
}

#endif

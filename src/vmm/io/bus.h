/* bus: dispatch of port I/O and MMIO exits to the device that claims the address. Ranges are
 * registered before any vCPU runs and never change while they run, so dispatch takes no lock.
 * An access no range claims goes to the bus's fallback, if it has one (the PCI bus, for memory:
 * BARs move while vCPUs run); one nobody claims reads as all ones, is logged (rate-limited) and
 * otherwise ignored. */
#ifndef SHOJI_VMM_IO_BUS_H
#define SHOJI_VMM_IO_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/err.h"
#include "../../common/log.h"

/* offset is relative to the range's base; len is 1, 2, 4 or 8. */
typedef void (*io_handler)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

struct io_range {
	uint64_t base, len;
	io_handler fn;
	void *opaque;
	const char *name;
};

/* The fallback: addr is absolute; returns false when it did not claim the access either. */
typedef bool (*io_fallback)(void *opaque, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#define IO_BUS_MAX_RANGES 64

struct io_bus {
	const char *kind; /* "port" or "MMIO", for messages */
	struct io_range ranges[IO_BUS_MAX_RANGES];
	int n;
	io_fallback fallback;
	void *fallback_opaque;
	struct ratelimit unknown_log;
	uint64_t unknown_count;
};

void io_bus_init(struct io_bus *b, const char *kind);
/* Refuses ranges that overlap one already registered. */
int io_bus_register(struct io_bus *b, uint64_t base, uint64_t len, io_handler fn, void *opaque, const char *name,
		    struct err *e);
/* Sets the fallback (before any vCPU runs). */
void io_bus_set_fallback(struct io_bus *b, io_fallback fn, void *opaque);
/* Returns false when no device claims addr (the access was logged and ignored). */
bool io_bus_dispatch(struct io_bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

/* A handler for hardware that is absent but probed: reads float high, writes vanish. */
void io_absent(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif

/* bus: address-range dispatch for port I/O and MMIO (see bus.h). */
#include "bus.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void io_bus_init(struct io_bus *b, const char *kind)
{
	memset(b, 0, sizeof(*b));
	b->kind = kind;
	b->unknown_log = (struct ratelimit)RATELIMIT_INIT(10, 1);
}

int io_bus_register(struct io_bus *b, uint64_t base, uint64_t len, io_handler fn, void *opaque, const char *name,
		    struct err *e)
{
	if (len == 0 || base + len < base)
		return err_set(e, "%s range of %s is empty or wraps", b->kind, name);
	if (b->n == IO_BUS_MAX_RANGES)
		return err_set(e, "too many %s ranges registering %s", b->kind, name);
	int at = 0;
	while (at < b->n && b->ranges[at].base < base)
		at++;
	if ((at > 0 && b->ranges[at - 1].base + b->ranges[at - 1].len > base) ||
	    (at < b->n && base + len > b->ranges[at].base)) {
		const struct io_range *o = at > 0 && b->ranges[at - 1].base + b->ranges[at - 1].len > base
			? &b->ranges[at - 1]
			: &b->ranges[at];
		return err_set(e, "%s range 0x%" PRIx64 "+0x%" PRIx64 " of %s overlaps %s", b->kind, base, len, name,
			       o->name);
	}
	memmove(&b->ranges[at + 1], &b->ranges[at], sizeof(b->ranges[0]) * (size_t)(b->n - at));
	b->ranges[at] = (struct io_range){base, len, fn, opaque, name};
	b->n++;
	return 0;
}

void io_bus_set_fallback(struct io_bus *b, io_fallback fn, void *opaque)
{
	b->fallback = fn;
	b->fallback_opaque = opaque;
}

static const struct io_range *find(const struct io_bus *b, uint64_t addr)
{
	int lo = 0, hi = b->n;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		const struct io_range *r = &b->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool io_bus_dispatch(struct io_bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct io_range *r = find(b, addr);
	if (r && len <= r->len - (addr - r->base)) {
		r->fn(r->opaque, addr - r->base, data, len, is_write);
		return true;
	}
	if (b->fallback && b->fallback(b->fallback_opaque, addr, data, len, is_write))
		return true;
	if (!is_write)
		memset(data, 0xff, len);
	__atomic_add_fetch(&b->unknown_count, 1, __ATOMIC_RELAXED);
	uint64_t suppressed = 0;
	if (log_enabled(LOG_WARN) && ratelimit_allow(&b->unknown_log, &suppressed)) {
		uint64_t v = 0;
		memcpy(&v, data, len < 8 ? len : 8);
		char value[40] = "";
		if (is_write)
			snprintf(value, sizeof(value), " value 0x%" PRIx64, v);
		log_warn("guest %s %u-byte %s 0x%" PRIx64 "%s: no device there, ignored"
			 " (%" PRIu64 " similar messages suppressed)",
			 is_write ? "wrote" : "read", len, b->kind, addr, value, suppressed);
	}
	return false;
}

void io_absent(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0xff, len);
}

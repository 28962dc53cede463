/* test_bus: io_bus registration (overlaps, empty ranges, the range limit) and dispatch
 * (offsets, straddling and unclaimed accesses). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "vmm/io/bus.h"

/* What a handler saw last. */
struct probe {
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t value;
};

static void probe_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct probe *p = opaque;
	p->calls++;
	p->offset = offset;
	p->len = len;
	p->is_write = is_write;
	if (is_write)
		p->value = data[0];
	else
		memset(data, 0x42, len);
}

static int bus_setup(void **state)
{
	struct io_bus *b = calloc(1, sizeof(*b));
	if (!b)
		return -1;
	io_bus_init(b, "port");
	*state = b;
	return 0;
}

static int bus_teardown(void **state)
{
	free(*state);
	return 0;
}

static void bus_register_overlap(void **state)
{
	struct io_bus *b = *state;
	struct probe p = {0};
	struct err e = {{0}};
	assert_int_equal(io_bus_register(b, 0x3f8, 8, probe_io, &p, "serial", &e), 0);
	assert_int_equal(io_bus_register(b, 0x60, 1, probe_io, &p, "i8042-data", &e), 0);

	/* Overlapping the start, the end, the inside, all of it, or sharing the base. */
	static const uint64_t clash[][2] = {
		{0x3f0, 0x9}, {0x3ff, 4}, {0x3fa, 1}, {0x3f0, 0x20}, {0x3f8, 1},
	};
	for (size_t i = 0; i < sizeof(clash) / sizeof(clash[0]); i++) {
		e.msg[0] = '\0';
		assert_int_equal(io_bus_register(b, clash[i][0], clash[i][1], probe_io, &p, "intruder", &e), -1);
		assert_contains(e.msg, "intruder");
		assert_contains(e.msg, "serial");
	}
	/* The range just before and just after are free. */
	assert_int_equal(io_bus_register(b, 0x3f0, 8, probe_io, &p, "below", &e), 0);
	assert_int_equal(io_bus_register(b, 0x400, 1, probe_io, &p, "above", &e), 0);
	assert_int_equal(io_bus_register(b, 0x3ff, 1, probe_io, &p, "late", &e), -1);
	assert_contains(e.msg, "late");
	assert_contains(e.msg, "serial");
	assert_int_equal(io_bus_register(b, 0x5f, 2, probe_io, &p, "early", &e), -1);
	assert_contains(e.msg, "i8042-data");
	assert_int_equal(b->n, 4);
}

static void bus_register_empty(void **state)
{
	struct io_bus *b = *state;
	struct probe p = {0};
	struct err e = {{0}};
	assert_int_equal(io_bus_register(b, 0x80, 0, probe_io, &p, "nothing", &e), -1);
	assert_contains(e.msg, "nothing");
	assert_contains(e.msg, "empty");
	assert_int_equal(io_bus_register(b, UINT64_MAX - 1, 4, probe_io, &p, "wrapper", &e), -1);
	assert_contains(e.msg, "wraps");
	assert_int_equal(b->n, 0);
}

static void bus_dispatch_offsets(void **state)
{
	struct io_bus *b = *state;
	struct probe serial = {0}, pm = {0};
	struct err e = {{0}};
	assert_int_equal(io_bus_register(b, 0x600, 3, probe_io, &pm, "pm", &e), 0);
	assert_int_equal(io_bus_register(b, 0x3f8, 8, probe_io, &serial, "serial", &e), 0);

	uint8_t data[4] = {0x7a};
	assert_true(io_bus_dispatch(b, 0x3fd, data, 1, true));
	assert_int_equal(serial.calls, 1);
	assert_int_equal(serial.offset, 5);
	assert_int_equal(serial.len, 1);
	assert_true(serial.is_write);
	assert_int_equal(serial.value, 0x7a);
	assert_int_equal(pm.calls, 0);

	/* A 2-byte read at the last two bytes of a range is inside it. */
	memset(data, 0, sizeof(data));
	assert_true(io_bus_dispatch(b, 0x601, data, 2, false));
	assert_int_equal(pm.calls, 1);
	assert_int_equal(pm.offset, 1);
	assert_int_equal(pm.len, 2);
	assert_false(pm.is_write);
	assert_int_equal(data[0], 0x42);
	assert_int_equal(data[1], 0x42);
	assert_int_equal(b->unknown_count, 0);
}

static void bus_dispatch_straddle(void **state)
{
	struct io_bus *b = *state;
	struct probe p = {0};
	struct err e = {{0}};
	assert_int_equal(io_bus_register(b, 0x600, 3, probe_io, &p, "pm", &e), 0);
	uint8_t data[4] = {1, 2, 3, 4};
	/* 0x602..0x603 runs one byte past the range. */
	assert_false(io_bus_dispatch(b, 0x602, data, 2, false));
	assert_int_equal(p.calls, 0);
	assert_int_equal(data[0], 0xff);
	assert_int_equal(data[1], 0xff);
	assert_int_equal(data[2], 3);
	assert_false(io_bus_dispatch(b, 0x600, data, 4, true));
	assert_int_equal(p.calls, 0);
	assert_int_equal(b->unknown_count, 2);
}

static void bus_dispatch_unclaimed(void **state)
{
	struct io_bus *b = *state;
	struct probe p = {0};
	struct err e = {{0}};
	assert_int_equal(io_bus_register(b, 0x70, 2, probe_io, &p, "rtc", &e), 0);
	uint8_t data[8] = {0};
	assert_false(io_bus_dispatch(b, 0x72, data, 4, false));
	for (int i = 0; i < 4; i++)
		assert_int_equal(data[i], 0xff);
	assert_int_equal(data[4], 0);
	assert_int_equal(b->unknown_count, 1);
	/* Unclaimed writes leave the buffer as it was. */
	memset(data, 0x12, sizeof(data));
	assert_false(io_bus_dispatch(b, 0x6f, data, 1, true));
	assert_int_equal(data[0], 0x12);
	assert_int_equal(b->unknown_count, 2);
	/* Far beyond, below and between. */
	assert_false(io_bus_dispatch(b, 0xffff, data, 1, false));
	assert_false(io_bus_dispatch(b, 0, data, 8, false));
	assert_int_equal(b->unknown_count, 4);
	assert_int_equal(p.calls, 0);
}

static void bus_io_absent(void **state)
{
	struct io_bus *b = *state;
	struct err e = {{0}};
	assert_int_equal(io_bus_register(b, 0x80, 1, io_absent, NULL, "post", &e), 0);
	uint8_t data[1] = {0};
	assert_true(io_bus_dispatch(b, 0x80, data, 1, false));
	assert_int_equal(data[0], 0xff);
	data[0] = 0x33;
	assert_true(io_bus_dispatch(b, 0x80, data, 1, true));
	assert_int_equal(data[0], 0x33);
	assert_int_equal(b->unknown_count, 0);
}

static void bus_max_ranges(void **state)
{
	struct io_bus *b = *state;
	static struct probe probes[IO_BUS_MAX_RANGES];
	struct err e = {{0}};
	/* Registered out of order, so that the sorted insert is exercised. */
	for (unsigned i = 0; i < IO_BUS_MAX_RANGES; i++) {
		unsigned slot = (i * 37) % IO_BUS_MAX_RANGES;
		assert_int_equal(io_bus_register(b, 0x1000 + 0x10 * slot, 4, probe_io, &probes[slot], "dev", &e), 0);
	}
	assert_int_equal(b->n, IO_BUS_MAX_RANGES);
	assert_int_equal(io_bus_register(b, 0x9000, 1, probe_io, NULL, "one too many", &e), -1);
	assert_contains(e.msg, "too many");
	assert_contains(e.msg, "one too many");
	for (unsigned i = 1; i < IO_BUS_MAX_RANGES; i++)
		assert_true(b->ranges[i - 1].base < b->ranges[i].base);
	/* Each one still gets its own accesses. */
	for (unsigned slot = 0; slot < IO_BUS_MAX_RANGES; slot++) {
		uint8_t v = (uint8_t)slot;
		assert_true(io_bus_dispatch(b, 0x1000 + 0x10 * slot + 3, &v, 1, true));
		assert_int_equal(probes[slot].calls, 1);
		assert_int_equal(probes[slot].offset, 3);
		assert_int_equal(probes[slot].value, slot);
		assert_false(io_bus_dispatch(b, 0x1000 + 0x10 * slot + 4, &v, 1, true));
	}
}

int main(void)
{
	/* Unclaimed accesses are logged as warnings; these tests make many on purpose. */
	log_set_level(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, bus_setup, bus_teardown)
	const struct CMUnitTest tests[] = {
		T(bus_register_overlap),   T(bus_register_empty), T(bus_dispatch_offsets), T(bus_dispatch_straddle),
		T(bus_dispatch_unclaimed), T(bus_io_absent),      T(bus_max_ranges),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

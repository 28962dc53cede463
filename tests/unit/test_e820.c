/* test_e820: the guest memory map for small, 3 GiB, 4 GiB and 8 GiB guests, and the RAM-only
 * map a firmware gets. */
#include "unit.h"

#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static int build(uint64_t mem, struct e820_entry *map)
{
	return e820_build(mem, map, E820_MAX_ENTRIES);
}

static void assert_entry(const struct e820_entry *en, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(en->addr, addr);
	assert_int_equal(en->size, size);
	assert_int_equal(en->type, type);
}

/* The four entries every map starts with: low RAM, EBDA, BIOS area, RAM from 1 MiB. */
static void assert_low(const struct e820_entry *map, uint64_t ram_below_hole)
{
	assert_entry(&map[0], 0, 0x9fc00, E820_RAM);
	assert_entry(&map[1], 0x9fc00, 0x400, E820_RESERVED);
	assert_entry(&map[2], 0xe0000, 0x20000, E820_RESERVED);
	assert_entry(&map[3], 0x100000, ram_below_hole - 0x100000, E820_RAM);
}

/* Sum of RAM entries, with a check that the entries are sorted and do not overlap. */
static uint64_t ram_total(const struct e820_entry *map, int n)
{
	uint64_t total = 0, end = 0;
	for (int i = 0; i < n; i++) {
		assert_true(map[i].addr >= end);
		assert_true(map[i].size > 0);
		end = map[i].addr + map[i].size;
		if (map[i].type == E820_RAM)
			total += map[i].size;
	}
	return total;
}

/* RAM given to the guest: all of it but the EBDA and the 0xa0000-1 MiB range. */
static uint64_t expected_ram(uint64_t mem)
{
	return mem - (0x100000 - 0x9fc00);
}

static void e820_64m(void **state)
{
	(void)state;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = build(64 * MIB, map);
	assert_int_equal(n, 5);
	/* PCI ECAM, reserved in the hole. */
	assert_entry(&map[4], LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED);
	assert_low(map, 64 * MIB);
	assert_int_equal(ram_total(map, n), expected_ram(64 * MIB));
}

static void e820_3g(void **state)
{
	(void)state;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = build(3 * GIB, map);
	/* Exactly fills the RAM below the PCI hole: nothing above 4 GiB. */
	assert_int_equal(n, 5);
	assert_low(map, 3 * GIB);
	assert_int_equal(map[3].addr + map[3].size, LAYOUT_PCI_HOLE);
	assert_int_equal(ram_total(map, n), expected_ram(3 * GIB));
}

static void e820_4g(void **state)
{
	(void)state;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = build(4 * GIB, map);
	assert_int_equal(n, 6);
	assert_low(map, 3 * GIB);
	/* The 3-4 GiB hole moves its gigabyte above 4 GiB. */
	assert_entry(&map[5], 4 * GIB, 1 * GIB, E820_RAM);
	assert_int_equal(ram_total(map, n), expected_ram(4 * GIB));
	/* No RAM in the hole. */
	for (int i = 0; i < n; i++)
		if (map[i].type == E820_RAM)
			assert_true(map[i].addr + map[i].size <= 3 * GIB || map[i].addr >= 4 * GIB);
}

static void e820_8g(void **state)
{
	(void)state;
	struct e820_entry map[E820_MAX_ENTRIES];
	int n = build(8 * GIB, map);
	assert_int_equal(n, 6);
	assert_low(map, 3 * GIB);
	assert_entry(&map[5], 4 * GIB, 5 * GIB, E820_RAM);
	assert_int_equal(ram_total(map, n), expected_ram(8 * GIB));
}

static void e820_too_small(void **state)
{
	(void)state;
	struct e820_entry map[E820_MAX_ENTRIES];
	assert_int_equal(build(2 * MIB - 1, map), -1);
	assert_int_equal(build(1 * MIB, map), -1);
	assert_int_equal(build(0, map), -1);
	assert_int_equal(build(2 * MIB, map), 5);
	assert_entry(&map[3], MIB, MIB, E820_RAM);
}

static void e820_no_room(void **state)
{
	(void)state;
	/* A table too small for the map is an error, not a truncated map. */
	struct e820_entry map[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(8 * GIB, map, 5), -1);
	assert_int_equal(e820_build(8 * GIB, map, 6), 6);
	assert_int_equal(e820_build(64 * MIB, map, 3), -1);
}

/* The firmware's map: the RAM regions as they are; RAM above 4 GiB the same as direct boot's. */
static void e820_ram_only(void **state)
{
	(void)state;
	struct ram_region ram[2];
	struct e820_entry map[E820_MAX_ENTRIES], direct[E820_MAX_ENTRIES];
	int nram = layout_ram_regions(8 * GIB, ram);
	assert_int_equal(e820_ram_map(ram, nram, map, E820_MAX_ENTRIES), 2);
	assert_entry(&map[0], 0, LAYOUT_PCI_HOLE, E820_RAM);
	assert_entry(&map[1], LAYOUT_4G, 8 * GIB - LAYOUT_PCI_HOLE, E820_RAM);
	int n = build(8 * GIB, direct);
	assert_memory_equal(&direct[n - 1], &map[1], sizeof(map[1]));
	nram = layout_ram_regions(64 * MIB, ram);
	assert_int_equal(e820_ram_map(ram, nram, map, E820_MAX_ENTRIES), 1);
	assert_entry(&map[0], 0, 64 * MIB, E820_RAM);
	/* No room: an error, not a shorter map. */
	nram = layout_ram_regions(8 * GIB, ram);
	assert_int_equal(e820_ram_map(ram, nram, map, 1), -1);
	assert_int_equal(e820_ram_map(ram, 0, map, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(e820_64m),      cmocka_unit_test(e820_3g),        cmocka_unit_test(e820_4g),
		cmocka_unit_test(e820_8g),       cmocka_unit_test(e820_too_small), cmocka_unit_test(e820_no_room),
		cmocka_unit_test(e820_ram_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

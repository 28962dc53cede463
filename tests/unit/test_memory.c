/* test_memory: guest RAM: a 2 MiB-aligned host mapping (huge pages), the split around the PCI
 * hole, and guest_mem_ptr refusing every range that is not entirely inside one RAM region. */
#include "unit.h"

#include "vmm/memory.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static void memory_aligned_and_split(void **state)
{
	(void)state;
	struct guest_mem m;
	struct err e;
	assert_int_equal(guest_mem_init(&m, 3 * GIB + 512 * MIB, &e), 0);
	assert_int_equal((uintptr_t)m.host % (2 * MIB), 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.regions[1].gpa, 4 * GIB);
	assert_int_equal(m.regions[1].size, 512 * MIB);
	/* Both sides of the hole map to consecutive host memory. */
	assert_ptr_equal(guest_mem_ptr(&m, 4 * GIB, 1), m.host + 3 * GIB);
	uint8_t *low = guest_mem_ptr(&m, 3 * GIB - 1, 1);
	assert_non_null(low);
	*low = 0x5a;
	assert_null(guest_mem_ptr(&m, 3 * GIB - 1, 2));         /* runs into the hole */
	assert_null(guest_mem_ptr(&m, 3 * GIB, 1));             /* in the hole */
	assert_null(guest_mem_ptr(&m, 4 * GIB + 512 * MIB, 1)); /* past the end */
	assert_null(guest_mem_ptr(&m, 4 * GIB, UINT64_MAX));    /* huge length */
	assert_null(guest_mem_ptr(&m, UINT64_MAX, 2));          /* wrapping */
	assert_non_null(guest_mem_ptr(&m, 0, 3 * GIB));
	guest_mem_free(&m);
}

static void memory_small(void **state)
{
	(void)state;
	struct guest_mem m;
	struct err e;
	assert_int_equal(guest_mem_init(&m, 64 * MIB, &e), 0);
	assert_int_equal((uintptr_t)m.host % (2 * MIB), 0);
	assert_int_equal(m.nregions, 1);
	assert_non_null(guest_mem_ptr(&m, 64 * MIB - 4, 4));
	assert_null(guest_mem_ptr(&m, 64 * MIB - 4, 5));
	assert_non_null(guest_mem_ptr(&m, 64 * MIB, 0)); /* an empty range at the very end */
	assert_int_equal(guest_mem_resident(&m) < 64 * MIB, 1);
	guest_mem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(memory_aligned_and_split),
		cmocka_unit_test(memory_small),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_cpuid: cpuid_patch's topology leaves (1, 4, 0xB, 0x80000008, 0x8000001E),
 * cpuid_features (no nested virtualization, no LA57, the TSC-deadline timer) and cpuid_order. */
#include "unit.h"

#include <stdlib.h>

#include "vmm/cpu/cpuid.h"

enum { E_LEAF1, E_L1D, E_L3, E_NULLCACHE, E_B0, E_B1, E_B2, E_AMD8, E_AMD1E, E_LEAF7, E_COUNT };

/* A host-like CPUID table with stale topology everywhere cpuid_patch should rewrite it. */
static struct kvm_cpuid2 *table_new(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + E_COUNT * sizeof(c->entries[0]));
	assert_non_null(c);
	c->nent = E_COUNT;
	struct kvm_cpuid_entry2 *en = c->entries;
	en[E_LEAF1] = (struct kvm_cpuid_entry2){.function = 0x1,
						.eax = 0x000906ea,
						.ebx = 0x07100800,
						.ecx = 0x7ffafbff,
						.edx = 0xbfebfbff};
	/* Leaf 4: type in 4:0, level in 7:5; stale sharing counts in 31:14. */
	en[E_L1D] = (struct kvm_cpuid_entry2){.function = 0x4,
					      .index = 0,
					      .eax = 0xfc004000 | (1 << 5) | 1,
					      .ebx = 0x01c0003f};
	en[E_L3] = (struct kvm_cpuid_entry2){.function = 0x4,
					     .index = 3,
					     .eax = 0xfc03c000 | (3 << 5) | 3,
					     .ebx = 0x03c0003f};
	en[E_NULLCACHE] = (struct kvm_cpuid_entry2){.function = 0x4, .index = 4, .eax = 0xfc000000};
	for (unsigned i = 0; i < 3; i++)
		en[E_B0 + i] = (struct kvm_cpuid_entry2){.function = 0xb,
							 .index = i,
							 .eax = 0x55,
							 .ebx = 0x66,
							 .ecx = 0x77,
							 .edx = 0x88};
	en[E_AMD8] = (struct kvm_cpuid_entry2){.function = 0x80000008, .eax = 0x3030, .ecx = 0x0003f0ff};
	en[E_AMD1E] = (struct kvm_cpuid_entry2){.function = 0x8000001e, .eax = 0x99, .ebx = 0x0100, .ecx = 0x0303};
	en[E_LEAF7] = (struct kvm_cpuid_entry2){.function = 0x7, .eax = 1, .ebx = 2, .ecx = 3, .edx = 4};
	return c;
}

static void cpuid_patch_3_of_4(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table_new();
	cpuid_patch(c, 3, 4);
	struct kvm_cpuid_entry2 *en = c->entries;

	/* Leaf 1: APIC ID in 31:24, 4 addressable IDs in 23:16, low half kept; HTT and
	 * hypervisor set; everything else kept. */
	assert_int_equal(en[E_LEAF1].ebx, 0x03040800);
	assert_int_equal(en[E_LEAF1].ebx >> 24, 3);
	assert_true(en[E_LEAF1].ecx & (1u << 31));
	assert_int_equal(en[E_LEAF1].ecx & 0x7fffffff, 0x7ffafbff);
	assert_true(en[E_LEAF1].edx & (1u << 28));
	assert_int_equal(en[E_LEAF1].eax, 0x000906ea);

	/* Leaf 4: 4 cores a package; only the L3 is shared by all of them. */
	assert_int_equal(en[E_L1D].eax, (3u << 26) | (1 << 5) | 1);
	assert_int_equal(en[E_L3].eax, (3u << 26) | (3u << 14) | (3 << 5) | 3);
	assert_int_equal(en[E_L3].ebx, 0x03c0003f);
	assert_int_equal(en[E_NULLCACHE].eax, 0xfc000000);

	/* Leaf 0xB: SMT level of one thread, core level of 4 cores, then the end. */
	assert_int_equal(en[E_B0].eax, 0);
	assert_int_equal(en[E_B0].ebx, 1);
	assert_int_equal(en[E_B0].ecx, 0x100);
	assert_int_equal(en[E_B1].eax, cpuid_order(4));
	assert_int_equal(en[E_B1].ebx, 4);
	assert_int_equal(en[E_B1].ecx, 0x201);
	assert_int_equal(en[E_B2].eax, 0);
	assert_int_equal(en[E_B2].ebx, 0);
	assert_int_equal(en[E_B2].ecx, 2);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(en[E_B0 + i].edx, 3);

	/* AMD: NC = 3, ApicIdCoreIdSize = 2, other bits kept; the vCPU's IDs. */
	assert_int_equal(en[E_AMD8].ecx, 0x00032003);
	assert_int_equal(en[E_AMD8].eax, 0x3030);
	assert_int_equal(en[E_AMD1E].eax, 3);
	assert_int_equal(en[E_AMD1E].ebx, 3);
	assert_int_equal(en[E_AMD1E].ecx, 0);

	/* Leaves outside the topology are left alone. */
	assert_int_equal(en[E_LEAF7].eax, 1);
	assert_int_equal(en[E_LEAF7].ebx, 2);
	assert_int_equal(en[E_LEAF7].ecx, 3);
	assert_int_equal(en[E_LEAF7].edx, 4);
	free(c);
}

static void cpuid_patch_1_of_1(void **state)
{
	(void)state;
	struct kvm_cpuid2 *c = table_new();
	cpuid_patch(c, 0, 1);
	struct kvm_cpuid_entry2 *en = c->entries;

	assert_int_equal(en[E_LEAF1].ebx, 0x00010800);
	assert_true(en[E_LEAF1].ecx & (1u << 31));
	assert_false(en[E_LEAF1].edx & (1u << 28)); /* HTT cleared: host had it */
	assert_int_equal(en[E_L1D].eax, (1 << 5) | 1);
	assert_int_equal(en[E_L3].eax, (3 << 5) | 3);
	assert_int_equal(en[E_B1].eax, 0);
	assert_int_equal(en[E_B1].ebx, 1);
	assert_int_equal(en[E_B1].edx, 0);
	assert_int_equal(en[E_AMD8].ecx, 0x00030000);
	assert_int_equal(en[E_AMD1E].eax, 0);
	free(c);
}

/* No VMX or SVM (and SVM's leaf empty), no LA57; the TSC-deadline timer only where KVM has it. */
static void cpuid_features_no_nested_virt(void **state)
{
	(void)state;
	for (int deadline = 0; deadline <= 1; deadline++) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 5 * sizeof(c->entries[0]));
		assert_non_null(c);
		c->nent = 5;
		c->entries[3] = (struct kvm_cpuid_entry2){.function = 0x7, .index = 0, .ecx = 0x1ffffu, .ebx = 5};
		c->entries[4] = (struct kvm_cpuid_entry2){.function = 0x7, .index = 1, .ecx = 0x1ffffu};
		c->entries[0] = (struct kvm_cpuid_entry2){.function = 0x1, .ecx = 0x00fffe20u, .edx = 7};
		c->entries[1] = (struct kvm_cpuid_entry2){.function = 0x80000001, .ecx = 0x37u, .edx = 9};
		c->entries[2] = (struct kvm_cpuid_entry2){.function = 0x8000000a, .eax = 1, .ebx = 8, .edx = 0x1ff};
		cpuid_features(c, deadline);
		assert_int_equal(c->entries[0].ecx, deadline ? 0x00fffe00u | (1u << 24) : 0x00fffe00u);
		assert_int_equal(c->entries[0].edx, 7);
		assert_int_equal(c->entries[1].ecx, 0x33u);
		assert_int_equal(c->entries[1].edx, 9);
		assert_int_equal(c->entries[2].eax | c->entries[2].ebx | c->entries[2].ecx | c->entries[2].edx, 0);
		assert_int_equal(c->entries[3].ecx, 0xffffu); /* LA57 (bit 16) gone, the rest kept */
		assert_int_equal(c->entries[3].ebx, 5);
		assert_int_equal(c->entries[4].ecx, 0x1ffffu); /* another subleaf's bit 16 is not LA57 */
		free(c);
	}
}

static void cpuid_patch_many(void **state)
{
	(void)state;
	/* Every vCPU of a 6-vCPU machine sees its own APIC ID and the same counts. */
	for (unsigned id = 0; id < 6; id++) {
		struct kvm_cpuid2 *c = table_new();
		cpuid_patch(c, id, 6);
		assert_int_equal(c->entries[E_LEAF1].ebx >> 24, id);
		assert_int_equal((c->entries[E_LEAF1].ebx >> 16) & 0xff, 8);
		assert_int_equal(c->entries[E_B1].ebx, 6);
		assert_int_equal(c->entries[E_B1].eax, 3);
		assert_int_equal(c->entries[E_B1].edx, id);
		assert_int_equal(c->entries[E_AMD8].ecx & 0xff, 5);
		free(c);
	}
}

static void cpuid_order_values(void **state)
{
	(void)state;
	assert_int_equal(cpuid_order(1), 0);
	assert_int_equal(cpuid_order(2), 1);
	assert_int_equal(cpuid_order(3), 2);
	assert_int_equal(cpuid_order(4), 2);
	assert_int_equal(cpuid_order(5), 3);
	assert_int_equal(cpuid_order(8), 3);
	assert_int_equal(cpuid_order(9), 4);
	assert_int_equal(cpuid_order(128), 7);
	assert_int_equal(cpuid_order(254), 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpuid_patch_3_of_4), cmocka_unit_test(cpuid_patch_1_of_1),
		cmocka_unit_test(cpuid_patch_many),   cmocka_unit_test(cpuid_features_no_nested_virt),
		cmocka_unit_test(cpuid_order_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

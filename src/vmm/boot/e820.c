/* e820: builds the guest's memory map from the RAM layout (see e820.h). */
#include "e820.h"

#include "layout.h"

static int add(struct e820_entry *out, int n, int max, uint64_t addr, uint64_t size, uint32_t type)
{
	if (n < 0 || n >= max || size == 0)
		return n < 0 || n >= max ? -1 : n;
	out[n] = (struct e820_entry){.addr = addr, .size = size, .type = type};
	return n + 1;
}

int e820_build(uint64_t mem_size, struct e820_entry *out, int max)
{
	if (mem_size < 2 * LAYOUT_HIGH_MEM)
		return -1;
	struct ram_region ram[2];
	int nram = layout_ram_regions(mem_size, ram);
	int n = 0;
	n = add(out, n, max, 0, LAYOUT_EBDA, E820_RAM);
	n = add(out, n, max, LAYOUT_EBDA, 0xa0000 - LAYOUT_EBDA, E820_RESERVED);
	n = add(out, n, max, LAYOUT_ACPI, LAYOUT_HIGH_MEM - LAYOUT_ACPI, E820_RESERVED);
	n = add(out, n, max, LAYOUT_HIGH_MEM, ram[0].size - LAYOUT_HIGH_MEM, E820_RAM);
	n = add(out, n, max, LAYOUT_PCI_ECAM, LAYOUT_PCI_ECAM_SIZE, E820_RESERVED);
	if (n < 0)
		return -1;
	int high = e820_ram_map(ram + 1, nram - 1, out + n, max - n);
	return high < 0 ? -1 : n + high;
}

int e820_ram_map(const struct ram_region *regions, int nregions, struct e820_entry *out, int max)
{
	int n = 0;
	for (int i = 0; i < nregions; i++)
		n = add(out, n, max, regions[i].gpa, regions[i].size, E820_RAM);
	return n;
}

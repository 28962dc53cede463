/* layout: the RAM split around the 32-bit PCI hole (see layout.h). */
#include "layout.h"

int layout_ram_regions(uint64_t mem_size, struct ram_region out[2])
{
	out[0] = (struct ram_region){0, layout_below_4g(mem_size)};
	if (!layout_above_4g(mem_size))
		return 1;
	out[1] = (struct ram_region){LAYOUT_4G, layout_above_4g(mem_size)};
	return 2;
}

uint64_t layout_below_4g(uint64_t mem_size)
{
	return mem_size < LAYOUT_PCI_HOLE ? mem_size : LAYOUT_PCI_HOLE;
}

uint64_t layout_above_4g(uint64_t mem_size)
{
	return mem_size - layout_below_4g(mem_size);
}

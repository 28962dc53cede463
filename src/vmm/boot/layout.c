/* layout: the RAM split around the 32-bit PCI hole (see layout.h). */
#include "layout.h"

int layout_ram_regions(uint64_t mem_size, struct ram_region out[2])
{
	if (mem_size <= LAYOUT_PCI_HOLE) {
		out[0] = (struct ram_region){0, mem_size};
		return 1;
	}
	out[0] = (struct ram_region){0, LAYOUT_PCI_HOLE};
	out[1] = (struct ram_region){LAYOUT_4G, mem_size - LAYOUT_PCI_HOLE};
	return 2;
}

/* fw_cfg_setup: the fw_cfg content of a firmware boot (see fw_cfg_setup.h). */
#include "fw_cfg_setup.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_loader.h"
#include "e820.h"
#include "layout.h"

_Static_assert(LAYOUT_4G - LAYOUT_PCI_HOLE >= (1ull << 30), "the PCI hole leaves OVMF at least 1 GiB");

void fw_cfg_acpi_params_ovmf(struct acpi_params *p, unsigned ncpus, const struct guest_mem *mem, uint64_t ecam_base)
{
	/* Region 0 is the RAM from 0 (layout.h), at most LAYOUT_PCI_HOLE: the gap is at least 1 GiB. */
	uint64_t gap = LAYOUT_4G - mem->regions[0].size;
	uint64_t pow2 = 1ull << 31;
	while (pow2 > gap)
		pow2 >>= 1;
	uint64_t base = LAYOUT_4G - pow2;
	*p = (struct acpi_params){
		.ncpus = ncpus,
		.ecam_base = ecam_base,
		.pci_window_base = (uint32_t)base,
		.pci_window_size = (uint32_t)(OVMF_PCI_WINDOW_END - base),
		.ecam_motherboard_resource = true,
	};
}

int fw_cfg_add_acpi(struct fw_cfg *f, const struct acpi_params *p, struct err *e)
{
	uint8_t *tables = malloc(LAYOUT_ACPI_SIZE);
	if (!tables)
		return err_set(e, "out of memory for the ACPI tables");
	uint8_t script[ACPI_LOADER_MAX_ENTRIES * ACPI_LOADER_ENTRY_SIZE];
	struct acpi_blob b;
	long len = -1;
	if (acpi_build_tables(p, tables, LAYOUT_ACPI_SIZE, &b, e) == 0)
		len = acpi_loader_script(&b, script, e);
	int ret = -1;
	if (len >= 0 && fw_cfg_add_file(f, ACPI_LOADER_TABLES, b.buf, b.len, e) == 0 &&
	    fw_cfg_add_file(f, ACPI_LOADER_RSDP, b.rsdp, sizeof(b.rsdp), e) == 0)
		ret = fw_cfg_add_file(f, ACPI_LOADER_SCRIPT, script, (size_t)len, e);
	free(tables);
	return ret;
}

static int add_cpus_and_ram(struct fw_cfg *f, const struct guest_mem *mem, unsigned ncpus, struct err *e)
{
	uint16_t cpus = htole16((uint16_t)ncpus);
	uint64_t ram = htole64(mem->size);
	if (fw_cfg_add_item(f, FW_CFG_NB_CPUS, &cpus, sizeof(cpus), e) < 0 ||
	    fw_cfg_add_item(f, FW_CFG_MAX_CPUS, &cpus, sizeof(cpus), e) < 0 ||
	    fw_cfg_add_item(f, FW_CFG_RAM_SIZE, &ram, sizeof(ram), e) < 0)
		return -1;
	struct e820_entry map[2];
	int n = e820_ram_map(mem->regions, mem->nregions, map, 2);
	if (n < 0)
		return err_set(e, "guest RAM has more regions than the firmware's E820 map holds");
	return fw_cfg_add_file(f, FW_CFG_FILE_E820, map, (size_t)n * sizeof(map[0]), e);
}

int fw_cfg_bootorder(const uint8_t *slots, const uint8_t *fns, unsigned n, char **out, struct err *e)
{
	size_t cap = (size_t)n * 40 + 1, len = 0;
	*out = NULL;
	if (!n)
		return 0;
	char *s = malloc(cap);
	if (!s)
		return err_set(e, "out of memory for the firmware's boot order");
	for (unsigned i = 0; i < n; i++) {
		int r = snprintf(s + len, cap - len,
				 fns[i] ? "%s/pci@i0cf8/scsi@%x,%x/disk@0,0" : "%s/pci@i0cf8/scsi@%x/disk@0,0",
				 i ? "\n" : "", slots[i], fns[i]);
		if (r < 0 || (size_t)r >= cap - len) {
			free(s);
			return err_set(e, "the firmware's boot order does not fit its buffer");
		}
		len += (size_t)r;
	}
	*out = s;
	return 0;
}

int fw_cfg_setup_firmware(struct fw_cfg *f, const struct guest_mem *mem, const struct acpi_params *p,
			  const char *bootorder, struct err *e)
{
	if (add_cpus_and_ram(f, mem, p->ncpus, e) < 0 || fw_cfg_add_acpi(f, p, e) < 0 ||
	    fw_cfg_add_file(f, FW_CFG_FILE_MMIO64MB, "0", 1, e) < 0)
		return -1;
	if (bootorder)
		return fw_cfg_add_file(f, FW_CFG_FILE_BOOT, bootorder, strlen(bootorder) + 1, e);
	return 0;
}

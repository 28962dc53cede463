/* acpi_pm: the ACPI hardware-reduced sleep control/status and reset registers the FADT points
 * at: S5 means power off, the reset value means reboot. */
#ifndef SHOJI_VMM_DEVICES_ACPI_PM_H
#define SHOJI_VMM_DEVICES_ACPI_PM_H

#include <stdbool.h>
#include <stdint.h>

#include "../machine.h"

void acpi_pm_io(void *machine, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif

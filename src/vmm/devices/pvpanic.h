/* pvpanic: the QEMU-compatible panic-notification port (ACPI "QEMU0001" at 0x505): the guest
 * writes 1 when it panics, 2 when a crash kernel is loaded. */
#ifndef SHOJI_VMM_DEVICES_PVPANIC_H
#define SHOJI_VMM_DEVICES_PVPANIC_H

#include <stdbool.h>
#include <stdint.h>

#include "../machine.h"

#define PVPANIC_PANICKED     0x01
#define PVPANIC_CRASH_LOADED 0x02

void pvpanic_io(void *machine, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif

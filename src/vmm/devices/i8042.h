/* i8042: just enough of the PS/2 keyboard controller for the guest's reset (command 0xFE on
 * port 0x64); the controller reports itself idle and empty. */
#ifndef SHOJI_VMM_DEVICES_I8042_H
#define SHOJI_VMM_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include "../machine.h"

/* Registered on the data port (0x60) and the command port (0x64); offset 0 is the port. */
void i8042_data_io(void *machine, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *machine, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif

/* i8042: keyboard-controller reset line (see i8042.h). */
#include "i8042.h"

#include <string.h>

#define CMD_PULSE_RESET 0xfe

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0, len); /* no key data */
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct machine *m = opaque;
	(void)offset;
	if (!is_write) {
		memset(data, 0, len); /* status: output empty, input empty */
		return;
	}
	if (data[0] == CMD_PULSE_RESET)
		m->request_exit(m, MACHINE_REBOOT, "guest reset the machine (keyboard controller)");
}

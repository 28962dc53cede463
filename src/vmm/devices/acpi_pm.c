/* acpi_pm: hardware-reduced ACPI power registers (see acpi_pm.h, ACPI 6.x 4.8.3.7-9). */
#include "acpi_pm.h"

#include <string.h>

#include "../platform.h"

#define SLEEP_TYPE(v) (((v) >> 2) & 0x7)
#define SLEEP_ENABLE  0x20

void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct machine *m = opaque;
	if (!is_write) {
		memset(data, 0, len); /* sleep status: never woken */
		return;
	}
	uint8_t v = data[0];
	switch (PORT_PM_BASE + offset) {
	case PORT_PM_SLEEP_CONTROL:
		if ((v & SLEEP_ENABLE) && SLEEP_TYPE(v) == PM_SLEEP_TYPE_S5)
			m->request_exit(m, MACHINE_POWEROFF, "guest powered off (ACPI S5)");
		break;
	case PORT_PM_RESET:
		if (v == PM_RESET_VALUE)
			m->request_exit(m, MACHINE_REBOOT, "guest reset the machine (ACPI reset register)");
		break;
	default: break;
	}
}

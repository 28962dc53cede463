/* pvpanic: guest panic notifications (see pvpanic.h). */
#include "pvpanic.h"

#include <string.h>

#include "../../common/log.h"

void pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct machine *m = opaque;
	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		data[0] = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED; /* the events we understand */
		return;
	}
	if (data[0] & PVPANIC_PANICKED)
		m->request_exit(m, MACHINE_PANIC, "guest kernel panicked (pvpanic)");
	else if (data[0] & PVPANIC_CRASH_LOADED)
		log_info("guest reports a crash kernel is loaded");
}

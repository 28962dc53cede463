/* fake_machine: the recording machine (see fake_machine.h). */
#include "fake_machine.h"

#include <string.h>

static void fake_set_irq(struct machine *m, unsigned gsi, int level)
{
	struct fake_machine *f = (struct fake_machine *)m;
	f->irq_calls++;
	f->last_gsi = gsi;
	f->last_level = level;
}

static void fake_request_exit(struct machine *m, enum machine_exit reason, const char *why)
{
	struct fake_machine *f = (struct fake_machine *)m;
	f->exit_calls++;
	f->exit_reason = reason;
	f->exit_why = why;
}

void fake_machine_init(struct fake_machine *f)
{
	memset(f, 0, sizeof(*f));
	f->m.set_irq = fake_set_irq;
	f->m.request_exit = fake_request_exit;
	f->exit_reason = MACHINE_RUNNING;
}

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

static int fake_msi_route(struct machine *m, unsigned *gsi, uint64_t addr, uint32_t data)
{
	struct fake_machine *f = (struct fake_machine *)m;
	if (*gsi == 0)
		*gsi = 24 + f->next_gsi++;
	f->routes++;
	f->last_route_gsi = *gsi;
	f->last_msi_addr = addr;
	f->last_msi_data = data;
	return 0;
}

static int fake_irqfd(struct machine *m, int fd, unsigned gsi, bool assign)
{
	struct fake_machine *f = (struct fake_machine *)m;
	if (assign) {
		f->irqfds_bound++;
		f->last_irqfd = fd;
		f->last_irqfd_gsi = gsi;
	} else {
		f->irqfds_unbound++;
	}
	return 0;
}

static int fake_ioeventfd(struct machine *m, int fd, uint64_t addr, unsigned len, bool assign)
{
	struct fake_machine *f = (struct fake_machine *)m;
	(void)fd;
	(void)len;
	if (assign) {
		f->ioeventfds++;
		f->last_ioeventfd_addr = addr;
	} else {
		f->ioeventfds_removed++;
	}
	return 0;
}

void fake_machine_init(struct fake_machine *f)
{
	memset(f, 0, sizeof(*f));
	f->m.set_irq = fake_set_irq;
	f->m.request_exit = fake_request_exit;
	f->m.msi_route = fake_msi_route;
	f->m.irqfd = fake_irqfd;
	f->m.ioeventfd = fake_ioeventfd;
	f->exit_reason = MACHINE_RUNNING;
}

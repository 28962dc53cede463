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

static int fake_map_rom(struct machine *m, unsigned slot, uint64_t gpa, uint64_t size, const void *host, bool mapped)
{
	struct fake_machine *f = (struct fake_machine *)m;
	if (f->rom_fail || slot >= FAKE_MACHINE_SLOTS || (mapped && (!size || !host)))
		return -1;
	f->rom[slot] = (struct fake_rom_slot){.mapped = mapped, .gpa = gpa, .size = size, .host = host};
	if (mapped)
		f->rom_maps++;
	else
		f->rom_unmaps++;
	return 0;
}

const uint8_t *fake_machine_rom_byte(const struct fake_machine *f, uint64_t gpa)
{
	for (unsigned i = 0; i < FAKE_MACHINE_SLOTS; i++) {
		const struct fake_rom_slot *r = &f->rom[i];
		if (r->mapped && gpa >= r->gpa && gpa - r->gpa < r->size)
			return (const uint8_t *)r->host + (gpa - r->gpa);
	}
	return NULL;
}

void fake_machine_init(struct fake_machine *f)
{
	memset(f, 0, sizeof(*f));
	f->m.set_irq = fake_set_irq;
	f->m.request_exit = fake_request_exit;
	f->m.msi_route = fake_msi_route;
	f->m.irqfd = fake_irqfd;
	f->m.ioeventfd = fake_ioeventfd;
	f->m.map_rom = fake_map_rom;
	f->exit_reason = MACHINE_RUNNING;
}

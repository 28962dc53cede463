/* test_piix: the chipset functions for the firmware: identities at 00:00.0, 00:01.0 and
 * 00:01.3, the PM block's decode following PMBA and PMREGMISC, the PM timer's rate and width,
 * S5 through PM1 control, the resets at 0xCF9 and 0x92, and hostile writes that do nothing. */
#include "unit.h"

#include "fake_machine.h"
#include "vmm/boot/layout.h"
#include "vmm/devices/piix.h"

static struct fake_machine fm;
static struct pci_bus bus;
static struct io_bus pio;
static struct piix chip;
static uint64_t clock_ns;

static uint64_t fake_clock(void)
{
	return clock_ns;
}

static int setup(void **state)
{
	(void)state;
	struct err e;
	fake_machine_init(&fm);
	pci_bus_init(&bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	io_bus_init(&pio, "port");
	piix_init(&chip, &fm.m);
	chip.now_ns = fake_clock;
	clock_ns = 0;
	assert_int_equal(piix_attach(&chip, &bus, &pio, &e), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pci_bus_destroy(&bus);
	return 0;
}

static uint32_t cfg(unsigned slot, unsigned fn, uint32_t reg, uint32_t len, uint32_t value, bool is_write)
{
	uint32_t addr = 0x80000000u | (slot << 11) | (fn << 8) | (reg & 0xfc);
	pci_conf1_io(&bus, 0, (uint8_t *)&addr, 4, true);
	pci_conf1_io(&bus, 4 + (reg & 3), (uint8_t *)&value, len, is_write);
	return value;
}

static uint32_t port(uint16_t at, uint32_t len, uint32_t value, bool is_write)
{
	io_bus_dispatch(&pio, at, (uint8_t *)&value, len, is_write);
	return value;
}

static void enable_pm(void)
{
	cfg(1, 3, 0x40, 4, PIIX_PM_PORT, true);
	cfg(1, 3, 0x80, 1, 1, true);
}

static void identities(void **state)
{
	(void)state;
	assert_int_equal(cfg(0, 0, 0, 4, 0, false), 0x12378086);
	assert_int_equal(cfg(1, 0, 0, 4, 0, false), 0x70008086);
	assert_int_equal(cfg(1, 3, 0, 4, 0, false), 0x71138086);
	assert_int_equal(cfg(1, 0, 0x8, 4, 0, false) >> 8, 0x060100);
	assert_int_equal(cfg(1, 0, 0xc, 4, 0, false) >> 16 & 0x80, 0x80); /* multi-function */
	assert_int_equal(cfg(1, 1, 0, 4, 0, false), 0xffffffff);
	assert_int_equal(cfg(1, 0, 0x60, 4, 0, false), 0x80808080); /* PIRQ routing off */
	cfg(1, 0, 0x60, 1, 0x0b, true);
	assert_int_equal(cfg(1, 0, 0x60, 1, 0, false), 0x0b);
}

static void pm_block_follows_pmba(void **state)
{
	(void)state;
	/* Off until the firmware enables it: reads float. */
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), 0xffffffff);
	cfg(1, 3, 0x40, 4, 0xffffffff, true);
	assert_int_equal(cfg(1, 3, 0x40, 4, 0, false), 0x0000ffc1); /* bits 15:6, bit 0 hard-wired */
	cfg(1, 3, 0x80, 1, 1, true);
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), 0xffffffff); /* enabled elsewhere */
	enable_pm();
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), 0);
	cfg(1, 3, 0x80, 1, 0, true);
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), 0xffffffff);
}

static void pm_timer(void **state)
{
	(void)state;
	enable_pm();
	clock_ns = 1000000000ull; /* one second: 3579545 ticks */
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), PIIX_PM_TIMER_HZ);
	clock_ns = 5ull * 1000000000ull; /* wraps at 24 bits */
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), (5ull * PIIX_PM_TIMER_HZ) & 0xffffff);
	port(PIIX_PM_PORT + 8, 4, 0, true); /* read-only */
	assert_int_equal(port(PIIX_PM_PORT + 8, 4, 0, false), (5ull * PIIX_PM_TIMER_HZ) & 0xffffff);
}

static void pm_s5_and_hostile_writes(void **state)
{
	(void)state;
	enable_pm();
	port(PIIX_PM_PORT + 4, 2, 1 << 10 | 0x2000, true); /* S1: refused */
	port(PIIX_PM_PORT + 4, 2, 0x0001, true);           /* SCI_EN only */
	assert_int_equal(port(PIIX_PM_PORT + 4, 2, 0, false), 0x0001);
	for (unsigned off = 0; off < PIIX_PM_LEN; off++)
		if (off < 4 || off > 5)
			port(PIIX_PM_PORT + off, 1, 0xff, true);
	assert_int_equal(fm.exit_calls, 0);
	port(PIIX_PM_PORT + 5, 1, 0x20, true); /* SLP_EN, type 0: S5 */
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_POWEROFF);
}

static void resets(void **state)
{
	(void)state;
	uint8_t v = 0x02; /* SYS_RST alone: no reset yet */
	pci_conf1_io(&bus, 1, &v, 1, true);
	assert_int_equal(fm.exit_calls, 0);
	v = 0x06;
	pci_conf1_io(&bus, 1, &v, 1, true);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_REBOOT);
	v = 0;
	pci_conf1_io(&bus, 1, &v, 1, false);
	assert_int_equal(v, 0x06);
	/* Port 0x92: A20 reads back, bit 0 resets. */
	assert_int_equal(port(PIIX_PORT_A, 1, 0, false) & 0xff, 0x02);
	port(PIIX_PORT_A, 1, 0x00, true);
	assert_int_equal(port(PIIX_PORT_A, 1, 0, false) & 0xff, 0x00);
	assert_int_equal(fm.exit_calls, 1);
	port(PIIX_PORT_A, 1, 0x03, true);
	assert_int_equal(fm.exit_calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(identities, setup, teardown),
		cmocka_unit_test_setup_teardown(pm_block_follows_pmba, setup, teardown),
		cmocka_unit_test_setup_teardown(pm_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(pm_s5_and_hostile_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(resets, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

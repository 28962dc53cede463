/* test_devices: the small devices that end the run: ACPI PM registers, i8042 reset, pvpanic. */
#include "unit.h"

#include "common/log.h"
#include "fake_machine.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pvpanic.h"
#include "vmm/platform.h"

static struct fake_machine fm;

static int machine_setup(void **state)
{
	(void)state;
	fake_machine_init(&fm);
	return 0;
}

static void put(void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), uint64_t offset, uint8_t value)
{
	io(&fm.m, offset, &value, 1, true);
}

static void acpi_pm_poweroff(void **state)
{
	(void)state;
	put(acpi_pm_io, PORT_PM_SLEEP_CONTROL - PORT_PM_BASE, (PM_SLEEP_TYPE_S5 << 2) | 0x20);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_POWEROFF);
	assert_non_null(fm.exit_why);
	assert_contains(fm.exit_why, "S5");
}

static void acpi_pm_reboot(void **state)
{
	(void)state;
	put(acpi_pm_io, PORT_PM_RESET - PORT_PM_BASE, PM_RESET_VALUE);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_REBOOT);
}

static void acpi_pm_ignored(void **state)
{
	(void)state;
	/* S5 without SLP_EN, SLP_EN with another sleep type, other reset values, the status
	 * register, and S5 written to the reset register. */
	put(acpi_pm_io, 0, PM_SLEEP_TYPE_S5 << 2);
	put(acpi_pm_io, 0, (3 << 2) | 0x20);
	put(acpi_pm_io, 0, 0x20);
	put(acpi_pm_io, 2, 0x02);
	put(acpi_pm_io, 2, 0x00);
	put(acpi_pm_io, 1, 0x34);
	put(acpi_pm_io, 2, 0x34);
	put(acpi_pm_io, 0, PM_RESET_VALUE);
	assert_int_equal(fm.exit_calls, 0);
	/* Reads: never woken, nothing pending. */
	uint8_t v[2] = {0xee, 0xee};
	acpi_pm_io(&fm.m, 1, v, 1, false);
	assert_int_equal(v[0], 0);
	assert_int_equal(v[1], 0xee);
	/* The other bits of sleep control do not hide S5 | SLP_EN. */
	put(acpi_pm_io, 0, 0x34 | 0x03 | 0xc0);
	assert_int_equal(fm.exit_reason, MACHINE_POWEROFF);
}

static struct i8042 kbc;

static int i8042_setup(void **state)
{
	machine_setup(state);
	i8042_init(&kbc, &fm.m);
	return 0;
}

static int i8042_teardown(void **state)
{
	(void)state;
	i8042_destroy(&kbc);
	return 0;
}

static void kbc_put(void (*io)(void *, uint64_t, uint8_t *, uint32_t, bool), uint8_t value)
{
	io(&kbc, 0, &value, 1, true);
}

static void i8042_reset(void **state)
{
	(void)state;
	kbc_put(i8042_cmd_io, 0xfe);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_REBOOT);
}

static void i8042_other(void **state)
{
	(void)state;
	kbc_put(i8042_cmd_io, 0xfd);
	kbc_put(i8042_cmd_io, 0xaa);
	kbc_put(i8042_data_io, 0xfe);
	assert_int_equal(fm.exit_calls, 0);
	/* The self-test's answer waits in the output buffer (status: full, system flag, not
	 * locked, last write to the data port); the keyboard's answer to 0xFE waits behind its
	 * interface, disabled at power-on. */
	uint8_t v = 0xee;
	i8042_cmd_io(&kbc, 0, &v, 1, false);
	assert_int_equal(v, 0x15);
	i8042_data_io(&kbc, 0, &v, 1, false);
	assert_int_equal(v, 0x55);
}

static void pvpanic_read(void **state)
{
	(void)state;
	uint8_t v[2] = {0xee, 0xee};
	pvpanic_io(&fm.m, 0, v, 2, false);
	assert_int_equal(v[0], 3);
	assert_int_equal(v[1], 0);
	assert_int_equal(fm.exit_calls, 0);
}

static void pvpanic_panicked(void **state)
{
	(void)state;
	put(pvpanic_io, 0, 1);
	assert_int_equal(fm.exit_calls, 1);
	assert_int_equal(fm.exit_reason, MACHINE_PANIC);
	assert_contains(fm.exit_why, "panic");
	/* Both bits: still a panic. */
	put(pvpanic_io, 0, 3);
	assert_int_equal(fm.exit_calls, 2);
	assert_int_equal(fm.exit_reason, MACHINE_PANIC);
}

static void pvpanic_crash_loaded(void **state)
{
	(void)state;
	put(pvpanic_io, 0, 2);
	put(pvpanic_io, 0, 0);
	put(pvpanic_io, 0, 0x80);
	assert_int_equal(fm.exit_calls, 0);
}

int main(void)
{
	log_set_level(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup(fn, machine_setup)
#define K(fn) cmocka_unit_test_setup_teardown(fn, i8042_setup, i8042_teardown)
	const struct CMUnitTest tests[] = {
		T(acpi_pm_poweroff), T(acpi_pm_reboot), T(acpi_pm_ignored),  K(i8042_reset),
		K(i8042_other),      T(pvpanic_read),   T(pvpanic_panicked), T(pvpanic_crash_loaded),
	};
#undef K
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

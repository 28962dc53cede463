/* test_pci: the PCI bus: host bridge identity, configuration mechanism #1 and ECAM, absent
 * slots, BAR sizing and placement, BAR decoding in the MMIO window, capabilities. */
#include "unit.h"

#include "vmm/boot/layout.h"
#include "vmm/pci/pci.h"

struct fake_dev {
	struct pci_device pci;
	int last_bar;
	uint64_t last_off;
	uint32_t last_len;
	bool last_write;
	uint32_t value;
};

static void fake_bar_io(struct pci_device *d, int bar, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct fake_dev *f = (struct fake_dev *)d;
	f->last_bar = bar;
	f->last_off = off;
	f->last_len = len;
	f->last_write = is_write;
	if (is_write)
		memcpy(&f->value, data, len < 4 ? len : 4);
	else
		memcpy(data, &f->value, len < 4 ? len : 4);
}

static const struct pci_device_ops fake_ops = {.bar_io = fake_bar_io};

static uint32_t conf1_read(struct pci_bus *bus, unsigned slot, uint32_t reg, uint32_t len)
{
	uint32_t addr = 0x80000000u | (slot << 11) | (reg & 0xfc), v = 0;
	pci_conf1_io(bus, 0, (uint8_t *)&addr, 4, true);
	pci_conf1_io(bus, 4 + (reg & 3), (uint8_t *)&v, len, false);
	return v;
}

static void conf1_write(struct pci_bus *bus, unsigned slot, uint32_t reg, uint32_t v, uint32_t len)
{
	uint32_t addr = 0x80000000u | (slot << 11) | (reg & 0xfc);
	pci_conf1_io(bus, 0, (uint8_t *)&addr, 4, true);
	pci_conf1_io(bus, 4 + (reg & 3), (uint8_t *)&v, len, true);
}

static void pci_host_bridge_and_absent_slots(void **state)
{
	(void)state;
	struct pci_bus bus;
	pci_bus_init(&bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	assert_int_equal(conf1_read(&bus, 0, PCI_VENDOR_ID, 4), 0x00081b36);
	assert_int_equal(conf1_read(&bus, 0, PCI_CLASS_REVISION, 4) >> 8, 0x060000);
	assert_int_equal(conf1_read(&bus, 5, PCI_VENDOR_ID, 2), 0xffff);
	/* The address register reads back; disabled cycles float. */
	uint32_t a = 0x12345678, back = 0;
	pci_conf1_io(&bus, 0, (uint8_t *)&a, 4, true);
	pci_conf1_io(&bus, 0, (uint8_t *)&back, 4, false);
	assert_int_equal(back, 0x12345678 & 0x80fffffc);
	uint32_t v = 0;
	pci_conf1_io(&bus, 4, (uint8_t *)&v, 4, false);
	assert_int_equal(v, 0xffffffff);
	/* ECAM: bus 0 device 0 function 0, and an absent function. */
	v = 0;
	pci_ecam_io(&bus, 0, (uint8_t *)&v, 2, false);
	assert_int_equal(v, 0x1b36);
	pci_ecam_io(&bus, (3u << 15) | (1u << 12), (uint8_t *)&v, 4, false);
	assert_int_equal(v, 0xffffffff);
	/* Extended space of a present device reads as zero; misaligned ECAM floats. */
	pci_ecam_io(&bus, 0x100, (uint8_t *)&v, 4, false);
	assert_int_equal(v, 0);
	pci_ecam_io(&bus, 0x2, (uint8_t *)&v, 4, false);
	assert_int_equal(v, 0xffffffff);
	/* Read-only fields stay. */
	conf1_write(&bus, 0, PCI_VENDOR_ID, 0xdeadbeef, 4);
	assert_int_equal(conf1_read(&bus, 0, PCI_VENDOR_ID, 4), 0x00081b36);
	pci_bus_destroy(&bus);
}

static void pci_bar_sizing_and_decoding(void **state)
{
	(void)state;
	struct pci_bus bus;
	struct err e;
	pci_bus_init(&bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	struct fake_dev f = {0};
	pci_device_init(&f.pci, "fake", 0x1af4, 0x1044, 0xff0000, 1, 0x1af4, 0x44);
	f.pci.ops = &fake_ops;
	assert_int_equal(pci_device_add_bar(&f.pci, 0, 0x4000, true, &e), 0);
	assert_int_equal(pci_device_add_bar(&f.pci, 5, 0x4000, true, &e), -1);  /* no room for high */
	assert_int_equal(pci_device_add_bar(&f.pci, 2, 0x3000, false, &e), -1); /* not a power of 2 */
	assert_int_equal(pci_bus_add(&bus, &f.pci, &e), 0);
	assert_int_equal(f.pci.slot, 1);
	assert_int_equal(f.pci.bars[0].addr, LAYOUT_PCI_WINDOW);
	assert_int_equal(conf1_read(&bus, 1, PCI_BAR0, 4), (uint32_t)LAYOUT_PCI_WINDOW | 0x4);

	/* An access inside the BAR reaches the device with the offset in the BAR. */
	uint32_t v = 0xabcd;
	pci_mmio_io(&bus, LAYOUT_PCI_WINDOW + 0x10, (uint8_t *)&v, 4, true);
	assert_int_equal(f.last_bar, 0);
	assert_int_equal(f.last_off, 0x10);
	assert_true(f.last_write);
	/* Straddling the BAR's end, or beyond it: nobody answers. */
	f.last_len = 0;
	v = 0;
	assert_false(pci_mmio_io(&bus, LAYOUT_PCI_WINDOW + 0x3ffe, (uint8_t *)&v, 4, false));
	assert_int_equal(f.last_len, 0);
	assert_int_equal(v, 0xffffffff);

	/* Sizing: all ones in, the size mask out; then the guest moves the BAR. */
	conf1_write(&bus, 1, PCI_BAR0, 0xffffffff, 4);
	conf1_write(&bus, 1, PCI_BAR0 + 4, 0xffffffff, 4);
	assert_int_equal(conf1_read(&bus, 1, PCI_BAR0, 4), 0xffffc004);
	assert_int_equal(conf1_read(&bus, 1, PCI_BAR0 + 4, 4), 0xffffffff);
	conf1_write(&bus, 1, PCI_BAR0, (uint32_t)LAYOUT_PCI_WINDOW + 0x100000, 4);
	conf1_write(&bus, 1, PCI_BAR0 + 4, 0, 4);
	assert_int_equal(f.pci.bars[0].addr, LAYOUT_PCI_WINDOW + 0x100000);
	assert_true(pci_mmio_io(&bus, LAYOUT_PCI_WINDOW + 0x100008, (uint8_t *)&v, 4, false));
	assert_int_equal(f.last_off, 8);
	/* Anywhere, as a firmware places it: above 4 GiB too. */
	conf1_write(&bus, 1, PCI_BAR0, 0, 4);
	conf1_write(&bus, 1, PCI_BAR0 + 4, 0x8, 4);
	assert_int_equal(f.pci.bars[0].addr, 0x800000000ull);
	assert_true(pci_mmio_io(&bus, 0x800000020ull, (uint8_t *)&v, 4, false));
	assert_int_equal(f.last_off, 0x20);
	assert_false(pci_mmio_io(&bus, LAYOUT_PCI_WINDOW + 0x100008, (uint8_t *)&v, 4, false));

	/* Memory decoding off: the BAR no longer answers. */
	conf1_write(&bus, 1, PCI_COMMAND, 0, 2);
	f.last_len = 0;
	assert_false(pci_mmio_io(&bus, 0x800000020ull, (uint8_t *)&v, 4, false));
	assert_int_equal(f.last_len, 0);
	pci_bus_destroy(&bus);
}

static uint32_t conf1_read_fn(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t reg)
{
	uint32_t addr = 0x80000000u | (slot << 11) | (fn << 8) | (reg & 0xfc), v = 0;
	pci_conf1_io(bus, 0, (uint8_t *)&addr, 4, true);
	pci_conf1_io(bus, 4, (uint8_t *)&v, 4, false);
	return v;
}

static void reset_control(void *opaque, uint8_t *data, bool is_write)
{
	uint8_t *reg = opaque;
	if (is_write)
		*reg = *data;
	else
		*data = *reg;
}

/* Functions of one slot, the header's multi-function bit, a chipset identity for the host
 * bridge, and the byte at 0xCF9 going to the reset control register. */
static void pci_functions_and_chipset(void **state)
{
	(void)state;
	struct pci_bus bus;
	struct err e;
	pci_bus_init(&bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	pci_bus_set_host_bridge(&bus, 0x8086, 0x1237, 2);
	assert_int_equal(conf1_read(&bus, 0, PCI_VENDOR_ID, 4), 0x12378086);
	struct pci_device isa, pm, other;
	pci_device_init(&isa, "isa", 0x8086, 0x7000, 0x060100, 0, 0, 0);
	pci_device_init(&pm, "pm", 0x8086, 0x7113, 0x068000, 3, 0, 0);
	pci_device_init(&other, "other", 0x1af4, 0x1041, 0x020000, 1, 0, 0);
	assert_int_equal(pci_bus_add_at(&bus, &isa, 1, 0, &e), 0);
	assert_int_equal(pci_bus_add_at(&bus, &pm, 1, 3, &e), 0);
	assert_int_equal(pci_bus_add_at(&bus, &other, 1, 3, &e), -1); /* taken */
	assert_int_equal(pci_bus_add_at(&bus, &other, 1, 8, &e), -1); /* no such function */
	assert_int_equal(conf1_read_fn(&bus, 1, 3, PCI_VENDOR_ID), 0x71138086);
	assert_int_equal(conf1_read_fn(&bus, 1, 2, PCI_VENDOR_ID), 0xffffffff);
	assert_int_equal(conf1_read_fn(&bus, 1, 0, 0xc) >> 16 & 0xff, 0x80);
	assert_int_equal(pci_bus_add(&bus, &other, &e), 0);
	assert_int_equal(other.slot, 2);
	uint8_t reg = 0, b = 0x6;
	pci_conf1_io(&bus, 1, &b, 1, true); /* no reset control yet: ignored */
	bus.reset_control = reset_control;
	bus.reset_control_opaque = &reg;
	pci_conf1_io(&bus, 1, &b, 1, true);
	assert_int_equal(reg, 0x6);
	b = 0;
	pci_conf1_io(&bus, 1, &b, 1, false);
	assert_int_equal(b, 0x6);
	pci_bus_destroy(&bus);
}

static void pci_capabilities(void **state)
{
	(void)state;
	struct pci_device d;
	pci_device_init(&d, "caps", 0x1af4, 0x1041, 0x020000, 1, 0x1af4, 1);
	uint8_t a = pci_device_add_cap(&d, 0x09, 16);
	uint8_t b = pci_device_add_cap(&d, 0x11, 12);
	assert_int_equal(a, 0x40);
	assert_int_equal(b, 0x50);
	assert_int_equal(d.cfg[PCI_CAPABILITY_LIST], b);
	assert_int_equal(d.cfg[b + 1], a);
	assert_int_equal(d.cfg[a + 1], 0);
	assert_true(d.cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST);
	/* A capability that does not fit is refused. */
	assert_int_equal(pci_device_add_cap(&d, 0x09, 250), 0);
}

static void pci_slots_run_out(void **state)
{
	(void)state;
	struct pci_bus bus;
	struct err e;
	pci_bus_init(&bus, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	static struct pci_device devs[PCI_SLOTS];
	for (int i = 0; i < PCI_SLOTS - 1; i++) {
		pci_device_init(&devs[i], "d", 0x1af4, 0x1044, 0xff0000, 1, 0x1af4, 0);
		assert_int_equal(pci_bus_add(&bus, &devs[i], &e), 0);
	}
	pci_device_init(&devs[PCI_SLOTS - 1], "last", 0x1af4, 0x1044, 0xff0000, 1, 0x1af4, 0);
	assert_int_equal(pci_bus_add(&bus, &devs[PCI_SLOTS - 1], &e), -1);
	assert_contains(e.msg, "no free PCI slot");
	pci_bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pci_host_bridge_and_absent_slots),
		cmocka_unit_test(pci_functions_and_chipset),
		cmocka_unit_test(pci_bar_sizing_and_decoding),
		cmocka_unit_test(pci_capabilities),
		cmocka_unit_test(pci_slots_run_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

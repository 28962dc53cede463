/* test_fw_cfg_setup: the fw_cfg content of a firmware boot, read back as a firmware reads it.
 * A small table-loader interpreter finds the files through the directory, downloads them by
 * DMA into guest RAM, runs ALLOCATE, ADD_POINTER and ADD_CHECKSUM with OVMF's checks, then the
 * RSDP, every table's checksum and every pointer's target signature are verified, and OVMF's
 * second pass (which tables it installs) is replayed. Also: the numbered items, the E820 map,
 * the boot order, the PCI window OVMF uses, and the refusals. */
#include "unit.h"

#include <endian.h>

#include "fw_cfg_fixture.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/acpi_loader.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/fw_cfg_setup.h"
#include "vmm/platform.h"

#define MIB       (1ull << 20)
#define GIB       (1ull << 30)
#define RAM_SIZE  (64 * MIB)
#define ACCESS    0x1000ull   /* the DMA structure */
#define HIGH_BASE 0x200000ull /* where ALLOCATE's HIGH zone starts */
#define FSEG_BASE 0xf0000ull  /* the FSEG zone: 0xF0000 - 0xFFFFF */
#define FSEG_END  0x100000ull
#define ECAM      0xfe000000ull

struct fix {
	struct fcx x;
	struct acpi_params p;
};

static int setup(void **state)
{
	struct fix *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	assert_int_equal(fcx_init(&x->x, RAM_SIZE), 0);
	fw_cfg_acpi_params_ovmf(&x->p, 2, &x->x.mem, ECAM);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fix *x = *state;
	fcx_free(&x->x);
	free(x);
	return 0;
}

static uint8_t *gpa(struct fix *x, uint64_t addr, uint64_t len)
{
	return fcx_gpa(&x->x, addr, len);
}

static uint64_t get(const uint8_t *p, size_t width)
{
	uint64_t v = 0;
	memcpy(&v, p, width);
	return v;
}

/* One DMA transfer with its structure at ACCESS; it must succeed. */
static void dma(struct fix *x, uint32_t control, uint32_t length, uint64_t to)
{
	fcx_dma(&x->x, ACCESS, control, length, to);
	assert_int_equal(fcx_control(&x->x, ACCESS), 0);
}

/* Reads `len` bytes of item `key` from its start to guest address `to`. */
static void read_item(struct fix *x, uint16_t key, uint32_t len, uint64_t to)
{
	dma(x, (uint32_t)key << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, len, to);
}

/* Looks a file up in the directory (read by DMA, entry by entry); false when absent. */
static bool find_file(struct fix *x, const char *name, uint16_t *key, uint32_t *size)
{
	uint8_t *buf = gpa(x, 0x2000, 64);
	read_item(x, FW_CFG_FILE_DIR, 4, 0x2000);
	uint32_t count = be32toh((uint32_t)get(buf, 4));
	for (uint32_t i = 0; i < count; i++) {
		dma(x, FW_CFG_DMA_READ, 64, 0x2000);
		if (strncmp((char *)buf + 8, name, FW_CFG_NAME_SIZE) == 0) {
			*key = be16toh((uint16_t)get(buf + 4, 2));
			*size = be32toh((uint32_t)get(buf, 4));
			return true;
		}
	}
	return false;
}

/* The interpreter: files it has placed, and where the zones' next free bytes are. */
struct placed {
	char name[ACPI_LOADER_FNAME_SIZE];
	uint64_t gpa;
	uint32_t size;
};

struct loader {
	struct fix *x;
	struct placed files[4];
	int n;
	uint64_t next[3]; /* by zone */
};

static struct placed *lookup(struct loader *l, const uint8_t *name)
{
	assert_int_equal(name[ACPI_LOADER_FNAME_SIZE - 1], 0);
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->files[i].name, (const char *)name) == 0)
			return &l->files[i];
	fail_msg("no ALLOCATE for %s", name);
	return NULL;
}

static void run_allocate(struct loader *l, const uint8_t *c)
{
	assert_int_equal(c[ACPI_LOADER_FNAME_SIZE - 1], 0);
	uint32_t align = (uint32_t)get(c + 56, 4);
	uint8_t zone = c[60];
	assert_true(align != 0 && (align & (align - 1)) == 0 && align <= 4096); /* OVMF: at most a page */
	assert_true(zone == ACPI_LOADER_ZONE_HIGH || zone == ACPI_LOADER_ZONE_FSEG);
	assert_true(l->n < 4);
	struct placed *p = &l->files[l->n++];
	snprintf(p->name, sizeof(p->name), "%s", (const char *)c);
	for (int i = 0; i < l->n - 1; i++)
		assert_string_not_equal(l->files[i].name, p->name);
	uint16_t key;
	assert_true(find_file(l->x, p->name, &key, &p->size));
	p->gpa = (l->next[zone] + align - 1) & ~(uint64_t)(align - 1);
	l->next[zone] = p->gpa + p->size;
	if (zone == ACPI_LOADER_ZONE_FSEG)
		assert_true(l->next[zone] <= FSEG_END);
	read_item(l->x, key, p->size, p->gpa);
}

static void run_add_pointer(struct loader *l, const uint8_t *c)
{
	struct placed *from = lookup(l, c), *to = lookup(l, c + 56);
	uint32_t offset = (uint32_t)get(c + 112, 4);
	uint8_t size = c[116];
	assert_true(size == 1 || size == 2 || size == 4 || size == 8);
	assert_true(size <= from->size && offset <= from->size - size);
	uint8_t *field = gpa(l->x, from->gpa + offset, size);
	uint64_t v = get(field, size);
	assert_true(v < to->size); /* points inside its target */
	v += to->gpa;
	assert_true(size == 8 || v >> (8 * size) == 0);
	memcpy(field, &v, size);
}

static void run_add_checksum(struct loader *l, const uint8_t *c)
{
	struct placed *f = lookup(l, c);
	uint32_t result = (uint32_t)get(c + 56, 4), start = (uint32_t)get(c + 60, 4), len = (uint32_t)get(c + 64, 4);
	assert_true(result < f->size && len <= f->size && start <= f->size - len);
	uint8_t *base = gpa(l->x, f->gpa, f->size);
	base[result] = (uint8_t)(0 - acpi_checksum(base + start, len));
}

/* Downloads the script and runs it; returns its entries (malloc'd) and their count. */
static uint8_t *run_script(struct loader *l, unsigned *n)
{
	uint16_t key;
	uint32_t size;
	assert_true(find_file(l->x, ACPI_LOADER_SCRIPT, &key, &size));
	assert_true(size > 0 && size % ACPI_LOADER_ENTRY_SIZE == 0);
	uint8_t *script = malloc(size);
	assert_non_null(script);
	read_item(l->x, key, size, 0x3000);
	memcpy(script, gpa(l->x, 0x3000, size), size);
	*n = size / ACPI_LOADER_ENTRY_SIZE;
	for (unsigned i = 0; i < *n; i++) {
		const uint8_t *e = script + (size_t)i * ACPI_LOADER_ENTRY_SIZE;
		switch (get(e, 4)) {
		case ACPI_LOADER_ALLOCATE: run_allocate(l, e + 4); break;
		case ACPI_LOADER_ADD_POINTER: run_add_pointer(l, e + 4); break;
		case ACPI_LOADER_ADD_CHECKSUM: run_add_checksum(l, e + 4); break;
		default: fail_msg("command %u of type %u", i, (unsigned)get(e, 4));
		}
	}
	return script;
}

/* The table at address a: inside the tables' file, with its signature and a zero sum. */
static const uint8_t *table_at(struct loader *l, uint64_t a, const char *sig)
{
	const struct placed *t = &l->files[0];
	assert_string_equal(t->name, ACPI_LOADER_TABLES);
	assert_true(a >= t->gpa && a - t->gpa + 36 <= t->size);
	const uint8_t *p = gpa(l->x, a, 36);
	uint32_t len = (uint32_t)get(p + 4, 4);
	assert_true(len >= 36 && a - t->gpa + len <= t->size);
	if (memcmp(p, sig, 4) != 0)
		fail_msg("table at 0x%llx is %.4s, not %s", (unsigned long long)a, p, sig);
	assert_int_equal(acpi_checksum(gpa(l->x, a, len), len), 0);
	return p;
}

/* OVMF's second pass: each distinct address an ADD_POINTER points to that holds a table with a
 * right length and checksum is installed, but for the RSDT and XSDT. Returns the signatures
 * installed, in order, as one string. */
static void installed_tables(struct loader *l, const uint8_t *script, unsigned n, char *out)
{
	uint64_t seen[16];
	unsigned nseen = 0;
	out[0] = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *c = script + (size_t)i * ACPI_LOADER_ENTRY_SIZE;
		if (get(c, 4) != ACPI_LOADER_ADD_POINTER)
			continue;
		struct placed *from = lookup(l, c + 4), *to = lookup(l, c + 60);
		uint64_t a = get(gpa(l->x, from->gpa + get(c + 116, 4), c[120]), c[120]);
		bool dup = false;
		for (unsigned k = 0; k < nseen; k++)
			dup |= seen[k] == a;
		if (dup)
			continue;
		assert_true(nseen < 16);
		seen[nseen++] = a;
		uint64_t remaining = to->gpa + to->size - a;
		const uint8_t *h = gpa(l->x, a, 36);
		uint32_t len = (uint32_t)get(h + 4, 4);
		if (remaining < 36 || len < 36 || len > remaining || acpi_checksum(gpa(l->x, a, len), len) != 0)
			fail_msg("pointer %u points at no table", i);
		if (memcmp(h, "RSDT", 4) != 0 && memcmp(h, "XSDT", 4) != 0)
			strncat(out, (const char *)h, 4);
	}
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

/* The tables' contents that the parameters decide: MCFG base, PCI0's window, one local APIC a
 * vCPU. */
static void check_params(struct fix *x, const uint8_t *mcfg, const uint8_t *madt, const uint8_t *dsdt)
{
	assert_int_equal(get(mcfg + 44, 8), x->p.ecam_base);
	uint32_t mlen = (uint32_t)get(madt + 4, 4);
	assert_int_equal(mlen, 44 + 8 * x->p.ncpus + 12 + 6);
	uint32_t window[3] = {x->p.pci_window_base, x->p.pci_window_base + x->p.pci_window_size - 1, 0};
	uint32_t dlen = (uint32_t)get(dsdt + 4, 4);
	assert_non_null(find_bytes(dsdt, dlen, window, 8));
	/* The ECAM as a motherboard resource: PNP0C02 and Memory32Fixed(ReadWrite, base, 1 MiB). */
	static const uint8_t pnp0c02[] = {0x0c, 0x41, 0xd0, 0x0c, 0x02};
	assert_non_null(find_bytes(dsdt, dlen, pnp0c02, sizeof(pnp0c02)));
	uint8_t fixed[12] = {0x86, 0x09, 0x00, 0x01};
	uint32_t ecam[2] = {(uint32_t)x->p.ecam_base, 1u << 20};
	memcpy(fixed + 4, ecam, 8);
	assert_non_null(find_bytes(dsdt, dlen, fixed, sizeof(fixed)));
}

static void run_loader(struct fix *x)
{
	struct loader l = {.x = x, .next = {0, HIGH_BASE, FSEG_BASE}};
	unsigned n;
	uint8_t *script = run_script(&l, &n);
	assert_int_equal(l.n, 2);
	/* The RSDP, in the FSEG zone, both checksums right, pointing at the XSDT. */
	const struct placed *r = &l.files[1];
	assert_string_equal(r->name, ACPI_LOADER_RSDP);
	assert_int_equal(r->size, ACPI_RSDP_SIZE);
	assert_true(r->gpa >= FSEG_BASE && r->gpa % 16 == 0);
	const uint8_t *rsdp = gpa(x, r->gpa, ACPI_RSDP_SIZE);
	assert_memory_equal(rsdp, "RSD PTR ", 8);
	assert_int_equal(acpi_checksum(rsdp, 20), 0);
	assert_int_equal(acpi_checksum(rsdp, 36), 0);
	const uint8_t *xsdt = table_at(&l, get(rsdp + 24, 8), "XSDT");
	/* Every pointer reaches the table it should. */
	assert_int_equal(get(xsdt + 4, 4), 36 + 3 * 8);
	const uint8_t *fadt = table_at(&l, get(xsdt + 36, 8), "FACP");
	const uint8_t *madt = table_at(&l, get(xsdt + 44, 8), "APIC");
	const uint8_t *mcfg = table_at(&l, get(xsdt + 52, 8), "MCFG");
	const uint8_t *dsdt = table_at(&l, get(fadt + 140, 8), "DSDT");
	assert_int_equal(get(fadt + 40, 4), get(fadt + 140, 8));
	check_params(x, mcfg, madt, dsdt);
	/* OVMF installs every table but the XSDT, each once. */
	char installed[64];
	installed_tables(&l, script, n, installed);
	assert_string_equal(installed, "DSDTFACPAPICMCFG");
	free(script);
}

static void loader_1_2_254_cpus(void **state)
{
	struct fix *x = *state;
	const unsigned counts[] = {1, 2, 254};
	for (unsigned i = 0; i < 3; i++) {
		fw_cfg_destroy(&x->x.f);
		assert_int_equal(fw_cfg_init(&x->x.f, &x->x.mem, &x->x.e), 0);
		fw_cfg_acpi_params_ovmf(&x->p, counts[i], &x->x.mem, ECAM);
		assert_int_equal(fw_cfg_setup_firmware(&x->x.f, &x->x.mem, &x->p, NULL, &x->x.e), 0);
		run_loader(x);
	}
}

/* Every pointer field lies in a table, and every table but the XSDT is pointed to. */
static void blob_pointers_cover_tables(void **state)
{
	struct fix *x = *state;
	static uint8_t buf[64 * 1024];
	struct acpi_blob b;
	assert_int_equal(acpi_build_tables(&x->p, buf, sizeof(buf), &b, &x->x.e), 0);
	assert_int_equal(b.ntables, 5);
	for (unsigned t = 0; t < b.ntables; t++) {
		const struct acpi_blob_table *tab = &b.tables[t];
		assert_int_equal(buf[tab->offset + ACPI_HEADER_CSUM], 0); /* left to ADD_CHECKSUM */
		bool reached = memcmp(buf + tab->offset, "XSDT", 4) == 0;
		for (unsigned i = 0; i < b.npointers; i++)
			reached |= get(buf + b.pointers[i].offset, b.pointers[i].size) == tab->offset;
		assert_true(reached);
	}
	/* A pointer outside every table: the script is refused. */
	uint8_t script[ACPI_LOADER_MAX_ENTRIES * ACPI_LOADER_ENTRY_SIZE];
	b.pointers[0].offset = (uint32_t)b.len + 100;
	assert_int_equal(acpi_loader_script(&b, script, &x->x.e), -1);
	assert_contains(x->x.e.msg, "lie in no table");
}

/* The boot order's text: QEMU's OpenFirmware paths for virtio-blk, the function only when not
 * zero, one a line and no newline after the last (OVMF would ignore the whole list). */
static void bootorder_text(void **state)
{
	(void)state;
	struct err e;
	char *s;
	const uint8_t slots[] = {3, 2, 0x1f}, fns[] = {0, 0, 7};
	assert_int_equal(fw_cfg_bootorder(slots, fns, 3, &s, &e), 0);
	assert_string_equal(s, "/pci@i0cf8/scsi@3/disk@0,0\n/pci@i0cf8/scsi@2/disk@0,0\n/pci@i0cf8/scsi@1f,7/disk@0,0");
	free(s);
	assert_int_equal(fw_cfg_bootorder(slots, fns, 1, &s, &e), 0);
	assert_string_equal(s, "/pci@i0cf8/scsi@3/disk@0,0");
	free(s);
	assert_int_equal(fw_cfg_bootorder(slots, fns, 0, &s, &e), 0);
	assert_null(s);
}

static void items_and_files(void **state)
{
	struct fix *x = *state;
	const char *order = "/pci@i0cf8/scsi@4/disk@0,0\nHALT";
	assert_int_equal(fw_cfg_setup_firmware(&x->x.f, &x->x.mem, &x->p, order, &x->x.e), 0);
	uint8_t *buf = gpa(x, 0x2000, 64);
	read_item(x, FW_CFG_NB_CPUS, 2, 0x2000);
	assert_int_equal(get(buf, 2), 2);
	read_item(x, FW_CFG_MAX_CPUS, 2, 0x2000);
	assert_int_equal(get(buf, 2), 2);
	read_item(x, FW_CFG_RAM_SIZE, 8, 0x2000);
	assert_int_equal(get(buf, 8), RAM_SIZE);
	uint16_t key;
	uint32_t size;
	assert_true(find_file(x, FW_CFG_FILE_BOOT, &key, &size));
	assert_int_equal(size, strlen(order) + 1); /* NUL-terminated, as OVMF wants */
	read_item(x, key, size, 0x2000);
	assert_string_equal((char *)buf, order);
	assert_true(find_file(x, FW_CFG_FILE_MMIO64MB, &key, &size));
	read_item(x, key, size, 0x2000);
	assert_memory_equal(buf, "0", size);
	assert_true(find_file(x, FW_CFG_FILE_E820, &key, &size));
	assert_int_equal(size, sizeof(struct e820_entry));
	read_item(x, key, size, 0x2000);
	assert_int_equal(get(buf, 8), 0);
	assert_int_equal(get(buf + 8, 8), RAM_SIZE);
	assert_int_equal(get(buf + 16, 4), E820_RAM);
	/* No boot order given: no file. */
	fw_cfg_destroy(&x->x.f);
	assert_int_equal(fw_cfg_init(&x->x.f, &x->x.mem, &x->x.e), 0);
	assert_int_equal(fw_cfg_setup_firmware(&x->x.f, &x->x.mem, &x->p, NULL, &x->x.e), 0);
	assert_false(find_file(x, FW_CFG_FILE_BOOT, &key, &size));
	/* Twice: refused, as every item is already there. */
	assert_int_equal(fw_cfg_setup_firmware(&x->x.f, &x->x.mem, &x->p, NULL, &x->x.e), -1);
	assert_contains(x->x.e.msg, "already");
}

/* A guest_mem with the regions of `size` bytes and no mapping: enough for what reads only its
 * layout. */
static struct guest_mem layout_only(uint64_t size)
{
	struct guest_mem m = {.size = size};
	m.nregions = layout_ram_regions(size, m.regions);
	return m;
}

/* Reads a whole item through the data port (no DMA: the guest_mem has no mapping). */
static void port_read(struct fw_cfg *f, uint16_t key, void *out, size_t n)
{
	fw_cfg_io(f, FW_CFG_PORT_SELECTOR, (uint8_t *)&key, 2, true);
	for (size_t i = 0; i < n; i++)
		fw_cfg_io(f, FW_CFG_PORT_DATA, (uint8_t *)out + i, 1, false);
}

static void e820_above_4g(void **state)
{
	struct fix *x = *state;
	struct guest_mem m = layout_only(8 * GIB);
	struct fw_cfg f;
	assert_int_equal(fw_cfg_init(&f, &m, &x->x.e), 0);
	fw_cfg_acpi_params_ovmf(&x->p, 4, &m, ECAM);
	assert_int_equal(fw_cfg_setup_firmware(&f, &m, &x->p, NULL, &x->x.e), 0);
	/* The fifth file: the numbered items are not files; e820 is the first file added. */
	struct e820_entry map[2];
	port_read(&f, FW_CFG_FILE_FIRST, map, sizeof(map));
	assert_int_equal(map[0].addr, 0);
	assert_int_equal(map[0].size, LAYOUT_PCI_HOLE);
	assert_int_equal(map[0].type, E820_RAM);
	assert_int_equal(map[1].addr, LAYOUT_4G);
	assert_int_equal(map[1].size, 8 * GIB - LAYOUT_PCI_HOLE);
	assert_int_equal(map[1].type, E820_RAM);
	fw_cfg_destroy(&f);
}

static void ovmf_pci_window(void **state)
{
	(void)state;
	const struct {
		uint64_t ram;
		uint32_t base;
	} cases[] = {
		{64 * MIB, 0x80000000u},        {2 * GIB, 0x80000000u}, {2 * GIB + MIB, 0xc0000000u},
		{3 * GIB, 0xc0000000u},         {8 * GIB, 0xc0000000u}, {2 * GIB - MIB, 0x80000000u},
		{LAYOUT_PCI_HOLE, 0xc0000000u},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct guest_mem m = layout_only(cases[i].ram);
		struct acpi_params p;
		fw_cfg_acpi_params_ovmf(&p, 1, &m, ECAM);
		assert_int_equal(p.pci_window_base, cases[i].base);
		assert_int_equal(p.pci_window_base + (uint64_t)p.pci_window_size, OVMF_PCI_WINDOW_END);
		assert_true(p.pci_window_base >= m.regions[0].size);
		assert_int_equal(p.ecam_base, ECAM);
		assert_int_equal(p.ncpus, 1);
	}
}

static void refusals(void **state)
{
	struct fix *x = *state;
	x->p.ncpus = 0;
	assert_int_equal(fw_cfg_add_acpi(&x->x.f, &x->p, &x->x.e), -1);
	assert_contains(x->x.e.msg, "vCPUs");
	x->p.ncpus = 1;
	x->p.pci_window_size = 0;
	assert_int_equal(fw_cfg_add_acpi(&x->x.f, &x->p, &x->x.e), -1);
	assert_contains(x->x.e.msg, "PCI window");
	x->p.pci_window_size = 1u << 30;
	x->p.ecam_base = 0xffffffffffffff00ull;
	assert_int_equal(fw_cfg_add_acpi(&x->x.f, &x->p, &x->x.e), -1);
	assert_contains(x->x.e.msg, "ECAM");
	uint16_t key;
	uint32_t size;
	assert_false(find_file(x, ACPI_LOADER_TABLES, &key, &size));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(loader_1_2_254_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(blob_pointers_cover_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(items_and_files, setup, teardown),
		cmocka_unit_test(bootorder_text),
		cmocka_unit_test_setup_teardown(e820_above_4g, setup, teardown),
		cmocka_unit_test_setup_teardown(ovmf_pci_window, setup, teardown),
		cmocka_unit_test_setup_teardown(refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

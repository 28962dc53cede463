/* test_fw_cfg: the fw_cfg device through its ports: signature, ID, the file directory, file
 * selection and reads past the end; DMA read, skip and select into a small guest RAM; DMA that
 * must fail (structure outside RAM or straddling its end, buffers outside RAM, lengths that
 * wrap, the write bit) and leave everything else alone; the refusals of fw_cfg_add_*; and a
 * seeded random run of port and DMA accesses under the sanitizers. */
#include "unit.h"

#include <endian.h>

#include "fw_cfg_fixture.h"
#include "vmm/platform.h"

#define MIB      (1ull << 20)
#define RAM_SIZE (2 * MIB)
#define ACCESS   0x1000ull /* where the tests put a DMA structure */
#define BUF      0x2000ull /* and its buffer */

static int setup(void **state)
{
	struct fcx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	assert_int_equal(fcx_init(x, RAM_SIZE), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fcx_free(*state);
	free(*state);
	return 0;
}

static void io(struct fw_cfg *f, uint16_t port, void *data, uint32_t len, bool is_write)
{
	fw_cfg_io(f, port - PORT_FW_CFG, data, len, is_write);
}

static void add_file(struct fcx *x, const char *name, const char *data)
{
	assert_int_equal(fw_cfg_add_file(&x->f, name, data, strlen(data), &x->e), 0);
}

static void signature_and_id(void **state)
{
	struct fcx *x = *state;
	char sig[5] = {0};
	fcx_select(x, FW_CFG_SIGNATURE);
	fcx_read(x, sig, 4);
	assert_string_equal(sig, "QEMU");
	uint32_t id;
	fcx_select(x, FW_CFG_ID);
	fcx_read(x, &id, 4);
	assert_int_equal(le32toh(id), FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA);
	/* The DMA register reads as "QEMU CFG", byte by byte or wider. */
	char dsig[9] = {0};
	for (int i = 0; i < 8; i++)
		io(&x->f, PORT_FW_CFG_DMA + i, dsig + i, 1, false);
	assert_string_equal(dsig, FW_CFG_DMA_SIGNATURE);
	memset(dsig, 0, sizeof(dsig));
	io(&x->f, PORT_FW_CFG_DMA, dsig, 4, false);
	io(&x->f, PORT_FW_CFG_DMA + 4, dsig + 4, 4, false);
	assert_string_equal(dsig, FW_CFG_DMA_SIGNATURE);
	/* Bit 14 (the old write channel) is ignored: 0x4000 is the signature too. */
	fcx_select(x, 0x4000);
	fcx_read(x, sig, 4);
	assert_string_equal(sig, "QEMU");
}

static void directory_and_files(void **state)
{
	struct fcx *x = *state;
	add_file(x, "etc/one", "abc");
	add_file(x, "bootorder", "/pci@i0cf8/x\n");
	uint32_t count;
	fcx_select(x, FW_CFG_FILE_DIR);
	fcx_read(x, &count, 4);
	assert_int_equal(be32toh(count), 2);
	const char *names[] = {"etc/one", "bootorder"};
	const uint32_t sizes[] = {3, 13};
	for (int i = 0; i < 2; i++) {
		uint8_t ent[64];
		fcx_read(x, ent, sizeof(ent));
		uint32_t size;
		uint16_t key;
		memcpy(&size, ent, 4);
		memcpy(&key, ent + 4, 2);
		assert_int_equal(be32toh(size), sizes[i]);
		assert_int_equal(be16toh(key), FW_CFG_FILE_FIRST + i);
		assert_string_equal((char *)ent + 8, names[i]);
	}
	/* Past the directory's end: zeros. */
	uint8_t z = 0xaa;
	fcx_read(x, &z, 1);
	assert_int_equal(z, 0);

	/* The first file, then past its end; selecting again rewinds. */
	char buf[6];
	fcx_select(x, FW_CFG_FILE_FIRST);
	fcx_read(x, buf, 6);
	assert_memory_equal(buf, "abc\0\0\0", 6);
	fcx_select(x, FW_CFG_FILE_FIRST);
	fcx_read(x, buf, 2);
	assert_memory_equal(buf, "ab", 2);
	/* A key nobody holds, and an architecture-specific one, read as empty. */
	const uint16_t absent[] = {FW_CFG_FILE_FIRST + 2, 0x3fff, 0x8000, 0xffff};
	for (unsigned i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
		fcx_select(x, absent[i]);
		memset(buf, 0xaa, sizeof(buf));
		fcx_read(x, buf, 2);
		assert_memory_equal(buf, "\0\0", 2);
	}
}

static void add_refusals(void **state)
{
	struct fcx *x = *state;
	char name[FW_CFG_NAME_SIZE + 1];
	memset(name, 'n', FW_CFG_NAME_SIZE);
	name[FW_CFG_NAME_SIZE] = 0;
	assert_int_equal(fw_cfg_add_file(&x->f, name, "x", 1, &x->e), -1);
	assert_contains(x->e.msg, "too long");
	name[FW_CFG_NAME_SIZE - 1] = 0; /* 55 characters: fits with its NUL */
	assert_int_equal(fw_cfg_add_file(&x->f, name, "x", 1, &x->e), 0);
	assert_int_equal(fw_cfg_add_file(&x->f, "", "x", 1, &x->e), -1);
	assert_int_equal(fw_cfg_add_file(&x->f, name, "y", 1, &x->e), -1);
	assert_contains(x->e.msg, "already");
	for (int i = 1; i < FW_CFG_MAX_FILES; i++) {
		char n[16];
		snprintf(n, sizeof(n), "f%d", i);
		assert_int_equal(fw_cfg_add_file(&x->f, n, NULL, 0, &x->e), 0);
	}
	assert_int_equal(fw_cfg_add_file(&x->f, "one-more", "x", 1, &x->e), -1);
	assert_contains(x->e.msg, "at most");

	uint16_t v = 1;
	assert_int_equal(fw_cfg_add_item(&x->f, FW_CFG_NB_CPUS, &v, 2, &x->e), 0);
	assert_int_equal(fw_cfg_add_item(&x->f, FW_CFG_NB_CPUS, &v, 2, &x->e), -1);
	assert_int_equal(fw_cfg_add_item(&x->f, FW_CFG_SIGNATURE, "XXXX", 4, &x->e), -1);
	assert_int_equal(fw_cfg_add_item(&x->f, FW_CFG_FILE_DIR, &v, 2, &x->e), -1);
	assert_int_equal(fw_cfg_add_item(&x->f, FW_CFG_FILE_FIRST, &v, 2, &x->e), -1);
	assert_int_equal(fw_cfg_add_item(&x->f, 0x8000, &v, 2, &x->e), -1);
	/* The directory lists all 32, the last one with its 55-character name first. */
	uint32_t count;
	uint8_t ent[64];
	fcx_select(x, FW_CFG_FILE_DIR);
	fcx_read(x, &count, 4);
	fcx_read(x, ent, 64);
	assert_int_equal(be32toh(count), FW_CFG_MAX_FILES);
	assert_string_equal((char *)ent + 8, name);
}

static void dma_read_skip_select(void **state)
{
	struct fcx *x = *state;
	add_file(x, "etc/a", "0123456789");
	uint8_t *buf = fcx_gpa(x, BUF, 16);
	memset(buf, 0xaa, 16);
	/* Select and read 4 bytes. */
	fcx_dma(x, ACCESS, FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, BUF);
	assert_int_equal(fcx_control(x, ACCESS), 0);
	assert_memory_equal(buf, "0123", 4);
	assert_int_equal(buf[4], 0xaa);
	/* Skip 2, then read 6: 4 bytes of the file and 2 zeros. */
	fcx_dma(x, ACCESS, FW_CFG_DMA_SKIP, 2, 0);
	assert_int_equal(fcx_control(x, ACCESS), 0);
	fcx_dma(x, ACCESS, FW_CFG_DMA_READ, 6, BUF);
	assert_int_equal(fcx_control(x, ACCESS), 0);
	assert_memory_equal(buf, "6789\0\0", 6);
	/* Select alone rewinds; the data port goes on from there. */
	fcx_dma(x, ACCESS, FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT, 0, 0);
	assert_int_equal(fcx_control(x, ACCESS), 0);
	char c;
	fcx_read(x, &c, 1);
	assert_int_equal(c, '0');
	/* A skip past the end stops at the end. */
	fcx_dma(x, ACCESS, FW_CFG_DMA_SKIP, 0xffffffff, 0);
	fcx_read(x, &c, 1);
	assert_int_equal(c, 0);
	/* The signature by DMA, as a firmware probes it; the structure in the last 16 bytes. */
	fcx_dma(x, RAM_SIZE - 16, FW_CFG_SIGNATURE << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, BUF);
	assert_int_equal(fcx_control(x, RAM_SIZE - 16), 0);
	assert_memory_equal(buf, "QEMU", 4);
	/* Read order is select, then read: READ with SKIP reads. */
	fcx_dma(x, ACCESS, FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ | FW_CFG_DMA_SKIP, 2, BUF);
	assert_memory_equal(buf, "01", 2);
}

/* Reads the next byte of the selected item through the data port. */
static uint8_t next_byte(struct fcx *x)
{
	uint8_t b;
	fcx_read(x, &b, 1);
	return b;
}

static void dma_failures(void **state)
{
	struct fcx *x = *state;
	add_file(x, "etc/a", "0123456789");
	fcx_select(x, FW_CFG_FILE_FIRST);
	uint8_t *ram = fcx_gpa(x, 0, RAM_SIZE);
	uint8_t *copy = malloc(RAM_SIZE);
	assert_non_null(copy);

	/* The structure wholly outside RAM, or at addresses that wrap: nothing happens. */
	const uint64_t outside[] = {RAM_SIZE, RAM_SIZE + 4096, 0xfffffffffffffff8ull, 0xfffffffffffffff0ull};
	for (unsigned i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		memcpy(copy, ram, RAM_SIZE);
		fcx_dma(x, outside[i], 0, 0, 0);
		assert_memory_equal(copy, ram, RAM_SIZE);
	}
	/* Straddling the end of RAM: its control word, inside, gets the error bit. */
	memset(ram + RAM_SIZE - 8, 0, 8);
	fcx_dma(x, RAM_SIZE - 8, 0, 0, 0);
	assert_int_equal(fcx_control(x, RAM_SIZE - 8), FW_CFG_DMA_ERROR);
	assert_int_equal(next_byte(x), '0'); /* the offset did not move */

	/* Buffers outside RAM, straddling its end, or whose length wraps the address. */
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{RAM_SIZE, 1},     {RAM_SIZE - 4, 8},          {0xffffffffffffff00ull, 0x1000},
		{BUF, 0xffffffff}, {0xffffffffffffffffull, 1},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fcx_dma(x, ACCESS, FW_CFG_DMA_READ, bad[i].len, bad[i].addr);
		assert_int_equal(fcx_control(x, ACCESS), FW_CFG_DMA_ERROR);
	}
	assert_int_equal(next_byte(x), '1'); /* no failed read moved the offset */

	/* The write bit: refused, the item unchanged. */
	memcpy(fcx_gpa(x, BUF, 4), "XXXX", 4);
	fcx_dma(x, ACCESS, FW_CFG_FILE_FIRST << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_WRITE, 4, BUF);
	assert_int_equal(fcx_control(x, ACCESS), FW_CFG_DMA_ERROR);
	assert_int_equal(next_byte(x), '0');

	/* A read of a key nobody holds succeeds with zeros. */
	memset(fcx_gpa(x, BUF, 4), 0xaa, 4);
	fcx_dma(x, ACCESS, 0x3fff << 16 | FW_CFG_DMA_SELECT | FW_CFG_DMA_READ, 4, BUF);
	assert_int_equal(fcx_control(x, ACCESS), 0);
	assert_memory_equal(fcx_gpa(x, BUF, 4), "\0\0\0\0", 4);
	free(copy);
}

static void port_odd_accesses(void **state)
{
	struct fcx *x = *state;
	add_file(x, "etc/a", "0123456789");
	fcx_select(x, FW_CFG_FILE_FIRST);
	/* A byte write to the selector, writes to the data port, odd DMA widths: ignored. */
	uint8_t b = 0;
	io(&x->f, PORT_FW_CFG, &b, 1, true);
	io(&x->f, PORT_FW_CFG_DATA, &b, 1, true);
	uint32_t w = 0;
	io(&x->f, PORT_FW_CFG_DMA + 2, &w, 4, true);
	io(&x->f, PORT_FW_CFG_DMA + 7, &b, 1, true);
	assert_int_equal(next_byte(x), '0');
	/* Only the high half written: no transfer; the low half alone starts one (32-bit). */
	uint8_t *acc = fcx_gpa(x, ACCESS, 16);
	memset(acc, 0, 16);
	acc[3] = FW_CFG_DMA_SKIP;
	acc[7] = 3;
	uint32_t hi = 0;
	io(&x->f, PORT_FW_CFG_DMA, &hi, 4, true);
	assert_int_equal(next_byte(x), '1');
	uint32_t lo = htobe32((uint32_t)ACCESS);
	io(&x->f, PORT_FW_CFG_DMA + 4, &lo, 4, true);
	assert_int_equal(next_byte(x), '5');
	/* A 64-bit write starts one too. */
	acc[3] = FW_CFG_DMA_SKIP;
	uint64_t a = htobe64(ACCESS);
	io(&x->f, PORT_FW_CFG_DMA, &a, 8, true);
	assert_int_equal(next_byte(x), '9');
	/* A wide read at the data port: one byte from the item; the gap reads as all ones. */
	fcx_select(x, FW_CFG_FILE_FIRST);
	uint8_t r[4];
	io(&x->f, PORT_FW_CFG_DATA, r, 4, false);
	assert_int_equal(r[0], '0');
	assert_int_equal(r[1], 0xff);
	assert_int_equal(r[3], 'Q');
	assert_int_equal(next_byte(x), '1');
}

/* xorshift64: the same sequence on every run. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Addresses near the edges of RAM and of the address space, or anywhere. */
static uint64_t rnd_addr(uint64_t *s)
{
	static const uint64_t edges[] = {0, ACCESS, RAM_SIZE, 0x100000000ull, 0xffffffffffffffffull};
	uint64_t r = rnd(s);
	if (r & 1)
		return r;
	return edges[(r >> 1) % 5] + (uint64_t)((int64_t)(r >> 8) % 64);
}

static void random_accesses(void **state)
{
	struct fcx *x = *state;
	uint8_t blob[300];
	for (unsigned i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)i;
	assert_int_equal(fw_cfg_add_file(&x->f, "etc/blob", blob, sizeof(blob), &x->e), 0);
	add_file(x, "etc/small", "s");
	uint64_t s = 0x5eed5eed12345678ull;
	static const uint32_t widths[] = {1, 2, 4, 8};
	for (int i = 0; i < 200000; i++) {
		uint64_t r = rnd(&s);
		uint8_t data[8];
		uint64_t v = rnd(&s);
		memcpy(data, &v, 8);
		if ((r & 7) == 0) {
			uint32_t control = (uint32_t)rnd(&s);
			if (r & 8) /* mostly keys that exist */
				control = (control & 0x1f) | (uint32_t)((r >> 16) % (FW_CFG_FILE_FIRST + 3)) << 16;
			uint32_t len = r & 16 ? (uint32_t)rnd(&s) : (uint32_t)(rnd(&s) % 512);
			uint64_t at = r & 32 ? rnd_addr(&s) : ACCESS;
			fcx_dma(x, at, control, len, r & 64 ? rnd_addr(&s) : BUF);
		} else {
			uint32_t len = widths[(r >> 3) % 4];
			uint64_t off = (r >> 5) % 16;
			fw_cfg_io(&x->f, off, data, len, (r >> 9) & 1);
		}
		assert_true(x->f.key >= FW_CFG_MAX_KEYS || !x->f.items[x->f.key].present ||
			    x->f.offset <= x->f.items[x->f.key].len);
	}
	/* Still answers as before. */
	char sig[5] = {0};
	fcx_select(x, FW_CFG_SIGNATURE);
	fcx_read(x, sig, 4);
	assert_string_equal(sig, "QEMU");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(signature_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(directory_and_files, setup, teardown),
		cmocka_unit_test_setup_teardown(add_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(dma_read_skip_select, setup, teardown),
		cmocka_unit_test_setup_teardown(dma_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(port_odd_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(random_accesses, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

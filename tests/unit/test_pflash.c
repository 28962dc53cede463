/* test_pflash: the firmware flash against small code and store files: OVMF's detection (both the
 * 2022.11 sequence and the later one that programs a byte back), its write and erase paths, what
 * is in the file and when it is synced, status values, the code part refusing writes, the ends
 * of the region, garbage command sequences (fixed seed, also from several threads), a failing
 * slot change, and the errors for bad files. The guest's reads go to the memory a mapped slot of
 * the fake machine shows, else to the device, as under KVM. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "fake_machine.h"
#include "image_fixture.h"
#include "vmm/boot/layout.h"
#include "vmm/devices/pflash.h"

#define VARS_SIZE (4 * PFLASH_BLOCK_SIZE)
#define CODE_SIZE (12 * PFLASH_BLOCK_SIZE)
#define BASE      (LAYOUT_4G - VARS_SIZE - CODE_SIZE)
#define CODE_GPA  (BASE + VARS_SIZE)

struct fx {
	struct image_fx *tmp; /* the temporary directory */
	const char *dir;
	char code[160], vars[160];
	struct fake_machine fm;
	struct io_bus mmio;
	struct pflash f;
};

static uint8_t code_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* An OVMF store starts with the volume header: 16 zero bytes, then the file system GUID. */
static uint8_t vars_byte(uint64_t i)
{
	return i < 16 ? 0 : i == 16 ? 0x8d : (uint8_t)(i * 13 + 1);
}

static void write_file(const char *path, uint64_t size, uint8_t (*byte)(uint64_t))
{
	uint8_t *buf = malloc(size ? size : 1);
	assert_non_null(buf);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = byte(i);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static uint8_t file_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t b = 0;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	close(fd);
	return b;
}

/* True when the file at path holds what byte() makes, size bytes. */
static bool file_is(const char *path, uint64_t size, uint8_t (*byte)(uint64_t))
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *buf = malloc(size + 1);
	bool same = fd >= 0 && buf && pread(fd, buf, size + 1, 0) == (ssize_t)size;
	for (uint64_t i = 0; same && i < size; i++)
		same = buf[i] == byte(i);
	free(buf);
	if (fd >= 0)
		close(fd);
	return same;
}

static void make_files(struct fx *x)
{
	x->dir = x->tmp->dir;
	chmod(x->dir, 0755); /* open to the unprivileged user of the read-only test */
	snprintf(x->code, sizeof(x->code), "%s/code.fd", x->dir);
	snprintf(x->vars, sizeof(x->vars), "%s/vars.fd", x->dir);
	write_file(x->code, CODE_SIZE, code_byte);
	write_file(x->vars, VARS_SIZE, vars_byte);
}

/* Opens code and vars as the device of a fresh machine and bus. */
static int fx_start(struct fx *x, const char *code, const char *vars)
{
	fake_machine_init(&x->fm);
	io_bus_init(&x->mmio, "MMIO");
	struct err e = {{0}};
	if (pflash_open(&x->f, code, vars, &e) < 0 || pflash_attach(&x->f, &x->fm.m, &x->mmio, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	return 0;
}

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	if (!x || image_fx_setup((void **)&x->tmp) < 0)
		return -1;
	make_files(x);
	*state = x;
	return fx_start(x, x->code, x->vars);
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;
	pflash_close(&x->f);
	int r = image_fx_teardown((void **)&x->tmp);
	free(x);
	return r;
}

/* ---- the guest's view ---- */

static void gw(struct fx *x, uint64_t gpa, uint8_t v)
{
	assert_true(io_bus_dispatch(&x->mmio, gpa, &v, 1, true));
}

static uint8_t gr(struct fx *x, uint64_t gpa)
{
	const uint8_t *p = fake_machine_rom_byte(&x->fm, gpa);
	if (p)
		return *p;
	uint8_t v = 0xee;
	assert_true(io_bus_dispatch(&x->mmio, gpa, &v, 1, false));
	return v;
}

static bool vars_mapped(struct fx *x)
{
	return x->fm.rom[PFLASH_SLOT_VARS].mapped;
}

/* QemuFlashDetected: where it probes, then its sequence; `program_back` adds what edk2 does since
 * 2023 (program the byte back, then the status must show no program error). */
static bool ovmf_detect(struct fx *x, bool program_back)
{
	uint64_t base = pflash_layout(&x->f).vars_gpa, off = 0;
	for (; off < PFLASH_BLOCK_SIZE; off++) {
		uint8_t b = gr(x, base + off);
		if (b != 0x50 && b != 0x70 && b != 0x00)
			break;
	}
	assert_int_equal(off, 16);
	uint64_t p = base + off;
	uint8_t orig = gr(x, p);
	gw(x, p, 0x50);
	uint8_t probe = gr(x, p);
	if (orig != 0x50 && probe == 0x50)
		return false; /* RAM */
	gw(x, p, 0x70);
	probe = gr(x, p);
	if (probe != 0x00)
		return false; /* ROM or RAM */
	if (!program_back) {
		gw(x, p, 0xff);
		return true;
	}
	gw(x, p, 0x10);
	gw(x, p, orig);
	gw(x, p, 0x70);
	probe = gr(x, p);
	gw(x, p, 0xff);
	return !(probe & 0x10);
}

/* QemuFlashWrite: program byte by byte, then read-array at the last byte. */
static void ovmf_write(struct fx *x, uint64_t off, const void *buf, size_t n)
{
	const uint8_t *b = buf;
	for (size_t i = 0; i < n; i++) {
		gw(x, BASE + off + i, 0x10);
		gw(x, BASE + off + i, b[i]);
	}
	gw(x, BASE + off + n - 1, 0xff);
}

/* ---- tests ---- */

static void layout_and_slots(void **state)
{
	struct fx *x = *state;
	struct pflash_layout l = pflash_layout(&x->f);
	assert_int_equal(l.vars_gpa, BASE);
	assert_int_equal(l.vars_size, VARS_SIZE);
	assert_int_equal(l.code_gpa, CODE_GPA);
	assert_int_equal(l.code_gpa + l.code_size, LAYOUT_4G);
	assert_true(PFLASH_SLOT_VARS >= GUEST_MEM_SLOTS && PFLASH_SLOT_CODE >= GUEST_MEM_SLOTS);
	assert_true(vars_mapped(x));
	assert_true(x->fm.rom[PFLASH_SLOT_CODE].mapped);
	assert_int_equal(x->fm.rom[PFLASH_SLOT_CODE].gpa, CODE_GPA);
	assert_int_equal(x->fm.rom[PFLASH_SLOT_CODE].size, CODE_SIZE);
	assert_int_equal(gr(x, CODE_GPA), code_byte(0));
	assert_int_equal(gr(x, LAYOUT_4G - 1), code_byte(CODE_SIZE - 1));
	assert_int_equal(gr(x, BASE + 16), 0x8d);
	/* the device answers the same where a read exits */
	uint8_t v[8];
	assert_true(io_bus_dispatch(&x->mmio, LAYOUT_4G - 8, v, 8, false));
	for (int i = 0; i < 8; i++)
		assert_int_equal(v[i], code_byte(CODE_SIZE - 8 + (uint64_t)i));
	assert_true(io_bus_dispatch(&x->mmio, BASE + 16, v, 1, false));
	assert_int_equal(v[0], 0x8d);
}

static void detection_2022(void **state)
{
	struct fx *x = *state;
	assert_true(ovmf_detect(x, false));
	assert_true(vars_mapped(x));
	assert_int_equal(x->f.mode, PFLASH_READ_ARRAY);
	assert_true(file_is(x->vars, VARS_SIZE, vars_byte));
	assert_int_equal(x->f.syncs, 0);
}

static void detection_program_back(void **state)
{
	struct fx *x = *state;
	assert_true(ovmf_detect(x, true));
	assert_true(vars_mapped(x));
	assert_true(file_is(x->vars, VARS_SIZE, vars_byte));
	assert_int_equal(x->f.syncs, 0); /* the byte was already there: nothing written */
	assert_int_equal(x->f.programs, 1);
}

static void program_then_read_array(void **state)
{
	struct fx *x = *state;
	unsigned unmaps = x->fm.rom_unmaps;
	ovmf_write(x, 0x1005, "hello", 5);
	assert_int_equal(x->fm.rom_unmaps, unmaps + 1); /* once for the whole sequence */
	assert_true(vars_mapped(x));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(gr(x, BASE + 0x1005 + (uint64_t)i), "hello"[i]);
		assert_int_equal(file_byte(x->vars, 0x1005 + (uint64_t)i), "hello"[i]);
	}
	assert_int_equal(file_byte(x->vars, 0x1004), vars_byte(0x1004));
	assert_int_equal(file_byte(x->vars, 0x100a), vars_byte(0x100a));
	assert_int_equal(x->f.programs, 5);
	assert_int_equal(x->f.syncs, 1); /* at the read-array command, not per byte */
	assert_false(x->f.dirty);
}

static void program_synced_by_status_read(void **state)
{
	struct fx *x = *state;
	gw(x, BASE + 0x20, 0x10);
	assert_false(vars_mapped(x));
	assert_int_equal(gr(x, BASE + 0x3000), 0x80); /* status while the program is pending */
	gw(x, BASE + 0x20, 0x42);
	assert_true(x->f.dirty);
	assert_int_equal(x->f.syncs, 0); /* the read above had nothing to sync */
	assert_int_equal(gr(x, BASE + 0x20), 0x80);
	assert_false(x->f.dirty);
	assert_int_equal(x->f.syncs, 1);
	assert_int_equal(file_byte(x->vars, 0x20), 0x42);
	gw(x, BASE, 0xff);
	assert_int_equal(gr(x, BASE + 0x20), 0x42);
	assert_int_equal(x->f.syncs, 1);
}

static void erase_block(void **state)
{
	struct fx *x = *state;
	gw(x, BASE + 0x2123, 0x20);
	assert_false(vars_mapped(x));
	assert_int_equal(file_byte(x->vars, 0x2123), vars_byte(0x2123)); /* not before the confirm */
	gw(x, BASE + 0x2123, 0xd0);
	assert_int_equal(x->f.syncs, 1); /* durable before the confirm returns */
	assert_int_equal(x->f.erases, 1);
	for (uint64_t i = 0x2000; i < 0x3000; i++)
		assert_int_equal(file_byte(x->vars, i), 0xff);
	assert_int_equal(file_byte(x->vars, 0x1fff), vars_byte(0x1fff));
	assert_int_equal(file_byte(x->vars, 0x3000), vars_byte(0x3000));
	assert_int_equal(gr(x, BASE + 0x2500), 0x80); /* status mode until read-array, as QEMU */
	gw(x, BASE, 0xff);
	assert_true(vars_mapped(x));
	assert_int_equal(gr(x, BASE + 0x2fff), 0xff);
	/* the last block, confirmed at its last byte */
	gw(x, BASE + VARS_SIZE - 1, 0x20);
	gw(x, BASE + VARS_SIZE - 1, 0xd0);
	assert_int_equal(file_byte(x->vars, VARS_SIZE - PFLASH_BLOCK_SIZE), 0xff);
	assert_int_equal(file_byte(x->vars, VARS_SIZE - 1), 0xff);
	assert_int_equal(file_byte(x->vars, 0x1fff), vars_byte(0x1fff));
	assert_true(file_is(x->code, CODE_SIZE, code_byte));
}

static void status_values(void **state)
{
	struct fx *x = *state;
	gw(x, BASE, 0x70);
	assert_int_equal(gr(x, BASE + 5), 0x80); /* ready at power-on */
	gw(x, BASE, 0x50);
	assert_true(vars_mapped(x));
	gw(x, BASE, 0x70);
	assert_int_equal(gr(x, BASE), 0x00); /* cleared: what OVMF's detection looks for */
	gw(x, BASE, 0x20);
	gw(x, BASE, 0x33); /* not a confirm: improper sequence */
	assert_int_equal(gr(x, BASE), 0xb0);
	assert_true(file_is(x->vars, VARS_SIZE, vars_byte));
	gw(x, BASE, 0x50);
	gw(x, BASE + 1, 0x10);
	gw(x, BASE + 1, 0x77);
	assert_int_equal(gr(x, BASE), 0x80);
	gw(x, BASE, 0x20);
	gw(x, BASE, 0xff); /* erase abandoned */
	assert_true(vars_mapped(x));
	assert_int_equal(gr(x, BASE + 1), 0x77);
	gw(x, BASE, 0x70);
	uint8_t v[4];
	assert_true(io_bus_dispatch(&x->mmio, BASE + 8, v, 4, false));
	for (int i = 0; i < 4; i++)
		assert_int_equal(v[i], 0x80);
}

static void code_is_read_only(void **state)
{
	struct fx *x = *state;
	static const uint8_t cmds[] = {0x10, 0x55, 0x20, 0xd0, 0x40, 0x00, 0x70, 0x90, 0x98, 0xff};
	for (size_t i = 0; i < sizeof(cmds); i++)
		gw(x, CODE_GPA + 0x100 + i, cmds[i]);
	assert_int_equal(x->f.mode, PFLASH_READ_ARRAY);
	assert_true(vars_mapped(x));
	/* a program or erase started in the store cannot land in the code */
	gw(x, BASE, 0x50);
	gw(x, BASE + VARS_SIZE - 1, 0x10);
	gw(x, CODE_GPA, 0x00);
	assert_int_equal(gr(x, BASE), 0x80 | 0x10 | 0x02);
	gw(x, BASE, 0x50);
	gw(x, BASE + VARS_SIZE - 1, 0x20);
	gw(x, LAYOUT_4G - 1, 0xd0);
	assert_int_equal(gr(x, BASE), 0x80 | 0x20 | 0x02);
	/* nor one that straddles the end of the store */
	gw(x, BASE, 0x50);
	gw(x, BASE + VARS_SIZE - 2, 0x10);
	uint8_t four[4] = {1, 2, 3, 4};
	assert_true(io_bus_dispatch(&x->mmio, BASE + VARS_SIZE - 2, four, 4, true));
	assert_int_equal(gr(x, BASE), 0x80 | 0x10 | 0x02);
	gw(x, BASE, 0xff);
	assert_int_equal(gr(x, BASE + VARS_SIZE - 1), vars_byte(VARS_SIZE - 1));
	assert_int_equal(gr(x, CODE_GPA), code_byte(0));
	assert_true(file_is(x->code, CODE_SIZE, code_byte));
	assert_true(file_is(x->vars, VARS_SIZE, vars_byte));
	assert_int_equal(x->f.programs, 0);
}

static void ends_of_the_region(void **state)
{
	struct fx *x = *state;
	ovmf_write(x, VARS_SIZE - 1, "\x5a", 1);
	ovmf_write(x, 0, "\xa5", 1);
	assert_int_equal(file_byte(x->vars, VARS_SIZE - 1), 0x5a);
	assert_int_equal(file_byte(x->vars, 0), 0xa5);
	/* an 8-byte program at the last 8 bytes, then an 8-byte read across into the code */
	gw(x, BASE + VARS_SIZE - 8, 0x10);
	uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_true(io_bus_dispatch(&x->mmio, BASE + VARS_SIZE - 8, eight, 8, true));
	uint8_t v[8];
	assert_true(io_bus_dispatch(&x->mmio, BASE + VARS_SIZE - 4, v, 8, false));
	for (int i = 0; i < 4; i++) {
		assert_int_equal(v[i], 0x80);
		assert_int_equal(v[4 + i], code_byte((uint64_t)i));
	}
	gw(x, BASE, 0xff);
	assert_int_equal(gr(x, BASE + VARS_SIZE - 1), 8);
	assert_int_equal(file_byte(x->vars, VARS_SIZE - 8), 1);
	/* the bus gives the device nothing outside it */
	uint8_t b = 0x10;
	assert_false(io_bus_dispatch(&x->mmio, BASE - 1, &b, 1, true));
	assert_false(io_bus_dispatch(&x->mmio, LAYOUT_4G - 4, v, 8, false));
	struct stat st;
	assert_int_equal(stat(x->vars, &st), 0);
	assert_int_equal(st.st_size, VARS_SIZE);
}

static void cfi_and_id(void **state)
{
	struct fx *x = *state;
	gw(x, BASE, 0x98);
	assert_false(vars_mapped(x));
	assert_int_equal(gr(x, BASE + 0x10), 'Q');
	assert_int_equal(gr(x, BASE + 0x11), 'R');
	assert_int_equal(gr(x, BASE + 0x12), 'Y');
	assert_int_equal(gr(x, BASE + 0x13), 0x01); /* Intel/Sharp command set */
	assert_int_equal(gr(x, BASE + 0x2c), 1);
	assert_int_equal(gr(x, BASE + 0x2d) | gr(x, BASE + 0x2e) << 8, VARS_SIZE / PFLASH_BLOCK_SIZE - 1);
	assert_int_equal((gr(x, BASE + 0x2f) | gr(x, BASE + 0x30) << 8) * 256, PFLASH_BLOCK_SIZE);
	assert_int_equal(gr(x, BASE + 0x27), 14); /* 16 KiB */
	assert_int_equal(gr(x, BASE + 0x31), 'P');
	assert_int_equal(gr(x, BASE + 0x80), 0);
	gw(x, BASE, 0x90);
	assert_int_equal(gr(x, BASE), 0);
	assert_int_equal(gr(x, BASE + 1), 0);
	gw(x, BASE, 0xff);
	assert_true(vars_mapped(x));
	assert_int_equal(gr(x, BASE + 0x10), vars_byte(0x10));
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* One random access: mostly the commands the device knows, anywhere in the flash. */
static void random_access(struct fx *x, uint32_t *seed)
{
	static const uint8_t known[] = {0x10, 0x40, 0x20, 0xd0, 0x50, 0x70, 0x90, 0x98, 0xff, 0x00, 0xf0, 0x60, 0xe8};
	uint64_t off = lcg(seed) % (VARS_SIZE + CODE_SIZE);
	uint32_t len = 1u << (lcg(seed) % 4);
	if (off + len > VARS_SIZE + CODE_SIZE)
		off = VARS_SIZE + CODE_SIZE - len;
	uint8_t data[8];
	for (uint32_t i = 0; i < 8; i++)
		data[i] = lcg(seed) % 3 ? known[lcg(seed) % sizeof(known)] : (uint8_t)lcg(seed);
	pflash_mmio(&x->f, off, data, len, lcg(seed) % 4 != 0);
}

/* The store's copy and its file agree, the code is as it was, the slot is mapped exactly in
 * read-array mode, and 0xFF (twice, at most) brings the device back. */
static void assert_sane(struct fx *x)
{
	assert_true(file_is(x->code, CODE_SIZE, code_byte));
	assert_int_equal(vars_mapped(x), x->f.mode == PFLASH_READ_ARRAY);
	/* A sequence may have ended after 0x10 or 0x20: then the first 0xFF is the program's data
	 * or a bad erase confirm, as on a real part, and the second returns to read-array. */
	gw(x, BASE, 0xff);
	gw(x, BASE, 0xff);
	assert_true(vars_mapped(x));
	assert_int_equal(x->f.mode, PFLASH_READ_ARRAY);
	uint8_t *buf = malloc(VARS_SIZE + 1);
	int fd = open(x->vars, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, buf, VARS_SIZE + 1, 0), VARS_SIZE);
	close(fd);
	assert_memory_equal(buf, x->f.vars, VARS_SIZE);
	free(buf);
	assert_int_equal(x->f.errors, 0);
}

static void garbage_sequences(void **state)
{
	struct fx *x = *state;
	uint32_t seed = 20240611;
	for (int i = 0; i < 50000; i++)
		random_access(x, &seed);
	assert_true(x->f.programs > 0 && x->f.erases > 0);
	assert_sane(x);
	assert_true(ovmf_detect(x, true));
}

static void *garbage_thread(void *arg)
{
	struct fx *x = arg;
	static unsigned threads;
	uint32_t seed = 7919u * (1 + __atomic_fetch_add(&threads, 1, __ATOMIC_RELAXED)); /* fixed seeds */
	for (int i = 0; i < 5000; i++)
		random_access(x, &seed);
	return NULL;
}

static void garbage_from_several_vcpus(void **state)
{
	struct fx *x = *state;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, garbage_thread, x), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_sane(x);
}

static void slot_change_fails(void **state)
{
	struct fx *x = *state;
	x->fm.rom_fail = true;
	gw(x, BASE, 0x70); /* the slot stays: reads still show the array */
	assert_true(vars_mapped(x));
	assert_int_equal(x->f.mode, PFLASH_READ_STATUS);
	x->fm.rom_fail = false;
	gw(x, BASE, 0x10);
	assert_false(vars_mapped(x));
	gw(x, BASE, 0x99);
	x->fm.rom_fail = true;
	gw(x, BASE, 0xff); /* not mapped again: reads exit and the device serves the array */
	assert_false(vars_mapped(x));
	assert_int_equal(gr(x, BASE), 0x99);
	assert_int_equal(gr(x, BASE + 16), 0x8d);
	x->fm.rom_fail = false;
	gw(x, BASE, 0xff);
	assert_true(vars_mapped(x));
}

/* Debian's OVMF 2022.11, where installed: where the parts land, and detection on its store. */
static void debian_ovmf(void **state)
{
	struct fx *x = *state;
	static const char code[] = "/usr/share/OVMF/OVMF_CODE_4M.fd", vars[] = "/usr/share/OVMF/OVMF_VARS_4M.fd";
	if (access(code, R_OK) != 0 || access(vars, R_OK) != 0)
		skip();
	char copy[200], cmd[500];
	snprintf(copy, sizeof(copy), "%s/VARS_4M.fd", x->dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", vars, copy);
	assert_int_equal(system(cmd), 0);
	pflash_close(&x->f);
	assert_int_equal(fx_start(x, code, copy), 0);
	struct pflash_layout l = pflash_layout(&x->f);
	assert_int_equal(l.vars_gpa, 0xffc00000);
	assert_int_equal(l.vars_size, 0x84000);
	assert_int_equal(l.code_gpa, 0xffc84000);
	assert_true(ovmf_detect(x, false));
	assert_true(ovmf_detect(x, true));
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", vars, copy);
	assert_int_equal(system(cmd), 0);
}

/* ---- bad files ---- */

/* pflash_open(code, vars) fails with a message that holds `want` and `names`. */
static void open_fails(const char *code, const char *vars, const char *want, const char *names)
{
	struct pflash f;
	struct err e = {{0}};
	assert_int_equal(pflash_open(&f, code, vars, &e), -1);
	assert_contains(e.msg, want);
	assert_contains(e.msg, names);
	pflash_close(&f);
}

static void bad_files(void **state)
{
	struct fx *x = *state;
	char p[200], q[200];
	snprintf(p, sizeof(p), "%s/missing.fd", x->dir);
	open_fails(p, x->vars, "does not exist", p);
	open_fails(x->code, p, "cp /usr/share/OVMF/OVMF_VARS_4M.fd", p);
	open_fails(x->dir, x->vars, "is a directory", x->dir);
	open_fails(x->code, x->dir, "is a directory", x->dir);
	snprintf(p, sizeof(p), "%s/fifo", x->dir);
	assert_int_equal(mkfifo(p, 0644), 0);
	open_fails(p, x->vars, "not a regular file", p);
	open_fails(x->code, p, "not a regular file", p);
	snprintf(p, sizeof(p), "%s/empty.fd", x->dir);
	write_file(p, 0, code_byte);
	open_fails(p, x->vars, "is empty", p);
	open_fails(x->code, p, "is empty", p);
	snprintf(p, sizeof(p), "%s/odd.fd", x->dir);
	write_file(p, CODE_SIZE + 1, code_byte);
	open_fails(p, x->vars, "4 KiB", p);
	snprintf(q, sizeof(q), "%s/huge.fd", x->dir);
	int fd = open(q, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_int_equal(ftruncate(fd, LAYOUT_FIRMWARE_MAX), 0);
	close(fd);
	open_fails(q, x->vars, "16 MiB", q);
	snprintf(p, sizeof(p), "%s/small-vars.fd", x->dir);
	write_file(p, 2 * PFLASH_BLOCK_SIZE, vars_byte);
	open_fails(x->code, p, "do not belong together", p);
	/* the fixture's own store is locked by its device */
	open_fails(x->code, x->vars, "in use by another VM", x->vars);
}

static void read_only_vars(void **state)
{
	struct fx *x = *state;
	char p[200];
	snprintf(p, sizeof(p), "%s/ro-vars.fd", x->dir);
	write_file(p, VARS_SIZE, vars_byte);
	assert_int_equal(chmod(p, 0444), 0);
	if (geteuid() != 0) {
		open_fails(x->code, p, "is not writable", p);
		return;
	}
	pid_t pid = fork(); /* root may write anything: try as nobody */
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pflash f;
		struct err e = {{0}};
		bool ok = setgid(65534) == 0 && setuid(65534) == 0 && pflash_open(&f, x->code, p, &e) < 0 &&
			strstr(e.msg, "is not writable") && strstr(e.msg, p);
		if (!ok)
			fprintf(stderr, "read-only store: '%s'\n", e.msg);
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- cost of durability ---- */

static double seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* 1000 byte programs ending with read-array (one fdatasync), against a status read after each
 * program (an fdatasync each). Prints the times; fails only if the first syncs more than once. */
static void sync_cost(void **state)
{
	struct fx *x = *state;
	double t0 = seconds();
	for (unsigned i = 0; i < 1000; i++) {
		gw(x, BASE + 0x1000 + i, 0x10);
		gw(x, BASE + 0x1000 + i, (uint8_t)(i ^ 0x5a));
	}
	gw(x, BASE + 0x1000, 0xff);
	double t1 = seconds();
	assert_int_equal(x->f.syncs, 1);
	for (unsigned i = 0; i < 1000; i++) {
		gw(x, BASE + 0x1000 + i, 0x10);
		gw(x, BASE + 0x1000 + i, (uint8_t)(i ^ 0xa5));
		(void)gr(x, BASE);
	}
	gw(x, BASE + 0x1000, 0xff);
	double t2 = seconds();
	assert_int_equal(x->f.syncs, 1001);
	printf("pflash: 1000 byte programs + read-array: %.1f ms (1 fdatasync); with an fdatasync "
	       "after each: %.1f ms\n",
	       (t1 - t0) * 1e3, (t2 - t1) * 1e3);
}

int main(void)
{
	log_set_level(LOG_ERROR); /* the garbage tests' unknown commands and code writes are expected */
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		T(layout_and_slots),
		T(detection_2022),
		T(detection_program_back),
		T(program_then_read_array),
		T(program_synced_by_status_read),
		T(erase_block),
		T(status_values),
		T(code_is_read_only),
		T(ends_of_the_region),
		T(cfi_and_id),
		T(garbage_sequences),
		T(garbage_from_several_vcpus),
		T(slot_change_fails),
		T(debian_ovmf),
		T(bad_files),
		T(read_only_vars),
		T(sync_cost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

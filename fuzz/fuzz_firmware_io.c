/* fuzz_firmware_io: libFuzzer target for the devices a UEFI firmware talks to: fw_cfg (ports
 * and DMA), the flash (pflash, over memfd-backed code and variable store files), the i8042 with
 * its keyboard and mouse, and the PIIX chipset functions (PM block, port 0x92, and their PCI
 * configuration through ports 0xCF8-0xCFF), each registered on a port or MMIO bus as vm.c and
 * vm_firmware.c do it, over 64 KiB of guest RAM.
 *
 * The input: one byte n, then 16 * n bytes that become the start of guest RAM (the rest is
 * zero), so that DMA structures and the addresses in them are the input's; then up to
 * MAX_RECORDS records of 8 bytes {op, width, offset (le16), value (le32)}: op's bit 0 says
 * write, op >> 1 (modulo OP_COUNT) the target (enum op); width 1 << (w % 3) bytes for a port,
 * 1 << (w % 4) for the flash and RAM; the offset is into the target's range (modulo its length
 * for ports); a write's bytes are the value's, twice. Key and mouse records are the seat's
 * input events, RAM records the guest changing its memory between accesses, clock records time
 * passing for the PM timer. Every input starts from a new machine and a fresh variable store.
 *
 * What must hold: nothing reads or writes outside guest RAM, the device state or the two files;
 * nothing hangs or crashes; the host's variable store file is written only within its size and
 * always holds what the guest reads from the flash (checked after each input); the store's
 * memory slot is mapped exactly in read-array mode; fw_cfg's offset stays within its item.
 * Exit requests (reset, power-off) are recorded by the fake machine and ignored.
 *
 * Built with -DFUZZ_FIRMWARE_IO_SEED the same file writes the seed corpus into the directory
 * it is given. */
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/boot/layout.h"
#include "vmm/devices/fw_cfg.h"
#include "vmm/devices/pflash.h"
#include "vmm/devices/piix.h"
#include "vmm/platform.h"

#define RAM_SIZE    0x10000u
#define PARAGRAPH   16
#define RECORD      8
#define MAX_RECORDS 1024
#define VARS_SIZE   (4 * PFLASH_BLOCK_SIZE)
#define CODE_SIZE   (12 * PFLASH_BLOCK_SIZE)
#define FLASH_BASE  (LAYOUT_FIRMWARE_TOP - VARS_SIZE - CODE_SIZE)
#define FILE_KEY(i) (FW_CFG_FILE_FIRST + (i))

/* Bit 0 of a record's op is the direction; the rest picks one of these. */
enum op {
	OP_FW_CFG,   /* ports PORT_FW_CFG + offset % PORT_FW_CFG_LEN */
	OP_KBD_DATA, /* port 0x60 */
	OP_KBD_CMD,  /* port 0x64 */
	OP_PM,       /* the PIIX4 PM block, PIIX_PM_PORT + offset % PIIX_PM_LEN */
	OP_PORT_A,   /* port 0x92 */
	OP_PCI,      /* ports 0xCF8 + offset % 8 (0xCF9: the reset control register) */
	OP_FLASH,    /* MMIO at the flash's base + offset: the whole store and code */
	OP_KEY,      /* i8042_key(value & 0x1ff, the write bit) */
	OP_MOUSE,    /* i8042_mouse((int16)offset, (int16)value, (int8)(value >> 16), value >> 24) */
	OP_RAM,      /* a write of the guest's to its RAM at offset */
	OP_CLOCK,    /* value microseconds pass */
	OP_COUNT
};

#ifndef FUZZ_FIRMWARE_IO_SEED

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "fake_machine.h"
#include "vmm/devices/i8042.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static struct {
	struct guest_mem mem;
	struct fake_machine fm;
	struct io_bus pio, mmio;
	struct pci_bus pci;
	struct piix chip;
	struct fw_cfg cfg;
	struct i8042 kbd;
	struct pflash flash;
	int code_fd, vars_fd;
	char code_path[64], vars_path[64];
	uint8_t vars_image[VARS_SIZE]; /* what the store file holds at the start of each input */
	uint64_t clock_ns;
} fx;

static uint64_t fake_clock(void)
{
	return fx.clock_ns;
}

/* A memfd of size bytes, byte i being byte(i), and its path for pflash_open. */
static int make_file(const char *name, uint8_t *image, uint64_t size, uint8_t (*byte)(uint64_t), char path[64])
{
	for (uint64_t i = 0; i < size; i++)
		image[i] = byte(i);
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0 || pwrite(fd, image, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

static uint8_t code_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* An OVMF store starts with the volume header: 16 zero bytes, then the file system GUID. */
static uint8_t vars_byte(uint64_t i)
{
	return i < 16 ? 0 : i == 16 ? 0x8d : (uint8_t)(i * 13 + 1);
}

static void setup_once(void)
{
	static int ready;
	static uint8_t code_image[CODE_SIZE];
	if (ready)
		return;
	log_set_level(LOG_ERROR);
	struct err e;
	if (guest_mem_init(&fx.mem, RAM_SIZE, &e) < 0)
		abort();
	fx.code_fd = make_file("fuzz-code", code_image, CODE_SIZE, code_byte, fx.code_path);
	fx.vars_fd = make_file("fuzz-vars", fx.vars_image, VARS_SIZE, vars_byte, fx.vars_path);
	ready = 1;
}

/* The items and files a firmware reads, one of them longer than a page. */
static void fw_cfg_up(void)
{
	static uint8_t big[0x1800];
	static const char *const names[] = {"etc/e820", "etc/boot-fail-wait", "opt/fuzz/big"};
	uint64_t ram = htole64(RAM_SIZE);
	uint16_t cpus = htole16(2);
	uint32_t wait = htole32(5);
	struct err e;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	if (fw_cfg_init(&fx.cfg, &fx.mem, &e) < 0 || fw_cfg_add_item(&fx.cfg, FW_CFG_RAM_SIZE, &ram, 8, &e) < 0 ||
	    fw_cfg_add_item(&fx.cfg, FW_CFG_NB_CPUS, &cpus, 2, &e) < 0 ||
	    fw_cfg_add_item(&fx.cfg, FW_CFG_MAX_CPUS, &cpus, 2, &e) < 0 ||
	    fw_cfg_add_file(&fx.cfg, names[0], big + 0x100, 20 * 3, &e) < 0 ||
	    fw_cfg_add_file(&fx.cfg, names[1], &wait, 4, &e) < 0 ||
	    fw_cfg_add_file(&fx.cfg, names[2], big, sizeof(big), &e) < 0)
		abort();
}

/* A new machine: buses, chipset, fw_cfg, i8042, and the flash over a fresh store. */
static void machine_up(void)
{
	struct err e;
	fake_machine_init(&fx.fm);
	io_bus_init(&fx.pio, "port");
	io_bus_init(&fx.mmio, "MMIO");
	pci_bus_init(&fx.pci, LAYOUT_PCI_WINDOW, LAYOUT_PCI_WINDOW_SIZE);
	piix_init(&fx.chip, &fx.fm.m);
	fx.chip.now_ns = fake_clock;
	fx.clock_ns = 0;
	fw_cfg_up();
	i8042_init(&fx.kbd, &fx.fm.m);
	if (pwrite(fx.vars_fd, fx.vars_image, VARS_SIZE, 0) != VARS_SIZE || ftruncate(fx.vars_fd, VARS_SIZE) < 0)
		abort();
	if (piix_attach(&fx.chip, &fx.pci, &fx.pio, &e) < 0 ||
	    io_bus_register(&fx.pio, PORT_I8042_DATA, 1, i8042_data_io, &fx.kbd, "i8042 data", &e) < 0 ||
	    io_bus_register(&fx.pio, PORT_I8042_CMD, 1, i8042_cmd_io, &fx.kbd, "i8042 command", &e) < 0 ||
	    io_bus_register(&fx.pio, PORT_PCI_CONFIG, 8, pci_conf1_io, &fx.pci, "PCI configuration", &e) < 0 ||
	    io_bus_register(&fx.pio, PORT_FW_CFG, PORT_FW_CFG_LEN, fw_cfg_io, &fx.cfg, "fw_cfg", &e) < 0 ||
	    pflash_open(&fx.flash, fx.code_path, fx.vars_path, &e) < 0 ||
	    pflash_attach(&fx.flash, &fx.fm.m, &fx.mmio, &e) < 0 || fx.flash.base != FLASH_BASE) {
		fprintf(stderr, "fuzz_firmware_io: %s\n", e.msg);
		abort();
	}
}

static void machine_down(void)
{
	pflash_close(&fx.flash);
	i8042_destroy(&fx.kbd);
	fw_cfg_destroy(&fx.cfg);
	pci_bus_destroy(&fx.pci);
}

/* A read of the flash: from the mapped slots where they cover it, as under KVM, else an exit. */
static void flash_read(uint64_t gpa, uint8_t *data, uint32_t len)
{
	uint8_t bytes[8];
	for (uint32_t i = 0; i < len; i++) {
		const uint8_t *p = fake_machine_rom_byte(&fx.fm, gpa + i);
		if (!p) {
			io_bus_dispatch(&fx.mmio, gpa, data, len, false);
			return;
		}
		bytes[i] = *p;
	}
	memcpy(data, bytes, len);
}

static void port_access(unsigned target, uint16_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	static const struct {
		uint16_t base, len;
	} ports[] = {
		[OP_FW_CFG] = {PORT_FW_CFG, PORT_FW_CFG_LEN},
		[OP_KBD_DATA] = {PORT_I8042_DATA, 1},
		[OP_KBD_CMD] = {PORT_I8042_CMD, 1},
		[OP_PM] = {PIIX_PM_PORT, PIIX_PM_LEN},
		[OP_PORT_A] = {PIIX_PORT_A, 1},
		[OP_PCI] = {PORT_PCI_CONFIG, 8},
	};
	io_bus_dispatch(&fx.pio, ports[target].base + offset % ports[target].len, data, len, is_write);
}

static void run_record(const uint8_t *r)
{
	unsigned target = (r[0] >> 1) % OP_COUNT, w = r[1];
	bool is_write = r[0] & 1;
	uint16_t offset = (uint16_t)(r[2] | r[3] << 8);
	uint32_t value = (uint32_t)r[4] | (uint32_t)r[5] << 8 | (uint32_t)r[6] << 16 | (uint32_t)r[7] << 24;
	uint8_t data[8];
	memcpy(data, r + 4, 4);
	memcpy(data + 4, r + 4, 4);
	uint32_t wide = 1u << (w % 4);
	if (target == OP_FLASH && is_write)
		io_bus_dispatch(&fx.mmio, FLASH_BASE + offset, data, wide, true);
	else if (target == OP_FLASH)
		flash_read(FLASH_BASE + offset, data, wide);
	else if (target == OP_KEY)
		i8042_key(&fx.kbd, (uint16_t)(value & 0x1ff), is_write);
	else if (target == OP_MOUSE)
		i8042_mouse(&fx.kbd, (int16_t)offset, (int16_t)value, (int8_t)(value >> 16), value >> 24);
	else if (target == OP_RAM) {
		uint8_t *p = guest_mem_ptr(&fx.mem, offset, wide);
		if (p)
			memcpy(p, data, wide);
	} else if (target == OP_CLOCK)
		fx.clock_ns += value * 1000ull;
	else
		port_access(target, offset, data, 1u << (w % 3), is_write);
}

/* What must hold once the input has run (see the top). */
static void check_state(void)
{
	static uint8_t file[VARS_SIZE + 1];
	struct stat st;
	check(fstat(fx.vars_fd, &st) == 0 && st.st_size == VARS_SIZE);
	check(pread(fx.vars_fd, file, sizeof(file), 0) == VARS_SIZE);
	check(memcmp(file, fx.flash.vars, VARS_SIZE) == 0);
	const struct fake_rom_slot *slot = &fx.fm.rom[PFLASH_SLOT_VARS];
	check(slot->mapped == (fx.flash.mode == PFLASH_READ_ARRAY));
	check(!slot->mapped || (slot->host == fx.flash.vars && slot->gpa == FLASH_BASE && slot->size == VARS_SIZE));
	const struct fw_cfg_item *it = fx.cfg.key < FW_CFG_MAX_KEYS ? &fx.cfg.items[fx.cfg.key] : NULL;
	check(fx.cfg.offset <= (it && it->present ? it->len : 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup_once();
	if (size < 1)
		return 0;
	size_t ram = (size_t)data[0] * PARAGRAPH;
	if (ram > size - 1)
		ram = size - 1;
	memset(fx.mem.host, 0, RAM_SIZE);
	memcpy(fx.mem.host, data + 1, ram);
	machine_up();
	const uint8_t *rec = data + 1 + ram;
	size_t n = (size - 1 - ram) / RECORD;
	for (size_t i = 0; i < n && i < MAX_RECORDS; i++)
		run_record(rec + i * RECORD);
	check_state();
	machine_down();
	return 0;
}

#else /* FUZZ_FIRMWARE_IO_SEED: the sequences a firmware makes, each a valid input */

#define SEED_MAX (1 + 255 * PARAGRAPH + MAX_RECORDS * RECORD)

static uint8_t seed[SEED_MAX];
static size_t seed_len;

/* A new seed whose RAM prefix is paragraphs * 16 bytes. */
static void seed_begin(unsigned paragraphs)
{
	memset(seed, 0, sizeof(seed));
	seed[0] = (uint8_t)paragraphs;
	seed_len = 1 + paragraphs * PARAGRAPH;
}

static void rec(enum op op, bool is_write, unsigned width_log2, uint16_t offset, uint32_t value)
{
	uint8_t *r = seed + seed_len;
	r[0] = (uint8_t)(op << 1 | is_write);
	r[1] = (uint8_t)width_log2;
	r[2] = (uint8_t)offset;
	r[3] = (uint8_t)(offset >> 8);
	for (int i = 0; i < 4; i++)
		r[4 + i] = (uint8_t)(value >> 8 * i);
	seed_len += RECORD;
}

/* A DMA structure at gpa in the RAM prefix, and the two writes that start it. */
static void seed_dma(uint32_t gpa, uint32_t control, uint32_t length, uint64_t addr)
{
	uint32_t c = htobe32(control), l = htobe32(length);
	uint64_t a = htobe64(addr);
	memcpy(seed + 1 + gpa, &c, 4);
	memcpy(seed + 1 + gpa + 4, &l, 4);
	memcpy(seed + 1 + gpa + 8, &a, 8);
	rec(OP_FW_CFG, true, 2, FW_CFG_PORT_DMA, 0);
	rec(OP_FW_CFG, true, 2, FW_CFG_PORT_DMA + 4, __builtin_bswap32(gpa)); /* the bytes, big-endian */
}

static int seed_write(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(seed, 1, seed_len, f) != seed_len || fclose(f) != 0) {
		fprintf(stderr, "seed_firmware_io: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

/* The signature through the data port, then the DMA interface's signature and the ID. */
static void seed_fw_cfg_ports(void)
{
	seed_begin(0);
	rec(OP_FW_CFG, true, 1, FW_CFG_PORT_SELECTOR, FW_CFG_SIGNATURE);
	for (int i = 0; i < 4; i++)
		rec(OP_FW_CFG, false, 0, FW_CFG_PORT_DATA, 0);
	rec(OP_FW_CFG, false, 2, FW_CFG_PORT_DMA, 0);
	rec(OP_FW_CFG, false, 2, FW_CFG_PORT_DMA + 4, 0);
	rec(OP_FW_CFG, true, 1, FW_CFG_PORT_SELECTOR, FW_CFG_ID);
	for (int i = 0; i < 4; i++)
		rec(OP_FW_CFG, false, 0, FW_CFG_PORT_DATA, 0);
}

/* OVMF's way: the directory by DMA, then a file selected and read by DMA, then skipped into. */
static void seed_fw_cfg_dma(void)
{
	seed_begin(8);
	seed_dma(0x40, FW_CFG_DMA_SELECT | FW_CFG_DMA_READ | FW_CFG_FILE_DIR << 16, 4 + 3 * 64, 0x1000);
	seed_dma(0x50, FW_CFG_DMA_SELECT | FW_CFG_DMA_READ | (uint32_t)FILE_KEY(0) << 16, 60, 0x2000);
	seed_dma(0x60, FW_CFG_DMA_SELECT | FW_CFG_DMA_SKIP | (uint32_t)FILE_KEY(2) << 16, 0x100, 0);
	seed_dma(0x70, FW_CFG_DMA_READ, 0x1000, 0x3000);
}

/* OVMF's flash detection (2023), a variable written byte by byte, a block erased. */
static void seed_flash(void)
{
	seed_begin(0);
	for (uint16_t off = 0; off <= 16; off++)
		rec(OP_FLASH, false, 0, off, 0);
	static const uint8_t detect[] = {0x50, 0x70, 0x10, 0x8d, 0x70, 0xff};
	for (size_t i = 0; i < sizeof(detect); i++) {
		rec(OP_FLASH, true, 0, 16, detect[i]);
		if (detect[i] == 0x50 || detect[i] == 0x70)
			rec(OP_FLASH, false, 0, 16, 0);
	}
	for (uint16_t i = 0; i < 4; i++) {
		rec(OP_FLASH, true, 0, (uint16_t)(0x1005 + i), 0x10);
		rec(OP_FLASH, true, 0, (uint16_t)(0x1005 + i), "abcd"[i]);
	}
	rec(OP_FLASH, true, 0, 0x1008, 0xff);
	rec(OP_FLASH, false, 2, 0x1004, 0);
	rec(OP_FLASH, true, 0, 0x2000, 0x20);
	rec(OP_FLASH, true, 0, 0x2000, 0xd0);
	rec(OP_FLASH, true, 0, 0x2000, 0x70);
	rec(OP_FLASH, false, 0, 0x2000, 0);
	rec(OP_FLASH, true, 0, 0x2000, 0xff);
	rec(OP_FLASH, true, 0, 0x3000, 0x98);
	rec(OP_FLASH, false, 3, 0x3010, 0);
	rec(OP_FLASH, true, 0, 0x3000, 0xff);
	rec(OP_FLASH, false, 3, VARS_SIZE, 0);
}

/* The controller's self-test (0xAA), the command byte, a keyboard reset (0xFF), a key, and the
 * mouse enabled and moved. */
static void seed_i8042(void)
{
	seed_begin(0);
	rec(OP_KBD_CMD, true, 0, 0, 0xaa);
	rec(OP_KBD_CMD, false, 0, 0, 0);
	rec(OP_KBD_DATA, false, 0, 0, 0);
	rec(OP_KBD_CMD, true, 0, 0, 0x60);
	rec(OP_KBD_DATA, true, 0, 0, 0x47);
	rec(OP_KBD_DATA, true, 0, 0, 0xff);
	rec(OP_KBD_DATA, false, 0, 0, 0);
	rec(OP_KBD_DATA, false, 0, 0, 0);
	rec(OP_KEY, true, 0, 0, 30);
	rec(OP_KEY, false, 0, 0, 30);
	for (int i = 0; i < 4; i++)
		rec(OP_KBD_DATA, false, 0, 0, 0);
	rec(OP_KBD_CMD, true, 0, 0, 0xa8);
	rec(OP_KBD_CMD, true, 0, 0, 0xd4);
	rec(OP_KBD_DATA, true, 0, 0, 0xf4);
	rec(OP_MOUSE, true, 0, 5, 0x01fffffd);
	for (int i = 0; i < 4; i++)
		rec(OP_KBD_DATA, false, 0, 0, 0);
}

/* The PM block enabled through PCI configuration, the timer read, S5, and the resets. */
static void seed_piix(void)
{
	uint32_t pm = 0x80000000u | PIIX_SLOT << 11 | PIIX_PM_FN << 8;
	seed_begin(0);
	rec(OP_PCI, true, 2, 0, pm | 0x00);
	rec(OP_PCI, false, 2, 4, 0);
	rec(OP_PCI, true, 2, 0, pm | 0x40);
	rec(OP_PCI, true, 2, 4, PIIX_PM_PORT);
	rec(OP_PCI, true, 2, 0, pm | 0x80);
	rec(OP_PCI, true, 0, 4, 1);
	rec(OP_PM, false, 2, 8, 0);
	rec(OP_CLOCK, true, 0, 0, 1000);
	rec(OP_PM, false, 2, 8, 0);
	rec(OP_PM, true, 1, 4, 0x0001);
	rec(OP_PM, true, 1, 4, 0x2001);
	rec(OP_PORT_A, false, 0, 0, 0);
	rec(OP_PORT_A, true, 0, 0, 0x03);
	rec(OP_PCI, true, 0, 1, 0x02);
	rec(OP_PCI, true, 0, 1, 0x06);
}

int main(int argc, char **argv)
{
	static const struct {
		void (*make)(void);
		const char *name;
	} seeds[] = {
		{seed_fw_cfg_ports, "fw-cfg-ports"},
		{seed_fw_cfg_dma, "fw-cfg-dma"},
		{seed_flash, "flash"},
		{seed_i8042, "i8042"},
		{seed_piix, "piix"},
	};
	if (argc != 2) {
		fprintf(stderr, "usage: seed_firmware_io DIR\n");
		return 2;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		seeds[i].make();
		if (seed_write(argv[1], seeds[i].name) < 0)
			return 1;
	}
	return 0;
}

#endif /* FUZZ_FIRMWARE_IO_SEED */

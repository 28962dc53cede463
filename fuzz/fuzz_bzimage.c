/* fuzz_bzimage: libFuzzer target: arbitrary bytes as a kernel image to bzimage_parse and, when
 * they parse, to boot_load into a 64 MiB guest; checks the invariants both promise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/loader.h"
#include "vmm/memory.h"

#define MEM_SIZE (64ull << 20)
#define PAGE     4096ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static struct guest_mem *fuzz_mem(void)
{
	static struct guest_mem mem;
	static int ready;
	if (!ready) {
		struct err e;
		if (guest_mem_init(&mem, MEM_SIZE, &e) < 0)
			abort();
		log_set_level(LOG_ERROR);
		ready = 1;
	}
	return &mem;
}

static void fuzz_parse(const uint8_t *data, size_t size, struct bzimage *bz)
{
	/* What a successful parse guarantees the loader. */
	check(bz->version >= 0x020c);
	check(bz->setup_size < size);
	check(bz->header_end >= BZ_MIN_FILE && bz->header_end <= bz->setup_size);
	check(bz->payload == data + bz->setup_size);
	check(bz->payload_size == size - bz->setup_size);
	check(bz->init_size >= bz->payload_size);
	check(bz->kernel_alignment && !(bz->kernel_alignment & (bz->kernel_alignment - 1)));
	uint64_t load = bzimage_load_address(bz);
	check(load >= LAYOUT_HIGH_MEM && load + bz->init_size <= LAYOUT_PCI_HOLE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bzimage bz;
	struct err e;
	e.msg[0] = '\0';
	if (bzimage_parse(data, size, "fuzz", &bz, &e) < 0) {
		check(e.msg[0] != '\0');
		return 0;
	}
	fuzz_parse(data, size, &bz);

	static const uint8_t initrd[5000] = {1, 2, 3};
	struct boot_config cfg = {
		.kernel = data,
		.kernel_size = size,
		.kernel_path = "fuzz",
		.initrd = initrd,
		.initrd_size = sizeof(initrd),
		.initrd_path = "initrd",
		.cmdline = "console=ttyS0",
		.ncpus = 1 + data[BZ_SETUP_SECTS] % 8,
	};
	struct boot_entry entry;
	struct guest_mem *mem = fuzz_mem();
	if (boot_load(mem, &cfg, &entry, &e) < 0) {
		check(e.msg[0] != '\0');
		return 0;
	}
	uint64_t load = bzimage_load_address(&bz);
	check(entry.kernel_addr == load);
	check(entry.rip == load + 0x200);
	check(entry.rsi == LAYOUT_ZERO_PAGE);
	check(entry.initrd_addr % PAGE == 0);
	check(entry.initrd_addr >= load + bz.init_size);
	check(entry.initrd_addr + sizeof(initrd) <= (uint64_t)bz.initrd_addr_max + 1);
	check(entry.initrd_addr + sizeof(initrd) <= MEM_SIZE);
	check(memcmp(guest_mem_ptr(mem, load, bz.payload_size), bz.payload, bz.payload_size) == 0);
	return 0;
}

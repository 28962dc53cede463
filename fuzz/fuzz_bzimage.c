/* fuzz_bzimage: libFuzzer target: arbitrary bytes as a kernel image (a bzImage, or an ELF
 * vmlinux where they start with the ELF magic) to bzimage_parse or vmlinux_parse and, when they
 * parse, to boot_load into a 64 MiB guest; checks the invariants each promises. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/loader.h"
#include "vmm/boot/vmlinux.h"
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

static const uint8_t fuzz_initrd[5000] = {1, 2, 3};

static struct boot_config fuzz_config(const uint8_t *data, size_t size, unsigned ncpus)
{
	return (struct boot_config){
		.kernel = data,
		.kernel_size = size,
		.kernel_path = "fuzz",
		.initrd = fuzz_initrd,
		.initrd_size = sizeof(fuzz_initrd),
		.initrd_path = "initrd",
		.cmdline = "console=ttyS0",
		.ncpus = ncpus,
	};
}

/* Each segment that no later one overlaps is in guest memory as the file has it, then zeroes at
 * both ends of its tail (the fuzzer's guest memory is reused, so a missing zero fill shows). */
static void fuzz_check_segments(struct guest_mem *mem, const struct vmlinux *vl)
{
	for (unsigned i = 0; i < vl->nseg; i++) {
		const struct vmlinux_segment *s = &vl->seg[i];
		int overlapped = 0;
		for (unsigned j = i + 1; j < vl->nseg; j++)
			overlapped |= vl->seg[j].paddr < s->paddr + s->memsz &&
				s->paddr < vl->seg[j].paddr + vl->seg[j].memsz;
		if (overlapped)
			continue;
		const uint8_t *g = guest_mem_ptr(mem, s->paddr, s->memsz);
		check(g && memcmp(g, s->data, s->filesz) == 0);
		uint64_t tail = s->memsz - s->filesz, edge = tail < 4096 ? tail : 4096; /* both ends of it */
		for (uint64_t k = 0; k < edge; k++)
			check(g[s->filesz + k] == 0 && g[s->memsz - 1 - k] == 0);
	}
}

/* What a successful vmlinux parse promises the loader, and the loader promises of a vmlinux. */
static int fuzz_vmlinux(const uint8_t *data, size_t size)
{
	struct vmlinux vl;
	struct err e;
	e.msg[0] = '\0';
	if (vmlinux_parse(data, size, "fuzz", &vl, &e) < 0) {
		check(e.msg[0] != '\0');
		return 0;
	}
	check(vl.nseg >= 1 && vl.nseg <= VMLINUX_MAX_SEGMENTS);
	int entry_loaded = 0;
	for (unsigned i = 0; i < vl.nseg; i++) {
		const struct vmlinux_segment *s = &vl.seg[i];
		check(s->data >= data && s->filesz <= (uint64_t)(data + size - s->data));
		check(s->filesz <= s->memsz);
		check(s->paddr >= vl.start && s->paddr + s->memsz <= vl.end);
		entry_loaded |= vl.entry >= s->paddr && vl.entry - s->paddr < s->filesz;
	}
	check(entry_loaded);
	check(vl.start >= LAYOUT_HIGH_MEM && vl.end <= LAYOUT_PCI_HOLE);

	struct boot_config cfg = fuzz_config(data, size, 1 + size % 8);
	struct boot_entry entry;
	struct guest_mem *mem = fuzz_mem();
	if (boot_load(mem, &cfg, &entry, &e) < 0) {
		check(e.msg[0] != '\0');
		/* Refused only for want of memory: the kernel, a MiB of slack, the initrd. */
		check((vl.end + PAGE - 1) / PAGE * PAGE + (1ull << 20) > MEM_SIZE);
		return 0;
	}
	check(entry.rip == vl.entry && entry.rsi == LAYOUT_ZERO_PAGE && entry.cr3 == LAYOUT_PML4);
	check(entry.initrd_addr % PAGE == 0 && entry.initrd_addr >= vl.end);
	check(entry.initrd_addr + sizeof(fuzz_initrd) <= MEM_SIZE);
	const uint8_t *zp = guest_mem_ptr(mem, LAYOUT_ZERO_PAGE, PAGE);
	check(memcmp(zp + BZ_HEADER, "HdrS", 4) == 0 && zp[BZ_BOOT_FLAG] == 0x55 && zp[BZ_BOOT_FLAG + 1] == 0xaa);
	fuzz_check_segments(mem, &vl);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (vmlinux_is_elf(data, size))
		return fuzz_vmlinux(data, size);
	struct bzimage bz;
	struct err e;
	e.msg[0] = '\0';
	if (bzimage_parse(data, size, "fuzz", &bz, &e) < 0) {
		check(e.msg[0] != '\0');
		return 0;
	}
	fuzz_parse(data, size, &bz);

	struct boot_config cfg = fuzz_config(data, size, 1 + data[BZ_SETUP_SECTS] % 8);
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
	check(entry.initrd_addr + sizeof(fuzz_initrd) <= (uint64_t)bz.initrd_addr_max + 1);
	check(entry.initrd_addr + sizeof(fuzz_initrd) <= MEM_SIZE);
	check(memcmp(guest_mem_ptr(mem, load, bz.payload_size), bz.payload, bz.payload_size) == 0);
	return 0;
}

/* memory: guest RAM allocation and bounds-checked address translation (see memory.h). */
#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE (2ull << 20)

int guest_mem_init(struct guest_mem *m, uint64_t size, struct err *e)
{
	memset(m, 0, sizeof(*m));
	/* Reserve 2 MiB more and keep a 2 MiB-aligned window: only then can the host back guest
	 * RAM with huge pages and KVM map them as such, instead of one fault per 4 KiB page. */
	void *raw = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			 -1, 0);
	if (raw == MAP_FAILED)
		return err_errno(e, errno, "cannot reserve %llu MiB of guest memory", (unsigned long long)(size >> 20));
	uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	size_t head = start - (uintptr_t)raw;
	if (head)
		munmap(raw, head);
	if (HUGE_PAGE - head)
		munmap((uint8_t *)start + size, HUGE_PAGE - head);
	void *p = (void *)start;
	madvise(p, size, MADV_HUGEPAGE);
	madvise(p, size, MADV_DONTDUMP);
	m->host = p;
	m->size = size;
	m->nregions = layout_ram_regions(size, m->regions);
	uint64_t off = 0;
	for (int i = 0; i < m->nregions; i++) {
		m->host_offset[i] = off;
		off += m->regions[i].size;
	}
	return 0;
}

void guest_mem_free(struct guest_mem *m)
{
	if (m->host)
		munmap(m->host, m->size);
	memset(m, 0, sizeof(*m));
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nregions; i++) {
		const struct ram_region *r = &m->regions[i];
		if (gpa < r->gpa || gpa - r->gpa > r->size)
			continue;
		uint64_t off = gpa - r->gpa;
		if (len > r->size - off)
			return NULL;
		return m->host + m->host_offset[i] + off;
	}
	return NULL;
}

uint64_t guest_mem_resident(const struct guest_mem *m)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t pages = (m->size + (uint64_t)page - 1) / (uint64_t)page;
	uint64_t resident = 0;
	unsigned char vec[4096];
	for (uint64_t first = 0; first < pages; first += sizeof(vec)) {
		uint64_t n = pages - first < sizeof(vec) ? pages - first : sizeof(vec);
		if (mincore(m->host + first * (uint64_t)page, n * (uint64_t)page, vec) < 0)
			return 0;
		for (uint64_t i = 0; i < n; i++)
			resident += vec[i] & 1;
	}
	return resident * (uint64_t)page;
}

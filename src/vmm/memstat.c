/* memstat: the monitor's resident memory by kind (see memstat.h). */
#include "memstat.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "../common/thread.h"

#define ARENA_ALIGN (64ull << 20) /* glibc's HEAP_MAX_SIZE on 64-bit: a non-main arena's alignment */

/* One mapping: its range, whether it is writable, private and anonymous, its path or [name]. */
struct vma {
	uintptr_t start, end;
	char perms[5];
	char path[PATH_MAX];
};

static bool parse_vma(const char *line, struct vma *v)
{
	unsigned long long s, e;
	int off = 0;
	if (sscanf(line, "%llx-%llx %4s %*s %*s %*s%n", &s, &e, v->perms, &off) != 3)
		return false;
	v->start = (uintptr_t)s;
	v->end = (uintptr_t)e;
	const char *p = line + off;
	while (*p == ' ')
		p++;
	snprintf(v->path, sizeof(v->path), "%s", p);
	v->path[strcspn(v->path, "\n")] = '\0';
	return true;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static enum memstat_kind kind_of(const struct vma *v, const struct vma *prev, const char *binary, uint64_t stack_size)
{
	uint64_t len = v->end - v->start;
	if (strcmp(v->path, "[heap]") == 0)
		return MEMSTAT_HEAP;
	if (strcmp(v->path, "[stack]") == 0)
		return MEMSTAT_STACKS;
	if (v->path[0] == '/')
		return strcmp(v->path, binary) == 0         ? MEMSTAT_BINARY
			: strstr(base_name(v->path), ".so") ? MEMSTAT_LIBS
							    : MEMSTAT_OTHER;
	if (v->path[0])
		return MEMSTAT_OTHER; /* [vdso], [vvar] and the like */
	bool guarded = prev && prev->end == v->start && strncmp(prev->perms, "---", 3) == 0;
	if (v->perms[1] == 'w' && guarded && len + 2 * 4096 >= stack_size && len <= stack_size + 2 * 4096)
		return MEMSTAT_STACKS;
	if (v->perms[1] == 'w' && v->start % ARENA_ALIGN == 0)
		return MEMSTAT_ARENAS;
	return MEMSTAT_ANON;
}

/* A field line of the current mapping, "NAME: N kB": N into *kib when the name is `name`. */
static bool field_line(const char *line, const char *name, uint64_t *kib)
{
	size_t n = strlen(name);
	unsigned long long v;
	if (strncmp(line, name, n) != 0 || line[n] != ':' || sscanf(line + n + 1, " %llu kB", &v) != 1)
		return false;
	*kib = v;
	return true;
}

#define MAX_LIBS 64

struct lib_sum {
	char name[48];
	uint64_t kib;
};

/* Adds kib to the library's running sum (the first MAX_LIBS libraries are told apart). */
static void lib_add(struct lib_sum *libs, const char *path, uint64_t kib)
{
	const char *name = base_name(path);
	for (unsigned i = 0; i < MAX_LIBS; i++) {
		if (!libs[i].name[0])
			snprintf(libs[i].name, sizeof(libs[i].name), "%s", name);
		if (strcmp(libs[i].name, name) == 0) {
			libs[i].kib += kib;
			return;
		}
	}
}

static void page_tables(FILE *status, struct memstat *m)
{
	char line[256];
	unsigned long long v;
	while (status && fgets(line, sizeof(line), status))
		if (sscanf(line, "VmPTE: %llu kB", &v) == 1)
			m->pagetables_kib = v;
}

static void top_lib(const struct lib_sum *libs, struct memstat *m)
{
	for (unsigned i = 0; i < MAX_LIBS && libs[i].name[0]; i++)
		if (libs[i].kib > m->top_lib_kib) {
			m->top_lib_kib = libs[i].kib;
			memcpy(m->top_lib, libs[i].name, sizeof(m->top_lib)); /* both 48 bytes, terminated */
		}
}

int memstat_parse(FILE *smaps, FILE *status, uintptr_t guest, uint64_t guest_len, const char *binary,
		  uint64_t stack_size, struct memstat *m, struct err *e)
{
	struct lib_sum libs[MAX_LIBS] = {{{0}}};
	struct vma v[2];
	unsigned cur = 0, seen = 0;
	enum memstat_kind k = MEMSTAT_OTHER;
	bool in_guest = false;
	char line[PATH_MAX + 128];
	memset(m, 0, sizeof(*m));
	while (fgets(line, sizeof(line), smaps)) {
		uint64_t kib;
		if (parse_vma(line, &v[cur ^ 1])) {
			cur ^= 1;
			in_guest = v[cur].start >= guest && v[cur].end <= guest + guest_len;
			k = kind_of(&v[cur], seen++ ? &v[cur ^ 1] : NULL, binary, stack_size);
			m->stacks += k == MEMSTAT_STACKS;
		} else if (seen && field_line(line, "Rss", &kib)) {
			if (in_guest) {
				m->guest_kib += kib;
				continue;
			}
			m->kib[k] += kib;
			if (k == MEMSTAT_LIBS)
				lib_add(libs, v[cur].path, kib);
		} else if (seen && !in_guest &&
			   (field_line(line, "Private_Clean", &kib) || field_line(line, "Private_Dirty", &kib))) {
			m->private_kib += kib;
		} else if (seen && !in_guest && field_line(line, "Anonymous", &kib)) {
			m->anon_kib += kib;
		}
	}
	if (ferror(smaps))
		return err_errno(e, errno, "cannot read the monitor's memory map");
	if (!seen)
		return err_set(e, "the monitor's memory map lists no mapping");
	top_lib(libs, m);
	page_tables(status, m);
	return 0;
}

int memstat_self(uintptr_t guest, uint64_t guest_len, struct memstat *m, struct err *e)
{
	char binary[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", binary, sizeof(binary) - 1);
	binary[n > 0 ? n : 0] = '\0';
	FILE *smaps = fopen("/proc/self/smaps", "re"), *status = fopen("/proc/self/status", "re");
	int r = smaps ? memstat_parse(smaps, status, guest, guest_len, binary, THREAD_STACK_SIZE, m, e)
		      : err_errno(e, errno, "cannot open /proc/self/smaps");
	if (smaps)
		fclose(smaps);
	if (status)
		fclose(status);
	return r;
}

uint64_t memstat_overhead_kib(const struct memstat *m)
{
	uint64_t sum = m->pagetables_kib;
	for (unsigned k = 0; k < MEMSTAT_KINDS; k++)
		sum += m->kib[k];
	return sum;
}

uint64_t memstat_private_kib(const struct memstat *m)
{
	return m->private_kib + m->pagetables_kib;
}

uint64_t memstat_own_kib(const struct memstat *m)
{
	return m->anon_kib + m->pagetables_kib;
}

void memstat_format(const struct memstat *m, char *buf, size_t size)
{
	snprintf(buf, size,
		 "heap %" PRIu64 " KiB, malloc arenas %" PRIu64 " KiB, thread stacks %" PRIu64
		 " KiB (%u), binary %" PRIu64 " KiB, libraries %" PRIu64 " KiB (most: %s %" PRIu64
		 " KiB), other anonymous %" PRIu64 " KiB, other %" PRIu64 " KiB, page tables %" PRIu64
		 " KiB; this monitor's alone (private pages and page tables) %" PRIu64
		 " KiB; its own however many run (anonymous pages and page tables) %" PRIu64 " KiB",
		 m->kib[MEMSTAT_HEAP], m->kib[MEMSTAT_ARENAS], m->kib[MEMSTAT_STACKS], m->stacks,
		 m->kib[MEMSTAT_BINARY], m->kib[MEMSTAT_LIBS], m->top_lib[0] ? m->top_lib : "none", m->top_lib_kib,
		 m->kib[MEMSTAT_ANON], m->kib[MEMSTAT_OTHER], m->pagetables_kib, memstat_private_kib(m),
		 memstat_own_kib(m));
}

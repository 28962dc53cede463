/* memstat: where the monitor's own resident memory goes, so that a rise in its overhead names
 * its cause. Each mapping in /proc/self/smaps is put in one kind by what it is (guest RAM by
 * its address; the [heap]; glibc's further malloc arenas, which start on a 64 MiB boundary;
 * thread stacks, a writable mapping of the monitor's stack size right above a guard page, and
 * [stack]; the monitor's binary and the shared libraries by path) and its Rss added there; page
 * tables come from VmPTE in /proc/self/status. Beside the Rss, the pages no other process maps
 * now (Private_Clean and Private_Dirty), and the anonymous pages: what one more VM costs. The
 * files' private pages (the binary's and the libraries' that no other process on the host maps
 * yet) are page cache, which a second monitor shares; the anonymous pages and the page tables
 * are each monitor's own. Read once, when the VM ends (--stats), on the main thread. */
#ifndef SHOJI_VMM_MEMSTAT_H
#define SHOJI_VMM_MEMSTAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../common/err.h"

enum memstat_kind {
	MEMSTAT_HEAP,   /* [heap]: the main malloc arena */
	MEMSTAT_ARENAS, /* the other threads' malloc arenas */
	MEMSTAT_STACKS, /* thread stacks and [stack] */
	MEMSTAT_BINARY, /* the monitor's own file */
	MEMSTAT_LIBS,   /* shared libraries (and the dynamic loader) */
	MEMSTAT_ANON,   /* other anonymous mappings: large buffers (device rings, display, slirp) */
	MEMSTAT_OTHER,  /* [vdso], [vvar], other files */
	MEMSTAT_KINDS,
};

struct memstat {
	uint64_t kib[MEMSTAT_KINDS];
	uint64_t guest_kib;      /* guest RAM resident (not overhead) */
	uint64_t pagetables_kib; /* VmPTE */
	uint64_t private_kib;    /* Private_Clean + Private_Dirty, guest RAM left out */
	uint64_t anon_kib;       /* Anonymous, guest RAM left out */
	unsigned stacks;         /* thread stacks seen */
	char top_lib[48];        /* the library with the most resident pages, and how many */
	uint64_t top_lib_kib;
};

/* Sorts the mappings listed in smaps (the text of /proc/PID/smaps) into m; guest RAM is
 * [guest, guest + guest_len), binary the executable's path, stack_size the size of a thread
 * stack the monitor makes (common/thread.h); status (the text of /proc/PID/status) gives the
 * page tables, and may be NULL. */
int memstat_parse(FILE *smaps, FILE *status, uintptr_t guest, uint64_t guest_len, const char *binary,
		  uint64_t stack_size, struct memstat *m, struct err *e);
/* The same for this process, from /proc/self. */
int memstat_self(uintptr_t guest, uint64_t guest_len, struct memstat *m, struct err *e);
/* One line: "heap N KiB, malloc arenas N KiB, ..., page tables N KiB" (the overhead's parts). */
void memstat_format(const struct memstat *m, char *buf, size_t size);
/* The overhead: every kind and the page tables, guest RAM left out. */
uint64_t memstat_overhead_kib(const struct memstat *m);
/* The part of it no other process shares now: private pages and page tables. */
uint64_t memstat_private_kib(const struct memstat *m);
/* The part that is this monitor's own however many run: anonymous pages and page tables. */
uint64_t memstat_own_kib(const struct memstat *m);

#endif

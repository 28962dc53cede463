/* test_memstat: the monitor's mappings sorted by kind, from a made-up smaps: guest RAM left out
 * by address, the heap, an arena on its 64 MiB boundary, thread stacks over their guard pages
 * (and a same-sized mapping without a guard that is not one), the binary, libraries summed by
 * name, [vdso], page tables; and this process's own map read whole. */
#include "unit.h"

#include <stdio.h>
#include <string.h>

#include "vmm/memstat.h"

static const char *SMAPS = "555500000000-555500002000 r--p 00000000 fe:00 1 /usr/bin/shoji-vmm\n"
			   "Size: 8 kB\nRss: 8 kB\nAnonymous: 0 kB\n"
			   "555500002000-555500010000 r-xp 00002000 fe:00 1 /usr/bin/shoji-vmm\n"
			   "Rss: 40 kB\n"
			   "555500100000-555500200000 rw-p 00000000 00:00 0 [heap]\n"
			   "Rss: 300 kB\nPrivate_Clean: 4 kB\nPrivate_Dirty: 296 kB\nAnonymous: 300 kB\n"
			   "7f0000000000-7f0000100000 rw-p 00000000 00:00 0 \n" /* 64 MiB aligned: an arena */
			   "Rss: 132 kB\n"
			   "7f0000100000-7f0004000000 ---p 00000000 00:00 0 \n"
			   "Rss: 0 kB\n"
			   "7f1000000000-7f1040000000 rw-p 00000000 00:00 0 \n" /* guest RAM, 1 GiB */
			   "Rss: 65536 kB\nPrivate_Dirty: 65536 kB\nAnonymous: 65536 kB\n"
			   "7f2000000000-7f2000001000 ---p 00000000 00:00 0 \n" /* a guard page, then a stack */
			   "Rss: 0 kB\n"
			   "7f2000001000-7f2000081000 rw-p 00000000 00:00 0 \n"
			   "Rss: 16 kB\nAnonymous: 16 kB\n"
			   "7f2000081000-7f2000082000 ---p 00000000 00:00 0 \n"
			   "Rss: 0 kB\n"
			   "7f2000082000-7f2000102000 rw-p 00000000 00:00 0 \n"
			   "Rss: 12 kB\n"
			   "7f2100010000-7f2100090000 rw-p 00000000 00:00 0 \n" /* stack-sized, no guard: a buffer */
			   "Rss: 200 kB\n"
			   "7f3000000000-7f3000020000 r--p 00000000 fe:00 2 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
			   "Rss: 100 kB\n"
			   "7f3000020000-7f3000180000 r-xp 00020000 fe:00 2 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
			   "Rss: 500 kB\nShared_Clean: 480 kB\nPrivate_Clean: 20 kB\n"
			   "7f3100000000-7f3100010000 r-xp 00000000 fe:00 3 /usr/lib/x86_64-linux-gnu/libz.so.1.2.13\n"
			   "Rss: 60 kB\n"
			   "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
			   "Rss: 24 kB\n"
			   "7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0 [vdso]\n"
			   "Rss: 8 kB\n";

static FILE *text(const char *s)
{
	return fmemopen((void *)s, strlen(s), "r");
}

static void sorted_by_kind(void **state)
{
	(void)state;
	FILE *smaps = text(SMAPS), *status = text("Name: shoji-vmm\nVmPTE:\t  36 kB\nVmSwap: 0 kB\n");
	struct memstat m;
	struct err e;
	assert_int_equal(memstat_parse(smaps, status, 0x7f1000000000u, 1ull << 30, "/usr/bin/shoji-vmm", 512u << 10, &m,
				       &e),
			 0);
	fclose(smaps);
	fclose(status);
	assert_int_equal(m.guest_kib, 65536);
	assert_int_equal(m.kib[MEMSTAT_BINARY], 48);
	assert_int_equal(m.kib[MEMSTAT_HEAP], 300);
	assert_int_equal(m.kib[MEMSTAT_ARENAS], 132);
	assert_int_equal(m.kib[MEMSTAT_STACKS], 16 + 12 + 24);
	assert_int_equal(m.stacks, 3);
	assert_int_equal(m.kib[MEMSTAT_ANON], 200);
	assert_int_equal(m.kib[MEMSTAT_LIBS], 660);
	assert_string_equal(m.top_lib, "libc.so.6");
	assert_int_equal(m.top_lib_kib, 600);
	assert_int_equal(m.kib[MEMSTAT_OTHER], 8);
	assert_int_equal(m.pagetables_kib, 36);
	assert_int_equal(memstat_overhead_kib(&m), 48 + 300 + 132 + 52 + 200 + 660 + 8 + 36);
	/* Private pages: the heap's and libc's own, guest RAM's left out; and the page tables. */
	assert_int_equal(m.private_kib, 296 + 4 + 20);
	assert_int_equal(memstat_private_kib(&m), 296 + 4 + 20 + 36);
	/* Anonymous pages: the heap's and a stack's, guest RAM's left out; libc's private page is
	 * page cache, not one more VM's cost. */
	assert_int_equal(m.anon_kib, 300 + 16);
	assert_int_equal(memstat_own_kib(&m), 300 + 16 + 36);
	char line[512];
	memstat_format(&m, line, sizeof(line));
	assert_contains(line, "thread stacks 52 KiB (3)");
	assert_contains(line, "most: libc.so.6 600 KiB");
	assert_contains(line, "page tables 36 KiB");
	assert_contains(line, "this monitor's alone (private pages and page tables) 356 KiB");
	assert_contains(line, "its own however many run (anonymous pages and page tables) 352 KiB");
}

static void bad_input(void **state)
{
	(void)state;
	FILE *f = text("not a map\n");
	struct memstat m;
	struct err e;
	assert_int_equal(memstat_parse(f, NULL, 0, 0, "/x", 4096, &m, &e), -1);
	assert_contains(e.msg, "no mapping");
	fclose(f);
}

static void this_process(void **state)
{
	(void)state;
	struct memstat m;
	struct err e;
	assert_int_equal(memstat_self(0, 0, &m, &e), 0);
	assert_true(m.kib[MEMSTAT_BINARY] > 0);
	assert_true(m.kib[MEMSTAT_LIBS] > 0);
	assert_true(m.pagetables_kib > 0);
	assert_true(m.stacks >= 1); /* [stack] */
	assert_true(m.private_kib > 0 && memstat_private_kib(&m) <= memstat_overhead_kib(&m));
	assert_true(m.anon_kib > 0 && memstat_own_kib(&m) <= memstat_overhead_kib(&m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sorted_by_kind),
		cmocka_unit_test(bad_input),
		cmocka_unit_test(this_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_disks: the monitor's disks (vmm/disks.c) without a VM: which disk an ID names, opening
 * plain and volatile disks (an unnamed overlay: written, read back, and gone from its directory
 * with the base image unchanged), and the one-line refusals. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/disks.h"

static void find_by_serial_or_index(void **state)
{
	(void)state;
	struct vm_disk_config d[3] = {{.path = "a", .serial = "root"}, {.path = "b"}, {.path = "c", .serial = "1"}};
	assert_int_equal(disks_find(d, 3, "root"), 0);
	assert_int_equal(disks_find(d, 3, "0"), 0);
	assert_int_equal(disks_find(d, 3, "1"), 2); /* a serial wins over an index */
	assert_int_equal(disks_find(d, 3, "2"), 2);
	assert_int_equal(disks_find(d, 3, "3"), -1);
	assert_int_equal(disks_find(d, 3, "-1"), -1);
	assert_int_equal(disks_find(d, 3, "01x"), -1);
	assert_int_equal(disks_find(d, 3, ""), -1);
}

static void volatile_disk(void **state)
{
	(void)state;
	char dir[96], base[128], vol[128];
	unit_tmp_path(dir, sizeof(dir), "shoji-disks-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof(base), "%s/base.raw", dir);
	snprintf(vol, sizeof(vol), "%s/scratch", dir);
	assert_int_equal(mkdir(vol, 0700), 0);
	static uint8_t orig[1 << 20], got[1 << 20], mine[70000];
	for (size_t i = 0; i < sizeof(orig); i++)
		orig[i] = (uint8_t)(i * 7 + 3);
	memset(mine, 0xab, sizeof(mine));
	int fd = open(base, O_WRONLY | O_CREAT, 0644);
	assert_int_equal(write(fd, orig, sizeof(orig)), (ssize_t)sizeof(orig));
	close(fd);
	struct vm_disk_config d[2] = {{.path = base, .format = BLOCK_FORMAT_RAW, .volatile_dir = vol},
				      {.path = base, .format = BLOCK_FORMAT_RAW, .read_only = true}};
	struct err e;
	assert_int_equal(disks_open(d, 2, &e), 0);
	assert_string_equal(d[0].dev->ops->format, "qcow2");
	assert_false(d[0].dev->read_only);
	assert_true(d[1].dev->read_only); /* the base is shared: both hold read locks */
	assert_int_equal(block_pwrite(d[0].dev, mine, sizeof(mine), 1000, &e), 0);
	assert_int_equal(block_pread(d[0].dev, got, sizeof(got), 0, &e), 0);
	assert_memory_equal(got + 1000, mine, sizeof(mine));
	assert_memory_equal(got, orig, 1000);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", vol);
	assert_int_equal(system(cmd), 0); /* nothing named in the directory, even while open */
	disks_close(d, 2);
	assert_null(d[0].dev);
	assert_int_equal(system(cmd), 0);
	fd = open(base, O_RDONLY);
	assert_int_equal(read(fd, got, sizeof(got)), (ssize_t)sizeof(got));
	close(fd);
	assert_memory_equal(got, orig, sizeof(orig));
	/* A directory that is not there: one line, and nothing left open. */
	snprintf(vol, sizeof(vol), "%s/none", dir);
	struct vm_disk_config bad[2] = {{.path = base, .format = BLOCK_FORMAT_RAW, .read_only = true},
					{.path = base, .format = BLOCK_FORMAT_RAW, .volatile_dir = vol}};
	assert_int_equal(disks_open(bad, 2, &e), -1);
	assert_contains(e.msg, "volatile overlay");
	assert_null(strchr(e.msg, '\n'));
	assert_null(bad[0].dev);
	assert_null(bad[1].dev);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(find_by_serial_or_index),
		cmocka_unit_test(volatile_disk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

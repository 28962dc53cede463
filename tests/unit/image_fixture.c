/* image_fixture: temporary directories and images for the block-layer tests (see the header). */
#include "image_fixture.h"

#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "block/qcow2.h"

int image_fx_setup(void **state)
{
	struct image_fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	unit_tmp_path(f->dir, sizeof(f->dir), "shoji-image-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/a.qcow2", f->dir);
	*state = f;
	return 0;
}

int image_fx_teardown(void **state)
{
	struct image_fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

const char *image_fx_in_dir(struct image_fx *f, const char *name)
{
	static char bufs[4][160];
	static int k;
	char *b = bufs[k++ & 3];
	snprintf(b, 160, "%s/%s", f->dir, name);
	return b;
}

void image_create(const char *path, uint64_t size, unsigned bits, const char *backing, const char *bfmt)
{
	struct err e;
	struct qcow2_create_opts o = {.size = size, .cluster_bits = bits, .backing = backing, .backing_format = bfmt};
	if (qcow2_create(path, &o, &e) < 0)
		fail_msg("create %s: %s", path, e.msg);
}

struct block_dev *image_open(const char *path, enum block_format fmt, unsigned flags)
{
	struct err e;
	struct block_dev *d = NULL;
	if (block_open(&d, path, fmt, flags, &e) < 0)
		fail_msg("open %s: %s", path, e.msg);
	return d;
}

void image_assert_clean(const char *path)
{
	struct qcow2_check_result r;
	struct err e;
	if (qcow2_check(path, false, &r, &e) < 0)
		fail_msg("check: %s", e.msg);
	if (r.corruptions || r.leaks)
		fail_msg("check %s: %llu corruptions, %llu leaks: %s", path, (unsigned long long)r.corruptions,
			 (unsigned long long)r.leaks, r.first_problem);
}

/* test_block_merge: block_merge and block_set_backing on images made with the block library:
 * a three-level chain (raw and qcow2 bases) whose middle is folded into the top, data and
 * zero clusters and a shorter backing checked byte for byte, the chain fixed (the middle
 * can be removed), a top left standalone, a backing in another directory named absolutely,
 * block_commit into qcow2 and raw backing files, images that pass the check, and the refusals (no backing file, not
 * qcow2). */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"
#include "block/block_merge.h"
#include "block/qcow2.h"
#include "image_fixture.h"

#define KIB  1024ull
#define MIB  (1ull << 20)
#define SIZE (4 * MIB)

struct fx {
	struct image_fx img;
	char base[160], mid[160], top[160];
};

static int setup(void **state)
{
	if (image_fx_setup(state) < 0)
		return -1;
	struct image_fx *img = *state;
	struct fx *f = calloc(1, sizeof(*f));
	f->img = *img;
	free(img);
	snprintf(f->base, sizeof(f->base), "%s/base", f->img.dir);
	snprintf(f->mid, sizeof(f->mid), "%s/mid.qcow2", f->img.dir);
	snprintf(f->top, sizeof(f->top), "%s/top.qcow2", f->img.dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct image_fx *img = malloc(sizeof(*img));
	*img = f->img;
	free(f);
	*state = img;
	return image_fx_teardown(state);
}

static void create(const char *path, uint64_t size, const char *backing, const char *bfmt)
{
	image_create(path, size, 0, backing, bfmt);
}

#define open_ok      image_open
#define assert_clean image_assert_clean

static void pattern(struct block_dev *d, uint64_t off, uint64_t len, int seed)
{
	uint8_t *b = malloc(len);
	struct err e;
	for (uint64_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed + i * 13 + (i >> 10));
	if (block_pwrite(d, b, len, off, &e) < 0)
		fail_msg("write: %s", e.msg);
	free(b);
}

static uint8_t *read_all(const char *path, enum block_format fmt, uint64_t size)
{
	struct block_dev *d = open_ok(path, fmt, BLOCK_OPEN_RDONLY);
	uint8_t *b = malloc(size);
	struct err e;
	assert_int_equal(d->size, size);
	if (block_pread(d, b, size, 0, &e) < 0)
		fail_msg("read: %s", e.msg);
	block_close(d);
	return b;
}

static void backing_of(const char *path, char *name, size_t n, char *fmt, size_t fn)
{
	struct block_dev *d = open_ok(path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY | BLOCK_OPEN_SKIP_BACKING);
	struct qcow2 *q = qcow2_of(d);
	snprintf(name, n, "%s", q->backing_name ? q->backing_name : "");
	snprintf(fmt, fn, "%s", q->backing_format ? q->backing_format : "");
	block_close(d);
}

/* base (raw or qcow2) <- mid <- top, each level writing some clusters and zeroing others. */
static void make_chain(struct fx *f, bool raw_base)
{
	struct block_dev *d;
	struct err e;
	if (raw_base) {
		FILE *fp = fopen(f->base, "w");
		assert_non_null(fp);
		assert_int_equal(ftruncate(fileno(fp), SIZE), 0);
		fclose(fp);
		d = open_ok(f->base, BLOCK_FORMAT_RAW, 0);
	} else {
		create(f->base, SIZE, NULL, NULL);
		d = open_ok(f->base, BLOCK_FORMAT_QCOW2, 0);
	}
	pattern(d, 0, SIZE, 1);
	block_close(d);
	create(f->mid, SIZE, "base", raw_base ? "raw" : "qcow2");
	d = open_ok(f->mid, BLOCK_FORMAT_QCOW2, 0);
	pattern(d, 64 * KIB, 200 * KIB, 2); /* whole and partial clusters */
	pattern(d, 3 * MIB + 100, 5000, 3);
	assert_int_equal(block_write_zeroes(d, MIB, 128 * KIB, true, &e), 0); /* zero clusters over base data */
	block_close(d);
	create(f->top, SIZE, "mid.qcow2", "qcow2");
	d = open_ok(f->top, BLOCK_FORMAT_QCOW2, 0);
	pattern(d, 128 * KIB, 64 * KIB, 4); /* over mid's data */
	pattern(d, 2 * MIB, 10, 5);         /* over base's data */
	block_close(d);
}

static void merge_keeps_content(struct fx *f, bool raw_base)
{
	make_chain(f, raw_base);
	uint8_t *before = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	struct err e;
	if (block_merge(f->top, &e) < 0)
		fail_msg("merge: %s", e.msg);
	char name[256], fmt[32];
	backing_of(f->top, name, sizeof(name), fmt, sizeof(fmt));
	assert_string_equal(name, "base");
	assert_string_equal(fmt, raw_base ? "raw" : "qcow2");
	assert_int_equal(unlink(f->mid), 0); /* the middle is no longer needed */
	uint8_t *after = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	assert_memory_equal(before, after, SIZE);
	assert_clean(f->top);
	free(before);
	free(after);
}

static void test_merge_qcow2_base(void **state)
{
	merge_keeps_content(*state, false);
}
static void test_merge_raw_base(void **state)
{
	merge_keeps_content(*state, true);
}

/* The bottom level folded: the image becomes standalone. */
static void test_merge_to_standalone(void **state)
{
	struct fx *f = *state;
	make_chain(f, false);
	uint8_t *before = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	struct err e;
	assert_int_equal(block_merge(f->top, &e), 0);
	assert_int_equal(block_merge(f->top, &e), 0);
	char name[256], fmt[32];
	backing_of(f->top, name, sizeof(name), fmt, sizeof(fmt));
	assert_string_equal(name, "");
	assert_string_equal(fmt, "");
	assert_int_equal(unlink(f->mid), 0);
	assert_int_equal(unlink(f->base), 0);
	uint8_t *after = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	assert_memory_equal(before, after, SIZE);
	assert_clean(f->top);
	/* No further level: refused, image unchanged. */
	assert_int_equal(block_merge(f->top, &e), -1);
	assert_contains(e.msg, "no backing file");
	free(before);
	free(after);
}

/* A backing file in another directory: the new name is made absolute. */
static void test_merge_other_directory(void **state)
{
	struct fx *f = *state;
	char sub[160], top2[200];
	snprintf(sub, sizeof(sub), "%s/sub", f->img.dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	make_chain(f, false);
	snprintf(top2, sizeof(top2), "%s/top.qcow2", sub);
	create(top2, SIZE, "../mid.qcow2", "qcow2");
	uint8_t *before = read_all(top2, BLOCK_FORMAT_QCOW2, SIZE);
	struct err e;
	assert_int_equal(block_merge(top2, &e), 0);
	char name[256], fmt[32], *want = realpath(f->base, NULL);
	backing_of(top2, name, sizeof(name), fmt, sizeof(fmt));
	assert_string_equal(name, want);
	uint8_t *after = read_all(top2, BLOCK_FORMAT_QCOW2, SIZE);
	assert_memory_equal(before, after, SIZE);
	free(want);
	free(before);
	free(after);
}

/* A backing shorter than the image: past its end the image reads zeroes, before and after. */
static void test_merge_short_backing(void **state)
{
	struct fx *f = *state;
	struct err e;
	create(f->base, SIZE, NULL, NULL);
	struct block_dev *d = open_ok(f->base, BLOCK_FORMAT_QCOW2, 0);
	pattern(d, 0, SIZE, 7);
	block_close(d);
	create(f->mid, SIZE / 2, "base", "qcow2");
	create(f->top, SIZE, "mid.qcow2", "qcow2");
	uint8_t *before = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	assert_int_equal(block_merge(f->top, &e), 0);
	uint8_t *after = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	assert_memory_equal(before, after, SIZE);
	for (uint64_t i = SIZE / 2; i < SIZE; i++)
		assert_int_equal(after[i], 0);
	free(before);
	free(after);
}

/* Commit: top's clusters written into mid; mid then reads as top did, top can go. */
static void test_commit(void **state)
{
	struct fx *f = *state;
	make_chain(f, false);
	uint8_t *before = read_all(f->top, BLOCK_FORMAT_QCOW2, SIZE);
	struct err e;
	if (block_commit(f->top, &e) < 0)
		fail_msg("commit: %s", e.msg);
	uint8_t *after = read_all(f->mid, BLOCK_FORMAT_QCOW2, SIZE);
	assert_memory_equal(before, after, SIZE);
	assert_clean(f->mid);
	free(after);
	/* And into a raw bottom. */
	assert_int_equal(unlink(f->top), 0);
	assert_int_equal(unlink(f->mid), 0);
	assert_int_equal(unlink(f->base), 0);
	make_chain(f, true);
	free(before);
	before = read_all(f->mid, BLOCK_FORMAT_QCOW2, SIZE);
	assert_int_equal(block_commit(f->mid, &e), 0);
	after = read_all(f->base, BLOCK_FORMAT_RAW, SIZE);
	assert_memory_equal(before, after, SIZE);
	free(before);
	free(after);
	assert_int_equal(block_commit(f->base, &e), -1);
}

static void test_set_backing(void **state)
{
	struct fx *f = *state;
	struct err e;
	create(f->base, SIZE, NULL, NULL);
	create(f->mid, SIZE, NULL, NULL);
	create(f->top, SIZE, "base", "qcow2");
	assert_int_equal(block_set_backing(f->top, "mid.qcow2", "qcow2", &e), 0);
	char name[256], fmt[32];
	backing_of(f->top, name, sizeof(name), fmt, sizeof(fmt));
	assert_string_equal(name, "mid.qcow2");
	assert_string_equal(fmt, "qcow2");
	assert_int_equal(block_set_backing(f->top, NULL, NULL, &e), 0);
	backing_of(f->top, name, sizeof(name), fmt, sizeof(fmt));
	assert_string_equal(name, "");
	assert_clean(f->top);
	/* A raw file is refused, untouched. */
	FILE *fp = fopen(f->base, "w");
	assert_non_null(fp);
	assert_int_equal(ftruncate(fileno(fp), SIZE), 0);
	fclose(fp);
	assert_int_equal(block_merge(f->base, &e), -1);
	assert_int_equal(block_set_backing(f->base, "x", "raw", &e), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_merge_qcow2_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_raw_base, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_to_standalone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_other_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge_short_backing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_backing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

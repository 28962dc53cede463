/* image_fixture: what the block-layer tests share: a temporary directory per test, images
 * created and opened with failures reported as test failures, and the consistency check. */
#ifndef SHOJI_TESTS_IMAGE_FIXTURE_H
#define SHOJI_TESTS_IMAGE_FIXTURE_H

#include <stdint.h>

#include "block/block.h"

struct image_fx {
	char dir[96];
	char path[128]; /* DIR/a.qcow2 */
};

/* cmocka setup/teardown: *state is a struct image_fx with a fresh directory (removed after). */
int image_fx_setup(void **state);
int image_fx_teardown(void **state);
/* DIR/name, in one of four rotating buffers. */
const char *image_fx_in_dir(struct image_fx *f, const char *name);

void image_create(const char *path, uint64_t size, unsigned bits, const char *backing, const char *bfmt);
struct block_dev *image_open(const char *path, enum block_format fmt, unsigned flags);
/* Fails the test unless the qcow2 check finds neither corruption nor leak. */
void image_assert_clean(const char *path);

#endif

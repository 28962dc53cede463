/* statefile: whole-file reads and crash-safe writes (a temporary file, fsync, rename), so that a
 * reader sees the old or the new content, never a mix. */
#ifndef SHOJI_TOOLSTACK_STATEFILE_H
#define SHOJI_TOOLSTACK_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/err.h"

/* Replaces path with data (mode 0644). exclusive: fail with EEXIST when path exists. */
int statefile_write(const char *path, const char *data, size_t len, bool exclusive, struct err *e);

/* Reads all of path (at most max bytes) into a malloc'd, NUL-terminated buffer. On failure
 * *errno_out holds the errno (ENOENT: no such file). */
int statefile_read(const char *path, size_t max, char **data, size_t *len, int *errno_out, struct err *e);

/* The last (at most) bytes of path, malloc'd and NUL-terminated; NULL when it cannot be read. */
char *statefile_tail(const char *path, size_t bytes, size_t *len);

#endif

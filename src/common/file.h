/* file: read-only file mappings, with a size cap and errors that name the file; writing a
 * whole buffer; closing every descriptor above a few before an exec. */
#ifndef SHOJI_COMMON_FILE_H
#define SHOJI_COMMON_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Maps all of `path` read-only (a private, read-only mapping: nothing is copied until touched,
 * and nothing stays resident once unmapped). An empty file maps to a NULL pointer, size 0. */
int file_map(const char *path, const char *what, size_t max_size, const uint8_t **data_out, size_t *size_out,
	     struct err *e);
void file_unmap(const uint8_t *data, size_t size);
/* Writes all n bytes (again after EINTR and short writes); -1 when a write fails (errno). */
int file_write_all(int fd, const void *buf, size_t n);
/* Closes every descriptor from first up (close_range, else one by one below 1024): in a
 * child, before exec, so it inherits only the ones it was given. */
void file_close_from(int first);

#endif

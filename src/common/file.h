/* file: whole-file reads with a size cap and errors that name the file. */
#ifndef SHOJI_COMMON_FILE_H
#define SHOJI_COMMON_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Reads all of `path` into a malloc'd buffer. `what` names the file's role in messages
 * ("kernel", "initrd"). Files larger than max_size are refused. */
int file_read_all(const char *path, const char *what, size_t max_size, uint8_t **data_out,
		  size_t *size_out, struct err *e);

#endif

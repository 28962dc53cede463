/* err: one human-readable error message carried from where a failure is found to the caller
 * that reports it. Library code fills it and returns -1; only main() prints and exits. */
#ifndef SHOJI_COMMON_ERR_H
#define SHOJI_COMMON_ERR_H

#include <stddef.h>

struct err {
	char msg[512];
};

/* Formats the message into e (when e is not NULL) and returns -1. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like err_set, with ": strerror(errnum)" appended. */
int err_errno(struct err *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif

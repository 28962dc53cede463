/* logfile: an append-only log a guest writes into (the serial log), bounded by the host: at
 * most `cap` bytes in PATH and the `cap` before them in PATH.1, so at most twice `cap` on disk
 * however much the guest writes. Both files are opened up front and rotated through their
 * descriptors (PATH's bytes copied into PATH.1, PATH truncated), so it works inside a jail
 * that cannot see their directory, and needs no rename. A file already over `cap` when opened
 * (from earlier runs) is rotated at once. Called with the caller's output lock held. */
#ifndef SHOJI_COMMON_LOGFILE_H
#define SHOJI_COMMON_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The serial log's cap: the newest 1 MiB, and the 1 MiB before it in serial.log.1. */
#define LOGFILE_SERIAL_CAP (1u << 20)

struct logfile {
	int fd, old_fd; /* PATH (O_APPEND) and PATH.1; -1 when closed */
	uint64_t cap, size;
	uint64_t rotations;
};

/* Opens (creating, mode 0600, never through a symbolic link) PATH and PATH.1. */
int logfile_open(struct logfile *l, const char *path, uint64_t cap, struct err *e);
/* Appends buf, rotating first when it would pass the cap. Errors are ignored: a log that
 * cannot be written must not stop the guest. */
void logfile_write(struct logfile *l, const void *buf, size_t n);
void logfile_close(struct logfile *l);
/* For a log whose writer cannot rotate it (a monitor's stderr, bounded within one run by
 * LOG_FILE_CAP): before it is opened again, a PATH over cap becomes PATH.1 (rename, never
 * following a symbolic link). */
void logfile_rotate_by_name(const char *path, uint64_t cap);

#endif

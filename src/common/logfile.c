/* logfile: see logfile.h. */
#include "logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

/* PATH's bytes become PATH.1's, and PATH starts empty. */
static void rotate(struct logfile *l)
{
	uint8_t buf[65536];
	uint64_t off = 0;
	if (ftruncate(l->old_fd, 0) < 0)
		return;
	while (off < l->size) {
		ssize_t r = pread(l->fd, buf, sizeof(buf), (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || pwrite(l->old_fd, buf, (size_t)r, (off_t)off) != r)
			break;
		off += (uint64_t)r;
	}
	if (ftruncate(l->fd, 0) == 0) { /* O_APPEND: the next write lands at the new end */
		l->size = 0;
		l->rotations++;
	}
}

int logfile_open(struct logfile *l, const char *path, uint64_t cap, struct err *e)
{
	char old[4096];
	*l = (struct logfile){.fd = -1, .old_fd = -1, .cap = cap};
	if (snprintf(old, sizeof(old), "%s.1", path) >= (int)sizeof(old))
		return err_set(e, "the log path '%s' is too long", path);
	int flags = O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	l->fd = open(path, O_RDWR | O_APPEND | flags, 0600);
	if (l->fd < 0)
		return err_errno(e, errno, "cannot open the log '%s'", path);
	l->old_fd = open(old, O_RDWR | flags, 0600);
	struct stat st, sto;
	if (l->old_fd < 0 || fstat(l->fd, &st) < 0 || fstat(l->old_fd, &sto) < 0) {
		int en = errno;
		logfile_close(l);
		return err_errno(e, en, "cannot open the log '%s' and its older part '%s'", path, old);
	}
	if (!S_ISREG(st.st_mode) || !S_ISREG(sto.st_mode)) {
		logfile_close(l);
		return err_set(e, "the log '%s' or '%s' is not a regular file; remove it", path, old);
	}
	l->size = (uint64_t)st.st_size;
	if (l->size > cap)
		rotate(l);
	return 0;
}

void logfile_write(struct logfile *l, const void *buf, size_t n)
{
	if (l->fd < 0)
		return;
	const uint8_t *p = buf;
	if (n > l->cap) { /* only the newest cap bytes of one huge write */
		p += n - l->cap;
		n = (size_t)l->cap;
	}
	if (l->size + n > l->cap)
		rotate(l);
	(void)file_write_all(l->fd, p, n);
	l->size += n;
}

void logfile_rotate_by_name(const char *path, uint64_t cap)
{
	char old[4096];
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size <= cap ||
	    snprintf(old, sizeof(old), "%s.1", path) >= (int)sizeof(old))
		return;
	(void)rename(path, old);
}

void logfile_close(struct logfile *l)
{
	if (l->fd >= 0)
		close(l->fd);
	if (l->old_fd >= 0)
		close(l->old_fd);
	l->fd = l->old_fd = -1;
}

/* statefile: atomic file replacement and bounded whole-file reads (see statefile.h). */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int statefile_write(const char *path, const char *data, size_t len, bool exclusive, struct err *e)
{
	char tmp[4200];
	static unsigned counter;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", path, (int)getpid(), counter++) >= (int)sizeof(tmp))
		return err_set(e, "path '%.60s...' is too long", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640); /* root's records */
	if (fd < 0)
		return err_errno(e, errno, "cannot create %s", tmp);
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = n < 0 ? errno : EIO;
			close(fd);
			unlink(tmp);
			return err_errno(e, saved, "cannot write %s", tmp);
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		int saved = errno;
		unlink(tmp);
		return err_errno(e, saved, "cannot write %s", tmp);
	}
	/* link() never replaces: the exclusive variant of rename. */
	int r = exclusive ? link(tmp, path) : rename(tmp, path);
	int saved = errno;
	if (exclusive || r < 0)
		unlink(tmp);
	if (r < 0) {
		errno = saved;
		return err_errno(e, saved, "cannot write %s", path);
	}
	return 0;
}

int statefile_read(const char *path, size_t max, char **data, size_t *len, int *errno_out, struct err *e)
{
	*errno_out = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return *errno_out = errno, err_errno(e, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		int saved = errno;
		close(fd);
		if (S_ISREG(st.st_mode) && (size_t)st.st_size > max)
			return *errno_out = EFBIG, err_set(e, "%s is over %zu bytes", path, max);
		return *errno_out = saved ? saved : EINVAL, err_set(e, "%s is not a regular file", path);
	}
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return *errno_out = ENOMEM, err_set(e, "out of memory");
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrank meanwhile: keep what was read */
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*data = buf;
	*len = got;
	return 0;
}

char *statefile_tail(const char *path, size_t bytes, size_t *len)
{
	/* Logs a monitor writes: looked at before reading (never a FIFO or a device). */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	off_t end = lseek(fd, 0, SEEK_END);
	off_t start = end > (off_t)bytes ? end - (off_t)bytes : 0;
	char *buf = end >= 0 ? malloc((size_t)(end - start) + 1) : NULL;
	ssize_t n = buf ? pread(fd, buf, (size_t)(end - start), start) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* file: checked read-only file mappings (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int open_checked(const char *path, const char *what, size_t max_size, size_t *size_out, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "cannot open %s '%s'", what, path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int saved = errno;
		close(fd);
		return err_errno(e, saved, "cannot stat %s '%s'", what, path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, "%s '%s' is not a regular file", what, path);
	}
	if ((uint64_t)st.st_size > max_size) {
		close(fd);
		return err_set(e, "%s '%s' is %lld bytes, more than the %zu this monitor accepts", what, path,
			       (long long)st.st_size, max_size);
	}
	*size_out = (size_t)st.st_size;
	return fd;
}

int file_map(const char *path, const char *what, size_t max_size, const uint8_t **data_out, size_t *size_out,
	     struct err *e)
{
	size_t size = 0;
	int fd = open_checked(path, what, max_size, &size, e);
	if (fd < 0)
		return -1;
	void *p = NULL;
	if (size) {
		p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int saved = errno;
			close(fd);
			return err_errno(e, saved, "cannot map %s '%s'", what, path);
		}
	}
	close(fd);
	*data_out = p;
	*size_out = size;
	return 0;
}

void file_unmap(const uint8_t *data, size_t size)
{
	if (data && size)
		munmap((void *)data, size);
}

int file_write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void file_close_from(int first)
{
	if (syscall(SYS_close_range, first, ~0U, 0) < 0)
		for (int fd = first; fd < 1024; fd++)
			close(fd);
}

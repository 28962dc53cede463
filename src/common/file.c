/* file: whole-file reads (see file.h). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int file_read_all(const char *path, const char *what, size_t max_size, uint8_t **data_out,
		  size_t *size_out, struct err *e)
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
		return err_set(e, "%s '%s' is %lld bytes, more than the %zu this monitor accepts", what,
			       path, (long long)st.st_size, max_size);
	}
	size_t size = (size_t)st.st_size;
	uint8_t *data = malloc(size ? size : 1);
	if (!data) {
		close(fd);
		return err_set(e, "out of memory reading %s '%s'", what, path);
	}
	size_t done = 0;
	while (done < size) {
		ssize_t n = read(fd, data + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int saved = n < 0 ? errno : EIO;
			free(data);
			close(fd);
			return err_errno(e, saved, "cannot read %s '%s'", what, path);
		}
		done += (size_t)n;
	}
	close(fd);
	*data_out = data;
	*size_out = size;
	return 0;
}

/* logfile and log: what a guest writes or provokes is bounded by the host. The serial log keeps
 * its newest bytes within twice its cap; the monitor's diagnostics stop at LOG_FILE_CAP; messages
 * a guest causes are rate-limited with a count of what was suppressed. */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/logfile.h"

static off_t size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_serial_log_is_capped_and_rotated(void **state)
{
	(void)state;
	char path[256], old[300];
	unit_tmp_path(path, sizeof(path), "shoji-logfile-test.log");
	snprintf(old, sizeof(old), "%s.1", path);
	unlink(path);
	unlink(old);
	struct logfile l;
	struct err e;
	assert_int_equal(logfile_open(&l, path, 4096, &e), 0);
	char line[100];
	for (int i = 0; i < 1000; i++) { /* ~24 times the cap */
		int n = snprintf(line, sizeof(line), "line %06d of the guest's output\n", i);
		logfile_write(&l, line, (size_t)n);
	}
	assert_true(size_of(path) <= 4096);
	assert_true(size_of(old) <= 4096);
	assert_true(l.rotations > 1);
	logfile_close(&l);
	/* The newest line is the last one written, in the current part. */
	int fd = open(path, O_RDONLY);
	char buf[4097];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "line 000999 of"));
	/* A huge single write keeps its newest cap bytes; a file over the cap is rotated at open. */
	assert_int_equal(logfile_open(&l, path, 100, &e), 0);
	assert_true(size_of(path) == 0 && size_of(old) > 0);
	char big[1000];
	memset(big, 'x', sizeof(big));
	logfile_write(&l, big, sizeof(big));
	logfile_close(&l);
	assert_int_equal(size_of(path), 100);
	unlink(path);
	unlink(old);
	/* Never through a symbolic link. */
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_int_equal(logfile_open(&l, path, 100, &e), -1);
	unlink(path);
}

/* Runs fn with stderr in a scratch file; returns the file's size and its line count. */
static void with_stderr_in_file(void (*fn)(void), off_t *size, int *lines)
{
	char path[256];
	unit_tmp_path(path, sizeof(path), "shoji-log-test.err");
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(2);
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	fn();
	dup2(saved, 2);
	close(saved);
	*size = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)*size + 1);
	assert_int_equal(pread(fd, buf, (size_t)*size, 0), *size);
	buf[*size] = '\0';
	*lines = 0;
	for (char *p = buf; (p = strchr(p, '\n')); p++)
		(*lines)++;
	assert_true(*size == 0 || strstr(buf, "suppressed") || strstr(buf, "dropped") || *lines > 0);
	free(buf);
	close(fd);
	unlink(path);
}

static void flood_guest(void)
{
	for (int i = 0; i < 1000; i++)
		log_guest(LOG_WARN, "virtio-test: queue 0: a bad descriptor %d", i);
}

static void flood_host(void)
{
	for (int i = 0; i < 40000; i++) /* ~2.4 MiB of diagnostics */
		log_msg(LOG_WARN, "a diagnostic line of some length, number %d", i);
}

static void test_guest_messages_are_rate_limited(void **state)
{
	(void)state;
	off_t size;
	int lines;
	with_stderr_in_file(flood_guest, &size, &lines);
	assert_true(lines >= 1 && lines <= LOG_GUEST_BURST + 1);
}

static void test_diagnostics_in_a_file_are_capped(void **state)
{
	(void)state;
	off_t size;
	int lines;
	with_stderr_in_file(flood_host, &size, &lines);
	assert_true(size > LOG_FILE_CAP / 2);
	assert_true(size <= LOG_FILE_CAP + 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serial_log_is_capped_and_rotated),
		cmocka_unit_test(test_guest_messages_are_rate_limited),
		cmocka_unit_test(test_diagnostics_in_a_file_are_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* unit: the includes every cmocka test needs, and assertions on error messages. */
#ifndef SHOJI_TESTS_UNIT_H
#define SHOJI_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Writes TMPDIR/name into buf: the scratch directory the test runner gives ($TMPDIR), or /tmp
 * where it is unset or too long for a socket path under it. */
static inline void unit_tmp_path(char *buf, size_t size, const char *name)
{
	const char *t = getenv("TMPDIR");
	size_t need = (t ? strlen(t) : 0) + strlen(name) + 2;
	if (!t || !*t || need > size || need > 80)
		t = "/tmp";
	snprintf(buf, size, "%s/%s", t, name);
}

/* A blocking stream connection to the Unix socket at path. */
static inline int unit_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Fails unless the string hay contains needle. */
#define assert_contains(hay, needle)                                                                                   \
	do {                                                                                                           \
		const char *hay_ = (hay), *needle_ = (needle);                                                         \
		if (!strstr(hay_, needle_))                                                                            \
			fail_msg("\"%s\" does not contain \"%s\"", hay_, needle_);                                     \
	} while (0)

#endif

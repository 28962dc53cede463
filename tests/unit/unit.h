/* unit: the includes every cmocka test needs, and assertions on error messages. */
#ifndef SHOJI_TESTS_UNIT_H
#define SHOJI_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Fails unless the string hay contains needle. */
#define assert_contains(hay, needle)                                                      \
	do {                                                                              \
		const char *hay_ = (hay), *needle_ = (needle);                            \
		if (!strstr(hay_, needle_))                                               \
			fail_msg("\"%s\" does not contain \"%s\"", hay_, needle_);        \
	} while (0)

#endif

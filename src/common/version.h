/* version: the one place a program learns shoji's version (the project's version in meson.build,
 * passed as SHOJI_VERSION) and the one way each program prints it for --version. */
#ifndef SHOJI_COMMON_VERSION_H
#define SHOJI_COMMON_VERSION_H

#include <stdio.h>

#ifndef SHOJI_VERSION
#error "SHOJI_VERSION comes from meson.build"
#endif

/* Prints "PROGRAM VERSION" on stdout, as --version does in every shoji program. */
static inline void version_print(const char *program)
{
	printf("%s %s\n", program, SHOJI_VERSION);
}

#endif

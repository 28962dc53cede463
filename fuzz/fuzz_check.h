/* fuzz_check: the fuzz targets' own assertion, which stops the run at once (a trap libFuzzer
 * reports with the input) whatever the build's NDEBUG. */
#ifndef SHOJI_FUZZ_CHECK_H
#define SHOJI_FUZZ_CHECK_H

#define check(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			__builtin_trap();                                                                              \
	} while (0)

#endif

/* blkio: the guest's block benchmark tool (busybox's dd runs one request size and cannot seek
 * at random): sequential or random reads or writes with O_DIRECT on a block device, timed
 * with the guest's monotonic clock; a write run ends with fdatasync, counted in its time.
 *   blkio DEV seq|rand read|write SPAN_MIB BS [COUNT]
 * moves COUNT requests of BS bytes (default: SPAN_MIB MiB worth) inside the first SPAN_MIB MiB
 * and prints "shoji-guest: blkio MODE-OP: N MiB in S s". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: blkio DEV seq|rand read|write SPAN_MIB BS [COUNT]\n");
		return 2;
	}
	int rnd = strcmp(argv[2], "rand") == 0, wr = strcmp(argv[3], "write") == 0;
	uint64_t span = strtoull(argv[4], NULL, 10) << 20, bs = strtoull(argv[5], NULL, 10);
	uint64_t count = argc > 6 ? strtoull(argv[6], NULL, 10) : span / bs;
	if (!bs || bs % 512 || span < bs)
		return 2;
	int fd = open(argv[1], (wr ? O_RDWR : O_RDONLY) | O_DIRECT);
	void *buf;
	if (fd < 0 || posix_memalign(&buf, 4096, bs)) {
		perror(argv[1]);
		return 1;
	}
	memset(buf, 0x5a, bs);
	uint64_t x = 88172645463325252ull, slots = span / bs;
	double t0 = now();
	for (uint64_t i = 0; i < count; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		off_t off = (off_t)((rnd ? x % slots : i % slots) * bs);
		ssize_t r = wr ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
		if (r != (ssize_t)bs) {
			perror("blkio");
			return 1;
		}
	}
	if (wr && fdatasync(fd) < 0) {
		perror("fdatasync");
		return 1;
	}
	double t = now() - t0;
	printf("shoji-guest: blkio %s-%s: %.3f MiB in %.4f s\n", argv[2], argv[3], (double)(count * bs) / 1048576.0, t);
	return 0;
}

/* blkio: the guest's block benchmark tool (busybox's dd runs one request size, one at a time,
 * and cannot seek at random): sequential or random reads or writes with O_DIRECT on a block
 * device, from one or several threads at once (each keeps one request in flight, so JOBS
 * threads make a queue depth of JOBS), timed with the guest's monotonic clock; a write run ends
 * with fdatasync, counted in its time.
 *   blkio DEV seq|rand read|write SPAN_MIB BS [COUNT [JOBS]]
 * moves COUNT requests of BS bytes (default: SPAN_MIB MiB worth) inside the first SPAN_MIB MiB,
 * request i by thread i % JOBS, and prints "shoji-guest: blkio MODE-OP[-qdJOBS]: N MiB in S s".
 * A failed request prints "shoji-guest: blkio MODE-OP FAILED: why" and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 64

static int fd, rnd, wr;
static uint64_t bs, count, slots, jobs;
static char label[64];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *job(void *arg)
{
	uint64_t j = (uintptr_t)arg;
	void *buf;
	if (posix_memalign(&buf, 4096, bs))
		return "out of memory";
	memset(buf, 0x5a, bs);
	uint64_t x = 88172645463325252ull + j * 0x9e3779b97f4a7c15ull;
	for (uint64_t i = j; i < count; i += jobs) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		off_t off = (off_t)((rnd ? x % slots : i % slots) * bs);
		ssize_t r = wr ? pwrite(fd, buf, bs, off) : pread(fd, buf, bs, off);
		if (r != (ssize_t)bs) {
			free(buf);
			return r < 0 ? strerror(errno) : "short transfer";
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: blkio DEV seq|rand read|write SPAN_MIB BS [COUNT [JOBS]]\n");
		return 2;
	}
	rnd = strcmp(argv[2], "rand") == 0, wr = strcmp(argv[3], "write") == 0;
	uint64_t span = strtoull(argv[4], NULL, 10) << 20;
	bs = strtoull(argv[5], NULL, 10);
	count = argc > 6 ? strtoull(argv[6], NULL, 10) : (bs ? span / bs : 0);
	jobs = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
	if (!bs || bs % 512 || span < bs || !jobs || jobs > MAX_JOBS)
		return 2;
	snprintf(label, sizeof(label), jobs > 1 ? "%s-%s-qd%llu" : "%s-%s", argv[2], argv[3], (unsigned long long)jobs);
	fd = open(argv[1], (wr ? O_RDWR : O_RDONLY) | O_DIRECT);
	if (fd < 0) {
		printf("shoji-guest: blkio %s FAILED: %s: %s\n", label, argv[1], strerror(errno));
		return 1;
	}
	slots = span / bs;
	pthread_t th[MAX_JOBS];
	const char *why = NULL;
	double t0 = now();
	for (uint64_t j = 0; j < jobs; j++)
		if (pthread_create(&th[j], NULL, job, (void *)(uintptr_t)j))
			return 1;
	for (uint64_t j = 0; j < jobs; j++) {
		void *r;
		pthread_join(th[j], &r);
		why = why ? why : r;
	}
	if (!why && wr && fdatasync(fd) < 0)
		why = strerror(errno);
	double t = now() - t0;
	if (why) {
		printf("shoji-guest: blkio %s FAILED: %s\n", label, why);
		return 1;
	}
	printf("shoji-guest: blkio %s: %.3f MiB in %.4f s\n", label, (double)(count * bs) / 1048576.0, t);
	return 0;
}

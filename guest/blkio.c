/* blkio: the guest's block benchmark tool (busybox's dd runs one request size, one at a time,
 * and cannot seek at random): sequential or random reads or writes with O_DIRECT on a block
 * device, from one or several threads at once (each keeps one request in flight, so JOBS
 * threads make a queue depth of JOBS), timed with the guest's monotonic clock; a write run ends
 * with fdatasync, counted in its time.
 *   blkio DEV seq|rand read|write SPAN_MIB BS [COUNT [JOBS]]
 * moves COUNT requests of BS bytes (default: SPAN_MIB MiB worth) inside the first SPAN_MIB MiB,
 * request i by thread i % JOBS, and prints "shoji-guest: blkio MODE-OP[-qdJOBS]: N MiB in S s".
 * A failed request prints "shoji-guest: blkio MODE-OP FAILED: why" and exits 1.
 *   blkio DEV soak SPAN_MIB BS SECS JOBS
 * is the verifying soak: JOBS threads, each owning every JOBS-th block of BS bytes in the first
 * SPAN_MIB MiB, write and read their blocks at random for SECS seconds (JOBS requests in
 * flight), each write stamping every 16 bytes of its block with the block's number and a new
 * generation, each read checking the stamps against the last generation written; then, after
 * fdatasync, every block is read once more, those written checked. It prints "shoji-guest: blkio
 * soak-qdJOBS: W writes, R reads, B blocks checked at the end in S s, digest D" (D: the sum of
 * the span's little-endian 64-bit words, modulo 2^64, as read at the end), or FAILED with the
 * first block that read wrong. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
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

/* Runs fn in jobs threads (each given its number) and waits for them all; the first failure
 * one returned, or NULL. */
static const char *run_jobs(void *(*fn)(void *))
{
	pthread_t th[MAX_JOBS];
	const char *why = NULL;
	uint64_t started = 0;
	while (started < jobs && pthread_create(&th[started], NULL, fn, (void *)(uintptr_t)started) == 0)
		started++;
	if (started < jobs)
		why = "cannot start a thread";
	for (uint64_t j = 0; j < started; j++) {
		void *r;
		pthread_join(th[j], &r);
		why = why ? why : r;
	}
	return why;
}

/* --- soak: random writes and reads, each read checked ------------------------------------ */

#define SOAK_MAGIC 0x73686f6a69736f6bull /* "shojisok" */

static uint32_t *gen; /* per block: the last generation written (0: never); its job's alone */
static double soak_until;
static uint64_t soak_writes[MAX_JOBS], soak_reads[MAX_JOBS];
static char soak_why[MAX_JOBS][160];

static void stamp(uint64_t *b, uint64_t block, uint32_t g)
{
	for (uint64_t i = 0; i < bs / 8; i += 2) {
		b[i] = SOAK_MAGIC ^ block;
		b[i + 1] = (uint64_t)g << 32 | (uint32_t)block;
	}
}

/* Whether block's bytes in b carry generation g throughout; else why, into why[160]. */
static bool stamped(const uint64_t *b, uint64_t block, uint32_t g, char *why)
{
	for (uint64_t i = 0; i < bs / 8; i += 2) {
		if (b[i] != (SOAK_MAGIC ^ block) || b[i + 1] != ((uint64_t)g << 32 | (uint32_t)block)) {
			snprintf(why, 160, "block %llu read wrong at byte %llu: generation %u written, found %llx %llx",
				 (unsigned long long)block, (unsigned long long)i * 8, g, (unsigned long long)b[i],
				 (unsigned long long)b[i + 1]);
			return false;
		}
	}
	return true;
}

/* One block written with a new generation, or read and checked. */
static bool soak_one(uint64_t j, uint64_t block, bool write, uint64_t *buf)
{
	off_t off = (off_t)(block * bs);
	if (write) {
		stamp(buf, block, gen[block] + 1);
		if (pwrite(fd, buf, bs, off) != (ssize_t)bs) {
			snprintf(soak_why[j], 160, "write of block %llu: %s", (unsigned long long)block,
				 strerror(errno));
			return false;
		}
		gen[block]++;
		soak_writes[j]++;
		return true;
	}
	if (pread(fd, buf, bs, off) != (ssize_t)bs) {
		snprintf(soak_why[j], 160, "read of block %llu: %s", (unsigned long long)block, strerror(errno));
		return false;
	}
	soak_reads[j]++;
	return stamped(buf, block, gen[block], soak_why[j]);
}

static void *soak_job(void *arg)
{
	uint64_t j = (uintptr_t)arg, *buf;
	if (posix_memalign((void **)&buf, 4096, bs))
		return "out of memory";
	uint64_t x = 88172645463325252ull + j * 0x9e3779b97f4a7c15ull, owned = (slots - j + jobs - 1) / jobs;
	bool ok = true;
	for (unsigned n = 0; ok && (n % 64 || now() < soak_until); n++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t block = j + (x >> 8) % owned * jobs;
		ok = soak_one(j, block, !gen[block] || (x & 1), buf);
	}
	free(buf);
	return ok ? NULL : soak_why[j];
}

static int soak(const char *dev, double secs)
{
	snprintf(label, sizeof(label), "soak-qd%llu", (unsigned long long)jobs);
	gen = calloc(slots, sizeof(*gen));
	uint64_t *buf;
	if (!gen || posix_memalign((void **)&buf, 4096, bs))
		return printf("shoji-guest: blkio %s FAILED: out of memory\n", label), 1;
	double t0 = now();
	soak_until = t0 + secs;
	const char *why = run_jobs(soak_job);
	if (!why && fdatasync(fd) < 0)
		why = strerror(errno);
	/* Every block read once more, those written checked, and the span's digest taken (the sum
	 * of its 64-bit words), for the host to compare with the image file's own bytes. */
	uint64_t checked = 0, w = 0, r = 0, digest = 0;
	for (uint64_t b = 0; !why && b < slots; b++) {
		if (gen[b] && !soak_one(0, b, false, buf))
			why = soak_why[0];
		else if (!gen[b] && pread(fd, buf, bs, (off_t)(b * bs)) != (ssize_t)bs)
			why = "a block never written cannot be read";
		checked += gen[b] != 0;
		for (uint64_t i = 0; !why && i < bs / 8; i++)
			digest += buf[i];
	}
	double t = now() - t0;
	if (why)
		return printf("shoji-guest: blkio %s FAILED on %s: %s\n", label, dev, why), 1;
	for (uint64_t j = 0; j < jobs; j++)
		w += soak_writes[j], r += soak_reads[j];
	printf("shoji-guest: blkio %s: %llu writes, %llu reads, %llu blocks checked at the end in %.1f s, digest "
	       "%016llx\n",
	       label, (unsigned long long)w, (unsigned long long)(r - checked), (unsigned long long)checked, t,
	       (unsigned long long)digest);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[2], "soak") == 0) {
		bs = strtoull(argv[4], NULL, 10);
		slots = bs ? (strtoull(argv[3], NULL, 10) << 20) / bs : 0;
		jobs = strtoull(argv[6], NULL, 10);
		if (!bs || bs % 512 || bs % 16 || slots < jobs || !jobs || jobs > MAX_JOBS)
			return 2;
		fd = open(argv[1], O_RDWR | O_DIRECT);
		if (fd < 0)
			return printf("shoji-guest: blkio soak FAILED: %s: %s\n", argv[1], strerror(errno)), 1;
		return soak(argv[1], strtod(argv[5], NULL));
	}
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
	double t0 = now();
	const char *why = run_jobs(job);
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

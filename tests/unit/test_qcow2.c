/* test_qcow2: the block layer's qcow2 backend on images in a temporary directory: allocation
 * and read-back, copy-on-write from raw and qcow2 backing files, chains of depth 3, zero
 * clusters, discard, refcount growth, a compressed cluster written with zlib here, the check
 * (leaks found and repaired, corruptions found and rebuilt), a process killed mid-write leaving
 * no corruption, the dirty bit (refcounts rebuilt on a writable open), overlays made over open
 * images (live snapshots, unnamed volatile overlays), chain listing, a failed write-back that
 * fails every later flush, and every refusal of a malformed or unsupported image. */
#include "unit.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "image_fixture.h"

#define MIB (1ull << 20)

#define fx           image_fx
#define setup        image_fx_setup
#define teardown     image_fx_teardown
#define in_dir       image_fx_in_dir
#define open_ok      image_open
#define assert_clean image_assert_clean

static void create(const char *path, uint64_t size, unsigned bits, const char *backing, const char *bfmt)
{
	image_create(path, size, bits, backing, bfmt);
}

/* Opening fails with a message containing `want`. */
static void open_fails(const char *path, enum block_format fmt, unsigned flags, const char *want)
{
	struct err e = {{0}};
	struct block_dev *d = NULL;
	assert_int_equal(block_open(&d, path, fmt, flags, &e), -1);
	assert_null(d);
	assert_contains(e.msg, want);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void wr(struct block_dev *d, uint64_t off, const void *b, uint64_t n)
{
	struct err e;
	if (block_pwrite(d, b, n, off, &e) < 0)
		fail_msg("write: %s", e.msg);
}

static void rd(struct block_dev *d, uint64_t off, void *b, uint64_t n)
{
	struct err e;
	if (block_pread(d, b, n, off, &e) < 0)
		fail_msg("read: %s", e.msg);
}

static void patch(const char *path, uint64_t off, const void *b, size_t n)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void patch32(const char *path, uint64_t off, uint32_t v)
{
	uint8_t b[4];
	qcow2_put32(b, v);
	patch(path, off, b, 4);
}

static void patch64(const char *path, uint64_t off, uint64_t v)
{
	uint8_t b[8];
	qcow2_put64(b, v);
	patch(path, off, b, 8);
}

static uint64_t read64(const char *path, uint64_t off)
{
	uint8_t b[8];
	int fd = open(path, O_RDONLY);
	assert_int_equal(pread(fd, b, 8, (off_t)off), 8);
	close(fd);
	return qcow2_be64(b);
}

static void make_raw(const char *path, uint64_t size, unsigned seed)
{
	uint8_t *b = malloc(size);
	fill(b, size, seed);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_int_equal(write(fd, b, size), (ssize_t)size);
	close(fd);
	free(b);
}

/* ---- behaviour ---- */

static void write_read_back(void **state)
{
	struct fx *f = *state;
	create(f->path, 10 * MIB + 1234, 16, NULL, NULL); /* not a whole number of clusters */
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	assert_int_equal(d->size, 10 * MIB + 1234);
	assert_string_equal(d->ops->format, "qcow2");
	static uint8_t a[3 * MIB], b[3 * MIB];
	rd(d, 0, b, sizeof(b));
	memset(a, 0, sizeof(a));
	assert_memory_equal(a, b, sizeof(b)); /* a new image reads as zeroes */
	fill(a, sizeof(a), 1);
	wr(d, 100001, a, sizeof(a));    /* unaligned, several clusters */
	wr(d, 10 * MIB + 1000, a, 234); /* the partial last cluster */
	struct err e;
	assert_int_equal(block_pwrite(d, a, 235, 10 * MIB + 1000, &e), -1); /* past the end */
	assert_contains(e.msg, "beyond its size");
	/* Scatter-gather over three buffers. */
	struct iovec v[3] = {{b, 1000}, {b + 1000, 70000}, {b + 71000, 29001}};
	assert_int_equal(block_readv(d, v, 3, 100001, &e), 0);
	assert_memory_equal(a, b, 100001);
	assert_int_equal(block_flush(d, &e), 0);
	block_close(d);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	rd(d, 100001, b, sizeof(b));
	assert_memory_equal(a, b, sizeof(b));
	rd(d, 10 * MIB + 1000, b, 234);
	assert_memory_equal(a, b, 234);
	assert_int_equal(block_pwrite(d, a, 1, 0, &e), -1);
	assert_contains(e.msg, "read-only");
	block_close(d);
}

/* The L2 cache holds the tables that map the whole disk (as QEMU sizes it), within its bounds,
 * and keeps them: a second pass over 200 tables' worth of a 100 GiB disk reads no table again. */
static void l2_cache_sized_for_the_disk(void **state)
{
	struct fx *f = *state;
	create(f->path, 10 * MIB, 16, NULL, NULL);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	assert_int_equal(((struct qcow2 *)d)->l2c_n, QCOW2_L2_CACHE_MIN);
	block_close(d);
	unlink(f->path);
	create(f->path, 100ull << 30, 16, NULL, NULL); /* 64 KiB clusters: 512 MiB per table */
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	struct qcow2 *q = (struct qcow2 *)d;
	assert_int_equal(q->l2c_n, 200);
	uint8_t b[512] = {1};
	for (uint64_t t = 0; t < 200; t++)
		wr(d, t << 29, b, sizeof(b));
	uint64_t held[200];
	for (unsigned i = 0; i < 200; i++) {
		held[i] = q->l2c[i].offset;
		assert_true(held[i] != 0); /* every table has a slot */
	}
	for (uint64_t t = 0; t < 200; t++)
		rd(d, t << 29, b, sizeof(b));
	for (unsigned i = 0; i < 200; i++)
		assert_int_equal(q->l2c[i].offset, held[i]); /* none was evicted for another */
	block_close(d);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY); /* as a backing file: 2 MiB */
	assert_int_equal(((struct qcow2 *)d)->l2c_n, 32);
	block_close(d);
	unlink(f->path);
	create(f->path, 100ull << 40, 21, NULL, NULL); /* 2 MiB clusters: 16 MiB holds 8 */
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	assert_int_equal(((struct qcow2 *)d)->l2c_n, 8);
	block_close(d);
}

/* Requests side by side (qcow2 is block_ops.concurrent): four threads, each on its own 2 MiB
 * of a disk over a backing file, write whole and partial clusters (in place, allocating, copy
 * on write), read them back, discard and flush; each checks its own bytes as it goes and at the
 * end, and the image is clean afterwards. Under ASan a race on the metadata shows up as a
 * wrong byte, a crash or a check failure. */
#define CT_THREADS 4
#define CT_SPAN    (2 * MIB)

struct ct_arg {
	struct block_dev *d;
	unsigned id;
	uint8_t *mirror; /* what this thread's span should hold */
	int failed;
};

static void *ct_thread(void *p)
{
	struct ct_arg *a = p;
	uint64_t base = a->id * CT_SPAN, x = 0x9e3779b97f4a7c15ull * (a->id + 1);
	static _Thread_local uint8_t buf[200000], got[200000];
	struct err e;
	for (unsigned round = 0; round < 600 && !a->failed; round++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t len = 1 + x % sizeof(buf) / 4 * (round % 3 ? 1 : 4);
		len = len > sizeof(buf) ? sizeof(buf) : len;
		uint64_t off = (x >> 20) % (CT_SPAN - len);
		switch (round % 5) {
		case 0:
		case 1:
		case 2:
			fill(buf, len, (unsigned)(x >> 40));
			if (block_pwrite(a->d, buf, len, base + off, &e) < 0)
				a->failed = 1;
			memcpy(a->mirror + off, buf, len);
			break;
		case 3:
			if (block_pread(a->d, got, len, base + off, &e) < 0 || memcmp(got, a->mirror + off, len))
				a->failed = 2;
			break;
		case 4:
			off &= ~(uint64_t)0xffff; /* whole clusters: they read back as the backing's zeroes */
			len = 0x10000 * (1 + x % 3);
			if (off + len > CT_SPAN)
				break;
			if (block_discard(a->d, base + off, len, &e) < 0 || block_flush(a->d, &e) < 0)
				a->failed = 3;
			memset(a->mirror + off, 0, len);
			break;
		}
	}
	for (uint64_t off = 0; off < CT_SPAN && !a->failed; off += sizeof(got)) {
		uint64_t len = CT_SPAN - off < sizeof(got) ? CT_SPAN - off : sizeof(got);
		if (block_pread(a->d, got, len, base + off, &e) < 0 || memcmp(got, a->mirror + off, len))
			a->failed = 4;
	}
	return NULL;
}

static void concurrent_requests(void **state)
{
	struct fx *f = *state;
	char back[160];
	snprintf(back, sizeof(back), "%s.base", f->path);
	int bfd = open(back, O_WRONLY | O_CREAT | O_TRUNC, 0644); /* zeroes, as discarded clusters read */
	assert_true(bfd >= 0 && ftruncate(bfd, CT_THREADS * CT_SPAN) == 0);
	close(bfd);
	create(f->path, CT_THREADS * CT_SPAN, 16, back, "raw");
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	assert_true(d->ops->concurrent);
	struct ct_arg args[CT_THREADS];
	pthread_t t[CT_THREADS];
	for (unsigned i = 0; i < CT_THREADS; i++) {
		args[i] = (struct ct_arg){.d = d, .id = i, .mirror = calloc(1, CT_SPAN)};
		assert_int_equal(pthread_create(&t[i], NULL, ct_thread, &args[i]), 0);
	}
	for (unsigned i = 0; i < CT_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (args[i].failed)
			fail_msg("thread %u failed at step %d", i, args[i].failed);
	}
	struct err e;
	assert_int_equal(block_flush(d, &e), 0);
	block_close(d);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY); /* and it all stayed */
	static uint8_t got[CT_SPAN];
	for (unsigned i = 0; i < CT_THREADS; i++) {
		rd(d, i * CT_SPAN, got, CT_SPAN);
		assert_memory_equal(got, args[i].mirror, CT_SPAN);
		free(args[i].mirror);
	}
	block_close(d);
	unlink(back);
}

/* Requests side by side over many L2 tables (4 KiB clusters over 2 GiB: the cache holds a
 * quarter of them, so tables are evicted and written back while others are in use), with
 * discards and flushes: every read returns what was last written there, and a copy of the file
 * taken at any moment between two requests' metadata steps (the lock held: as a kill would
 * leave it) has no corruption, only leaks at worst. */
#define CM_THREADS 4
#define CM_SPAN    (512ull << 20)
#define CM_SLOTS   1500
#define CM_CLUSTER 4096

struct cm_arg {
	struct block_dev *d;
	unsigned id;
	uint64_t pos[CM_SLOTS];
	uint32_t ver[CM_SLOTS];
	int failed;
};

static void cm_fill(uint8_t *b, unsigned id, unsigned slot, uint32_t ver)
{
	for (unsigned i = 0; i < CM_CLUSTER; i += 4) {
		uint32_t w = ver ? (id << 28) ^ (slot << 12) ^ ver ^ i : 0;
		memcpy(b + i, &w, 4);
	}
}

static void *cm_thread(void *p)
{
	struct cm_arg *a = p;
	struct err e;
	uint8_t b[CM_CLUSTER], got[CM_CLUSTER];
	uint64_t x = 88172645463325252ull * (a->id + 1);
	for (unsigned s = 0; s < CM_SLOTS; s++) { /* distinct clusters of this thread's span */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		a->pos[s] = a->id * CM_SPAN + (s + (x % (CM_SPAN / CM_CLUSTER / CM_SLOTS)) * CM_SLOTS) * CM_CLUSTER;
	}
	for (unsigned r = 1; r <= 8000 && !a->failed; r++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned s = (unsigned)(x % CM_SLOTS);
		switch ((x >> 32) % 8) {
		case 6:
			a->ver[s] = 0;
			if (block_discard(a->d, a->pos[s], CM_CLUSTER, &e) < 0)
				a->failed = 1;
			break;
		case 7:
			if ((x >> 40) % 512 == 0 && block_flush(a->d, &e) < 0)
				a->failed = 2;
			break;
		case 4:
		case 5:
			cm_fill(b, a->id, s, a->ver[s]);
			if (block_pread(a->d, got, CM_CLUSTER, a->pos[s], &e) < 0 || memcmp(b, got, CM_CLUSTER))
				a->failed = 3;
			break;
		default:
			a->ver[s] = r;
			cm_fill(b, a->id, s, r);
			if (block_pwrite(a->d, b, CM_CLUSTER, a->pos[s], &e) < 0)
				a->failed = 4;
		}
	}
	for (unsigned s = 0; s < CM_SLOTS && !a->failed; s++) {
		cm_fill(b, a->id, s, a->ver[s]);
		if (block_pread(a->d, got, CM_CLUSTER, a->pos[s], &e) < 0 || memcmp(b, got, CM_CLUSTER))
			a->failed = 5;
	}
	return NULL;
}

struct cm_snap {
	struct qcow2 *q;
	char path[160];
	atomic_int done;
	unsigned taken, corrupt;
	char first[512];
};

/* Copies the image while holding its lock (a kill between two requests' metadata steps) and
 * checks the copy, every few milliseconds until done. */
static void *cm_snapper(void *p)
{
	struct cm_snap *sn = p;
	static uint8_t buf[1 << 20];
	while (!atomic_load(&sn->done)) {
		usleep(5000);
		pthread_mutex_lock(&sn->q->lock);
		int out = open(sn->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		struct stat st;
		fstat(sn->q->fd, &st);
		for (off_t o = 0; out >= 0 && o < st.st_size;) {
			ssize_t n = pread(sn->q->fd, buf, sizeof(buf), o);
			if (n <= 0 || write(out, buf, (size_t)n) != n)
				break;
			o += n;
		}
		close(out);
		pthread_mutex_unlock(&sn->q->lock);
		struct qcow2_check_result r = {0};
		struct err e;
		sn->taken++;
		if (qcow2_check(sn->path, false, &r, &e) < 0 || r.corruptions) {
			if (!sn->corrupt++)
				snprintf(sn->first, sizeof(sn->first), "%s", r.corruptions ? r.first_problem : e.msg);
		}
	}
	return NULL;
}

static void concurrent_metadata_stays_consistent(void **state)
{
	struct fx *f = *state;
	struct err e;
	struct qcow2_create_opts o = {.size = CM_THREADS * CM_SPAN, .cluster_bits = 12};
	assert_int_equal(qcow2_create(f->path, &o, &e), 0);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	static struct cm_arg args[CM_THREADS];
	static struct cm_snap sn;
	sn = (struct cm_snap){.q = (struct qcow2 *)d};
	snprintf(sn.path, sizeof(sn.path), "%s.kill", f->path);
	pthread_t t[CM_THREADS], st;
	for (unsigned i = 0; i < CM_THREADS; i++) {
		memset(&args[i], 0, sizeof(args[i]));
		args[i].d = d;
		args[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, cm_thread, &args[i]), 0);
	}
	assert_int_equal(pthread_create(&st, NULL, cm_snapper, &sn), 0);
	for (unsigned i = 0; i < CM_THREADS; i++) {
		pthread_join(t[i], NULL);
		if (args[i].failed)
			fail_msg("thread %u failed at step %d", i, args[i].failed);
	}
	atomic_store(&sn.done, 1);
	pthread_join(st, NULL);
	if (sn.corrupt)
		fail_msg("%u of %u copies taken mid-run were corrupt: %s", sn.corrupt, sn.taken, sn.first);
	assert_true(sn.taken > 0);
	assert_int_equal(block_flush(d, &e), 0);
	block_close(d);
	assert_clean(f->path);
	unlink(sn.path);
}

/* Writes to different parts of one new cluster side by side: four threads each write their
 * own 4 KiB pieces of the same unallocated 64 KiB clusters, cluster after cluster in step
 * (a barrier per cluster), over a backing file and without one. Each piece lands: a second
 * write to a cluster whose allocation is in flight waits for it (qcow2.c: claim) rather than
 * merging the old content again and losing the first write's bytes. */
#define SC_THREADS  4
#define SC_CLUSTERS 96
#define SC_PIECE    4096

struct sc_arg {
	struct block_dev *d;
	pthread_barrier_t *step;
	unsigned id;
	int failed;
};

static void *sc_thread(void *p)
{
	struct sc_arg *a = p;
	uint8_t buf[SC_PIECE];
	struct err e;
	for (unsigned c = 0; c < SC_CLUSTERS; c++) {
		pthread_barrier_wait(a->step);
		for (unsigned j = a->id; j < 0x10000 / SC_PIECE && !a->failed; j += SC_THREADS) {
			memset(buf, (int)(1 + (c * 16 + j) % 251), sizeof(buf));
			if (block_pwrite(a->d, buf, sizeof(buf), (uint64_t)c * 0x10000 + j * SC_PIECE, &e) < 0)
				a->failed = 1;
		}
	}
	return NULL;
}

static void shared_new_clusters(struct fx *f, const char *backing)
{
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	pthread_barrier_t step;
	pthread_barrier_init(&step, NULL, SC_THREADS);
	struct sc_arg args[SC_THREADS];
	pthread_t t[SC_THREADS];
	for (unsigned i = 0; i < SC_THREADS; i++) {
		args[i] = (struct sc_arg){.d = d, .step = &step, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, sc_thread, &args[i]), 0);
	}
	for (unsigned i = 0; i < SC_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].failed, 0);
	}
	pthread_barrier_destroy(&step);
	struct err e;
	assert_int_equal(block_flush(d, &e), 0);
	block_close(d);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	static uint8_t got[SC_CLUSTERS * 0x10000], want[SC_CLUSTERS * 0x10000];
	for (unsigned c = 0; c < SC_CLUSTERS; c++)
		for (unsigned j = 0; j < 0x10000 / SC_PIECE; j++)
			memset(want + c * 0x10000 + j * SC_PIECE, (int)(1 + (c * 16 + j) % 251), SC_PIECE);
	rd(d, 0, got, sizeof(got));
	for (unsigned c = 0; c < SC_CLUSTERS; c++)
		if (memcmp(got + c * 0x10000, want + c * 0x10000, 0x10000))
			fail_msg("cluster %u lost a piece (%s)", c,
				 backing ? "over a backing file" : "no backing file");
	block_close(d);
}

static void concurrent_writes_to_one_new_cluster(void **state)
{
	struct fx *f = *state;
	create(f->path, SC_CLUSTERS * 0x10000, 16, NULL, NULL);
	shared_new_clusters(f, NULL);
	unlink(f->path);
	make_raw(in_dir(f, "base.raw"), SC_CLUSTERS * 0x10000, 3);
	create(f->path, SC_CLUSTERS * 0x10000, 16, "base.raw", "raw");
	shared_new_clusters(f, "base.raw");
}

/* Write-zeroes of a whole cluster racing a 4 KiB write into it, both on a cluster new over a
 * backing file (its bytes 0xaa): whichever goes first, the rest of the cluster reads as zeroes
 * afterwards; the write's merge of the backing's bytes must not land after the zeroing
 * (zero_range waits for the write's claim). 1 MiB clusters: a long merge. */
#define ZR_CLUSTERS 24
#define ZR_CS       (1u << 20)

struct zr_arg {
	struct block_dev *d;
	pthread_barrier_t *step;
	bool zero;
	int failed;
};

static void *zr_thread(void *p)
{
	struct zr_arg *a = p;
	static const uint8_t piece[4096] = {0x11};
	struct err e;
	for (unsigned c = 0; c < ZR_CLUSTERS; c++) {
		pthread_barrier_wait(a->step);
		uint64_t at = (uint64_t)c * ZR_CS;
		if (a->zero ? block_write_zeroes(a->d, at, ZR_CS, c & 1, &e) < 0
			    : block_pwrite(a->d, piece, sizeof(piece), at, &e) < 0)
			a->failed = 1;
	}
	return NULL;
}

static void write_zeroes_racing_a_new_cluster(void **state)
{
	struct fx *f = *state;
	int bfd = open(in_dir(f, "base.raw"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	static uint8_t buf[ZR_CS];
	memset(buf, 0xaa, sizeof(buf));
	for (unsigned c = 0; c < ZR_CLUSTERS; c++)
		assert_int_equal(pwrite(bfd, buf, ZR_CS, (off_t)c * ZR_CS), ZR_CS);
	close(bfd);
	create(f->path, (uint64_t)ZR_CLUSTERS * ZR_CS, 20, "base.raw", "raw");
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	pthread_barrier_t step;
	pthread_barrier_init(&step, NULL, 2);
	struct zr_arg args[2] = {{.d = d, .step = &step, .zero = false}, {.d = d, .step = &step, .zero = true}};
	pthread_t t[2];
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, zr_thread, &args[i]), 0);
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].failed, 0);
	}
	pthread_barrier_destroy(&step);
	for (unsigned c = 0; c < ZR_CLUSTERS; c++) {
		rd(d, (uint64_t)c * ZR_CS, buf, ZR_CS);
		for (unsigned i = 4096; i < ZR_CS; i++)
			if (buf[i])
				fail_msg("cluster %u: byte %u is 0x%02x after write-zeroes", c, i, buf[i]);
	}
	struct err e;
	assert_int_equal(block_flush(d, &e), 0);
	block_close(d);
	assert_clean(f->path);
}

static void cow_from_raw_backing(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "base.raw"), 3 * MIB, 5);
	create(f->path, 4 * MIB, 16, "base.raw", "raw"); /* relative; larger than its backing */
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	static uint8_t want[4 * MIB], got[4 * MIB];
	fill(want, 3 * MIB, 5);
	memset(want + 3 * MIB, 0, MIB);
	rd(d, 0, got, sizeof(got));
	assert_memory_equal(want, got, sizeof(got));
	uint8_t x[100];
	memset(x, 0xAB, sizeof(x));
	wr(d, 70000, x, sizeof(x));        /* inside the second cluster: COW of the rest */
	wr(d, 3 * MIB - 50, x, sizeof(x)); /* across the backing file's end */
	memcpy(want + 70000, x, sizeof(x));
	memcpy(want + 3 * MIB - 50, x, sizeof(x));
	block_close(d);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	rd(d, 0, got, sizeof(got));
	assert_memory_equal(want, got, sizeof(got));
	block_close(d);
	assert_clean(f->path);
	/* The backing file is untouched. */
	d = open_ok(in_dir(f, "base.raw"), BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY);
	rd(d, 0, got, 3 * MIB);
	fill(want, 3 * MIB, 5);
	assert_memory_equal(want, got, 3 * MIB);
	block_close(d);
}

static void chain_of_three(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "base.raw"), 2 * MIB, 9);
	create(in_dir(f, "mid.qcow2"), 2 * MIB, 12, "base.raw", "raw");
	struct block_dev *d = open_ok(in_dir(f, "mid.qcow2"), BLOCK_FORMAT_QCOW2, 0);
	uint8_t m[5000];
	memset(m, 'M', sizeof(m));
	wr(d, 10000, m, sizeof(m));
	block_close(d);
	create(f->path, 2 * MIB, 9, "mid.qcow2", "qcow2");
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	uint8_t t[300];
	memset(t, 'T', sizeof(t));
	wr(d, 12000, t, sizeof(t));
	static uint8_t want[2 * MIB], got[2 * MIB];
	fill(want, sizeof(want), 9);
	memcpy(want + 10000, m, sizeof(m));
	memcpy(want + 12000, t, sizeof(t));
	rd(d, 0, got, sizeof(got));
	assert_memory_equal(want, got, sizeof(got));
	block_close(d);
	assert_clean(f->path);
	assert_clean(in_dir(f, "mid.qcow2"));
}

static void zero_clusters(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "base.raw"), MIB, 3);
	create(f->path, MIB, 16, "base.raw", "raw");
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	static uint8_t want[MIB], got[MIB];
	fill(want, sizeof(want), 3);
	uint8_t x[65536];
	memset(x, 'x', sizeof(x));
	wr(d, 0, x, sizeof(x));
	struct err e;
	assert_int_equal(block_write_zeroes(d, 0, 65536, false, &e), 0);        /* allocated: kept */
	assert_int_equal(block_write_zeroes(d, 65536, 2 * 65536, true, &e), 0); /* over the backing file */
	assert_int_equal(block_write_zeroes(d, 300000, 1000, true, &e), 0);     /* partial: written */
	memset(want, 0, 3 * 65536);
	memset(want + 300000, 0, 1000);
	rd(d, 0, got, sizeof(got));
	assert_memory_equal(want, got, sizeof(got));
	wr(d, 100, x, 10); /* into the preallocated zero cluster */
	memset(want + 100, 'x', 10);
	block_close(d);
	struct qcow2 *q;
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	q = qcow2_of(d);
	struct qcow2_l2 *l2;
	assert_int_equal(qcow2_l2_load(q, q->l1[0] & QCOW2_OFFSET_MASK, &l2, &e), 0);
	assert_int_equal(l2->t[1], QCOW2_OFLAG_ZERO); /* the zero flag, no cluster */
	assert_true(l2->t[0] & QCOW2_OFLAG_COPIED);
	rd(d, 0, got, sizeof(got));
	assert_memory_equal(want, got, sizeof(got));
	block_close(d);
	assert_clean(f->path);
}

static void discard_frees(void **state)
{
	struct fx *f = *state;
	create(f->path, 4 * MIB, 16, NULL, NULL);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	static uint8_t a[4 * MIB], b[4 * MIB];
	fill(a, sizeof(a), 7);
	wr(d, 0, a, sizeof(a));
	struct err e;
	assert_int_equal(block_discard(d, 65536 + 5, 3 * 65536, &e), 0); /* clusters 2 and 3 only */
	assert_int_equal(block_flush(d, &e), 0);
	memset(a + 2 * 65536, 0, 2 * 65536);
	rd(d, 0, b, sizeof(b));
	assert_memory_equal(a, b, sizeof(b));
	struct stat st1, st2;
	assert_int_equal(stat(f->path, &st1), 0);
	wr(d, 2 * 65536, a, 65536); /* reuses a freed cluster: the file does not grow */
	block_close(d);
	assert_int_equal(stat(f->path, &st2), 0);
	assert_int_equal(st1.st_size, st2.st_size);
	assert_clean(f->path);
}

static void refcount_growth(void **state)
{
	struct fx *f = *state;
	/* 512-byte clusters: a refcount block covers 128 KiB, a table cluster 8 MiB. */
	create(f->path, 24 * MIB, 9, NULL, NULL);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	uint32_t rt_before = qcow2_of(d)->rt_clusters;
	static uint8_t a[20 * MIB], b[20 * MIB];
	fill(a, sizeof(a), 11);
	wr(d, 4096, a, sizeof(a));
	assert_true(qcow2_of(d)->rt_clusters > rt_before);
	block_close(d);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	rd(d, 4096, b, sizeof(b));
	assert_memory_equal(a, b, sizeof(b));
	block_close(d);
}

static void compressed_read(void **state)
{
	struct fx *f = *state;
	create(f->path, MIB, 16, NULL, NULL); /* clusters: header, table, block, L1 */
	static uint8_t plain[65536], packed[70000];
	fill(plain, sizeof(plain), 13);
	memset(plain + 1000, 0, 20000);
	z_stream z = {0};
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = plain;
	z.avail_in = sizeof(plain);
	z.next_out = packed;
	z.avail_out = sizeof(packed);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	uint64_t clen = z.total_out;
	deflateEnd(&z);
	/* L2 table at cluster 4, compressed bytes at cluster 5 + 100 (not sector aligned). */
	uint64_t cs = 65536, l2 = 4 * cs, data = 5 * cs + 100;
	uint64_t nsect = (data + clen - 1) / 512 - data / 512;
	patch64(f->path, 3 * cs, l2 | QCOW2_OFLAG_COPIED);
	patch64(f->path, l2 + 8, QCOW2_OFLAG_COMPRESSED | nsect << (62 - 8) | data);
	patch(f->path, data, packed, clen);
	uint8_t rc[4] = {0, 1, 0, 1};
	patch(f->path, 2 * cs + 8, rc, 4); /* refcounts of clusters 4 and 5 */
	assert_clean(f->path);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	static uint8_t got[2 * 65536];
	rd(d, 0, got, sizeof(got));
	uint8_t zero[65536] = {0};
	assert_memory_equal(got, zero, 65536);
	assert_memory_equal(got + 65536, plain, 65536);
	/* Writing into it copies it to a new cluster and frees the compressed one. */
	wr(d, 65536 + 10, "abc", 3);
	memcpy(plain + 10, "abc", 3);
	block_close(d);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	rd(d, 65536, got, 65536);
	assert_memory_equal(got, plain, 65536);
	block_close(d);
	/* A descriptor whose data does not inflate to a cluster is an I/O error. */
	patch64(f->path, l2 + 16, QCOW2_OFLAG_COMPRESSED | 0ull << (62 - 8) | (data + 3000));
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	struct err e;
	assert_int_equal(block_pread(d, got, 512, 2 * 65536, &e), -1);
	assert_contains(e.msg, "corrupt");
	block_close(d);
}

static void check_finds_leaks_and_corruption(void **state)
{
	struct fx *f = *state;
	create(f->path, MIB, 16, NULL, NULL);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	uint8_t x[512] = {1};
	wr(d, 0, x, sizeof(x));     /* L2 table at cluster 4, data at cluster 5 */
	wr(d, 65536, x, sizeof(x)); /* cluster 6 */
	struct err e;
	assert_int_equal(block_discard(d, 65536, 65536, &e), 0); /* cluster 6 free, inside the file */
	block_close(d);
	assert_clean(f->path);
	uint8_t one[2] = {0, 1}, zero[2] = {0, 0};
	patch(f->path, 2 * 65536 + 2 * 6, one, 2); /* cluster 6: referenced by nothing */
	struct qcow2_check_result r;
	assert_int_equal(qcow2_check(f->path, false, &r, &e), 0);
	assert_int_equal(r.leaks, 1);
	assert_int_equal(r.corruptions, 0);
	assert_int_equal(qcow2_check(f->path, true, &r, &e), 0);
	assert_int_equal(r.leaks_fixed, 1);
	assert_clean(f->path);
	patch(f->path, 2 * 65536 + 2 * 5, zero, 2); /* the data cluster's refcount lost */
	assert_int_equal(qcow2_check(f->path, false, &r, &e), 0);
	assert_true(r.corruptions >= 1);
	assert_contains(r.first_problem, "cluster 5");
}

/* A child writes a known stretch and flushes, tells the parent, then writes (allocating,
 * discarding, flushing now and then) in a loop until it is killed at a random moment. The image
 * must show no corruption, and the flushed stretch must read back. */
static void killed_mid_write(void **state)
{
	struct fx *f = *state;
	static uint8_t known[100000], got[100000];
	fill(known, sizeof(known), 77);
	for (int round = 0; round < 6; round++) {
		make_raw(in_dir(f, "base.raw"), 4 * MIB, 2);
		create(f->path, 64 * MIB, round & 1 ? 9 : 12, "base.raw", "raw");
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct block_dev *d;
			struct err e;
			close(pfd[0]);
			if (block_open(&d, f->path, BLOCK_FORMAT_QCOW2, 0, &e) < 0 ||
			    block_pwrite(d, known, sizeof(known), 3 * MIB, &e) < 0 || block_flush(d, &e) < 0 ||
			    write(pfd[1], "k", 1) != 1)
				_exit(1);
			static uint8_t b[7000];
			for (unsigned i = 0;; i++) {
				memset(b, (int)i, sizeof(b));
				uint64_t off = 4 * MIB + (uint64_t)(i * 2654435761u) % (60 * MIB - sizeof(b));
				if (block_pwrite(d, b, sizeof(b), off, &e) < 0)
					_exit(2);
				if (i % 7 == 0 && block_discard(d, off, 20000, &e) < 0)
					_exit(3);
				if (i % 16 == 0 && block_flush(d, &e) < 0)
					_exit(4);
			}
		}
		close(pfd[1]);
		char k;
		assert_int_equal(read(pfd[0], &k, 1), 1);
		close(pfd[0]);
		usleep(10000 + (useconds_t)(round * 37000));
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		assert_true(WIFSIGNALED(st));
		struct qcow2_check_result r;
		struct err e;
		assert_int_equal(qcow2_check(f->path, false, &r, &e), 0);
		if (r.corruptions)
			fail_msg("round %d: %llu corruptions: %s", round, (unsigned long long)r.corruptions,
				 r.first_problem);
		struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
		rd(d, 3 * MIB, got, sizeof(got));
		assert_memory_equal(got, known, sizeof(got));
		block_close(d);
	}
}

/* One writer per image, and nobody writes an image in use as a backing file. */
static void locking(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "base.raw"), MIB, 1);
	create(f->path, MIB, 16, "base.raw", "raw");
	struct block_dev *a = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "is locked");
	open_fails(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY, "is locked");
	open_fails(in_dir(f, "base.raw"), BLOCK_FORMAT_RAW, 0, "is locked");
	struct block_dev *b = open_ok(in_dir(f, "base.raw"), BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY);
	struct block_dev *c = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY | BLOCK_OPEN_NO_LOCK);
	block_close(c);
	block_close(b);
	block_close(a);
	a = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	b = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY); /* readers share */
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "is locked");
	block_close(b);
	block_close(a);
	block_close(open_ok(f->path, BLOCK_FORMAT_QCOW2, 0));
}

static void probe_refuses_qcow2(void **state)
{
	struct fx *f = *state;
	create(f->path, MIB, 16, NULL, NULL);
	open_fails(f->path, BLOCK_FORMAT_PROBE, 0, "say format=qcow2");
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY); /* raw on request */
	assert_string_equal(d->ops->format, "raw");
	block_close(d);
	make_raw(in_dir(f, "r.raw"), MIB, 1);
	d = open_ok(in_dir(f, "r.raw"), BLOCK_FORMAT_PROBE, 0);
	assert_string_equal(d->ops->format, "raw");
	block_close(d);
	open_fails(in_dir(f, "r.raw"), BLOCK_FORMAT_QCOW2, 0, "not qcow2");
}

/* Renames the backing file an image names (same length) in its header. */
static void set_backing_name(const char *path, const char *name)
{
	uint64_t off = read64(path, QH_BACKING_OFFSET);
	patch(path, off, name, strlen(name));
}

static void backing_loops_and_depth(void **state)
{
	struct fx *f = *state;
	create(in_dir(f, "b.qcow2"), MIB, 16, NULL, NULL);
	create(in_dir(f, "c.qcow2"), MIB, 16, NULL, NULL);
	create(f->path, MIB, 16, "b.qcow2", "qcow2");
	set_backing_name(f->path, "a.qcow2"); /* A -> A */
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "loops back");
	set_backing_name(f->path, "b.qcow2");
	create(in_dir(f, "b.qcow2"), MIB, 16, "c.qcow2", "qcow2");
	set_backing_name(in_dir(f, "b.qcow2"), "a.qcow2"); /* A -> B -> A */
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "loops back");
	set_backing_name(in_dir(f, "b.qcow2"), "c.qcow2");
	block_close(open_ok(f->path, BLOCK_FORMAT_QCOW2, 0));
	/* A missing backing file, and a depth of BLOCK_MAX_CHAIN + 1. */
	set_backing_name(in_dir(f, "b.qcow2"), "x.qcow2");
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "x.qcow2");
	char name[32], prev[32];
	create(in_dir(f, "d0"), MIB, 16, NULL, NULL);
	for (int i = 1; i <= BLOCK_MAX_CHAIN; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		snprintf(prev, sizeof(prev), "d%d", i - 1);
		create(in_dir(f, name), MIB, 16, prev, "qcow2");
	}
	block_close(open_ok(in_dir(f, "d15"), BLOCK_FORMAT_QCOW2, 0));
	open_fails(in_dir(f, "d16"), BLOCK_FORMAT_QCOW2, 0, "deeper than 16");
	/* A backing file that looks like qcow2 while the image does not say its format. */
	create(in_dir(f, "e.qcow2"), MIB, 16, "c.qcow2", "qcow2");
	uint64_t ext = QCOW2_HEADER_LEN;
	assert_int_equal(read64(in_dir(f, "e.qcow2"), ext) >> 32, QCOW2_EXT_BACKING_FORMAT);
	patch32(in_dir(f, "e.qcow2"), ext, 0x12345678); /* an unknown extension now */
	open_fails(in_dir(f, "e.qcow2"), BLOCK_FORMAT_QCOW2, 0, "does not record the backing format");
	/* An unsupported backing format name. */
	patch32(in_dir(f, "e.qcow2"), ext, QCOW2_EXT_BACKING_FORMAT);
	patch(in_dir(f, "e.qcow2"), ext + 8, "vmdk\0", 5);
	open_fails(in_dir(f, "e.qcow2"), BLOCK_FORMAT_QCOW2, 0, "backing format 'vmdk'");
}

/* A fresh image, one patch, then the refusal. */
struct bad_case {
	const char *what;
	uint64_t off;
	unsigned width; /* 4 or 8 */
	uint64_t value;
	unsigned flags;
	const char *want;
};

static void refusals(void **state)
{
	struct fx *f = *state;
	const uint64_t cs = 65536;
	const struct bad_case cases[] = {
		{"magic", QH_MAGIC, 4, 0x514649fa, 0, "not qcow2"},
		{"version 2", QH_VERSION, 4, 2, 0, "version 2"},
		{"version 4", QH_VERSION, 4, 4, 0, "version 4"},
		{"cluster bits 8", QH_CLUSTER_BITS, 4, 8, 0, "cluster bits 8"},
		{"cluster bits 22", QH_CLUSTER_BITS, 4, 22, 0, "cluster bits 22"},
		{"refcount order 3", QH_REFCOUNT_ORDER, 4, 3, 0, "refcount order 3"},
		{"encrypted", QH_CRYPT, 4, 1, 0, "encrypted"},
		{"header length", QH_HEADER_LENGTH, 4, 96, 0, "header length"},
		{"header length odd", QH_HEADER_LENGTH, 4, 105, 0, "header length"},
		{"corrupt", QH_INCOMPAT, 8, QCOW2_INCOMPAT_CORRUPT, 0, "marked corrupt"},
		{"data file", QH_INCOMPAT, 8, QCOW2_INCOMPAT_DATA_FILE, 0, "external data file"},
		{"extended L2", QH_INCOMPAT, 8, QCOW2_INCOMPAT_EXTL2, 0, "extended L2"},
		{"unknown incompatible", QH_INCOMPAT, 8, 1ull << 40, 0, "bit 40"},
		{"compression bit alone", QH_INCOMPAT, 8, QCOW2_INCOMPAT_COMPRESSION, 0, "disagree"},
		{"snapshots, read-write", QH_NB_SNAPSHOTS, 4, 1, 0, "internal snapshots"},
		{"size beyond L1", QH_SIZE, 8, 1ull << 40, 0, "does not fit"},
		{"L1 misaligned", QH_L1_OFFSET, 8, 3 * cs + 512, 0, "L1 table"},
		{"L1 on the header", QH_L1_OFFSET, 8, 0, 0, "L1 table"},
		{"L1 outside", QH_L1_OFFSET, 8, 1ull << 40, 0, "outside the file"},
		{"L1 huge", QH_L1_SIZE, 4, 0x10000000, 0, "L1 table"},
		{"L1 on the refcount table", QH_L1_OFFSET, 8, cs, 0, "overlaps"},
		{"refcount table outside", QH_RT_OFFSET, 8, 100 * cs, 0, "outside the file"},
		{"refcount table empty", QH_RT_CLUSTERS, 4, 0, 0, "refcount table size"},
		{"refcount table huge", QH_RT_CLUSTERS, 4, 1000, 0, "refcount table size"},
		{"refcount entry", 1 * cs, 8, 77 * cs, 0, "refcount table entry 0"},
		{"refcount entry on header", 1 * cs, 8, 0 + 512, 0, "refcount table entry 0"},
		{"refcount block is an L2 table", 3 * cs, 8, 2 * cs | QCOW2_OFLAG_COPIED, 0, "also an L2 table"},
		{"L1 entry reserved bits", 3 * cs, 8, 4 * cs | 1, 0, "reserved bits"},
		{"backing name outside", QH_BACKING_OFFSET, 8, cs - 2, 0, "outside the header cluster"},
		{"extension past header", QCOW2_HEADER_LEN, 8, 0x1234567800100000ull, 0, "runs past"},
		{"data file extension", QCOW2_HEADER_LEN, 8, (uint64_t)QCOW2_EXT_DATA_FILE << 32 | 4, 0,
		 "external file"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		create(f->path, MIB, 16, NULL, NULL);
		if (c->off == QH_BACKING_OFFSET)
			patch32(f->path, QH_BACKING_SIZE, 10);
		if (c->width == 4)
			patch32(f->path, c->off, (uint32_t)c->value);
		else
			patch64(f->path, c->off, c->value);
		struct err e = {{0}};
		struct block_dev *d = NULL;
		if (block_open(&d, f->path, BLOCK_FORMAT_QCOW2, c->flags, &e) == 0)
			fail_msg("%s: opened", c->what);
		if (!strstr(e.msg, c->want))
			fail_msg("%s: \"%s\" lacks \"%s\"", c->what, e.msg, c->want);
	}
	/* An unknown incompatible feature named by the image's feature table. */
	create(f->path, MIB, 16, NULL, NULL);
	uint8_t ext[8 + 48] = {0};
	qcow2_put32(ext, QCOW2_EXT_FEATURE_TABLE);
	qcow2_put32(ext + 4, 48);
	ext[8] = 0;
	ext[9] = 33;
	memcpy(ext + 10, "frobnication", 12);
	patch(f->path, QCOW2_HEADER_LEN, ext, sizeof(ext));
	patch64(f->path, QH_INCOMPAT, 1ull << 33);
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "'frobnication'");
	/* zstd compression. */
	create(f->path, MIB, 16, NULL, NULL);
	patch64(f->path, QH_INCOMPAT, QCOW2_INCOMPAT_COMPRESSION);
	patch(f->path, QH_COMPRESSION_TYPE, "\1", 1);
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "zstd");
	/* Snapshots are fine read-only; unknown autoclear bits are cleared on a writable open. */
	create(f->path, MIB, 16, NULL, NULL);
	patch32(f->path, QH_NB_SNAPSHOTS, 1);
	block_close(open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY));
	create(f->path, MIB, 16, NULL, NULL);
	patch64(f->path, QH_AUTOCLEAR, 3);
	block_close(open_ok(f->path, BLOCK_FORMAT_QCOW2, 0));
	assert_int_equal(read64(f->path, QH_AUTOCLEAR), 0);
	/* Too short to hold a header. */
	make_raw(f->path, 50, 1);
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "too short");
}

/* Scattered writes over a 64 MiB image (with 4 KiB clusters: several L2 tables), each from its
 * own seed. */
static void scatter(struct block_dev *d, unsigned seed)
{
	uint8_t b[6000];
	for (unsigned i = 0; i < 40; i++) {
		fill(b, sizeof(b), seed + i);
		wr(d, (uint64_t)i * 1609 * 1024 % (60 * MIB), b, sizeof(b));
	}
}

static void scatter_check(struct block_dev *d, unsigned seed)
{
	uint8_t b[6000], want[6000];
	for (unsigned i = 0; i < 40; i++) {
		fill(want, sizeof(want), seed + i);
		rd(d, (uint64_t)i * 1609 * 1024 % (60 * MIB), b, sizeof(b));
		assert_memory_equal(b, want, sizeof(b));
	}
}

/* An image with the dirty bit and stale refcounts (some too low, some too high, a refcount
 * block missing) opens read-only as it is, and read-write with its refcounts rebuilt. */
static void dirty_bit_rebuilds_refcounts(void **state)
{
	struct fx *f = *state;
	create(f->path, 64 * MIB, 12, NULL, NULL);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	scatter(d, 3);
	block_close(d);
	uint64_t rt = read64(f->path, QH_RT_OFFSET), rb0 = read64(f->path, rt);
	uint8_t zero[2] = {0, 0}, one[2] = {0, 1};
	patch(f->path, rb0 + 2 * 20, zero, 2);  /* a used cluster's count lost */
	patch(f->path, rb0 + 2 * 2000, one, 2); /* a leak past everything written */
	patch64(f->path, QH_INCOMPAT, QCOW2_INCOMPAT_DIRTY);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	scatter_check(d, 3);
	block_close(d);
	assert_int_equal(read64(f->path, QH_INCOMPAT), QCOW2_INCOMPAT_DIRTY); /* untouched */
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	assert_int_equal(read64(f->path, QH_INCOMPAT), 0);
	scatter_check(d, 3);
	scatter(d, 9); /* allocation works on the new refcounts */
	block_close(d);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	scatter_check(d, 9);
	block_close(d);
	/* No refcount block at all for the first clusters. */
	patch64(f->path, read64(f->path, QH_RT_OFFSET), 0);
	patch64(f->path, QH_INCOMPAT, QCOW2_INCOMPAT_DIRTY);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	scatter_check(d, 9);
	block_close(d);
	assert_clean(f->path);
	/* A table pointing outside the file cannot be rebuilt from: refused, in one line. */
	patch64(f->path, read64(f->path, QH_L1_OFFSET), (1ull << 40) | QCOW2_OFLAG_COPIED);
	patch64(f->path, QH_INCOMPAT, QCOW2_INCOMPAT_DIRTY);
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "could not be rebuilt");
}

/* check -r all: refcounts below the references are repaired by a rebuild. */
static void check_repair_all(void **state)
{
	struct fx *f = *state;
	create(f->path, 64 * MIB, 12, NULL, NULL);
	struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
	scatter(d, 5);
	block_close(d);
	uint64_t rb0 = read64(f->path, read64(f->path, QH_RT_OFFSET));
	uint8_t zero[2] = {0, 0};
	patch(f->path, rb0 + 2 * 30, zero, 2);
	struct qcow2_check_result r;
	struct err e;
	assert_int_equal(qcow2_check(f->path, QCOW2_REPAIR_LEAKS, &r, &e), 0);
	assert_true(r.corruptions >= 1); /* leaks repair does not touch it */
	assert_int_equal(qcow2_check(f->path, QCOW2_REPAIR_ALL, &r, &e), 0);
	assert_int_equal(r.corruptions, 0);
	assert_true(r.corruptions_fixed >= 1);
	assert_clean(f->path);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	scatter_check(d, 5);
	block_close(d);
}

/* A live snapshot's steps on an open image: an overlay written into a new file over it, the old
 * top made read-only; afterwards both files are clean and each holds what it should. */
static void overlay_over_open_image(void **state)
{
	struct fx *f = *state;
	create(f->path, 64 * MIB, 12, NULL, NULL);
	struct block_dev *base = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0), *top;
	scatter(base, 1);
	struct err e;
	/* Refused: a file that is not empty, or not writable. */
	int fd = open(in_dir(f, "ro.qcow2"), O_RDONLY | O_CREAT, 0644);
	assert_int_equal(block_overlay_create(&top, fd, "ro.qcow2", base, "a.qcow2", &e), -1);
	assert_contains(e.msg, "read-write");
	close(fd);
	fd = open(in_dir(f, "full.qcow2"), O_RDWR | O_CREAT, 0644);
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(block_overlay_create(&top, fd, "full.qcow2", base, "a.qcow2", &e), -1);
	assert_contains(e.msg, "not empty");
	close(fd);
	assert_int_equal(block_flush(base, &e), 0);
	fd = open(in_dir(f, "snap.qcow2"), O_RDWR | O_CREAT | O_EXCL, 0644);
	assert_int_equal(block_overlay_create(&top, fd, in_dir(f, "snap.qcow2"), base, "a.qcow2", &e), 0);
	assert_int_equal(block_make_read_only(base, &e), 0);
	assert_int_equal(block_pwrite(base, "x", 1, 0, &e), -1);
	assert_int_equal(top->size, 64 * MIB);
	assert_int_equal(top->cluster_size, 4096);
	assert_false(top->scratch); /* a snapshot's top is synced as any image */
	scatter_check(top, 1);
	uint8_t b[100];
	fill(b, sizeof(b), 42);
	wr(top, 5 * MIB + 3, b, sizeof(b));
	block_close(top); /* closes base too */
	assert_clean(f->path);
	assert_clean(in_dir(f, "snap.qcow2"));
	struct block_dev *d = open_ok(in_dir(f, "snap.qcow2"), BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	uint8_t got[100];
	rd(d, 5 * MIB + 3, got, sizeof(got));
	assert_memory_equal(got, b, sizeof(b));
	block_close(d);
	d = open_ok(f->path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_RDONLY);
	scatter_check(d, 1);
	rd(d, 5 * MIB + 3, got, sizeof(got));
	assert_memory_not_equal(got, b, sizeof(b));
	block_close(d);
}

/* A volatile disk's layer: an unnamed file over a read-only image, never synced (its flushes
 * write back: what it holds reads the same after one); nothing is left behind. */
static void unnamed_overlay(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "base.raw"), 4 * MIB, 7);
	struct block_dev *base = open_ok(in_dir(f, "base.raw"), BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY), *top;
	int fd = open(f->dir, O_TMPFILE | O_RDWR, 0600);
	assert_true(fd >= 0);
	struct err e;
	assert_int_equal(block_scratch_create(&top, fd, "volatile", base, "base.raw", &e), 0);
	assert_int_equal(top->cluster_size, 65536);
	assert_true(top->scratch);
	uint8_t b[70000], orig[70000], got[70000];
	fill(b, sizeof(b), 11);
	rd(top, MIB, orig, sizeof(orig));
	wr(top, MIB, b, sizeof(b));
	assert_int_equal(block_flush(top, &e), 0);
	rd(top, MIB, got, sizeof(got));
	assert_memory_equal(got, b, sizeof(b));
	block_close(top);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test \"$(ls -A '%s')\" = base.raw", f->dir);
	assert_int_equal(system(cmd), 0);
	base = open_ok(in_dir(f, "base.raw"), BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY);
	rd(base, MIB, got, sizeof(got));
	assert_memory_equal(got, orig, sizeof(got));
	block_close(base);
}

/* A flush whose fdatasync fails (the image's descriptor made a pipe for one flush, where
 * fdatasync fails with EINVAL, as a disk's write-back error fails it with EIO) fails, and so does
 * every flush after it, the file back in place, though the kernel would report nothing then:
 * what failed may be lost. Reads and writes go on. */
static void failed_sync_is_sticky_one(struct block_dev *d)
{
	uint8_t b[4096], got[4096];
	fill(b, sizeof(b), 21);
	struct err e;
	wr(d, 8192, b, sizeof(b));
	assert_int_equal(block_flush(d, &e), 0);
	wr(d, 8192, b, sizeof(b)); /* over what is allocated already: no metadata to write back */
	int saved = dup(d->fd), p[2];
	assert_true(saved >= 0);
	assert_int_equal(pipe(p), 0);
	assert_true(dup2(p[0], d->fd) == d->fd);
	assert_int_equal(block_flush(d, &e), -1);
	assert_contains(e.msg, "write-back to the host's storage failed");
	assert_true(dup2(saved, d->fd) == d->fd);
	close(saved);
	close(p[0]);
	close(p[1]);
	assert_int_equal(block_sync(d, &e), -1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(block_flush(d, &e), -1);
		assert_contains(e.msg, "an earlier write-back to the host's storage failed");
		assert_contains(e.msg, "restart the VM");
	}
	wr(d, 8192, b, sizeof(b));
	rd(d, 8192, got, sizeof(got));
	assert_memory_equal(got, b, sizeof(b));
	block_close(d);
}

static void failed_sync_is_sticky(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "d.raw"), MIB, 1);
	failed_sync_is_sticky_one(open_ok(in_dir(f, "d.raw"), BLOCK_FORMAT_RAW, 0));
	create(in_dir(f, "d.qcow2"), 4 * MIB, 16, NULL, NULL);
	failed_sync_is_sticky_one(open_ok(in_dir(f, "d.qcow2"), BLOCK_FORMAT_QCOW2, 0));
	/* Opened again (the VM restarted), the image flushes again. */
	struct block_dev *d = open_ok(in_dir(f, "d.qcow2"), BLOCK_FORMAT_QCOW2, 0);
	struct err e;
	assert_int_equal(block_flush(d, &e), 0);
	block_close(d);
}

/* Anything but a regular file is refused before it is opened for I/O, as a disk or as a
 * backing file: a FIFO does not block (the test would hang), a device is never opened. */
static void non_regular_files_refused(void **state)
{
	struct fx *f = *state;
	char fifo[160];
	snprintf(fifo, sizeof(fifo), "%s", in_dir(f, "fifo"));
	assert_int_equal(mkfifo(fifo, 0600), 0);
	open_fails(fifo, BLOCK_FORMAT_QCOW2, 0, "a FIFO, not a regular file");
	open_fails("/dev/null", BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY, "a character device");
	open_fails(f->dir, BLOCK_FORMAT_RAW, BLOCK_OPEN_RDONLY, "a directory");
	/* A backing file named by a header (made a FIFO after the overlay was made): the same. */
	char base[160];
	snprintf(base, sizeof(base), "%s", in_dir(f, "base.raw"));
	make_raw(base, MIB, 1);
	create(f->path, MIB, 16, "base.raw", "raw");
	unlink(base);
	assert_int_equal(mkfifo(base, 0600), 0);
	open_fails(f->path, BLOCK_FORMAT_QCOW2, 0, "a FIFO");
	unlink(fifo);
	unlink(base);
}

/* The files a chain uses, as the opener names them. */
static void chain_paths(void **state)
{
	struct fx *f = *state;
	make_raw(in_dir(f, "base.raw"), MIB, 1);
	create(in_dir(f, "mid.qcow2"), MIB, 16, "base.raw", "raw");
	create(f->path, MIB, 16, "mid.qcow2", "qcow2");
	char *p[BLOCK_MAX_CHAIN];
	unsigned n;
	struct err e;
	assert_int_equal(block_chain_paths(f->path, BLOCK_FORMAT_QCOW2, p, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(p[0], f->path);
	assert_string_equal(p[1], in_dir(f, "mid.qcow2"));
	assert_string_equal(p[2], in_dir(f, "base.raw"));
	for (unsigned i = 0; i < n; i++)
		free(p[i]);
}

/* Bad offsets found in the tables during I/O fail that request, cleanly. */
static void bad_metadata_at_run_time(void **state)
{
	struct fx *f = *state;
	const uint64_t cs = 65536;
	const struct {
		uint64_t off, value;
		const char *want;
	} cases[] = {
		{3 * cs, 1ull << 40 | QCOW2_OFLAG_COPIED, "L2 table offset"},     /* L1 -> outside */
		{3 * cs, 1 * cs | QCOW2_OFLAG_COPIED, "L2 table offset"},         /* L1 -> refcount table */
		{3 * cs, 4 * cs + 4096, "L2 table offset"},                       /* misaligned */
		{4 * cs, 1ull << 40 | QCOW2_OFLAG_COPIED, "data cluster offset"}, /* L2 -> outside */
		{4 * cs, 3 * cs | QCOW2_OFLAG_COPIED, "data cluster offset"},     /* L2 -> L1 table */
		{4 * cs, 0 | QCOW2_OFLAG_COPIED | 512, "data cluster offset"},    /* L2 -> header */
		{4 * cs, 5 * cs | 2, "reserved bits"},
		{4 * cs, 2 * cs | QCOW2_OFLAG_COPIED, "data cluster offset"},    /* L2 -> refcount block */
		{4 * cs, 4 * cs | QCOW2_OFLAG_COPIED, "data cluster offset"},    /* L2 -> itself */
		{4 * cs, QCOW2_OFLAG_COMPRESSED | (2 * cs + 100), "compressed"}, /* onto a refcount block */
		{4 * cs, QCOW2_OFLAG_COMPRESSED | 1ull << 50, "compressed"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		create(f->path, MIB, 16, NULL, NULL);
		struct block_dev *d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
		uint8_t x[512] = {1};
		wr(d, 0, x, sizeof(x)); /* L2 at cluster 4, data at 5 */
		block_close(d);
		patch64(f->path, cases[i].off, cases[i].value);
		d = open_ok(f->path, BLOCK_FORMAT_QCOW2, 0);
		struct err e = {{0}};
		assert_int_equal(block_pread(d, x, sizeof(x), 0, &e), -1);
		assert_contains(e.msg, cases[i].want);
		assert_int_equal(block_pwrite(d, x, sizeof(x), 0, &e), -1);
		block_close(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(write_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(l2_cache_sized_for_the_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_metadata_stays_consistent, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_writes_to_one_new_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(write_zeroes_racing_a_new_cluster, setup, teardown),
		cmocka_unit_test_setup_teardown(cow_from_raw_backing, setup, teardown),
		cmocka_unit_test_setup_teardown(chain_of_three, setup, teardown),
		cmocka_unit_test_setup_teardown(zero_clusters, setup, teardown),
		cmocka_unit_test_setup_teardown(discard_frees, setup, teardown),
		cmocka_unit_test_setup_teardown(refcount_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(compressed_read, setup, teardown),
		cmocka_unit_test_setup_teardown(check_finds_leaks_and_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(killed_mid_write, setup, teardown),
		cmocka_unit_test_setup_teardown(locking, setup, teardown),
		cmocka_unit_test_setup_teardown(probe_refuses_qcow2, setup, teardown),
		cmocka_unit_test_setup_teardown(backing_loops_and_depth, setup, teardown),
		cmocka_unit_test_setup_teardown(refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_metadata_at_run_time, setup, teardown),
		cmocka_unit_test_setup_teardown(dirty_bit_rebuilds_refcounts, setup, teardown),
		cmocka_unit_test_setup_teardown(check_repair_all, setup, teardown),
		cmocka_unit_test_setup_teardown(overlay_over_open_image, setup, teardown),
		cmocka_unit_test_setup_teardown(unnamed_overlay, setup, teardown),
		cmocka_unit_test_setup_teardown(chain_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(non_regular_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(failed_sync_is_sticky, setup, teardown),
	};
	if (getenv("QCOW2_TEST_FILTER")) /* run the tests whose name matches, e.g. killed_mid_write */
		cmocka_set_test_filter(getenv("QCOW2_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}

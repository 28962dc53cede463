/* Crash consistency of qcow2 against power loss, not only against a killed process. A killed
 * monitor leaves the host's page cache intact, so a missing fdatasync or a wrong write order
 * goes unseen; a power cut keeps only what was made durable. This test records every write,
 * truncation, hole punch and fdatasync the block layer makes to the image file (the linker's
 * --wrap puts the recorder between the block layer and libc), runs a guest-like workload
 * (writes that allocate clusters and L2 tables, discards, write-zeroes, flushes), then rebuilds
 * the file as a power cut at many points would leave it: only the durable prefix (every
 * operation before the last fdatasync before the cut), and that prefix with a random subset of
 * the operations after it (the disk may keep any of them, in any order). Each such image must
 * pass the qcow2 check with no corruption (leaks are allowed: qemu-img calls them harmless),
 * also `qemu-img check` where qemu-img is installed (every 8th cut), open writable, and read
 * back, for every block, the value it had at the guest's last completed flush or a value the
 * guest wrote after it: nothing a flush acknowledged is ever lost, nothing is torn. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "block/block.h"
#include "block/qcow2.h"
#include "image_fixture.h"

/* ---- the recorder ---- */

enum op_kind { OP_WRITE, OP_SYNC, OP_TRUNCATE, OP_PUNCH };

struct op {
	enum op_kind kind;
	uint64_t off, len; /* OP_TRUNCATE: len is the new size */
	uint8_t *data;     /* OP_WRITE */
};

static struct {
	dev_t dev;
	ino_t ino;
	bool on;
	struct op *ops;
	size_t n, cap;
} rec;

ssize_t __real_pwritev64(int fd, const struct iovec *iov, int n, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __real_fdatasync(int fd);
int __real_fsync(int fd);
int __real_ftruncate64(int fd, off_t len);
int __real_fallocate64(int fd, int mode, off_t off, off_t len);
ssize_t __wrap_pwritev64(int fd, const struct iovec *iov, int n, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __wrap_fdatasync(int fd);
int __wrap_fsync(int fd);
int __wrap_ftruncate64(int fd, off_t len);
int __wrap_fallocate64(int fd, int mode, off_t off, off_t len);

static bool traced(int fd)
{
	struct stat st;
	return rec.on && fstat(fd, &st) == 0 && st.st_dev == rec.dev && st.st_ino == rec.ino;
}

static void record(enum op_kind kind, uint64_t off, uint64_t len, uint8_t *data)
{
	if (rec.n == rec.cap) {
		rec.cap = rec.cap ? rec.cap * 2 : 1024;
		rec.ops = realloc(rec.ops, rec.cap * sizeof(*rec.ops));
		assert_non_null(rec.ops);
	}
	rec.ops[rec.n++] = (struct op){kind, off, len, data};
}

ssize_t __wrap_pwritev64(int fd, const struct iovec *iov, int n, off_t off)
{
	ssize_t r = __real_pwritev64(fd, iov, n, off);
	if (r > 0 && traced(fd)) { /* what reached the file: r bytes from the start of iov */
		uint8_t *copy = malloc((size_t)r);
		assert_non_null(copy);
		size_t done = 0;
		for (int i = 0; i < n && done < (size_t)r; i++) {
			size_t k = iov[i].iov_len < (size_t)r - done ? iov[i].iov_len : (size_t)r - done;
			memcpy(copy + done, iov[i].iov_base, k);
			done += k;
		}
		record(OP_WRITE, (uint64_t)off, (uint64_t)r, copy);
	}
	return r;
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec v = {(void *)buf, len};
	return __wrap_pwritev64(fd, &v, 1, off);
}

int __wrap_fdatasync(int fd)
{
	int r = __real_fdatasync(fd);
	if (r == 0 && traced(fd))
		record(OP_SYNC, 0, 0, NULL);
	return r;
}

int __wrap_fsync(int fd)
{
	int r = __real_fsync(fd);
	if (r == 0 && traced(fd))
		record(OP_SYNC, 0, 0, NULL);
	return r;
}

int __wrap_ftruncate64(int fd, off_t len)
{
	int r = __real_ftruncate64(fd, len);
	if (r == 0 && traced(fd))
		record(OP_TRUNCATE, 0, (uint64_t)len, NULL);
	return r;
}

int __wrap_fallocate64(int fd, int mode, off_t off, off_t len)
{
	int r = __real_fallocate64(fd, mode, off, len);
	if (r == 0 && traced(fd)) /* punch or zero range: the range reads as zeroes */
		record(OP_PUNCH, (uint64_t)off, (uint64_t)len, NULL);
	return r;
}

/* ---- file images in memory ---- */

struct buf {
	uint8_t *b;
	uint64_t size, cap;
};

static void buf_resize(struct buf *f, uint64_t size)
{
	if (size > f->cap) {
		uint64_t cap = f->cap ? f->cap : 1 << 20;
		while (cap < size)
			cap *= 2;
		f->b = realloc(f->b, cap);
		assert_non_null(f->b);
		memset(f->b + f->cap, 0, cap - f->cap);
		f->cap = cap;
	}
	if (size < f->size)
		memset(f->b + size, 0, f->size - size);
	f->size = size;
}

static void apply(struct buf *f, const struct op *o)
{
	switch (o->kind) {
	case OP_WRITE:
		if (o->off + o->len > f->size)
			buf_resize(f, o->off + o->len);
		memcpy(f->b + o->off, o->data, o->len);
		break;
	case OP_TRUNCATE: buf_resize(f, o->len); break;
	case OP_PUNCH:
		if (o->off < f->size)
			memset(f->b + o->off, 0, (o->off + o->len > f->size ? f->size : o->off + o->len) - o->off);
		break;
	case OP_SYNC: break;
	}
}

/* ---- the guest's view: each 4 KiB block holds a value id (0: zeroes) ---- */

#define BLOCK   4096u
#define NBLOCKS 1024u /* a 4 MiB disk */
#define NOPS    700

static void fill(uint8_t *p, uint32_t id)
{
	for (unsigned i = 0; i < BLOCK / 4; i++) {
		uint32_t v = id ? id * 2654435761u + i : 0;
		memcpy(p + 4 * i, &v, 4);
	}
}

/* The id a block holds, or UINT32_MAX when it is no value the guest wrote (torn, garbage). */
static uint32_t id_of(const uint8_t *p)
{
	uint32_t first;
	memcpy(&first, p, 4);
	uint32_t id = first * 244002641u; /* first = id * 2654435761 (mod 2^32): times its inverse */
	uint8_t want[BLOCK];
	fill(want, id);
	return memcmp(want, p, BLOCK) == 0 ? id : UINT32_MAX;
}

struct history {
	size_t start; /* recorder index when the op began */
	uint32_t id;
};

struct workload {
	uint32_t flushed[NOPS + 1][NBLOCKS]; /* the disk at each completed flush */
	size_t flushed_at[NOPS + 1];         /* recorder index after that flush */
	unsigned nflushed;
	struct history *hist[NBLOCKS];
	unsigned nhist[NBLOCKS];
};

static void remember(struct workload *w, uint32_t *model, unsigned blk, uint32_t id)
{
	model[blk] = id;
	w->hist[blk] = realloc(w->hist[blk], (w->nhist[blk] + 1) * sizeof(struct history));
	assert_non_null(w->hist[blk]);
	w->hist[blk][w->nhist[blk]++] = (struct history){rec.n, id};
}

static void run_workload(struct block_dev *d, struct workload *w, unsigned seed)
{
	uint32_t model[NBLOCKS] = {0}, next_id = 1;
	uint8_t data[4 * BLOCK];
	struct err e;
	srandom(seed);
	memcpy(w->flushed[0], model, sizeof(model));
	w->flushed_at[0] = 0;
	w->nflushed = 1;
	for (int i = 0; i < NOPS; i++) {
		unsigned r = (unsigned)random() % 100, blk = (unsigned)random() % NBLOCKS;
		unsigned n = 1 + (unsigned)random() % 4;
		if (blk + n > NBLOCKS)
			n = NBLOCKS - blk;
		if (r < 70) {
			for (unsigned k = 0; k < n; k++) {
				fill(data + k * BLOCK, next_id);
				remember(w, model, blk + k, next_id++);
			}
			assert_int_equal(block_pwrite(d, data, n * BLOCK, (uint64_t)blk * BLOCK, &e), 0);
		} else if (r < 85) { /* 70-79 discard, 80-84 write-zeroes */
			for (unsigned k = 0; k < n; k++)
				remember(w, model, blk + k, 0);
			int ok = r < 80 ? block_discard(d, (uint64_t)blk * BLOCK, n * BLOCK, &e)
					: block_write_zeroes(d, (uint64_t)blk * BLOCK, n * BLOCK, true, &e);
			assert_int_equal(ok, 0);
		} else {
			assert_int_equal(block_flush(d, &e), 0);
			memcpy(w->flushed[w->nflushed], model, sizeof(model));
			w->flushed_at[w->nflushed++] = rec.n;
		}
	}
}

/* Whether id may be in blk after a cut at recorder index cut: its value at the last flush that
 * completed by then, or one written since that flush by an op begun before the cut. A discard
 * may leave the old value (it is a hint), so a value a discard covered stays acceptable. */
static bool acceptable(const struct workload *w, unsigned blk, uint32_t id, size_t cut)
{
	unsigned f = 0;
	while (f + 1 < w->nflushed && w->flushed_at[f + 1] <= cut)
		f++;
	if (w->flushed[f][blk] == id)
		return true;
	for (unsigned i = 0; i < w->nhist[blk]; i++) {
		const struct history *h = &w->hist[blk][i];
		if (h->id == id && h->start >= w->flushed_at[f] && h->start < cut)
			return true;
		/* a discarded value: any value it covered since the last flush is acceptable */
		if (h->id == 0 && h->start >= w->flushed_at[f] && h->start < cut && i > 0 &&
		    w->hist[blk][i - 1].id == id)
			return true;
	}
	return false;
}

/* ---- the cuts ---- */

static char qemu_img[256];

static void write_file(const char *path, const struct buf *f)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	for (uint64_t off = 0; off < f->size; off += BLOCK) { /* sparse: zero blocks skipped */
		uint64_t k = f->size - off < BLOCK ? f->size - off : BLOCK;
		static const uint8_t zero[BLOCK];
		if (memcmp(f->b + off, zero, k) != 0)
			assert_int_equal(__real_pwrite64(fd, f->b + off, k, (off_t)off), (ssize_t)k);
	}
	assert_int_equal(__real_ftruncate64(fd, (off_t)f->size), 0);
	close(fd);
}

/* The image a cut leaves, checked: structure, then every block's value. */
static void check_cut(const char *path, const struct workload *w, size_t cut, const char *what, bool qemu)
{
	struct qcow2_check_result r;
	struct err e;
	if (qcow2_check(path, QCOW2_REPAIR_NONE, &r, &e) < 0)
		fail_msg("cut at %zu (%s): the check cannot read the image: %s", cut, what, e.msg);
	if (r.corruptions)
		fail_msg("cut at %zu (%s): %llu corruptions: %s", cut, what, (unsigned long long)r.corruptions,
			 r.first_problem);
	if (qemu) {
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "%s check -q %s >/dev/null 2>&1", qemu_img, path);
		int st = system(cmd);
		/* 0: clean; 3: leaked clusters only, which qemu-img itself calls harmless */
		if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 3))
			fail_msg("cut at %zu (%s): qemu-img check exit %d", cut, what, WEXITSTATUS(st));
	}
	struct block_dev *d = NULL;
	if (block_open(&d, path, BLOCK_FORMAT_QCOW2, 0, &e) < 0)
		fail_msg("cut at %zu (%s): the image does not open: %s", cut, what, e.msg);
	uint8_t b[BLOCK];
	for (unsigned blk = 0; blk < NBLOCKS; blk++) {
		assert_int_equal(block_pread(d, b, BLOCK, (uint64_t)blk * BLOCK, &e), 0);
		uint32_t id = id_of(b);
		if (id == UINT32_MAX || !acceptable(w, blk, id, cut))
			fail_msg("cut at %zu (%s): block %u holds %s%u, which no flush or later write left there", cut,
				 what, blk, id == UINT32_MAX ? "torn data, not " : "value ", id);
	}
	block_close(d);
}

static void power_loss(void **state, unsigned seed)
{
	struct image_fx *fx = *state;
	static struct workload w;
	memset(&w, 0, sizeof(w));
	image_create(fx->path, NBLOCKS * BLOCK, 12, NULL, NULL); /* 4 KiB clusters: much metadata */
	struct buf base = {0};
	{ /* the created image, durable (qcow2_create syncs): the state before the first cut */
		int fd = open(fx->path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		assert_true(fd >= 0 && fstat(fd, &st) == 0);
		buf_resize(&base, (uint64_t)st.st_size);
		assert_int_equal(pread(fd, base.b, base.size, 0), (ssize_t)base.size);
		rec.dev = st.st_dev;
		rec.ino = st.st_ino;
		close(fd);
	}
	rec.n = 0;
	rec.on = true;
	struct block_dev *d = image_open(fx->path, BLOCK_FORMAT_QCOW2, 0);
	run_workload(d, &w, seed);
	block_close(d);
	rec.on = false;

	const char *cut_path = image_fx_in_dir(fx, "cut.qcow2");
	size_t durable = 0, cuts = 0, syncs = 0;
	struct buf img = {0};
	srandom(seed * 7919);
	for (size_t cut = 1; cut <= rec.n; cut++) {
		/* the durable prefix: every op before the last sync before the cut */
		while (durable < cut) {
			size_t next = durable;
			while (next < cut && rec.ops[next].kind != OP_SYNC)
				next++;
			if (next == cut)
				break;
			for (; durable <= next; durable++)
				apply(&base, &rec.ops[durable]);
			syncs++;
		}
		bool at_sync = rec.ops[cut - 1].kind == OP_SYNC;
		if (!at_sync && cut % 5 != 0 && cut != rec.n)
			continue; /* every sync, every 5th op, and the end */
		cuts++;
		write_file(cut_path, &base);
		check_cut(cut_path, &w, cut, "durable prefix only", qemu_img[0] && cuts % 8 == 0);
		/* the prefix and a random subset of the ops since, in order */
		buf_resize(&img, base.size);
		memcpy(img.b, base.b, base.size);
		for (size_t i = durable; i < cut; i++)
			if (random() & 1)
				apply(&img, &rec.ops[i]);
		write_file(cut_path, &img);
		check_cut(cut_path, &w, cut, "with some later writes", false);
	}
	print_message("seed %u: %zu file operations (%zu syncs), %u guest flushes, %zu cuts checked twice\n", seed,
		      rec.n, syncs, w.nflushed - 1, cuts);
	assert_true(cuts > 50);
	for (size_t i = 0; i < rec.n; i++)
		free(rec.ops[i].data);
	for (unsigned b = 0; b < NBLOCKS; b++) {
		free(w.hist[b]);
		w.hist[b] = NULL;
		w.nhist[b] = 0;
	}
	free(base.b);
	free(img.b);
}

static void power_loss_seed_1(void **state)
{
	power_loss(state, 1);
}

static void power_loss_seed_2(void **state)
{
	power_loss(state, 2);
}

int main(void)
{
	const char *candidates[] = {"/usr/bin/qemu-img", "/usr/local/bin/qemu-img"};
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (access(candidates[i], X_OK) == 0)
			snprintf(qemu_img, sizeof(qemu_img), "%s", candidates[i]);
	if (!qemu_img[0])
		print_message("qemu-img not installed: only shoji's own qcow2 check looks at the cut images\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(power_loss_seed_1, image_fx_setup, image_fx_teardown),
		cmocka_unit_test_setup_teardown(power_loss_seed_2, image_fx_setup, image_fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

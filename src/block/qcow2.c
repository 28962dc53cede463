/* qcow2: guest I/O on a qcow2 v3 image: cluster lookup through the L1 table and a bounded
 * cache of L2 tables, allocation with copy-on-write from the backing file (or zeroes, or a
 * compressed cluster's content), zero clusters, discard, compressed reads (zlib deflate).
 *
 * Write ordering. The image must stay consistent (leaked clusters at worst) whenever the
 * process is killed, and after a host crash at any point before which a flush returned:
 *  1. A cluster's refcount is raised and written (pwrite, at once) before anything else is
 *     written to it: a crash leaves at worst a leaked cluster.
 *  2. Guest data goes to its cluster (pwrite) before the L2 entry that points at it.
 *  3. L2 entries change only in the L2 cache (marked dirty), and the L1 table only in memory.
 *     Write-back (a guest flush, evicting a dirty table, too many pending frees, close) is:
 *     fdatasync (refcounts and data are on disk) -> write the dirty L2 tables -> fdatasync ->
 *     write the L1 table -> fdatasync -> drop the references held for pending frees.
 *     So an L2 table reaches the file before the L1 entry that names it, and neither can
 *     name a cluster whose refcount and content are not already on disk.
 *  4. A cluster is freed (its refcount lowered) only after the L2 entry that referenced it
 *     was rewritten on disk (the pending-free list), so a freed cluster is never still in
 *     use on disk and can be reused safely.
 *  5. A new refcount block is written, synced, then hooked into the refcount table; a new
 *     refcount table is written with its blocks, synced, then named in the header, synced,
 *     and only then the old table is freed (qcow2_refcount.c).
 * Concurrency. The entry points (block_ops) take q->lock. Only the transfer of guest data runs
 * with it released (data_io): to or from a standard cluster that the L2 entry shows in use
 * (and, for a write, owned: COPIED), and the data of a write into newly allocated clusters,
 * whose L2 entries are set only once the lock is taken again. Such a write first claims its
 * guest clusters, and any other write to a claimed cluster waits until the claim is released
 * (two writes to different parts of one new cluster would each merge the old content and one
 * would be lost); a read of it meanwhile sees the old content, as it may for any write in
 * flight. So reads, in-place writes and allocating writes go side by side, while lookups,
 * allocation, the read of the old content for copy-on-write and write-back stay one at a
 * time. A transfer still holds the host offset it looked up; a cluster it targets may
 * meanwhile be unmapped (the guest's own discard or write-zeroes of that range, racing its
 * own I/O), so pending frees are applied only with no transfer in flight
 * (wait_for_transfers, which waits on a lock of its own and keeps q->lock: no other request
 * may run while one is in the middle of changing metadata): a freed cluster is never written
 * by a late transfer after another guest offset took it.
 * Writes the guest has not flushed may be lost on a kill (a volatile write cache, which is
 * what virtio-blk's FLUSH feature tells the guest). shoji never sets the dirty bit: refcounts
 * are always exact on disk, also in an image with the lazy_refcounts compatible bit (kept as
 * it is). An image opened for writing with the dirty bit set (QEMU with lazy refcounts, killed)
 * first has its refcounts rebuilt (qcow2_rebuild.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "qcow2.h"

enum cluster_kind { C_UNALLOC, C_ZERO, C_NORMAL, C_COMPRESSED };

static int corrupt(struct qcow2 *q, const char *what, uint64_t vaddr, struct err *e)
{
	return err_set(e, "qcow2 image '%s' is corrupt: %s for guest offset %llu (check it: shoji-img check)",
		       q->dev.path, what, (unsigned long long)vaddr);
}

void qcow2_compressed_range(const struct qcow2 *q, uint64_t entry, uint64_t *off, uint64_t *len)
{
	unsigned x = 62 - (q->cluster_bits - 8);
	*off = entry & ((1ull << x) - 1);
	uint64_t nsect = (entry >> x) & ((1ull << (q->cluster_bits - 8)) - 1);
	*len = (nsect + 1) * 512 - (*off & 511);
}

/* What an L2 entry means, with its host offset (0 when none); -1 when it is malformed. */
static int classify(struct qcow2 *q, uint64_t entry, uint64_t vaddr, enum cluster_kind *kind, uint64_t *host,
		    struct err *e)
{
	if (entry & QCOW2_OFLAG_COMPRESSED) {
		uint64_t len;
		qcow2_compressed_range(q, entry, host, &len);
		if (*host >= q->file_size || (entry & QCOW2_OFLAG_COPIED) || qcow2_overlaps_metadata(q, *host, len))
			return corrupt(q, "a compressed cluster descriptor is out of range", vaddr, e);
		*kind = C_COMPRESSED;
		return 0;
	}
	if (entry & QCOW2_L2_RESERVED)
		return corrupt(q, "an L2 entry has reserved bits set", vaddr, e);
	*host = entry & QCOW2_OFFSET_MASK;
	if (*host && ((*host & (q->cs - 1)) || *host >= q->file_size || qcow2_overlaps_metadata(q, *host, q->cs)))
		return corrupt(q, "a data cluster offset is misaligned, outside the file or on metadata", vaddr, e);
	*kind = (entry & QCOW2_OFLAG_ZERO) ? C_ZERO : *host ? C_NORMAL : C_UNALLOC;
	return 0;
}

/* ---- L2 cache ---- */

static int l2_write(struct qcow2 *q, struct qcow2_l2 *s, struct err *e)
{
	for (uint64_t i = 0; i < (1ull << q->l2_bits); i++)
		qcow2_put64(q->tmp + i * 8, s->t[i]);
	if (block_fd_pwrite(q->fd, q->tmp, q->cs, s->offset, q->dev.path, e) < 0)
		return -1;
	s->dirty = false;
	return 0;
}

/* Until no transfer runs without the lock. Lock held, and kept: no transfer starts meanwhile
 * (one starts only under the lock), and no other request sees the metadata half changed. */
static void wait_for_transfers(struct qcow2 *q)
{
	pthread_mutex_lock(&q->io_lock);
	while (q->io_inflight)
		pthread_cond_wait(&q->io_idle, &q->io_lock);
	pthread_mutex_unlock(&q->io_lock);
}

/* Moves guest data to or from host offset `off` of clusters in use (see Concurrency above),
 * with the lock released. Lock held (taken again before it returns). */
static int data_io(struct qcow2 *q, bool write, const struct iovec *sv, int k, uint64_t off, struct err *e)
{
	pthread_mutex_lock(&q->io_lock);
	q->io_inflight++;
	pthread_mutex_unlock(&q->io_lock);
	pthread_mutex_unlock(&q->lock);
	int r = write ? block_fd_pwritev(q->fd, sv, k, off, q->dev.path, e)
		      : block_fd_preadv(q->fd, sv, k, off, q->dev.path, e);
	pthread_mutex_lock(&q->io_lock);
	if (--q->io_inflight == 0)
		pthread_cond_broadcast(&q->io_idle);
	pthread_mutex_unlock(&q->io_lock);
	pthread_mutex_lock(&q->lock);
	return r;
}

int qcow2_writeback(struct qcow2 *q, struct err *e)
{
	bool l2_dirty = false;
	for (unsigned i = 0; i < q->l2c_n; i++)
		l2_dirty |= q->l2c[i].dirty;
	if (!l2_dirty && !q->l1_dirty && !q->npending)
		return 0;
	if (qcow2_sync(q, e) < 0)
		return -1;
	for (unsigned i = 0; i < q->l2c_n; i++)
		if (q->l2c[i].dirty && l2_write(q, &q->l2c[i], e) < 0)
			return -1;
	if (q->l1_dirty) {
		uint64_t bytes = (uint64_t)q->l1_size * 8;
		uint8_t *b = malloc(bytes);
		if (!b)
			return err_set(e, "out of memory writing the L1 table of '%s'", q->dev.path);
		for (uint32_t i = 0; i < q->l1_size; i++)
			qcow2_put64(b + (uint64_t)i * 8, q->l1[i]);
		int r = (l2_dirty ? qcow2_sync(q, e) : 0) < 0
			? -1
			: block_fd_pwrite(q->fd, b, bytes, q->l1_offset, q->dev.path, e);
		free(b);
		if (r < 0)
			return -1;
		q->l1_dirty = false;
	}
	if (q->npending) {
		wait_for_transfers(q);
		if (qcow2_sync(q, e) < 0)
			return -1;
		for (; q->npending; q->npending--) /* each off the list once freed: never freed twice */
			if (qcow2_free_range(q, q->pending[2 * q->npending - 2], q->pending[2 * q->npending - 1], e) <
			    0)
				return -1;
	}
	return 0;
}

/* A cache slot for the table at `offset`: the least recently used one, written back first
 * when dirty. */
static int l2_slot(struct qcow2 *q, struct qcow2_l2 **out, struct err *e)
{
	struct qcow2_l2 *victim = &q->l2c[0];
	for (unsigned i = 1; i < q->l2c_n; i++)
		if (q->l2c[i].used < victim->used)
			victim = &q->l2c[i];
	if (!victim->t && !(victim->t = malloc(q->cs)))
		return err_set(e, "out of memory for an L2 table of '%s'", q->dev.path);
	if (victim->dirty && qcow2_writeback(q, e) < 0)
		return -1;
	victim->offset = 0;
	*out = victim;
	return 0;
}

int qcow2_l2_load(struct qcow2 *q, uint64_t offset, struct qcow2_l2 **out, struct err *e)
{
	for (unsigned i = 0; i < q->l2c_n; i++)
		if (q->l2c[i].offset == offset) {
			q->l2c[i].used = ++q->clock;
			*out = &q->l2c[i];
			return 0;
		}
	struct qcow2_l2 *s;
	if (l2_slot(q, &s, e) < 0 || block_fd_pread(q->fd, q->tmp, q->cs, offset, q->dev.path, e) < 0)
		return -1;
	for (uint64_t i = 0; i < (1ull << q->l2_bits); i++)
		s->t[i] = qcow2_be64(q->tmp + i * 8);
	s->offset = offset;
	s->used = ++q->clock;
	*out = s;
	return 0;
}

/* The L2 table for guest offset vaddr and the entry's index in it; *out is NULL when there is
 * none and alloc is false. */
static int l2_get(struct qcow2 *q, uint64_t vaddr, bool alloc, struct qcow2_l2 **out, unsigned *idx, struct err *e)
{
	uint64_t l1i = vaddr >> (q->cluster_bits + q->l2_bits);
	*idx = (unsigned)((vaddr >> q->cluster_bits) & ((1ull << q->l2_bits) - 1));
	*out = NULL;
	if (l1i >= q->l1_size)
		return corrupt(q, "the L1 table is too short", vaddr, e);
	uint64_t off = q->l1[l1i] & QCOW2_OFFSET_MASK;
	if (off) {
		if ((off & (q->cs - 1)) || off > q->file_size - q->cs || qcow2_overlaps_fixed(q, off, q->cs) ||
		    qcow2_set_has(&q->refblocks, off))
			return corrupt(q, "an L2 table offset is misaligned, outside the file or on metadata", vaddr,
				       e);
		return qcow2_l2_load(q, off, out, e);
	}
	if (!alloc)
		return 0;
	struct qcow2_l2 *s;
	if (l2_slot(q, &s, e) < 0 || qcow2_alloc_cluster(q, &off, e) < 0 || qcow2_set_add(&q->l2tables, off, e) < 0)
		return -1;
	memset(s->t, 0, q->cs);
	s->offset = off;
	s->used = ++q->clock;
	s->dirty = true;
	q->l1[l1i] = off | QCOW2_OFLAG_COPIED;
	q->l1_dirty = true;
	*out = s;
	return 0;
}

/* The L2 entry for guest offset vaddr (0 when there is no L2 table and alloc is false), what
 * it means, and where its table sits in the cache. */
static int lookup(struct qcow2 *q, uint64_t vaddr, bool alloc, struct qcow2_l2 **l2, unsigned *i, uint64_t *entry,
		  enum cluster_kind *kind, uint64_t *host, struct err *e)
{
	if (l2_get(q, vaddr, alloc, l2, i, e) < 0)
		return -1;
	*entry = *l2 ? (*l2)->t[*i] : 0;
	return classify(q, *entry, vaddr, kind, host, e);
}

int qcow2_allocates(struct qcow2 *q, uint64_t vaddr, bool *out, struct err *e)
{
	struct qcow2_l2 *l2;
	unsigned i;
	uint64_t entry, host;
	enum cluster_kind kind = C_UNALLOC;
	pthread_mutex_lock(&q->lock);
	int r = lookup(q, vaddr, false, &l2, &i, &entry, &kind, &host, e);
	pthread_mutex_unlock(&q->lock);
	*out = r == 0 && kind != C_UNALLOC;
	return r;
}

/* ---- content of a cluster ---- */

static int decompress(struct qcow2 *q, uint64_t entry, uint64_t vaddr, struct err *e)
{
	if (q->cbuf_entry == entry)
		return 0;
	uint64_t off, len;
	qcow2_compressed_range(q, entry, &off, &len);
	uint8_t *in = malloc(len);
	if (!in)
		return err_set(e, "out of memory");
	int rc = -1;
	if (block_fd_pread(q->fd, in, len, off, q->dev.path, e) < 0)
		goto out;
	z_stream z = {0};
	if (inflateInit2(&z, -12) != Z_OK) {
		err_set(e, "qcow2 image '%s': cannot start zlib", q->dev.path);
		goto out;
	}
	z.next_in = in;
	z.avail_in = (uInt)len;
	z.next_out = q->cbuf;
	z.avail_out = (uInt)q->cs;
	int r = inflate(&z, Z_FINISH);
	inflateEnd(&z);
	if ((r != Z_STREAM_END && r != Z_BUF_ERROR) || z.avail_out != 0) {
		q->cbuf_entry = 0;
		corrupt(q, "a compressed cluster does not inflate to a whole cluster", vaddr, e);
		goto out;
	}
	q->cbuf_entry = entry;
	rc = 0;
out:
	free(in);
	return rc;
}

/* Reads the guest range [vaddr, vaddr+len) of an unallocated cluster: the backing file's bytes
 * where it has them, zeroes past its end or without one. */
static int read_backing(struct qcow2 *q, const struct iovec *iov, int n, uint64_t at, uint64_t vaddr, uint64_t len,
			struct iovec *sv, struct err *e)
{
	uint64_t have = 0;
	if (q->dev.backing && vaddr < q->dev.backing->size)
		have = q->dev.backing->size - vaddr < len ? q->dev.backing->size - vaddr : len;
	if (have) {
		int k = block_iov_slice(iov, n, at, have, sv, n);
		if (k < 0 || q->dev.backing->ops->readv(q->dev.backing, sv, k, vaddr, e) < 0)
			return -1;
	}
	block_iov_memset(iov, n, at + have, 0, len - have);
	return 0;
}

/* The length of the run of guest bytes from vaddr (in a standard cluster whose host cluster is
 * `host`; owned: with OFLAG_COPIED) that the following clusters, up to `rest` bytes, continue
 * at contiguous host offsets with the same kind: one system call moves it all. */
#define QCOW2_MAX_RUN 64 /* clusters */
static int normal_run(struct qcow2 *q, uint64_t vaddr, uint64_t rest, uint64_t host, bool owned, uint64_t *run,
		      struct err *e)
{
	uint64_t co = vaddr & (q->cs - 1), len = q->cs - co < rest ? q->cs - co : rest;
	for (unsigned k = 1; len < rest && k < QCOW2_MAX_RUN; k++) {
		uint64_t next = vaddr + len, entry = 0, h = 0;
		struct qcow2_l2 *l2;
		unsigned i;
		enum cluster_kind kind = C_UNALLOC;
		if (lookup(q, next, false, &l2, &i, &entry, &kind, &h, e) < 0)
			return -1;
		if (kind != C_NORMAL || (owned && !(entry & QCOW2_OFLAG_COPIED)) || h != host + (next - (vaddr - co)))
			break;
		len += q->cs < rest - len ? q->cs : rest - len;
	}
	*run = len;
	return 0;
}

/* Reads guest bytes [vaddr, vaddr+len), inside one cluster, into iov at byte `at`; a run of
 * contiguous clusters up to `rest` bytes in one go (*used: the bytes done). */
static int read_chunk(struct qcow2 *q, const struct iovec *iov, int n, uint64_t at, uint64_t vaddr, uint64_t len,
		      uint64_t rest, uint64_t *used, struct iovec *sv, struct err *e)
{
	struct qcow2_l2 *l2;
	unsigned i;
	uint64_t entry, host, co = vaddr & (q->cs - 1);
	enum cluster_kind kind;
	if (lookup(q, vaddr, false, &l2, &i, &entry, &kind, &host, e) < 0)
		return -1;
	switch (kind) {
	case C_UNALLOC: return read_backing(q, iov, n, at, vaddr, len, sv, e);
	case C_ZERO: block_iov_memset(iov, n, at, 0, len); return 0;
	case C_COMPRESSED:
		if (decompress(q, entry, vaddr, e) < 0)
			return -1;
		block_iov_from_buf(iov, n, at, q->cbuf + co, len);
		return 0;
	case C_NORMAL: break;
	}
	if (normal_run(q, vaddr, rest, host, false, &len, e) < 0)
		return -1;
	int k = block_iov_slice(iov, n, at, len, sv, n);
	if (k < 0)
		return err_set(e, "qcow2 image '%s': bad request buffers", q->dev.path);
	*used = len;
	return data_io(q, false, sv, k, host + co, e);
}

/* Splits [off, off+len) at cluster boundaries and calls fn for each piece (len: up to the
 * cluster's end; rest: up to the request's), which may do more than its piece (*used). */
typedef int (*chunk_fn)(struct qcow2 *q, const struct iovec *iov, int n, uint64_t at, uint64_t vaddr, uint64_t len,
			uint64_t rest, uint64_t *used, struct iovec *sv, struct err *e);

static int for_each_chunk(struct qcow2 *q, const struct iovec *iov, int n, uint64_t off, uint64_t len, chunk_fn fn,
			  struct err *e)
{
	struct iovec *sv = calloc((size_t)(n > 0 ? n : 1), sizeof(*sv));
	if (!sv)
		return err_set(e, "out of memory");
	int rc = 0;
	for (uint64_t done = 0; done < len && rc == 0;) {
		uint64_t vaddr = off + done, co = vaddr & (q->cs - 1);
		uint64_t chunk = q->cs - co < len - done ? q->cs - co : len - done;
		uint64_t used = chunk;
		if (q->npending >= QCOW2_MAX_PENDING_FREES)
			rc = qcow2_writeback(q, e);
		if (rc == 0)
			rc = fn(q, iov, n, done, vaddr, chunk, len - done, &used, sv, e);
		done += used;
	}
	free(sv);
	return rc;
}

static int qcow2_readv(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e)
{
	struct qcow2 *q = qcow2_of(d);
	pthread_mutex_lock(&q->lock);
	int r = for_each_chunk(q, iov, n, off, block_iov_len(iov, n), read_chunk, e);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* ---- writes ---- */

static int pend_free(struct qcow2 *q, uint64_t entry, uint64_t vaddr, struct err *e)
{
	enum cluster_kind kind;
	uint64_t host, len = q->cs;
	if (classify(q, entry, vaddr, &kind, &host, e) < 0)
		return -1;
	if (kind == C_COMPRESSED)
		qcow2_compressed_range(q, entry, &host, &len);
	if (!host)
		return 0;
	if (q->cbuf_entry == entry)
		q->cbuf_entry = 0;
	if (q->npending >= QCOW2_MAX_PENDING_FREES && qcow2_writeback(q, e) < 0)
		return -1; /* requests side by side may fill the list between two chunks' checks */
	q->pending[2 * q->npending] = host;
	q->pending[2 * q->npending + 1] = len;
	q->npending++;
	return 0;
}

/* The whole current content of the cluster at guest offset base (entry `entry`) into buf. */
static int cluster_content(struct qcow2 *q, uint64_t entry, uint64_t base, uint8_t *buf, struct err *e)
{
	struct iovec v = {buf, q->cs}, sv;
	enum cluster_kind kind;
	uint64_t host;
	if (classify(q, entry, base, &kind, &host, e) < 0)
		return -1;
	switch (kind) {
	case C_UNALLOC: return read_backing(q, &v, 1, 0, base, q->cs, &sv, e);
	case C_ZERO: memset(buf, 0, q->cs); return 0;
	case C_COMPRESSED:
		if (decompress(q, entry, base, e) < 0)
			return -1;
		memcpy(buf, q->cbuf, q->cs);
		return 0;
	case C_NORMAL: break;
	}
	return block_fd_pread(q->fd, buf, q->cs, host, q->dev.path, e);
}

/* Whether a write of a whole cluster with this entry needs a new cluster. */
static bool needs_new_cluster(enum cluster_kind kind, uint64_t entry, uint64_t host)
{
	bool owned = entry & QCOW2_OFLAG_COPIED;
	return !(kind == C_NORMAL && owned) && !(kind == C_ZERO && host && owned);
}

/* ---- claims: guest clusters whose new host clusters are written without the lock ---- */

static int free_claim_slot(const struct qcow2 *q)
{
	for (int s = 0; s < QCOW2_MAX_CLAIMS; s++)
		if (q->claims[s].first == UINT64_MAX)
			return s;
	return -1;
}

static bool claimed(const struct qcow2 *q, uint64_t vaddr)
{
	uint64_t c = vaddr >> q->cluster_bits;
	for (int s = 0; s < QCOW2_MAX_CLAIMS; s++)
		if (q->claims[s].first != UINT64_MAX && c - q->claims[s].first < q->claims[s].n)
			return true;
	return false;
}

/* Until no other write is giving the cluster at vaddr a new host cluster. Lock held (released
 * while waiting): the caller looks its cluster up only afterwards. */
static void wait_unclaimed(struct qcow2 *q, uint64_t vaddr)
{
	while (claimed(q, vaddr))
		pthread_cond_wait(&q->alloc_done, &q->lock);
}

/* Claims n guest clusters from the one at vaddr: until unclaim, other writes to them wait. */
static int claim(struct qcow2 *q, uint64_t vaddr, uint64_t n)
{
	int s = free_claim_slot(q);
	if (s >= 0) {
		q->claims[s].first = vaddr >> q->cluster_bits;
		q->claims[s].n = n;
	}
	return s;
}

static void unclaim(struct qcow2 *q, int s)
{
	q->claims[s].first = UINT64_MAX;
	q->claims[s].n = 0;
	pthread_cond_broadcast(&q->alloc_done);
}

/* Writes the claimed new host clusters from `host` (sv: their data) with the lock released,
 * then points the L2 entries of the k guest clusters from vaddr at them, the old entries'
 * clusters to be freed after the next write-back. Lock held (released meanwhile). */
static int fill_claimed(struct qcow2 *q, uint64_t vaddr, uint64_t k, uint64_t host, uint64_t at, const struct iovec *sv,
			int m, struct err *e)
{
	int s = claim(q, vaddr, k);
	if (s < 0)
		return err_set(e, "qcow2 image '%s': no allocation slot free", q->dev.path);
	int r = data_io(q, true, sv, m, host + at, e);
	for (uint64_t j = 0; r == 0 && j < k; j++) {
		struct qcow2_l2 *l2;
		unsigned i;
		uint64_t entry = 0, h = 0, v = vaddr + j * q->cs;
		enum cluster_kind kind = C_UNALLOC;
		r = lookup(q, v, true, &l2, &i, &entry, &kind, &h, e) < 0 || pend_free(q, entry, v, e) < 0 ? -1 : 0;
		if (r == 0) {
			l2->t[i] = (host + j * q->cs) | QCOW2_OFLAG_COPIED;
			l2->dirty = true;
		}
	}
	unclaim(q, s);
	return r;
}

/* Whole clusters from vaddr (which needs a new one) on, up to `rest` bytes, as long as each
 * needs a new cluster and no other write has claimed it (their L2 tables are made first): new
 * clusters taken in a row, their refcounts raised with one write, then their data written
 * with one more (refcounts before data, as for one cluster) and their L2 entries set.
 * *used: the bytes done. */
static int alloc_run(struct qcow2 *q, const struct iovec *iov, int n, uint64_t at, uint64_t vaddr, uint64_t rest,
		     uint64_t *used, struct iovec *sv, struct err *e)
{
	uint64_t want = 1, first, more = 0;
	while (want < QCOW2_MAX_RUN && (want + 1) * q->cs <= rest && !claimed(q, vaddr + want * q->cs)) {
		struct qcow2_l2 *l2;
		unsigned i;
		uint64_t entry = 0, host = 0;
		enum cluster_kind kind = C_UNALLOC;
		if (lookup(q, vaddr + want * q->cs, true, &l2, &i, &entry, &kind, &host, e) < 0 ||
		    !needs_new_cluster(kind, entry, host))
			break; /* an error here is met again when that cluster's turn comes */
		want++;
	}
	if (qcow2_alloc_cluster(q, &first, e) < 0 ||
	    (want > 1 && qcow2_alloc_following(q, first, want - 1, &more, e) < 0))
		return -1;
	uint64_t k = 1 + more;
	int m = block_iov_slice(iov, n, at, k * q->cs, sv, n);
	if (m < 0)
		return err_set(e, "qcow2 image '%s': bad request buffers", q->dev.path);
	*used = k * q->cs;
	return fill_claimed(q, vaddr, k, first, 0, sv, m, e);
}

/* Whether the new cluster at host offset h lies past the end of the file, so that it reads as
 * zeroes, made part of the file by a zero byte written at its end: a write never shrinks the
 * file (a truncate could undo a later cluster written meanwhile by another request) and leaves
 * the rest of the cluster a hole. */
static bool zeroes_past_end(struct qcow2 *q, uint64_t h)
{
	struct stat st;
	return fstat(q->fd, &st) == 0 && (uint64_t)st.st_size <= h && pwrite(q->fd, "", 1, (off_t)(h + q->cs - 1)) == 1;
}

/* A new cluster for part of one (guest bytes [vaddr, vaddr+len), data sv): the old content
 * (backing file, zeroes, compressed, shared) merged with the new bytes and written whole
 * before the L2 entry changes; when the old content is zeroes and the new cluster lies past
 * the end of the file, only the new bytes. */
static int alloc_partial(struct qcow2 *q, uint64_t entry, enum cluster_kind kind, uint64_t vaddr, uint64_t len,
			 const struct iovec *sv, int k, struct err *e)
{
	uint64_t co = vaddr & (q->cs - 1), base = vaddr - co, newh;
	bool zero_old = kind == C_ZERO || (kind == C_UNALLOC && (!q->dev.backing || base >= q->dev.backing->size));
	uint8_t *buf = NULL;
	int r = -1;
	if (!zero_old && !(buf = malloc(q->cs)))
		return err_set(e, "out of memory for a write to '%s'", q->dev.path);
	if ((!zero_old && cluster_content(q, entry, base, buf, e) < 0) || qcow2_alloc_cluster(q, &newh, e) < 0)
		goto out;
	if (zero_old && zeroes_past_end(q, newh)) {
		r = fill_claimed(q, base, 1, newh, co, sv, k, e);
		goto out;
	}
	if (!buf && !(buf = calloc(1, q->cs))) {
		err_set(e, "out of memory for a write to '%s'", q->dev.path);
		goto out;
	}
	block_iov_to_buf(sv, k, 0, buf + co, len);
	struct iovec whole = {buf, q->cs};
	r = fill_claimed(q, base, 1, newh, 0, &whole, 1, e);
out:
	free(buf);
	return r;
}

static int write_chunk(struct qcow2 *q, const struct iovec *iov, int n, uint64_t at, uint64_t vaddr, uint64_t len,
		       uint64_t rest, uint64_t *used, struct iovec *sv, struct err *e)
{
	struct qcow2_l2 *l2;
	unsigned i;
	uint64_t entry, host, co = vaddr & (q->cs - 1);
	enum cluster_kind kind;
	wait_unclaimed(q, vaddr);
	if (lookup(q, vaddr, true, &l2, &i, &entry, &kind, &host, e) < 0)
		return -1;
	bool owned = entry & QCOW2_OFLAG_COPIED;
	if (kind == C_NORMAL && owned && normal_run(q, vaddr, rest, host, true, &len, e) < 0)
		return -1;
	int k = block_iov_slice(iov, n, at, len, sv, n);
	if (k < 0)
		return err_set(e, "qcow2 image '%s': bad request buffers", q->dev.path);
	*used = len;
	if (kind == C_NORMAL && owned) /* the common case: in place, a run of clusters at once */
		return data_io(q, true, sv, k, host + co, e);
	if (kind == C_ZERO && host && owned) { /* a preallocated zero cluster: fill it in place */
		if (len < q->cs) {
			memset(q->wbuf, 0, q->cs);
			block_iov_to_buf(sv, k, 0, q->wbuf + co, len);
			if (block_fd_pwrite(q->fd, q->wbuf, q->cs, host, q->dev.path, e) < 0)
				return -1;
		} else if (block_fd_pwritev(q->fd, sv, k, host, q->dev.path, e) < 0) {
			return -1;
		}
		l2->t[i] = host | QCOW2_OFLAG_COPIED;
		l2->dirty = true;
		return 0;
	}
	if (free_claim_slot(q) < 0) { /* every slot taken: wait for one, then look again */
		pthread_cond_wait(&q->alloc_done, &q->lock);
		*used = 0;
		return 0;
	}
	if (len == q->cs) /* whole clusters: as many as come in a row, at once */
		return alloc_run(q, iov, n, at, vaddr, rest, used, sv, e);
	return alloc_partial(q, entry, kind, vaddr, len, sv, k, e);
}

static int qcow2_writev(struct block_dev *d, const struct iovec *iov, int n, uint64_t off, struct err *e)
{
	struct qcow2 *q = qcow2_of(d);
	pthread_mutex_lock(&q->lock);
	int r = for_each_chunk(q, iov, n, off, block_iov_len(iov, n), write_chunk, e);
	pthread_mutex_unlock(&q->lock);
	return r;
}

/* Write-back under the lock; the last fdatasync, which covers the data of every write done
 * before this flush began, without it. */
static int qcow2_flush(struct block_dev *d, struct err *e)
{
	struct qcow2 *q = qcow2_of(d);
	pthread_mutex_lock(&q->lock);
	int r = qcow2_writeback(q, e);
	pthread_mutex_unlock(&q->lock);
	return r < 0 ? -1 : qcow2_sync(q, e);
}

/* Discard and write-zeroes: whole clusters change their L2 entry; partial ones are written
 * with zeroes (write-zeroes) or left alone (discard, a hint). */
enum zmode { Z_DISCARD, Z_ZERO_UNMAP, Z_ZERO_KEEP };

static int zero_range(struct qcow2 *q, uint64_t off, uint64_t len, enum zmode mode, struct err *e)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t vaddr = off + done, co = vaddr & (q->cs - 1);
		uint64_t chunk = q->cs - co < len - done ? q->cs - co : len - done;
		done += chunk;
		bool whole = co == 0 && (chunk == q->cs || vaddr + chunk == q->dev.size);
		if (q->npending >= QCOW2_MAX_PENDING_FREES && qcow2_writeback(q, e) < 0)
			return -1;
		wait_unclaimed(q, vaddr); /* else a claimed write's merged old content would land after */
		struct qcow2_l2 *l2;
		unsigned i;
		uint64_t entry, host;
		enum cluster_kind kind;
		if (lookup(q, vaddr, false, &l2, &i, &entry, &kind, &host, e) < 0)
			return -1;
		if (kind == C_ZERO || (kind == C_UNALLOC && !q->backing_name))
			continue; /* reads as zeroes already */
		if (!whole) {
			if (mode == Z_DISCARD)
				continue;
			struct iovec v = {q->zbuf, chunk};
			if (for_each_chunk(q, &v, 1, vaddr, chunk, write_chunk, e) < 0)
				return -1;
			continue;
		}
		if (!l2 && l2_get(q, vaddr, true, &l2, &i, e) < 0)
			return -1;
		uint64_t now;
		if (mode == Z_ZERO_KEEP && kind == C_NORMAL && (entry & QCOW2_OFLAG_COPIED)) {
			now = host | QCOW2_OFLAG_COPIED | QCOW2_OFLAG_ZERO;
		} else {
			if (pend_free(q, entry, vaddr, e) < 0)
				return -1;
			/* Without a backing file an unallocated cluster reads as zeroes too. */
			now = mode == Z_DISCARD && !q->backing_name ? 0 : QCOW2_OFLAG_ZERO;
		}
		l2->t[i] = now;
		l2->dirty = true;
	}
	return 0;
}

static int zero_locked(struct block_dev *d, uint64_t off, uint64_t len, enum zmode mode, struct err *e)
{
	struct qcow2 *q = qcow2_of(d);
	pthread_mutex_lock(&q->lock);
	int r = zero_range(q, off, len, mode, e);
	pthread_mutex_unlock(&q->lock);
	return r;
}

static int qcow2_discard(struct block_dev *d, uint64_t off, uint64_t len, struct err *e)
{
	return zero_locked(d, off, len, Z_DISCARD, e);
}

static int qcow2_write_zeroes(struct block_dev *d, uint64_t off, uint64_t len, bool may_unmap, struct err *e)
{
	return zero_locked(d, off, len, may_unmap ? Z_ZERO_UNMAP : Z_ZERO_KEEP, e);
}

static void qcow2_close(struct block_dev *d)
{
	struct qcow2 *q = qcow2_of(d);
	if (!d->read_only) {
		struct err e;
		(void)qcow2_flush(d, &e); /* nothing more can be done about a failure here */
	}
	close(q->fd);
	pthread_cond_destroy(&q->alloc_done);
	pthread_cond_destroy(&q->io_idle);
	pthread_mutex_destroy(&q->io_lock);
	pthread_mutex_destroy(&q->lock);
	qcow2_free(q);
	free(q);
}

static const struct block_ops qcow2_ops = {
	.format = "qcow2",
	.concurrent = true,
	.readv = qcow2_readv,
	.writev = qcow2_writev,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.close = qcow2_close,
};

/* How many L2 tables to keep: those that map the whole disk, within the cache's bounds. */
static unsigned l2_cache_slots(const struct qcow2 *q)
{
	uint64_t per_table = q->cs * (q->cs / 8); /* guest bytes one table maps */
	uint64_t n = (q->dev.size + per_table - 1) / per_table;
	uint64_t most = (q->dev.read_only ? QCOW2_L2_CACHE_RO_BYTES : QCOW2_L2_CACHE_MAX_BYTES) / q->cs;
	most = most < QCOW2_L2_CACHE_MAX_SLOTS ? most : QCOW2_L2_CACHE_MAX_SLOTS;
	most = most > QCOW2_L2_CACHE_MIN ? most : QCOW2_L2_CACHE_MIN;
	return (unsigned)(n < QCOW2_L2_CACHE_MIN ? QCOW2_L2_CACHE_MIN : n > most ? most : n);
}

int qcow2_open(struct block_dev **out, int fd, const char *path, unsigned flags, struct block_chain *chain,
	       struct err *e)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	if (!q)
		return err_set(e, "out of memory opening '%s'", path);
	pthread_mutex_init(&q->lock, NULL);
	pthread_mutex_init(&q->io_lock, NULL);
	pthread_cond_init(&q->io_idle, NULL);
	pthread_cond_init(&q->alloc_done, NULL);
	for (int s = 0; s < QCOW2_MAX_CLAIMS; s++)
		q->claims[s].first = UINT64_MAX;
	q->fd = fd;
	q->dev.fd = fd;
	q->dev.ops = &qcow2_ops;
	q->dev.read_only = flags & BLOCK_OPEN_RDONLY;
	q->dev.path = strdup(path);
	if (!q->dev.path || qcow2_load(q, path, flags, chain, e) < 0)
		goto fail;
	q->dev.discard_unit = (uint32_t)q->cs;
	q->dev.cluster_size = q->cs;
	q->l2c_n = l2_cache_slots(q);
	q->l2c = calloc(q->l2c_n, sizeof(*q->l2c));
	q->pending = calloc(2 * QCOW2_MAX_PENDING_FREES, sizeof(uint64_t));
	q->cbuf = malloc(q->cs);
	q->tmp = malloc(q->cs);
	q->wbuf = malloc(q->cs);
	q->zbuf = calloc(1, q->cs);
	if (!q->l2c || !q->pending || !q->cbuf || !q->tmp || !q->wbuf || !q->zbuf)
		goto oom;
	if ((q->incompat & QCOW2_INCOMPAT_DIRTY) && !q->dev.read_only) {
		struct err re;
		if (qcow2_rebuild_refcounts(q, &re) < 0) {
			err_set(e,
				"qcow2 image '%s' has its dirty bit set and its refcounts could not be rebuilt (%s); "
				"repair it: shoji-img check -r all",
				path, re.msg);
			goto fail;
		}
		q->rebuilt = true;
	}
	*out = &q->dev;
	return 0;
oom:
	err_set(e, "out of memory opening '%s'", path);
fail:
	pthread_cond_destroy(&q->alloc_done);
	pthread_cond_destroy(&q->io_idle);
	pthread_mutex_destroy(&q->io_lock);
	pthread_mutex_destroy(&q->lock);
	qcow2_free(q);
	free(q);
	return -1;
}

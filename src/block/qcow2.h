/* qcow2: the qcow2 backend's state, shared by its files: qcow2_open.c (header validation),
 * qcow2.c (guest I/O: lookup, allocation, copy-on-write, write-back), qcow2_refcount.c
 * (refcounts and cluster allocation), qcow2_create.c, qcow2_check.c. See qcow2.c for the
 * write ordering that keeps an image consistent when the process is killed at any moment. */
#ifndef SHOJI_VMM_BLOCK_QCOW2_H
#define SHOJI_VMM_BLOCK_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block.h"
#include "qcow2_format.h"

/* L2 tables kept in memory: enough to map the whole disk (as QEMU sizes its cache), at least
 * QCOW2_L2_CACHE_MIN and at most 512 tables or 16 MiB for a writable image, 2 MiB for a
 * read-only one (a backing file: only what the image above it lacks is looked up there); a
 * slot's table is allocated when first used, so a disk that is small or little used costs
 * little. A chain of BLOCK_MAX_CHAIN images holds at most 16 + 15 x 2 = 46 MiB of tables
 * (shojid's memory.max counts that for each disk: CGROUP_DISK_MIB). */
#define QCOW2_L2_CACHE_MAX_BYTES (16u << 20)
#define QCOW2_L2_CACHE_RO_BYTES  (2u << 20)
#define QCOW2_L2_CACHE_MAX_SLOTS 512u
#define QCOW2_L2_CACHE_MIN       4u
#define QCOW2_RB_CACHE           8 /* refcount blocks kept in memory */
#define QCOW2_MAX_PENDING_FREES  1024
#define QCOW2_MAX_CLAIMS         16 /* allocating writes whose data moves side by side */

struct qcow2_l2 {
	uint64_t offset; /* 0: slot empty */
	uint64_t *t;     /* host byte order */
	uint64_t used;   /* LRU stamp */
	bool dirty;
};

struct qcow2_rb {
	uint64_t offset;
	uint8_t *b; /* on-disk bytes (big-endian 16-bit counts) */
	uint64_t used;
};

/* A sorted set of cluster offsets. */
struct qcow2_set {
	uint64_t *v;
	size_t n, cap;
};

struct qcow2 {
	struct block_dev dev;
	int fd;
	/* Requests run side by side (block_ops.concurrent): each holds the lock while it reads or
	 * changes metadata, and releases it only to move guest data to or from a cluster it found
	 * owned and in use, or into new clusters it has claimed (qcow2.c: data_io). A cluster is
	 * freed only once no such transfer is in flight. */
	pthread_mutex_t lock;
	pthread_mutex_t io_lock; /* io_inflight and io_idle: a waiter keeps `lock` while it waits */
	pthread_cond_t io_idle;  /* io_inflight fell to 0 */
	unsigned io_inflight;    /* transfers running without `lock` */
	/* Guest clusters being given new host clusters while their data is written without
	 * `lock` (qcow2.c: claim): a write, write-zeroes or discard of one of them waits on
	 * alloc_done until the new L2 entries are set. Slots free: first == UINT64_MAX. */
	struct {
		uint64_t first, n; /* guest cluster numbers */
	} claims[QCOW2_MAX_CLAIMS];
	pthread_cond_t alloc_done; /* a claim was released (waited on with `lock`) */
	/* dev.backing: NULL when none, or not opened (BLOCK_OPEN_SKIP_BACKING) */

	/* From the header. */
	uint32_t version, header_length;
	unsigned cluster_bits;
	uint64_t cs;               /* cluster size */
	unsigned l2_bits, rb_bits; /* entries per L2 table and per refcount block, as powers of 2 */
	uint64_t incompat, compat, autoclear;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	char *backing_name, *backing_format; /* NULL when absent */

	uint64_t *l1; /* host byte order */
	uint32_t l1_size;
	uint64_t l1_offset;
	bool l1_dirty;

	uint64_t *rt; /* refcount table, host byte order */
	uint64_t rt_entries, rt_offset;
	uint32_t rt_clusters;

	/* Where the refcount blocks and L2 tables are, so that no entry can point a data cluster
	 * or a table at them. */
	struct qcow2_set refblocks, l2tables;

	uint64_t file_size; /* bytes: the file's size, or further once written there */
	uint64_t free_hint; /* no free cluster below this one */

	struct qcow2_l2 *l2c;
	unsigned l2c_n;
	struct qcow2_rb rbc[QCOW2_RB_CACHE];
	uint64_t clock;

	uint64_t *pending; /* host ranges (offset, length pairs) to free once the L2 tables are written */
	unsigned npending;

	uint8_t *cbuf;       /* the last decompressed cluster */
	uint64_t cbuf_entry; /* its L2 entry (0: none) */
	uint8_t *tmp;        /* one cluster of scratch (table encoding, new refcount blocks) */
	uint8_t *wbuf;       /* one cluster: a partial write into a preallocated zero cluster */
	uint8_t *zbuf;       /* one cluster of zeroes */
	bool rebuilt;        /* the refcounts were rebuilt when the image was opened (dirty bit) */
};

static inline struct qcow2 *qcow2_of(struct block_dev *d)
{
	return (struct qcow2 *)d;
}

/* qcow2_open.c: a header and its extensions, parsed and checked. */
int qcow2_load(struct qcow2 *q, const char *path, unsigned flags, struct block_chain *chain, struct err *e);
void qcow2_free(struct qcow2 *q);
/* Whether [off, off+len) overlaps cluster 0, the L1 table or the refcount table. */
bool qcow2_overlaps_fixed(const struct qcow2 *q, uint64_t off, uint64_t len);
/* Whether [off, off+len) overlaps those, a refcount block or an L2 table. */
bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len);
int qcow2_set_add(struct qcow2_set *s, uint64_t off, struct err *e);
bool qcow2_set_has(const struct qcow2_set *s, uint64_t off);

/* qcow2_refcount.c */
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint16_t *out, struct err *e);
int qcow2_refcount_set(struct qcow2 *q, uint64_t cluster, uint16_t v, struct err *e);
/* Allocates one cluster (refcount 1, written before returning); returns its offset. */
int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *off, struct err *e);
/* Takes up to max free clusters that directly follow the cluster at `first` (just allocated)
 * inside its refcount block: refcounts 1, written with one write; *got: how many. */
int qcow2_alloc_following(struct qcow2 *q, uint64_t first, uint64_t max, uint64_t *got, struct err *e);
/* Drops one reference to each cluster of [off, off+len). */
int qcow2_free_range(struct qcow2 *q, uint64_t off, uint64_t len, struct err *e);
int qcow2_sync(struct qcow2 *q, struct err *e);

/* qcow2.c: writes back dirty L2 tables, then the L1 table, then pending frees. */
int qcow2_writeback(struct qcow2 *q, struct err *e);
int qcow2_l2_load(struct qcow2 *q, uint64_t offset, struct qcow2_l2 **out, struct err *e);
/* The host range [off, off+csize) a compressed L2 entry points at. */
void qcow2_compressed_range(const struct qcow2 *q, uint64_t entry, uint64_t *off, uint64_t *len);

/* Whether the image itself decides the content of the cluster holding guest offset vaddr
 * (data, compressed or zero), rather than its backing file. */
int qcow2_allocates(struct qcow2 *q, uint64_t vaddr, bool *out, struct err *e);

/* qcow2_create.c */
struct qcow2_create_opts {
	uint64_t size;
	unsigned cluster_bits;                /* 0: 16 (64 KiB) */
	const char *backing, *backing_format; /* may be NULL */
	bool scratch;                         /* a volatile layer's: not synced */
};
int qcow2_create(const char *path, const struct qcow2_create_opts *o, struct err *e);
/* The same into an open, empty file (o->size given; the backing file is not looked at). */
int qcow2_create_fd(int fd, const char *label, const struct qcow2_create_opts *o, struct err *e);

/* qcow2_check.c */
struct qcow2_check_result {
	uint64_t corruptions, leaks, leaks_fixed, corruptions_fixed, clusters, allocated;
	bool rebuilt; /* the image had the dirty bit: its refcounts were rebuilt first */
	char first_problem[256];
};
enum { QCOW2_REPAIR_NONE, QCOW2_REPAIR_LEAKS, QCOW2_REPAIR_ALL };
/* repair: QCOW2_REPAIR_LEAKS lowers counts above the references (leaked clusters become
 * free); QCOW2_REPAIR_ALL also rebuilds the refcounts when some are below the references. */
int qcow2_check(const char *path, int repair, struct qcow2_check_result *r, struct err *e);
/* Every cluster's references counted from the header, L1 and L2 tables (and the refcount
 * structures when with_refcounts) into *refs (n clusters: the file's); problems go into r. */
int qcow2_count_refs(struct qcow2 *q, bool with_refcounts, uint16_t **refs, uint64_t *n, struct qcow2_check_result *r,
		     struct err *e);

/* qcow2_rebuild.c: new refcount table and blocks written past the end of the file from the
 * references the tables hold, then named in the header; the dirty bit is cleared. The old
 * structures become free clusters. */
int qcow2_rebuild_refcounts(struct qcow2 *q, struct err *e);

#endif

/* qcow2_rebuild: rebuilding an image's refcounts from its tables, as QEMU does when it opens
 * an image whose dirty bit is set (lazy refcounts: the counts on disk may be stale) and for
 * `check -r all`. The references are counted from the header, L1 and L2 tables; a new refcount
 * table and new refcount blocks covering the whole file are written after its end (counting
 * themselves), synced, named in the header, synced, and only then is the dirty bit cleared.
 * A crash midway leaves the old structures in force and the dirty bit set, so the next open
 * rebuilds again. The old table and blocks are not referenced any more: they become free. */
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

/* The clusters of table and the refcount blocks that, placed from cluster start, count every
 * cluster below their own end. */
static void rebuilt_size(const struct qcow2 *q, uint64_t start, uint64_t *tclusters, uint64_t *nrb)
{
	uint64_t per_rb = 1ull << q->rb_bits;
	*tclusters = *nrb = 1;
	for (;;) {
		uint64_t end = start + *tclusters + *nrb;
		uint64_t want_rb = (end + per_rb - 1) / per_rb, want_t = (want_rb * 8 + q->cs - 1) / q->cs;
		if (want_rb == *nrb && want_t == *tclusters)
			return;
		*nrb = want_rb;
		*tclusters = want_t;
	}
}

/* The rebuilt table (rt, now written and synced, taken over) and its blocks become the image's;
 * the dirty bit is gone and the refcount caches forget what they held. */
static int install_rebuilt(struct qcow2 *q, uint64_t *rt, uint64_t start, uint64_t tclusters, uint64_t nrb,
			   struct err *e)
{
	uint64_t end = start + tclusters + nrb;
	free(q->rt);
	q->rt = rt;
	q->rt_entries = tclusters * q->cs / 8;
	q->rt_offset = start * q->cs;
	q->rt_clusters = (uint32_t)tclusters;
	q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
	q->refblocks.n = 0;
	for (uint64_t k = 0; k < nrb; k++)
		if (qcow2_set_add(&q->refblocks, q->rt[k], e) < 0)
			return -1;
	for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
		q->rbc[i].offset = 0;
	q->free_hint = 0;
	if (end * q->cs > q->file_size)
		q->file_size = end * q->cs;
	return 0;
}

int qcow2_rebuild_refcounts(struct qcow2 *q, struct err *e)
{
	if (q->nb_snapshots)
		return err_set(e, "qcow2 image '%s' has internal snapshots, whose refcounts shoji cannot rebuild",
			       q->dev.path);
	struct qcow2_check_result r = {0};
	uint16_t *refs;
	uint64_t n;
	if (qcow2_count_refs(q, false, &refs, &n, &r, e) < 0)
		return -1;
	if (r.corruptions) {
		free(refs);
		return err_set(e, "qcow2 image '%s': cannot rebuild its refcounts: %s", q->dev.path, r.first_problem);
	}
	/* The new structures at [start, end): tclusters of table, then nrb blocks covering every
	 * cluster below end. */
	uint64_t start = n, tclusters, nrb;
	rebuilt_size(q, start, &tclusters, &nrb);
	uint64_t end = start + tclusters + nrb;
	uint64_t bytes = (tclusters + nrb) * q->cs;
	uint64_t *rt = calloc(tclusters * q->cs / 8, 8);
	uint8_t *buf = calloc(1, bytes);
	int rc = -1;
	if (tclusters * q->cs > QCOW2_MAX_RT_BYTES) {
		err_set(e, "qcow2 image '%s' is too big to rebuild its refcounts", q->dev.path);
		goto out;
	}
	if (!rt || !buf) {
		err_set(e, "out of memory rebuilding the refcounts of '%s'", q->dev.path);
		goto out;
	}
	uint8_t *blocks = buf + tclusters * q->cs;
	for (uint64_t c = 0; c < end; c++) {
		uint16_t v = c < n ? refs[c] : 1; /* the new structures count once */
		qcow2_put16(blocks + c * 2, v);   /* block k covers clusters k*per_rb.. : contiguous */
	}
	for (uint64_t k = 0; k < nrb; k++) {
		rt[k] = (start + tclusters + k) * q->cs;
		qcow2_put64(buf + k * 8, rt[k]);
	}
	uint8_t hdr[12];
	qcow2_put64(hdr, start * q->cs);
	qcow2_put32(hdr + 8, (uint32_t)tclusters);
	uint8_t inc[8];
	qcow2_put64(inc, q->incompat & ~QCOW2_INCOMPAT_DIRTY);
	if (block_fd_pwrite(q->fd, buf, bytes, start * q->cs, q->dev.path, e) < 0 || qcow2_sync(q, e) < 0 ||
	    block_fd_pwrite(q->fd, hdr, sizeof(hdr), QH_RT_OFFSET, q->dev.path, e) < 0 || qcow2_sync(q, e) < 0 ||
	    block_fd_pwrite(q->fd, inc, sizeof(inc), QH_INCOMPAT, q->dev.path, e) < 0 || qcow2_sync(q, e) < 0)
		goto out;
	rc = install_rebuilt(q, rt, start, tclusters, nrb, e);
	rt = NULL;
out:
	free(rt);
	free(buf);
	free(refs);
	return rc;
}

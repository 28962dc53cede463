/* qcow2_refcount: 16-bit refcounts (refcount_order 4), cluster allocation and freeing, and
 * growing the refcount structures as the image grows. Refcount changes are written through at
 * once (the blocks kept in memory are never dirty), so a refcount always reaches the file
 * before any L2 or L1 entry that relies on it (see the ordering in qcow2.c). */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qcow2.h"

int qcow2_sync(struct qcow2 *q, struct err *e)
{
	return block_sync(&q->dev, e);
}

static void grow_file_size(struct qcow2 *q, uint64_t end)
{
	if (end > q->file_size)
		q->file_size = end;
}

/* The refcount block at `off`, read into the cache when missing. */
static int rb_load(struct qcow2 *q, uint64_t off, struct qcow2_rb **out, struct err *e)
{
	struct qcow2_rb *victim = &q->rbc[0];
	for (unsigned i = 0; i < QCOW2_RB_CACHE; i++) {
		if (q->rbc[i].offset == off && q->rbc[i].b) {
			q->rbc[i].used = ++q->clock;
			*out = &q->rbc[i];
			return 0;
		}
		if (q->rbc[i].used < victim->used)
			victim = &q->rbc[i];
	}
	if (!victim->b && !(victim->b = malloc(q->cs)))
		return err_set(e, "out of memory");
	victim->offset = 0;
	if (block_fd_pread(q->fd, victim->b, q->cs, off, q->dev.path, e) < 0)
		return -1;
	victim->offset = off;
	victim->used = ++q->clock;
	*out = victim;
	return 0;
}

static void rb_forget(struct qcow2 *q, uint64_t off)
{
	for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
		if (q->rbc[i].offset == off)
			q->rbc[i].offset = 0;
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint16_t *out, struct err *e)
{
	uint64_t idx = cluster >> q->rb_bits;
	*out = 0;
	if (idx >= q->rt_entries || !q->rt[idx])
		return 0;
	struct qcow2_rb *rb;
	if (rb_load(q, q->rt[idx], &rb, e) < 0)
		return -1;
	*out = qcow2_be16(rb->b + (cluster & ((1ull << q->rb_bits) - 1)) * 2);
	return 0;
}

/* Writes one refcount table entry (its block's content must already be in the file). */
static int rt_store(struct qcow2 *q, uint64_t idx, uint64_t off, struct err *e)
{
	uint8_t b[8];
	qcow2_put64(b, off);
	if (block_fd_pwrite(q->fd, b, 8, q->rt_offset + idx * 8, q->dev.path, e) < 0)
		return -1;
	q->rt[idx] = off;
	return 0;
}

/* Where a grown refcount table goes: its first cluster (past the current table's reach and the
 * file's end), its entries and clusters, and the refcount blocks that count the new table and
 * themselves (placed right after it). */
struct rt_plan {
	uint64_t start, entries, tclusters, nrb;
};

static struct rt_plan rt_grow_plan(const struct qcow2 *q, uint64_t need)
{
	uint64_t per_rb = 1ull << q->rb_bits;
	struct rt_plan p = {.start = q->rt_entries << q->rb_bits, .entries = q->rt_entries * 2};
	if (p.start < q->file_size / q->cs)
		p.start = (q->file_size + q->cs - 1) / q->cs;
	for (;;) { /* table clusters and block count until they agree */
		if (p.entries <= (need >> q->rb_bits))
			p.entries = (need >> q->rb_bits) + 1;
		p.tclusters = (p.entries * 8 + q->cs - 1) / q->cs;
		p.entries = p.tclusters * q->cs / 8;
		uint64_t end = p.start + p.tclusters + p.nrb; /* first cluster past the new structures */
		uint64_t first = p.start / per_rb, last = (end - 1) / per_rb;
		uint64_t want = last - first + 1;
		if (want == p.nrb && last < p.entries)
			return p;
		p.nrb = want;
		if (last >= p.entries)
			p.entries = last + 1;
	}
}

/* The plan's new refcount blocks written (buf: a cluster's room): refcount 1 for the new
 * table and for themselves. */
static int rt_write_new_blocks(struct qcow2 *q, const struct rt_plan *p, uint8_t *buf, struct err *e)
{
	uint64_t per_rb = 1ull << q->rb_bits, first_rb = p->start / per_rb, end = p->start + p->tclusters + p->nrb;
	for (uint64_t k = 0; k < p->nrb; k++) {
		memset(buf, 0, q->cs);
		uint64_t base = (first_rb + k) * per_rb;
		for (uint64_t c = p->start; c < end; c++)
			if (c >= base && c < base + per_rb)
				qcow2_put16(buf + (c - base) * 2, 1);
		if (first_rb + k < q->rt_entries && q->rt[first_rb + k])
			return err_set(e, "qcow2 image '%s': refcount structures overlap while growing", q->dev.path);
		if (block_fd_pwrite(q->fd, buf, q->cs, (p->start + p->tclusters + k) * q->cs, q->dev.path, e) < 0)
			return -1;
	}
	return 0;
}

/* Replaces the refcount table by a bigger one covering at least cluster `need`, placed with
 * its own refcount blocks at the first clusters past the current table's reach:
 * new blocks, new table, sync, header, sync, then the old table's clusters are freed. */
static int rt_grow(struct qcow2 *q, uint64_t need, struct err *e)
{
	struct rt_plan p = rt_grow_plan(q, need);
	if (p.tclusters * q->cs > QCOW2_MAX_RT_BYTES)
		return err_set(e, "qcow2 image '%s' cannot grow further: its refcount table is at its limit",
			       q->dev.path);
	uint64_t end = p.start + p.tclusters + p.nrb, first_rb = p.start >> q->rb_bits;
	uint8_t *buf = calloc(1, p.tclusters * q->cs > q->cs ? p.tclusters * q->cs : q->cs);
	uint64_t *rt = calloc(p.entries, 8);
	int rc = -1;
	if (!buf || !rt) {
		err_set(e, "out of memory growing the refcount table of '%s'", q->dev.path);
		goto out;
	}
	if (rt_write_new_blocks(q, &p, buf, e) < 0)
		goto out;
	memcpy(rt, q->rt, q->rt_entries * 8);
	for (uint64_t k = 0; k < p.nrb; k++) {
		rt[first_rb + k] = (p.start + p.tclusters + k) * q->cs;
		if (qcow2_set_add(&q->refblocks, rt[first_rb + k], e) < 0)
			goto out;
	}
	memset(buf, 0, p.tclusters * q->cs);
	for (uint64_t i = 0; i < p.entries; i++)
		qcow2_put64(buf + i * 8, rt[i]);
	uint8_t hdr[12];
	qcow2_put64(hdr, p.start * q->cs);
	qcow2_put32(hdr + 8, (uint32_t)p.tclusters);
	if (block_fd_pwrite(q->fd, buf, p.tclusters * q->cs, p.start * q->cs, q->dev.path, e) < 0 ||
	    qcow2_sync(q, e) < 0 || block_fd_pwrite(q->fd, hdr, sizeof(hdr), QH_RT_OFFSET, q->dev.path, e) < 0 ||
	    qcow2_sync(q, e) < 0)
		goto out;
	grow_file_size(q, end * q->cs);
	uint64_t old_off = q->rt_offset, old_clusters = q->rt_clusters;
	free(q->rt);
	q->rt = rt;
	rt = NULL;
	q->rt_entries = p.entries;
	q->rt_offset = p.start * q->cs;
	q->rt_clusters = (uint32_t)p.tclusters;
	rc = qcow2_free_range(q, old_off, old_clusters * q->cs, e);
out:
	free(rt);
	free(buf);
	return rc;
}

int qcow2_refcount_set(struct qcow2 *q, uint64_t cluster, uint16_t v, struct err *e)
{
	uint64_t idx = cluster >> q->rb_bits;
	if (idx >= q->rt_entries || !q->rt[idx])
		return err_set(e, "qcow2 image '%s': cluster %llu has no refcount block", q->dev.path,
			       (unsigned long long)cluster);
	struct qcow2_rb *rb;
	if (rb_load(q, q->rt[idx], &rb, e) < 0)
		return -1;
	uint64_t at = (cluster & ((1ull << q->rb_bits) - 1)) * 2;
	qcow2_put16(rb->b + at, v);
	return block_fd_pwrite(q->fd, rb->b + at, 2, rb->offset + at, q->dev.path, e);
}

/* Makes cluster c (free, without a refcount block) a new refcount block covering itself. */
static int rb_create_at(struct qcow2 *q, uint64_t c, struct err *e)
{
	uint64_t idx = c >> q->rb_bits;
	memset(q->tmp, 0, q->cs);
	qcow2_put16(q->tmp + (c & ((1ull << q->rb_bits) - 1)) * 2, 1);
	rb_forget(q, c * q->cs);
	if (qcow2_set_add(&q->refblocks, c * q->cs, e) < 0 ||
	    block_fd_pwrite(q->fd, q->tmp, q->cs, c * q->cs, q->dev.path, e) < 0 || qcow2_sync(q, e) < 0 ||
	    rt_store(q, idx, c * q->cs, e) < 0)
		return -1;
	grow_file_size(q, (c + 1) * q->cs);
	return 0;
}

int qcow2_alloc_cluster(struct qcow2 *q, uint64_t *off, struct err *e)
{
	for (uint64_t c = q->free_hint > 0 ? q->free_hint : 1;; c++) {
		uint64_t idx = c >> q->rb_bits;
		if (idx >= q->rt_entries) {
			if (rt_grow(q, c, e) < 0)
				return -1;
			continue; /* c may now hold the new table: look again */
		}
		if (!q->rt[idx]) {
			if (rb_create_at(q, c, e) < 0)
				return -1;
			continue;
		}
		/* Past the end of the file nothing is stored: a count there is a leak (a crash
		 * between raising it and writing the cluster), and the cluster is free to take.
		 * Inside it, skip the used clusters of this refcount block in one pass. */
		uint64_t file_end = (q->file_size + q->cs - 1) / q->cs;
		if (c < file_end) {
			struct qcow2_rb *rb;
			if (rb_load(q, q->rt[idx], &rb, e) < 0)
				return -1;
			uint64_t mask = (1ull << q->rb_bits) - 1, stop = (c | mask) + 1;
			if (stop > file_end)
				stop = file_end;
			while (c < stop && (rb->b[(c & mask) * 2] | rb->b[(c & mask) * 2 + 1]))
				c++;
			if (c == stop) {
				c--; /* all used: the loop's c++ moves on, and its block is looked up again */
				continue;
			}
		}
		if (qcow2_overlaps_fixed(q, c * q->cs, q->cs))
			continue;
		if (qcow2_refcount_set(q, c, 1, e) < 0)
			return -1;
		q->free_hint = c + 1;
		grow_file_size(q, (c + 1) * q->cs);
		*off = c * q->cs;
		return 0;
	}
}

int qcow2_alloc_following(struct qcow2 *q, uint64_t first, uint64_t max, uint64_t *got, struct err *e)
{
	uint64_t c0 = first / q->cs + 1, idx = c0 >> q->rb_bits, mask = (1ull << q->rb_bits) - 1;
	*got = 0;
	if (idx >= q->rt_entries || !q->rt[idx])
		return 0;
	struct qcow2_rb *rb;
	if (rb_load(q, q->rt[idx], &rb, e) < 0)
		return -1;
	uint64_t stop = (c0 | mask) + 1 < c0 + max ? (c0 | mask) + 1 : c0 + max, c = c0;
	while (c < stop && !(rb->b[(c & mask) * 2] | rb->b[(c & mask) * 2 + 1]) &&
	       !qcow2_overlaps_fixed(q, c * q->cs, q->cs))
		c++;
	if (c == c0)
		return 0;
	for (uint64_t k = c0; k < c; k++)
		qcow2_put16(rb->b + (k & mask) * 2, 1);
	if (block_fd_pwrite(q->fd, rb->b + (c0 & mask) * 2, (c - c0) * 2, rb->offset + (c0 & mask) * 2, q->dev.path,
			    e) < 0) {
		rb_forget(q, rb->offset); /* the cached block may no longer match the file */
		return -1;
	}
	if (q->free_hint < c)
		q->free_hint = c;
	grow_file_size(q, c * q->cs);
	*got = c - c0;
	return 0;
}

int qcow2_free_range(struct qcow2 *q, uint64_t off, uint64_t len, struct err *e)
{
	if (!len)
		return 0;
	for (uint64_t c = off / q->cs; c <= (off + len - 1) / q->cs; c++) {
		uint16_t rc;
		if (qcow2_refcount_get(q, c, &rc, e) < 0)
			return -1;
		if (rc == 0)
			return err_set(e, "qcow2 image '%s': freeing cluster %llu whose refcount is already 0",
				       q->dev.path, (unsigned long long)c);
		if (qcow2_refcount_set(q, c, (uint16_t)(rc - 1), e) < 0)
			return -1;
		if (rc == 1) {
			if (c < q->free_hint)
				q->free_hint = c;
			(void)!fallocate(q->fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (off_t)(c * q->cs),
					 (off_t)q->cs);
		}
	}
	return 0;
}

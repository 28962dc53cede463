/* qcow2_check: recomputes every cluster's reference count from the metadata (header, L1 and
 * L2 tables, refcount table and blocks, data and compressed clusters) and compares it with
 * the stored one: a stored count below the computed one is a corruption, above it a leak.
 * Also counted as corruptions: offsets that are misaligned or past the end of the file, and
 * OFLAG_COPIED flags that disagree with a refcount of 1. Leaks can be repaired, and refcounts
 * that are too low by rebuilding every refcount (qcow2_rebuild.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"

struct ck {
	struct qcow2 *q;
	struct qcow2_check_result *r;
	uint16_t *refs;
	uint64_t n; /* clusters in refs */
};

static void problem(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct ck *c, const char *fmt, ...)
{
	c->r->corruptions++;
	if (c->r->first_problem[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->r->first_problem, sizeof(c->r->first_problem), fmt, ap);
	va_end(ap);
}

/* Counts one reference to each cluster of [off, off+len). */
static void ref(struct ck *c, uint64_t off, uint64_t len, const char *what)
{
	if (!len)
		return;
	uint64_t first = off >> c->q->cluster_bits, last = (off + len - 1) >> c->q->cluster_bits;
	if (last >= c->n || off + len < off) {
		problem(c, "%s at offset %llu lies past the end of the file", what, (unsigned long long)off);
		return;
	}
	for (uint64_t k = first; k <= last; k++)
		if (c->refs[k] < UINT16_MAX)
			c->refs[k]++;
}

static int walk_l2(struct ck *c, uint64_t l2off, struct err *e)
{
	struct qcow2 *q = c->q;
	struct qcow2_l2 *l2;
	if (qcow2_l2_load(q, l2off, &l2, e) < 0)
		return -1;
	for (uint64_t i = 0; i < (1ull << q->l2_bits); i++) {
		uint64_t entry = l2->t[i];
		if (entry & QCOW2_OFLAG_COMPRESSED) {
			uint64_t off, len;
			qcow2_compressed_range(q, entry, &off, &len);
			ref(c, off, len, "a compressed cluster");
			continue;
		}
		uint64_t host = entry & QCOW2_OFFSET_MASK;
		if (entry & QCOW2_L2_RESERVED)
			problem(c, "L2 entry %llu of the table at %llu has reserved bits set", (unsigned long long)i,
				(unsigned long long)l2off);
		if (!host)
			continue;
		if (host & (q->cs - 1)) {
			problem(c, "data cluster offset %llu is not cluster aligned", (unsigned long long)host);
			continue;
		}
		ref(c, host, q->cs, "a data cluster");
	}
	return 0;
}

/* The COPIED flag of an entry must say whether the cluster's refcount is exactly 1. */
static int check_copied(struct ck *c, uint64_t entry, uint64_t host, const char *what, struct err *e)
{
	uint16_t rc;
	if (qcow2_refcount_get(c->q, host >> c->q->cluster_bits, &rc, e) < 0)
		return -1;
	if (((entry & QCOW2_OFLAG_COPIED) != 0) != (rc == 1))
		problem(c, "OFLAG_COPIED on %s at %llu disagrees with its refcount %u", what, (unsigned long long)host,
			rc);
	return 0;
}

static int check_all_copied(struct ck *c, struct err *e)
{
	struct qcow2 *q = c->q;
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off || (l2off & (q->cs - 1)) || (l2off >> q->cluster_bits) >= c->n)
			continue;
		if (check_copied(c, q->l1[i], l2off, "an L2 table", e) < 0)
			return -1;
		struct qcow2_l2 *l2;
		if (qcow2_l2_load(q, l2off, &l2, e) < 0)
			return -1;
		for (uint64_t k = 0; k < (1ull << q->l2_bits); k++) {
			uint64_t entry = l2->t[k], host = entry & QCOW2_OFFSET_MASK;
			if ((entry & QCOW2_OFLAG_COMPRESSED) || !host || (host & (q->cs - 1)) ||
			    (host >> q->cluster_bits) >= c->n)
				continue;
			if (check_copied(c, entry, host, "a data cluster", e) < 0)
				return -1;
		}
	}
	return 0;
}

static int compare_one(struct ck *c, uint64_t k, bool repair, struct err *e)
{
	uint16_t rc, want = k < c->n ? c->refs[k] : 0;
	if (qcow2_refcount_get(c->q, k, &rc, e) < 0)
		return -1;
	if (want)
		c->r->allocated++;
	if (rc == want)
		return 0;
	if (rc < want) {
		problem(c, "cluster %llu has refcount %u but %u references", (unsigned long long)k, rc, want);
		return 0;
	}
	c->r->leaks++;
	if (repair) {
		if (qcow2_refcount_set(c->q, k, want, e) < 0)
			return -1;
		c->r->leaks_fixed++;
	}
	return 0;
}

/* Every cluster of the file. Counts past its end are ignored, as qemu-img check does: nothing
 * can be stored there, and the allocator reuses such clusters. */
static int compare(struct ck *c, bool repair, struct err *e)
{
	for (uint64_t k = 0; k < c->n; k++)
		if (compare_one(c, k, repair, e) < 0)
			return -1;
	return 0;
}

int qcow2_count_refs(struct qcow2 *q, bool with_refcounts, uint16_t **refs, uint64_t *n, struct qcow2_check_result *r,
		     struct err *e)
{
	struct ck c = {.q = q, .r = r};
	c.n = (q->file_size + q->cs - 1) >> q->cluster_bits;
	c.refs = calloc(c.n ? c.n : 1, sizeof(uint16_t));
	if (!c.refs)
		return err_set(e, "out of memory checking '%s'", q->dev.path);
	ref(&c, 0, q->cs, "the header");
	ref(&c, q->l1_offset, (uint64_t)q->l1_size * 8, "the L1 table");
	if (with_refcounts) {
		ref(&c, q->rt_offset, (uint64_t)q->rt_clusters * q->cs, "the refcount table");
		for (uint64_t i = 0; i < q->rt_entries; i++)
			if (q->rt[i])
				ref(&c, q->rt[i], q->cs, "a refcount block");
	}
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2off)
			continue;
		if ((l2off & (q->cs - 1)) || l2off > q->file_size - q->cs) {
			problem(&c, "L1 entry %u points at a bad offset %llu", i, (unsigned long long)l2off);
			continue;
		}
		ref(&c, l2off, q->cs, "an L2 table");
		if (walk_l2(&c, l2off, e) < 0) {
			free(c.refs);
			return -1;
		}
	}
	*refs = c.refs;
	*n = c.n;
	return 0;
}

/* One pass: counts, compares, repairs leaks when asked. */
static int check_once(struct qcow2 *q, bool repair_leaks, struct qcow2_check_result *r, struct err *e)
{
	memset(r, 0, sizeof(*r));
	struct ck c = {.q = q, .r = r};
	if (qcow2_count_refs(q, true, &c.refs, &c.n, r, e) < 0)
		return -1;
	r->clusters = c.n;
	int rc = compare(&c, repair_leaks, e) < 0 || check_all_copied(&c, e) < 0 ? -1 : 0;
	if (rc == 0 && repair_leaks && r->leaks_fixed)
		rc = qcow2_sync(q, e);
	free(c.refs);
	return rc;
}

int qcow2_check(const char *path, int repair, struct qcow2_check_result *r, struct err *e)
{
	memset(r, 0, sizeof(*r));
	struct block_dev *d;
	/* Opened writable, an image with the dirty bit has its refcounts rebuilt already. */
	unsigned flags = BLOCK_OPEN_SKIP_BACKING | (repair ? 0 : BLOCK_OPEN_RDONLY);
	if (block_open(&d, path, BLOCK_FORMAT_QCOW2, flags, e) < 0)
		return -1;
	struct qcow2 *q = qcow2_of(d);
	int rc = -1;
	if (q->nb_snapshots) {
		err_set(e, "qcow2 image '%s' has internal snapshots, which shoji-img check does not walk yet", path);
		goto out;
	}
	if (check_once(q, repair != QCOW2_REPAIR_NONE, r, e) < 0)
		goto out;
	r->rebuilt = q->rebuilt;
	if (repair == QCOW2_REPAIR_ALL && r->corruptions) {
		/* Refcounts below the references: rebuild them all from the tables, then look again
		 * (what is still wrong is in the tables themselves). */
		uint64_t found = r->corruptions;
		if (qcow2_rebuild_refcounts(q, e) < 0 || check_once(q, true, r, e) < 0)
			goto out;
		r->rebuilt = true;
		r->corruptions_fixed = found > r->corruptions ? found - r->corruptions : 0;
	}
	rc = 0;
out:
	block_close(d);
	return rc;
}

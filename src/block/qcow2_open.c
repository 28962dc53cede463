/* qcow2_open: reading and checking a qcow2 image's header, header extensions, L1 table and
 * refcount table, and opening its backing file. Everything read is hostile: each field is
 * range-checked before use, and each refusal is one line naming the image and the problem. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"

static const char *const known_incompat[] = {"dirty bit", "corrupt bit", "external data file", "compression type",
					     "extended L2 entries"};

/* Names an incompatible feature bit from the image's feature table, or our own list. */
static void feature_name(const uint8_t *table, uint32_t tlen, unsigned bit, char *out, size_t n)
{
	for (uint32_t i = 0; i + 48 <= tlen; i += 48)
		if (table[i] == 0 && table[i + 1] == bit) {
			snprintf(out, n, "'%.46s'", (const char *)table + i + 2);
			return;
		}
	if (bit < sizeof(known_incompat) / sizeof(known_incompat[0]))
		snprintf(out, n, "'%s'", known_incompat[bit]);
	else
		snprintf(out, n, "bit %u", bit);
}

static int parse_extensions(struct qcow2 *q, const uint8_t *h, uint64_t end, const char *path, const uint8_t **ftable,
			    uint32_t *ftlen, struct err *e)
{
	uint64_t at = q->header_length;
	while (at + 8 <= end) {
		uint32_t type = qcow2_be32(h + at), len = qcow2_be32(h + at + 4);
		at += 8;
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - at)
			return err_set(e, "qcow2 image '%s': header extension 0x%08x runs past the header cluster",
				       path, type);
		const uint8_t *d = h + at;
		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			if (len == 0 || len > 16)
				return err_set(e, "qcow2 image '%s': bad backing format extension", path);
			q->backing_format = strndup((const char *)d, len);
			if (!q->backing_format)
				return err_set(e, "out of memory");
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			*ftable = d;
			*ftlen = len;
			break;
		case QCOW2_EXT_DATA_FILE:
			return err_set(e,
				       "qcow2 image '%s' keeps its data in an external file, which shoji does not "
				       "support (convert it: qemu-img convert -O qcow2)",
				       path);
		case QCOW2_EXT_CRYPTO:
			return err_set(e, "qcow2 image '%s' is encrypted, which shoji does not support", path);
		default: /* bitmaps and unknown extensions: ignored (their autoclear bits are cleared) */ break;
		}
		at += (len + 7) & ~7ull;
	}
	return 0;
}

bool qcow2_overlaps_fixed(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t l1_len = ((uint64_t)q->l1_size * 8 + q->cs - 1) & ~(q->cs - 1);
	uint64_t rt_len = (uint64_t)q->rt_clusters * q->cs;
	return off < q->cs || (off < q->l1_offset + l1_len && q->l1_offset < off + len) ||
		(off < q->rt_offset + rt_len && q->rt_offset < off + len);
}

/* The first index whose value is >= off. */
static size_t set_find(const struct qcow2_set *s, uint64_t off)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid] < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool qcow2_set_has(const struct qcow2_set *s, uint64_t off)
{
	size_t i = set_find(s, off);
	return i < s->n && s->v[i] == off;
}

int qcow2_set_add(struct qcow2_set *s, uint64_t off, struct err *e)
{
	size_t i = set_find(s, off);
	if (i < s->n && s->v[i] == off)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return err_set(e, "out of memory");
		s->v = v;
		s->cap = cap;
	}
	memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
	s->v[i] = off;
	s->n++;
	return 0;
}

bool qcow2_overlaps_metadata(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	if (qcow2_overlaps_fixed(q, off, len))
		return true;
	for (uint64_t c = off & ~(q->cs - 1); c < off + len; c += q->cs)
		if (qcow2_set_has(&q->refblocks, c) || qcow2_set_has(&q->l2tables, c))
			return true;
	return false;
}

/* Resolves a backing name against the directory of the image naming it. */
static char *backing_path(const char *image, const char *name)
{
	if (name[0] == '/')
		return strdup(name);
	char *copy = strdup(image);
	if (!copy)
		return NULL;
	char *out = NULL;
	if (asprintf(&out, "%s/%s", dirname(copy), name) < 0)
		out = NULL;
	free(copy);
	return out;
}

static int open_backing(struct qcow2 *q, const char *path, unsigned flags, struct block_chain *chain, struct err *e)
{
	enum block_format fmt = BLOCK_FORMAT_PROBE;
	if (q->backing_format && block_format_parse(q->backing_format, &fmt) < 0)
		return err_set(e, "qcow2 image '%s': backing format '%s' is not supported (raw or qcow2)", path,
			       q->backing_format);
	char *bp = backing_path(path, q->backing_name);
	if (!bp)
		return err_set(e, "out of memory");
	struct err be;
	int r = block_open_in_chain(&q->dev.backing, bp, fmt, (flags & ~BLOCK_OPEN_SKIP_BACKING) | BLOCK_OPEN_RDONLY,
				    chain, &be);
	free(bp);
	if (r < 0 && chain->backing_error) { /* a deeper image failed: its message says so */
		if (e)
			*e = be;
		return -1;
	}
	if (r < 0) {
		chain->backing_error = true;
		if (!q->backing_format && strstr(be.msg, "looks like qcow2"))
			return err_set(e,
				       "qcow2 image '%s': its backing file '%s' looks like qcow2 but the image does "
				       "not record the backing format (qemu-img rebase -u -F qcow2 -b '%s' '%s')",
				       path, q->backing_name, q->backing_name, path);
		return err_set(e, "qcow2 image '%s': backing file: %s", path, be.msg);
	}
	return 0;
}

static int read_table(struct qcow2 *q, uint64_t off, uint64_t entries, uint64_t **out, const char *path,
		      const char *what, struct err *e)
{
	uint64_t bytes = entries * 8;
	uint8_t *raw = malloc(bytes ? bytes : 1);
	uint64_t *t = calloc(entries ? entries : 1, 8);
	if (!raw || !t) {
		free(raw);
		free(t);
		return err_set(e, "out of memory reading the %s of '%s'", what, path);
	}
	if (block_fd_pread(q->fd, raw, bytes, off, path, e) < 0) {
		free(raw);
		free(t);
		return -1;
	}
	for (uint64_t i = 0; i < entries; i++)
		t[i] = qcow2_be64(raw + i * 8);
	free(raw);
	*out = t;
	return 0;
}

/* A table's placement: cluster-aligned, not cluster 0, inside the file. */
static int check_table(struct qcow2 *q, uint64_t off, uint64_t bytes, const char *path, const char *what, struct err *e)
{
	if (off & (q->cs - 1) || off < q->cs || off > q->file_size || bytes > q->file_size - off)
		return err_set(e, "qcow2 image '%s': the %s at offset %llu is misplaced or outside the file", path,
			       what, (unsigned long long)off);
	return 0;
}

/* The header's fixed part (version 3's first 104 bytes): what shoji reads and what it refuses. */
static int load_fixed_header(struct qcow2 *q, const char *path, struct err *e)
{
	struct stat st;
	if (fstat(q->fd, &st) < 0)
		return err_errno(e, errno, "cannot stat disk image '%s'", path);
	q->file_size = (uint64_t)st.st_size;
	uint8_t fixed[QCOW2_HEADER_V3_MIN];
	if (q->file_size < sizeof(fixed))
		return err_set(e, "qcow2 image '%s' is too short to hold a header", path);
	if (block_fd_pread(q->fd, fixed, sizeof(fixed), 0, path, e) < 0)
		return -1;
	if (qcow2_be32(fixed + QH_MAGIC) != QCOW2_MAGIC)
		return err_set(e, "disk image '%s' is not qcow2 (no qcow2 magic): say format=raw if it is raw", path);
	q->version = qcow2_be32(fixed + QH_VERSION);
	if (q->version != 3)
		return err_set(e,
			       "qcow2 image '%s' is version %u; shoji reads version 3 (upgrade it: qemu-img amend "
			       "-o compat=1.1)",
			       path, q->version);
	q->cluster_bits = qcow2_be32(fixed + QH_CLUSTER_BITS);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, "qcow2 image '%s': cluster bits %u outside 9..21", path, q->cluster_bits);
	q->cs = 1ull << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;
	q->rb_bits = q->cluster_bits - 1;
	if (qcow2_be32(fixed + QH_REFCOUNT_ORDER) != 4)
		return err_set(e,
			       "qcow2 image '%s': refcount order %u is not supported, only 4 (16-bit refcounts; "
			       "qemu-img amend -o refcount_bits=16)",
			       path, qcow2_be32(fixed + QH_REFCOUNT_ORDER));
	if (qcow2_be32(fixed + QH_CRYPT) != 0)
		return err_set(e, "qcow2 image '%s' is encrypted, which shoji does not support", path);
	q->header_length = qcow2_be32(fixed + QH_HEADER_LENGTH);
	if (q->header_length < QCOW2_HEADER_V3_MIN || q->header_length > q->cs || q->header_length % 8)
		return err_set(e, "qcow2 image '%s': bad header length %u", path, q->header_length);
	q->incompat = qcow2_be64(fixed + QH_INCOMPAT);
	q->compat = qcow2_be64(fixed + QH_COMPAT);
	q->autoclear = qcow2_be64(fixed + QH_AUTOCLEAR);
	q->nb_snapshots = qcow2_be32(fixed + QH_NB_SNAPSHOTS);
	q->snapshots_offset = qcow2_be64(fixed + QH_SNAPSHOTS_OFFSET);
	return 0;
}

/* The backing file's name, inside the header cluster h; *ext_end: where the extensions must
 * end (the name's start, or the cluster's end). */
static int load_backing_name(struct qcow2 *q, const uint8_t *h, const char *path, uint64_t *ext_end, struct err *e)
{
	uint64_t boff = qcow2_be64(h + QH_BACKING_OFFSET);
	uint32_t bsize = qcow2_be32(h + QH_BACKING_SIZE);
	*ext_end = q->cs;
	if (!boff)
		return 0;
	if (bsize == 0 || bsize > QCOW2_MAX_BACKING_NAME || boff < q->header_length || boff > q->cs ||
	    bsize > q->cs - boff)
		return err_set(e, "qcow2 image '%s': the backing file name lies outside the header cluster", path);
	*ext_end = boff;
	q->backing_name = strndup((const char *)h + boff, bsize);
	if (!q->backing_name || strlen(q->backing_name) != bsize)
		return err_set(e, "qcow2 image '%s': bad backing file name", path);
	return 0;
}

/* The incompatible features and the compression type (header cluster h; ftable: the feature
 * name table extension, for naming a feature refused); internal snapshots only read-only. */
static int check_features(const struct qcow2 *q, const uint8_t *h, const uint8_t *ftable, uint32_t ftlen, bool ro,
			  const char *path, struct err *e)
{
	uint8_t ctype = q->header_length > QH_COMPRESSION_TYPE ? h[QH_COMPRESSION_TYPE] : 0;
	uint64_t known = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_COMPRESSION;
	for (unsigned bit = 0; bit < 64; bit++) {
		if (!(q->incompat & (1ull << bit)) || (known & (1ull << bit)))
			continue;
		char name[64];
		feature_name(ftable, ftlen, bit, name, sizeof(name));
		if (bit == 1)
			return err_set(e, "qcow2 image '%s' is marked corrupt: repair it first (qemu-img check -r all)",
				       path);
		return err_set(e,
			       "qcow2 image '%s' uses the incompatible feature %s, which shoji does not support "
			       "(convert it: qemu-img convert -O qcow2)",
			       path, name);
	}
	if ((q->incompat & QCOW2_INCOMPAT_COMPRESSION) != (ctype ? QCOW2_INCOMPAT_COMPRESSION : 0) || ctype > 1)
		return err_set(e, "qcow2 image '%s': compression type %u and its feature bit disagree", path, ctype);
	if (ctype == 1)
		return err_set(e,
			       "qcow2 image '%s' is compressed with zstd, which shoji does not read (convert it: qemu-img "
			       "convert -O qcow2 -o compression_type=zlib)",
			       path);
	/* The dirty bit (lazy refcounts: the counts may be stale) is handled by qcow2_open, which
	 * rebuilds the refcounts before writing; reading needs no refcounts. */
	if (q->nb_snapshots && !ro)
		return err_set(e, "qcow2 image '%s' has internal snapshots, which shoji opens read-only only (add ,ro)",
			       path);
	return 0;
}

/* The header cluster: the backing name, the extensions, the features, and the size and places
 * of the L1 and refcount tables. */
static int load_header_cluster(struct qcow2 *q, bool ro, const char *path, struct err *e)
{
	uint64_t hlen = q->cs < q->file_size ? q->cs : q->file_size;
	uint8_t *h = calloc(1, q->cs);
	if (!h)
		return err_set(e, "out of memory");
	const uint8_t *ftable = NULL;
	uint32_t ftlen = 0;
	uint64_t ext_end;
	int rc = -1;
	if (block_fd_pread(q->fd, h, hlen, 0, path, e) < 0 || load_backing_name(q, h, path, &ext_end, e) < 0 ||
	    parse_extensions(q, h, ext_end, path, &ftable, &ftlen, e) < 0 ||
	    check_features(q, h, ftable, ftlen, ro, path, e) < 0)
		goto out;
	q->dev.size = qcow2_be64(h + QH_SIZE);
	q->l1_size = qcow2_be32(h + QH_L1_SIZE);
	q->l1_offset = qcow2_be64(h + QH_L1_OFFSET);
	q->rt_offset = qcow2_be64(h + QH_RT_OFFSET);
	q->rt_clusters = qcow2_be32(h + QH_RT_CLUSTERS);
	rc = 0;
out:
	free(h);
	return rc;
}

/* The L1 and refcount tables: their sizes and places checked, then read. */
static int load_tables(struct qcow2 *q, const char *path, struct err *e)
{
	uint64_t per_l1 = q->cs << q->l2_bits; /* bytes one L1 entry maps */
	uint64_t need = q->dev.size / per_l1 + (q->dev.size % per_l1 != 0);
	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES || need > q->l1_size)
		return err_set(e, "qcow2 image '%s': the L1 table (%u entries) does not fit the size %llu", path,
			       q->l1_size, (unsigned long long)q->dev.size);
	if (q->rt_clusters == 0 || (uint64_t)q->rt_clusters * q->cs > QCOW2_MAX_RT_BYTES)
		return err_set(e, "qcow2 image '%s': bad refcount table size (%u clusters)", path, q->rt_clusters);
	q->rt_entries = (uint64_t)q->rt_clusters * q->cs / 8;
	if ((q->l1_size && check_table(q, q->l1_offset, (uint64_t)q->l1_size * 8, path, "L1 table", e) < 0) ||
	    check_table(q, q->rt_offset, (uint64_t)q->rt_clusters * q->cs, path, "refcount table", e) < 0)
		return -1;
	if (q->l1_size && q->l1_offset < q->rt_offset + (uint64_t)q->rt_clusters * q->cs &&
	    q->rt_offset < q->l1_offset + (uint64_t)q->l1_size * 8)
		return err_set(e, "qcow2 image '%s': the L1 table overlaps the refcount table", path);
	if (read_table(q, q->l1_offset, q->l1_size, &q->l1, path, "L1 table", e) < 0 ||
	    read_table(q, q->rt_offset, q->rt_entries, &q->rt, path, "refcount table", e) < 0)
		return -1;
	return 0;
}

/* Each L1 and refcount table entry checked, and the L2 tables and refcount blocks they name
 * indexed (no cluster may be both). */
static int index_metadata(struct qcow2 *q, const char *path, struct err *e)
{
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		uint64_t o = q->rt[i];
		if (o && ((o & QCOW2_RT_RESERVED) || o > q->file_size - q->cs || qcow2_overlaps_fixed(q, o, q->cs)))
			return err_set(e,
				       "qcow2 image '%s': refcount table entry %llu points at a bad offset (repair: "
				       "qemu-img check -r all)",
				       path, (unsigned long long)i);
	}
	for (uint32_t i = 0; i < q->l1_size; i++) {
		if (q->l1[i] & QCOW2_L1_RESERVED)
			return err_set(e, "qcow2 image '%s': L1 entry %u has reserved bits set", path, i);
		if ((q->l1[i] & QCOW2_OFFSET_MASK) && qcow2_set_add(&q->l2tables, q->l1[i] & QCOW2_OFFSET_MASK, e) < 0)
			return -1;
	}
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		if (!q->rt[i])
			continue;
		if (qcow2_set_has(&q->l2tables, q->rt[i]))
			return err_set(e,
				       "qcow2 image '%s': a refcount block is also an L2 table (repair: qemu-img check "
				       "-r all)",
				       path);
		if (qcow2_set_add(&q->refblocks, q->rt[i], e) < 0)
			return -1;
	}
	return 0;
}

int qcow2_load(struct qcow2 *q, const char *path, unsigned flags, struct block_chain *chain, struct err *e)
{
	bool ro = flags & BLOCK_OPEN_RDONLY;
	if (load_fixed_header(q, path, e) < 0 || load_header_cluster(q, ro, path, e) < 0 ||
	    load_tables(q, path, e) < 0 || index_metadata(q, path, e) < 0)
		return -1;
	if (q->backing_name && !(flags & BLOCK_OPEN_SKIP_BACKING) && open_backing(q, path, flags, chain, e) < 0)
		return -1;
	if (!ro && q->autoclear) { /* extensions shoji does not keep up to date are dropped */
		uint8_t z[8] = {0};
		if (block_fd_pwrite(q->fd, z, 8, QH_AUTOCLEAR, path, e) < 0)
			return -1;
		q->autoclear = 0;
	}
	return 0;
}

void qcow2_free(struct qcow2 *q)
{
	block_close(q->dev.backing);
	free(q->backing_name);
	free(q->backing_format);
	free(q->l1);
	free(q->rt);
	if (q->l2c)
		for (unsigned i = 0; i < q->l2c_n; i++)
			free(q->l2c[i].t);
	free(q->l2c);
	for (unsigned i = 0; i < QCOW2_RB_CACHE; i++)
		free(q->rbc[i].b);
	free(q->pending);
	free(q->refblocks.v);
	free(q->l2tables.v);
	free(q->cbuf);
	free(q->tmp);
	free(q->wbuf);
	free(q->zbuf);
	free(q->dev.path);
}

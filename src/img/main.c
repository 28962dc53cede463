/* shoji-img: the disk-image tool: create raw and qcow2 images, show what an image is, check a
 * qcow2 image's refcounts (and repair them), convert an image with its backing chain into a
 * standalone one, and read or write bytes through the same block layer shoji-vmm uses. Exit
 * status: 0 done, 1 error; check: 0 clean, 2 corruptions, 3 leaks only (as qemu-img check). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../block/block.h"
#include "../block/qcow2.h"
#include "../common/version.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoji-img COMMAND ...    (shoji-img --version: the version)\n"
		"  create -f qcow2|raw [-b BACKING -F raw|qcow2] [-o cluster_size=N] FILE [SIZE]\n"
		"                       a new image (SIZE in bytes, or with K, M, G, T; with -b it\n"
		"                       defaults to the backing file's size)\n"
		"  info [--json] FILE   format, sizes, backing file\n"
		"  check [-r leaks|all] FILE\n"
		"                       qcow2 refcounts: exit 0 clean, 2 corruptions, 3 leaks only;\n"
		"                       -r leaks frees leaked clusters, -r all also rebuilds refcounts\n"
		"  convert [-p] [-f FMT] [-O qcow2|raw] SRC DST\n"
		"                       SRC (its backing chain included) into a new standalone image\n"
		"                       DST (qcow2 by default); -p shows progress on stderr\n"
		"  read [-f FMT] FILE OFFSET LEN    LEN bytes of the disk to stdout\n"
		"  write [-f FMT] FILE OFFSET       stdin to the disk at OFFSET\n"
		"  zero [-f FMT] [-u] FILE OFFSET LEN   write zeroes (-u: may unmap)\n"
		"  discard [-f FMT] FILE OFFSET LEN\n"
		"FMT defaults to the format the file has (qcow2 when it starts with the qcow2 magic).\n");
}

static int parse_size(const char *s, uint64_t *out, struct err *e)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	if (*end && !end[1]) {
		const char *units = "KMGT";
		const char *u = strchr(units, *end & ~0x20);
		if (u && *end)
			shift = 10 * (unsigned)(u - units + 1);
		end += u ? 1 : 0;
	}
	if (!*s || *s == '-' || *end || errno || (shift && v > (UINT64_MAX >> shift)))
		return err_set(e, "'%s' is not a size (a number of bytes, optionally with K, M, G or T)", s);
	*out = (uint64_t)v << shift;
	return 0;
}

/* The format a file has: qcow2 when it starts with the magic. */
static int detect_format(const char *path, enum block_format *fmt, struct err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "cannot open '%s'", path);
	char magic[4] = {0};
	ssize_t r = read(fd, magic, 4);
	close(fd);
	*fmt = r == 4 && memcmp(magic, QCOW2_MAGIC_BYTES, 4) == 0 ? BLOCK_FORMAT_QCOW2 : BLOCK_FORMAT_RAW;
	return 0;
}

static int format_arg(const char *s, enum block_format *fmt, struct err *e)
{
	if (block_format_parse(s, fmt) < 0)
		return err_set(e, "unknown format '%s' (raw or qcow2)", s);
	return 0;
}

static int cmd_create(int argc, char **argv, struct err *e)
{
	const char *fmt = NULL, *backing = NULL, *bfmt = NULL;
	unsigned cluster_bits = 0;
	int c;
	while ((c = getopt(argc, argv, "f:b:F:o:")) != -1) {
		switch (c) {
		case 'f': fmt = optarg; break;
		case 'b': backing = optarg; break;
		case 'F': bfmt = optarg; break;
		case 'o': {
			uint64_t cs;
			if (strncmp(optarg, "cluster_size=", 13) || parse_size(optarg + 13, &cs, e) < 0 ||
			    cs & (cs - 1) || cs < 512)
				return err_set(e, "create: -o takes cluster_size=N, N a power of two");
			cluster_bits = (unsigned)__builtin_ctzll(cs);
			break;
		}
		default: return err_set(e, "create: bad option (see shoji-img --help)");
		}
	}
	if (!fmt || (strcmp(fmt, "raw") && strcmp(fmt, "qcow2")))
		return err_set(e, "create needs -f raw or -f qcow2");
	if (optind >= argc || argc - optind > 2)
		return err_set(e, "create needs FILE and SIZE");
	const char *path = argv[optind];
	uint64_t size = UINT64_MAX;
	if (argc - optind == 2 && parse_size(argv[optind + 1], &size, e) < 0)
		return -1;
	if (strcmp(fmt, "raw") == 0) {
		if (backing || size == UINT64_MAX)
			return err_set(e, "a raw image takes a SIZE and no backing file");
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return err_errno(e, errno, "cannot create '%s'", path);
		int r = ftruncate(fd, (off_t)size) < 0 ? err_errno(e, errno, "cannot size '%s'", path) : 0;
		close(fd);
		return r;
	}
	struct qcow2_create_opts o = {.size = size,
				      .cluster_bits = cluster_bits,
				      .backing = backing,
				      .backing_format = bfmt};
	return qcow2_create(path, &o, e);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static int cmd_info(int argc, char **argv, struct err *e)
{
	bool json = argc >= 2 && strcmp(argv[1], "--json") == 0;
	if (argc != 2 + json)
		return err_set(e, "info needs FILE");
	const char *path = argv[1 + json];
	enum block_format fmt;
	struct stat st;
	if (detect_format(path, &fmt, e) < 0 || stat(path, &st) < 0)
		return -1;
	struct block_dev *d;
	if (block_open(&d, path, fmt, BLOCK_OPEN_RDONLY | BLOCK_OPEN_SKIP_BACKING | BLOCK_OPEN_NO_LOCK, e) < 0)
		return -1;
	struct qcow2 *q = fmt == BLOCK_FORMAT_QCOW2 ? qcow2_of(d) : NULL;
	uint64_t disk = (uint64_t)st.st_blocks * 512;
	if (json) {
		printf("{\"filename\": ");
		json_str(path);
		printf(", \"format\": \"%s\", \"virtual-size\": %" PRIu64 ", \"actual-size\": %" PRIu64, d->ops->format,
		       d->size, disk);
		if (q) {
			printf(", \"cluster-size\": %" PRIu64
			       ", \"compat\": \"1.1\", \"dirty-flag\": %s, \"lazy-refcounts\": %s",
			       q->cs, q->incompat & QCOW2_INCOMPAT_DIRTY ? "true" : "false",
			       q->compat & QCOW2_COMPAT_LAZY_REFCOUNTS ? "true" : "false");
			if (q->backing_name) {
				printf(", \"backing-filename\": ");
				json_str(q->backing_name);
			}
			if (q->backing_format) {
				printf(", \"backing-filename-format\": ");
				json_str(q->backing_format);
			}
		}
		printf("}\n");
	} else {
		printf("image: %s\nfile format: %s\nvirtual size: %" PRIu64 " bytes\ndisk size: %" PRIu64 " bytes\n",
		       path, d->ops->format, d->size, disk);
		if (q) {
			printf("cluster_size: %" PRIu64 "\n", q->cs);
			if (q->backing_name)
				printf("backing file: %s\n", q->backing_name);
			if (q->backing_format)
				printf("backing file format: %s\n", q->backing_format);
		}
	}
	block_close(d);
	return 0;
}

static int cmd_check(int argc, char **argv, int *status, struct err *e)
{
	bool repair = argc == 4 && strcmp(argv[1], "-r") == 0;
	int mode = QCOW2_REPAIR_NONE;
	if (repair && strcmp(argv[2], "leaks") == 0)
		mode = QCOW2_REPAIR_LEAKS;
	else if (repair && strcmp(argv[2], "all") == 0)
		mode = QCOW2_REPAIR_ALL;
	else if (repair)
		return err_set(e, "check -r takes 'leaks' or 'all'");
	if (argc != 2 + 2 * repair)
		return err_set(e, "check needs [-r leaks|all] FILE");
	const char *path = argv[argc - 1];
	struct qcow2_check_result r;
	if (qcow2_check(path, mode, &r, e) < 0)
		return -1;
	if (r.rebuilt)
		printf("The refcounts were rebuilt from the tables: %" PRIu64 " errors were repaired.\n",
		       r.corruptions_fixed);
	if (r.corruptions)
		printf("ERROR: %s\n", r.first_problem);
	printf("%" PRIu64 " errors were found on the image.\n", r.corruptions);
	printf("%" PRIu64 " leaked clusters were found on the image.\n", r.leaks);
	if (r.leaks_fixed)
		printf("%" PRIu64 " leaked clusters were repaired.\n", r.leaks_fixed);
	printf("%" PRIu64 "/%" PRIu64 " clusters allocated.\n", r.allocated, r.clusters);
	*status = r.corruptions ? 2 : (r.leaks > r.leaks_fixed ? 3 : 0);
	return 0;
}

static bool all_zero(const uint8_t *b, size_t n)
{
	return n == 0 || (b[0] == 0 && memcmp(b, b + 1, n - 1) == 0);
}

/* A new image at dst for a copy of in: qcow2 with in's cluster size, or a raw file of its size. */
static int convert_create(const struct block_dev *in, const char *dst, enum block_format ofmt, struct err *e)
{
	if (ofmt == BLOCK_FORMAT_QCOW2) {
		unsigned bits = in->cluster_size ? (unsigned)__builtin_ctzll(in->cluster_size) : 0;
		struct qcow2_create_opts o = {.size = in->size, .cluster_bits = bits};
		return qcow2_create(dst, &o, e);
	}
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_errno(e, errno, "cannot create '%s'", dst);
	int r = ftruncate(fd, (off_t)in->size) < 0 ? err_errno(e, errno, "cannot size '%s'", dst) : 0;
	close(fd);
	return r;
}

/* in's content into out, a MiB at a time: a raw file's holes skipped, chunks that read as zeroes
 * left unwritten; with progress, the percentage done on standard error. */
static int convert_copy(struct block_dev *in, struct block_dev *out, bool progress, struct err *e)
{
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK);
	if (!buf)
		return err_set(e, "out of memory");
	int r = 0, shown = -1;
	bool raw = strcmp(in->ops->format, "raw") == 0;
	for (uint64_t at = 0; r == 0 && at < in->size;) {
		uint64_t k = in->size - at < CHUNK ? in->size - at : CHUNK;
		off_t data = raw ? lseek(in->fd, (off_t)at, SEEK_DATA) : (off_t)at;
		if (data < 0 && errno == ENXIO)
			data = (off_t)in->size;              /* a hole to the end */
		if (data >= 0 && (uint64_t)data >= at + k) { /* a raw file's hole: nothing to copy */
			at = (uint64_t)data < in->size ? (uint64_t)data & ~(uint64_t)(CHUNK - 1) : in->size;
		} else {
			r = block_pread(in, buf, k, at, e);
			if (r == 0 && !all_zero(buf, k))
				r = block_pwrite(out, buf, k, at, e);
			at += k;
		}
		int pct = (int)(at * 100 / in->size);
		if (progress && pct != shown) {
			fprintf(stderr, "\r    (%d.00/100%%)", pct);
			shown = pct;
		}
	}
	if (progress && r == 0)
		fprintf(stderr, "\n");
	free(buf);
	return r == 0 ? block_flush(out, e) : r;
}

/* convert [-p] [-f FMT] [-O qcow2|raw] SRC DST: SRC's whole content (its backing chain
 * included) into a new standalone image; ranges that read as zeroes are left unallocated. */
static int cmd_convert(int argc, char **argv, struct err *e)
{
	enum block_format sfmt = BLOCK_FORMAT_PROBE, ofmt = BLOCK_FORMAT_QCOW2;
	bool progress = false;
	int c;
	while ((c = getopt(argc, argv, "pf:O:")) != -1) {
		if (c == 'p')
			progress = true;
		else if ((c == 'f' && format_arg(optarg, &sfmt, e) < 0) ||
			 (c == 'O' && format_arg(optarg, &ofmt, e) < 0))
			return -1;
		else if (c != 'f' && c != 'O')
			return err_set(e, "convert: bad option (see shoji-img --help)");
	}
	if (argc - optind != 2)
		return err_set(e, "convert needs SRC and DST");
	const char *src = argv[optind], *dst = argv[optind + 1];
	if (sfmt == BLOCK_FORMAT_PROBE && detect_format(src, &sfmt, e) < 0)
		return -1;
	if (access(dst, F_OK) == 0)
		return err_set(e, "convert: '%s' exists already: give a new file name, or remove it first", dst);
	struct block_dev *in, *out = NULL;
	if (block_open(&in, src, sfmt, BLOCK_OPEN_RDONLY, e) < 0)
		return -1;
	int r = convert_create(in, dst, ofmt, e);
	if (r == 0)
		r = block_open(&out, dst, ofmt, 0, e);
	if (r == 0)
		r = convert_copy(in, out, progress, e);
	block_close(out);
	block_close(in);
	if (r < 0 && access(dst, F_OK) == 0)
		unlink(dst); /* only ever a file this command created */
	return r;
}

/* read / write / zero / discard: [-f FMT] [-u] FILE OFFSET [LEN] */
static int cmd_io(const char *cmd, int argc, char **argv, struct err *e)
{
	enum block_format fmt = BLOCK_FORMAT_PROBE;
	bool unmap = false;
	int c;
	while ((c = getopt(argc, argv, "f:u")) != -1) {
		if (c == 'f' && format_arg(optarg, &fmt, e) < 0)
			return -1;
		else if (c == 'u')
			unmap = true;
		else if (c != 'f')
			return err_set(e, "%s: bad option", cmd);
	}
	bool is_write = strcmp(cmd, "write") == 0;
	if (argc - optind != (is_write ? 2 : 3))
		return err_set(e, "%s needs FILE OFFSET%s", cmd, is_write ? "" : " LEN");
	const char *path = argv[optind];
	uint64_t off, len = 0;
	if (parse_size(argv[optind + 1], &off, e) < 0 || (!is_write && parse_size(argv[optind + 2], &len, e) < 0))
		return -1;
	if (fmt == BLOCK_FORMAT_PROBE && detect_format(path, &fmt, e) < 0)
		return -1;
	struct block_dev *d;
	bool ro = strcmp(cmd, "read") == 0;
	if (block_open(&d, path, fmt, ro ? BLOCK_OPEN_RDONLY : 0, e) < 0)
		return -1;
	int r = 0;
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK);
	if (!buf) {
		block_close(d);
		return err_set(e, "out of memory");
	}
	if (ro) {
		for (uint64_t done = 0; r == 0 && done < len;) {
			uint64_t k = len - done < CHUNK ? len - done : CHUNK;
			r = block_pread(d, buf, k, off + done, e);
			if (r == 0 && fwrite(buf, 1, k, stdout) != k)
				r = err_set(e, "cannot write to stdout");
			done += k;
		}
	} else if (is_write) {
		for (uint64_t at = off; r == 0;) {
			size_t k = fread(buf, 1, CHUNK, stdin);
			if (k == 0)
				break;
			r = block_pwrite(d, buf, k, at, e);
			at += k;
		}
	} else if (strcmp(cmd, "zero") == 0) {
		r = block_write_zeroes(d, off, len, unmap, e);
	} else {
		r = block_discard(d, off, len, e);
	}
	if (r == 0 && !ro)
		r = block_flush(d, e);
	free(buf);
	block_close(d);
	return r;
}

int main(int argc, char **argv)
{
	struct err e = {{0}};
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2;
	}
	if (strcmp(argv[1], "--version") == 0) {
		version_print("shoji-img");
		return 0;
	}
	const char *cmd = argv[1];
	int status = 0, r;
	if (strcmp(cmd, "create") == 0)
		r = cmd_create(argc - 1, argv + 1, &e);
	else if (strcmp(cmd, "info") == 0)
		r = cmd_info(argc - 1, argv + 1, &e);
	else if (strcmp(cmd, "convert") == 0)
		r = cmd_convert(argc - 1, argv + 1, &e);
	else if (strcmp(cmd, "check") == 0)
		r = cmd_check(argc - 1, argv + 1, &status, &e);
	else if (!strcmp(cmd, "read") || !strcmp(cmd, "write") || !strcmp(cmd, "zero") || !strcmp(cmd, "discard"))
		r = cmd_io(cmd, argc - 1, argv + 1, &e);
	else
		r = err_set(&e, "unknown command '%s' (see shoji-img --help)", cmd);
	if (r < 0) {
		fprintf(stderr, "shoji-img: %s\n", e.msg);
		return 1;
	}
	return status;
}

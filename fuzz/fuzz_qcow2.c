/* fuzz_qcow2: libFuzzer target for the qcow2 backend: the input is eight 8-byte operations
 * (read, write, discard, write-zeroes with or without unmap, flush; an offset and a length)
 * followed by the image file itself, header and metadata all hostile. The image is opened
 * writable from a memfd (backing files are not opened), the operations run, the image is
 * closed (metadata written back) and checked. Nothing may read or write out of bounds, hang,
 * leak or crash; every refusal is an error return. Built with -DFUZZ_QCOW2_SEED it is the seed
 * writer instead: valid images with data, zero and compressed clusters. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "block/block.h"
#include "block/qcow2.h"

#define NOPS      8
#define OPS_BYTES (NOPS * 8)
#define MAX_IO    8192

#ifndef FUZZ_QCOW2_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (size < OPS_BYTES)
		return 0;
	if (ftruncate(memfd, 0) < 0 ||
	    pwrite(memfd, data + OPS_BYTES, size - OPS_BYTES, 0) != (ssize_t)(size - OPS_BYTES))
		abort();
	struct block_dev *d;
	struct err e;
	if (block_open(&d, path, BLOCK_FORMAT_QCOW2, BLOCK_OPEN_SKIP_BACKING, &e) < 0)
		return 0;
	static uint8_t buf[MAX_IO];
	for (unsigned i = 0; i < NOPS && d->size; i++) {
		const uint8_t *op = data + i * 8;
		uint64_t off =
			((uint64_t)op[1] | (uint64_t)op[2] << 8 | (uint64_t)op[3] << 16 | (uint64_t)op[4] << 24) %
			d->size;
		uint64_t len = ((uint64_t)op[5] | (uint64_t)op[6] << 8) % MAX_IO;
		if (len > d->size - off)
			len = d->size - off;
		memset(buf, op[7], len);
		switch (op[0] % 6) {
		case 0: (void)block_pread(d, buf, len, off, &e); break;
		case 1: (void)block_pwrite(d, buf, len, off, &e); break;
		case 2: (void)block_discard(d, off, len * 64, &e); break;
		case 3:
			(void)block_write_zeroes(d, off, len * 64 > d->size - off ? d->size - off : len * 64, false,
						 &e);
			break;
		case 4: (void)block_write_zeroes(d, off, len > d->size - off ? d->size - off : len, true, &e); break;
		default: (void)block_flush(d, &e); break;
		}
	}
	block_close(d);
	struct qcow2_check_result r;
	(void)qcow2_check(path, false, &r, &e);
	return 0;
}

#else

/* Writes one seed: no-op operations, then the image at img. */
static void seed(const char *dir, const char *name, const char *img, const uint8_t ops[OPS_BYTES])
{
	char out[512];
	snprintf(out, sizeof(out), "%s/%s", dir, name);
	FILE *in = fopen(img, "rb"), *f = fopen(out, "wb");
	if (!in || !f)
		exit(1);
	fwrite(ops, 1, OPS_BYTES, f);
	uint8_t b[4096];
	size_t n;
	while ((n = fread(b, 1, sizeof(b), in)) > 0)
		fwrite(b, 1, n, f);
	fclose(in);
	fclose(f);
}

static void put(const char *img, uint64_t off, const void *b, size_t n)
{
	int fd = open(img, O_WRONLY);
	if (fd < 0 || pwrite(fd, b, n, (off_t)off) != (ssize_t)n)
		exit(1);
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	char img[512];
	snprintf(img, sizeof(img), "%s/.image", argv[1]);
	struct err e;
	uint8_t ops[OPS_BYTES] = {0};
	for (unsigned i = 0; i < NOPS; i++) { /* read, write, discard, zero, zero-unmap, flush ... */
		ops[i * 8] = (uint8_t)i;
		ops[i * 8 + 2] = (uint8_t)(i * 3);
		ops[i * 8 + 5] = 0x00;
		ops[i * 8 + 6] = 0x04;
		ops[i * 8 + 7] = (uint8_t)(0x40 + i);
	}
	/* Empty, 512-byte clusters. */
	struct qcow2_create_opts o = {.size = 64 << 10, .cluster_bits = 9};
	if (qcow2_create(img, &o, &e) < 0)
		return 1;
	seed(argv[1], "empty", img, ops);
	/* With data, a zero cluster and a discard. */
	struct block_dev *d;
	if (block_open(&d, img, BLOCK_FORMAT_QCOW2, 0, &e) < 0)
		return 1;
	uint8_t b[3000];
	memset(b, 'x', sizeof(b));
	if (block_pwrite(d, b, sizeof(b), 1000, &e) < 0 || block_pwrite(d, b, 512, 40960, &e) < 0 ||
	    block_write_zeroes(d, 2048, 1024, false, &e) < 0 || block_discard(d, 40960, 512, &e) < 0)
		return 1;
	block_close(d);
	seed(argv[1], "data", img, ops);
	/* A compressed cluster: L2 table at cluster 4, deflated bytes at cluster 5. */
	if (qcow2_create(img, &o, &e) < 0)
		return 1;
	uint8_t plain[512], packed[1024];
	for (unsigned i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i / 16);
	z_stream z = {0};
	if (deflateInit2(&z, 9, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return 1;
	z.next_in = plain;
	z.avail_in = sizeof(plain);
	z.next_out = packed;
	z.avail_out = sizeof(packed);
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		return 1;
	deflateEnd(&z);
	uint8_t l1[8], l2[8], rc[4] = {0, 1, 0, 1};
	qcow2_put64(l1, 4 * 512 | QCOW2_OFLAG_COPIED);
	qcow2_put64(l2, QCOW2_OFLAG_COMPRESSED | 5 * 512);
	put(img, 3 * 512, l1, 8);
	put(img, 4 * 512, l2, 8);
	put(img, 5 * 512, packed, 512); /* a whole sector: the rest is padding */
	put(img, 2 * 512 + 8, rc, 4);
	seed(argv[1], "compressed", img, ops);
	unlink(img);
	return 0;
}

#endif

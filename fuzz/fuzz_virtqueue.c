/* fuzz_virtqueue: libFuzzer target for the split virtqueue: the input is a 64 KiB guest's memory
 * (descriptor table, available and used rings at fixed addresses, buffers and indirect tables
 * anywhere) behind a few control bytes, and a list of single-byte rewrites the "driver" makes
 * between pops; pops until empty, broken or a bound, pushes each chain, asks about
 * notifications, and checks what virtqueue.h promises. Built with -DFUZZ_VIRTQUEUE_SEED the
 * same file is instead the program that writes the seed corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/memory.h"
#include "vmm/virtio/virtqueue.h"

#define MEM_SIZE 0x10000ull
#define DESC     0x0000ull
#define AVAIL    0x1000ull
#define USED     0x2000ull

/* Input: control bytes, then the guest image from address 0, then 3-byte rewrites
 * {offset lo, offset hi, value} at the very end, applied one after each pop. */
enum {
	CTL_SIZE,     /* bit 7 clear: size 1 << (v % 16), up to 4096 fits; set: v & 0x7f as is */
	CTL_FEATURES, /* bit 0 EVENT_IDX, bit 1 INDIRECT_DESC; bits 2-4 misalign a ring */
	CTL_START_LO, /* free-running index the queue starts at, to reach the wrap */
	CTL_START_HI,
	CTL_IOV_CAP,  /* 0: VIRTQ_MAX_IOV, else that many */
	CTL_REWRITES, /* how many rewrites the tail holds */
	CTL_BYTES
};
#define REWRITE_BYTES 3
#define MAX_POPS      512

#ifndef FUZZ_VIRTQUEUE_SEED

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static struct guest_mem *fuzz_mem(void)
{
	static struct guest_mem mem;
	static int ready;
	if (!ready) {
		struct err e;
		if (guest_mem_init(&mem, MEM_SIZE, &e) < 0)
			abort();
		ready = 1;
	}
	return &mem;
}

static uint16_t guest16(const struct guest_mem *mem, uint64_t gpa)
{
	uint16_t v;
	memcpy(&v, guest_mem_ptr(mem, gpa, 2), 2);
	return v;
}

static void check_chain(const struct guest_mem *mem, const struct virtq *q, const struct virtq_chain *c, unsigned cap)
{
	unsigned n = c->n_readable + c->n_writable;
	uint64_t rd = 0, wr = 0;
	check(c->head < q->size);
	check(n >= 1 && n <= cap && n <= VIRTQ_MAX_IOV);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *b = c->iov[i].base;
		check(c->iov[i].len > 0);
		check(b >= mem->host && b < mem->host + MEM_SIZE);
		check(c->iov[i].len <= (uint64_t)(mem->host + MEM_SIZE - b));
		if (i < c->n_readable)
			rd += c->iov[i].len;
		else
			wr += c->iov[i].len;
	}
	check(rd == c->readable_bytes && wr == c->writable_bytes);
	check(rd + wr <= VIRTQ_MAX_CHAIN_BYTES);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct virtq_iov iov[VIRTQ_MAX_IOV];
	if (size < CTL_BYTES)
		return 0;
	struct guest_mem *mem = fuzz_mem();
	size_t nrew = data[CTL_REWRITES];
	if (nrew * REWRITE_BYTES > size - CTL_BYTES)
		nrew = (size - CTL_BYTES) / REWRITE_BYTES;
	const uint8_t *rew = data + size - nrew * REWRITE_BYTES;
	size_t image = size - CTL_BYTES - nrew * REWRITE_BYTES;
	if (image > MEM_SIZE)
		image = MEM_SIZE;
	memset(mem->host, 0, MEM_SIZE);
	memcpy(mem->host, data + CTL_BYTES, image);

	uint8_t sz = data[CTL_SIZE], feat = data[CTL_FEATURES];
	uint16_t qsize = (uint16_t)(sz & 0x80 ? sz & 0x7f : 1u << (sz % 16));
	bool event_idx = feat & 1, indirect = feat & 2;
	uint64_t desc = DESC + (feat & 4 ? 8 : 0), avail = AVAIL + (feat & 8 ? 1 : 0),
		 used = USED + (feat & 16 ? 2 : 0);
	bool valid = qsize && !(qsize & (qsize - 1)) && qsize * 16ull <= MEM_SIZE - DESC && !(feat & 0x1c);
	unsigned cap = data[CTL_IOV_CAP] ? data[CTL_IOV_CAP] : VIRTQ_MAX_IOV;
	uint16_t start = (uint16_t)(data[CTL_START_LO] | data[CTL_START_HI] << 8);

	struct virtq q;
	struct virtq_chain c;
	struct err e;
	virtq_chain_init(&c, iov, cap);
	e.msg[0] = '\0';
	if (virtq_init(&q, mem, qsize, desc, avail, used, event_idx, indirect, &e) < 0) {
		check(e.msg[0] != '\0' && q.broken && !valid);
		check(virtq_pop(&q, &c, &e) == -1);
		return 0;
	}
	check(valid);
	q.last_avail = q.used_idx = q.signalled_used = start;

	for (unsigned pops = 0; pops < MAX_POPS; pops++) {
		uint16_t last = q.last_avail;
		e.msg[0] = '\0';
		int r = virtq_pop(&q, &c, &e);
		if (r < 0) {
			check(r == -1 && q.broken && e.msg[0] != '\0');
			check(q.last_avail == last);
			check(virtq_pop(&q, &c, &e) == -1);
			uint16_t before = q.used_idx;
			virtq_push(&q, 0, 0);
			check(q.used_idx == before);
			break;
		}
		if (r == 0) {
			check(!q.broken && q.last_avail == last);
			if (event_idx)
				check(guest16(mem, USED + 4 + 8ull * qsize) == last);
			break;
		}
		check(r == 1 && !q.broken);
		check(q.last_avail == (uint16_t)(last + 1));
		check_chain(mem, &q, &c, cap);

		uint32_t written = (uint32_t)(c.writable_bytes < UINT32_MAX ? c.writable_bytes : UINT32_MAX);
		virtq_push(&q, c.head, written);
		check(guest16(mem, USED + 2) == q.used_idx);
		if (pops % 3 == 0) {
			virtq_should_notify(&q);
			check(!virtq_should_notify(&q));
		}
		/* The driver scribbles between pops. */
		if (pops < nrew) {
			const uint8_t *w = rew + pops * REWRITE_BYTES;
			mem->host[(w[0] | w[1] << 8) % MEM_SIZE] = w[2];
		}
	}
	virtq_should_notify(&q);
	return 0;
}

#else /* FUZZ_VIRTQUEUE_SEED */

#include <errno.h>
#include <sys/stat.h>

static uint8_t seed[CTL_BYTES + 0x4000];
static size_t seed_len;

static void seed_begin(unsigned size_ctl, unsigned features, uint16_t start)
{
	memset(seed, 0, sizeof(seed));
	seed[CTL_SIZE] = (uint8_t)size_ctl;
	seed[CTL_FEATURES] = (uint8_t)features;
	seed[CTL_START_LO] = (uint8_t)start;
	seed[CTL_START_HI] = (uint8_t)(start >> 8);
	seed_len = CTL_BYTES + USED + 0x100;
}

static void seed_put(uint64_t gpa, const void *v, size_t n)
{
	memcpy(seed + CTL_BYTES + gpa, v, n);
	if (CTL_BYTES + gpa + n > seed_len)
		seed_len = CTL_BYTES + gpa + n;
}

static void seed_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t at = table + 16ull * i;
	seed_put(at, &addr, 8);
	seed_put(at + 8, &len, 4);
	seed_put(at + 12, &flags, 2);
	seed_put(at + 14, &next, 2);
}

/* The driver offers heads[] from index start on, and wants a notification at used_event. */
static void seed_offer(unsigned qsize, uint16_t start, const uint16_t *heads, unsigned n, uint16_t used_event)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = (uint16_t)((start + i) & (qsize - 1));
		seed_put(AVAIL + 4 + 2ull * slot, &heads[i], 2);
	}
	uint16_t idx = (uint16_t)(start + n);
	seed_put(AVAIL + 2, &idx, 2);
	seed_put(AVAIL + 4 + 2ull * qsize, &used_event, 2);
}

static int seed_write(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/seed/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(seed, 1, seed_len, f) != seed_len || fclose(f) != 0) {
		fprintf(stderr, "seed_virtqueue: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

static int seed_mkdir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "seed_virtqueue: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char path[4096];
	if (argc != 2) {
		fprintf(stderr, "usage: seed_virtqueue DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	if (seed_mkdir(dir) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/seed", dir);
	if (seed_mkdir(path) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/found", dir);
	if (seed_mkdir(path) < 0)
		return 1;

	/* Two requests, readable + 2 writable and readable only, on a queue of 8. */
	seed_begin(3, 0, 0);
	seed_desc(DESC, 0, 0x3000, 16, VRING_DESC_F_NEXT, 1);
	seed_desc(DESC, 1, 0x3100, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	seed_desc(DESC, 3, 0x3180, 1, VRING_DESC_F_WRITE, 0);
	seed_desc(DESC, 2, 0x3200, 32, 0, 0);
	seed_offer(8, 0, (const uint16_t[]){0, 2}, 2, 0);
	if (seed_write(dir, "simple") < 0)
		return 1;

	/* Three-descriptor block request, EVENT_IDX, indices about to wrap. */
	seed_begin(2, 1, 65534);
	seed_desc(DESC, 3, 0x3000, 16, VRING_DESC_F_NEXT, 1);
	seed_desc(DESC, 1, 0x3400, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	seed_desc(DESC, 0, 0x3800, 1, VRING_DESC_F_WRITE, 0);
	seed_offer(4, 65534, (const uint16_t[]){3, 3, 3}, 3, 65535);
	if (seed_write(dir, "event-idx-wrap") < 0)
		return 1;

	/* A direct descriptor then an indirect table of three, both features. */
	seed_begin(4, 3, 0);
	seed_desc(DESC, 5, 0x3000, 8, VRING_DESC_F_NEXT, 9);
	seed_desc(DESC, 9, 0x3100, 48, VRING_DESC_F_INDIRECT, 0);
	seed_desc(0x3100, 0, 0x3200, 100, VRING_DESC_F_NEXT, 2);
	seed_desc(0x3100, 2, 0x3300, 200, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	seed_desc(0x3100, 1, 0x3400, 300, VRING_DESC_F_WRITE, 0);
	seed_offer(16, 0, (const uint16_t[]){5, 9}, 2, 1);
	if (seed_write(dir, "indirect") < 0)
		return 1;

	/* The simple one again, with the driver rewriting descriptor 0's length and flags. */
	seed_begin(3, 2, 0);
	seed_desc(DESC, 0, 0x3000, 16, VRING_DESC_F_NEXT, 1);
	seed_desc(DESC, 1, 0x3100, 64, VRING_DESC_F_WRITE, 0);
	seed_offer(8, 0, (const uint16_t[]){0, 0, 0}, 3, 0);
	seed[CTL_REWRITES] = 2;
	const uint8_t rewrites[] = {0x09, 0x00, 0xff, 0x0c, 0x00, 0x07};
	memcpy(seed + seed_len, rewrites, sizeof(rewrites));
	seed_len += sizeof(rewrites);
	if (seed_write(dir, "rewrite") < 0)
		return 1;
	return 0;
}

#endif /* FUZZ_VIRTQUEUE_SEED */

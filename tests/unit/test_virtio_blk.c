/* test_virtio_blk: block requests against a temporary raw image: write and read back, a header
 * split over buffers, flush, device ID, discard and write-zeroes, read-only mode, hostile
 * requests (out of range, partial sectors, no status buffer, unknown types), requests in flight
 * together, and a reset while they are. */
#include "unit.h"

#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "virtio_fixture.h"
#include "vmm/devices/virtio_blk.h"

#define HDR           0x20000ull
#define DATA          0x21000ull
#define STATUS        0x30000ull
#define IMAGE_SECTORS 2048

struct bfx {
	struct vfx v;
	struct virtio_blk blk;
	struct block_dev *disk;
	char path[96];
};

static int setup_common(void **state, bool ro, enum block_format fmt, unsigned queues)
{
	struct bfx *f = calloc(1, sizeof(*f));
	struct err e;
	unit_tmp_path(f->path, sizeof(f->path), "shoji-blk-test-XXXXXX");
	int fd = mkstemp(f->path);
	if (fd < 0 || ftruncate(fd, IMAGE_SECTORS * 512) < 0)
		return -1;
	close(fd);
	struct qcow2_create_opts o = {.size = IMAGE_SECTORS * 512};
	if (fmt == BLOCK_FORMAT_QCOW2 && qcow2_create(f->path, &o, &e) < 0)
		return -1;
	if (vfx_init(&f->v) < 0 || block_open(&f->disk, f->path, fmt, ro ? BLOCK_OPEN_RDONLY : 0, &e) < 0 ||
	    virtio_blk_init(&f->blk, f->disk, ro, "serial-42", queues, &f->v.fm.m, &f->v.mem, &e) < 0 ||
	    vfx_attach(&f->v, &f->blk.vdev) < 0)
		return -1;
	vfx_bring_up_queues(&f->v, queues > 1 ? VIRTIO_BIT(VIRTIO_BLK_F_MQ) : 0, queues);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, false, BLOCK_FORMAT_PROBE, 1);
}
static int setup_ro(void **state)
{
	return setup_common(state, true, BLOCK_FORMAT_PROBE, 1);
}
static int setup_qcow2(void **state)
{
	return setup_common(state, false, BLOCK_FORMAT_QCOW2, 1);
}
static int setup_mq(void **state)
{
	return setup_common(state, false, BLOCK_FORMAT_PROBE, 2);
}

static int teardown(void **state)
{
	struct bfx *f = *state;
	virtio_blk_destroy(&f->blk);
	block_close(f->disk);
	vfx_destroy(&f->v);
	unlink(f->path);
	free(f);
	return 0;
}

static void *g(struct bfx *f, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(&f->v.mem, gpa, len);
}

/* A request: header, then data (readable for writes, writable for reads) unless len is 0, then
 * the status byte. Returns the status, or 0xee when the device wrote none. */
static uint8_t request(struct bfx *f, uint32_t type, uint64_t sector, uint32_t len, bool data_out)
{
	uint32_t h[4] = {type, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};
	memcpy(g(f, HDR, 16), h, 16);
	*(uint8_t *)g(f, STATUS, 1) = 0xee;
	unsigned n = 0;
	vfx_desc(&f->v, n, HDR, 16, 1, (uint16_t)(n + 1));
	n++;
	if (len) {
		vfx_desc(&f->v, n, DATA, len, (uint16_t)(1 | (data_out ? 0 : 2)), (uint16_t)(n + 1));
		n++;
	}
	vfx_desc(&f->v, n, STATUS, 1, 2, 0);
	vfx_offer(&f->v, 0);
	vfx_run(&f->v);
	virtio_blk_settle(&f->blk);
	return *(uint8_t *)g(f, STATUS, 1);
}

static void file_read(struct bfx *f, off_t at, void *buf, size_t len)
{
	FILE *fp = fopen(f->path, "rb");
	assert_non_null(fp);
	fseek(fp, at, SEEK_SET);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
}

static void write_then_read(void **state)
{
	struct bfx *f = *state;
	memset(g(f, DATA, 1024), 'A', 1024);
	assert_int_equal(request(f, 1, 2, 1024, true), 0);
	assert_int_equal(vfx_used_len(&f->v, 0), 1); /* just the status */
	char buf[1024], want[1024];
	memset(want, 'A', sizeof(want));
	file_read(f, 1024, buf, sizeof(buf));
	assert_memory_equal(buf, want, sizeof(buf));
	memset(g(f, DATA, 1024), 0, 1024);
	assert_int_equal(request(f, 0, 2, 1024, false), 0);
	assert_int_equal(vfx_used_len(&f->v, 1), 1025);
	assert_memory_equal(g(f, DATA, 1024), want, 1024);
	assert_int_equal(request(f, 4, 0, 0, false), 0); /* flush */
}

static void split_header(void **state)
{
	struct bfx *f = *state;
	uint32_t h[4] = {1, 0, 5, 0};
	memcpy(g(f, HDR, 8), h, 8);
	memcpy(g(f, HDR + 0x100, 8), h + 2, 8);
	memset(g(f, DATA, 512), 'Z', 512);
	vfx_desc(&f->v, 0, HDR, 8, 1, 1);
	vfx_desc(&f->v, 1, HDR + 0x100, 8, 1, 2);
	vfx_desc(&f->v, 2, DATA, 512, 1, 3);
	vfx_desc(&f->v, 3, STATUS, 1, 2, 0);
	vfx_offer(&f->v, 0);
	vfx_run(&f->v);
	virtio_blk_settle(&f->blk);
	assert_int_equal(*(uint8_t *)g(f, STATUS, 1), 0);
	char buf[512];
	file_read(f, 5 * 512, buf, 512);
	assert_int_equal(buf[0], 'Z');
	assert_int_equal(buf[511], 'Z');
}

static void device_id_and_config(void **state)
{
	struct bfx *f = *state;
	memset(g(f, DATA, 20), 0, 20);
	assert_int_equal(request(f, 8, 0, 20, false), 0);
	assert_string_equal((char *)g(f, DATA, 20), "serial-42");
	assert_int_equal(vfx_rd(&f->v, 0x2000, 8), IMAGE_SECTORS); /* capacity */
	assert_int_equal(vfx_rd(&f->v, 0x2000 + 20, 4), 512);      /* blk_size */
	assert_int_equal(vfx_rd(&f->v, 0x2000 + 44, 4), 1);        /* discard alignment: a sector */
	vfx_wr(&f->v, 0x00, 0, 4);
	assert_false(vfx_rd(&f->v, 0x04, 4) & (1u << VIRTIO_BLK_F_RO)); /* not read-only */
}

static void hostile_requests(void **state)
{
	struct bfx *f = *state;
	/* Past the end, straddling the end, partial sectors: I/O errors, nothing written. */
	assert_int_equal(request(f, 1, IMAGE_SECTORS, 512, true), 1);
	assert_int_equal(request(f, 1, IMAGE_SECTORS - 1, 1024, true), 1);
	assert_int_equal(request(f, 1, UINT64_MAX, 512, true), 1);
	assert_int_equal(request(f, 0, 0, 100, false), 1);
	/* Unknown request types are unsupported. */
	assert_int_equal(request(f, 99, 0, 0, false), 2);
	/* Discard: one in-range segment works, one beyond the end does not. */
	uint32_t seg[4] = {4, 0, 8, 0};
	memcpy(g(f, DATA, 16), seg, 16);
	assert_int_equal(request(f, 11, 0, 16, true), 0);
	seg[0] = IMAGE_SECTORS;
	memcpy(g(f, DATA, 16), seg, 16);
	assert_int_equal(request(f, 11, 0, 16, true), 1);
	/* Write zeroes really zeroes. */
	memset(g(f, DATA, 512), 'Q', 512);
	assert_int_equal(request(f, 1, 100, 512, true), 0);
	uint32_t wz[4] = {100, 0, 1, 0};
	memcpy(g(f, DATA, 16), wz, 16);
	assert_int_equal(request(f, 13, 0, 16, true), 0);
	char buf[512], zero[512] = {0};
	file_read(f, 100 * 512, buf, 512);
	assert_memory_equal(buf, zero, 512);
	/* No writable buffer at all: nothing to report into, the chain is returned empty. */
	uint16_t before = vfx_used_idx(&f->v);
	vfx_desc(&f->v, 0, HDR, 16, 0, 0);
	vfx_offer(&f->v, 0);
	vfx_run(&f->v);
	virtio_blk_settle(&f->blk);
	assert_int_equal(vfx_used_idx(&f->v), (uint16_t)(before + 1));
	assert_int_equal(vfx_used_len(&f->v, before % VFX_QUEUE_SIZE), 0);
}

static void read_only_disk(void **state)
{
	struct bfx *f = *state;
	vfx_wr(&f->v, 0x00, 0, 4);
	assert_true(vfx_rd(&f->v, 0x04, 4) & (1u << VIRTIO_BLK_F_RO)); /* offered */
	memset(g(f, DATA, 512), 'W', 512);
	assert_int_equal(request(f, 1, 0, 512, true), 1);
	char buf[512], zero[512] = {0};
	file_read(f, 0, buf, 512);
	assert_memory_equal(buf, zero, 512);
	assert_int_equal(request(f, 0, 0, 512, false), 0); /* reads still work */
}

/* The same requests on a qcow2 disk: the data goes through the format, not to the raw bytes. */
static void qcow2_disk(void **state)
{
	struct bfx *f = *state;
	assert_int_equal(vfx_rd(&f->v, 0x2000 + 44, 4), 128); /* discard alignment: a 64 KiB cluster */
	memset(g(f, DATA, 1024), 'C', 1024);
	assert_int_equal(request(f, 1, 2047, 512, true), 0);
	assert_int_equal(request(f, 1, 0, 1024, true), 0);
	assert_int_equal(request(f, 1, 2047, 1024, true), 1); /* past the end */
	assert_int_equal(request(f, 4, 0, 0, false), 0);      /* flush: metadata written back */
	memset(g(f, DATA, 1024), 0, 1024);
	assert_int_equal(request(f, 0, 0, 1024, false), 0);
	char want[1024];
	memset(want, 'C', sizeof(want));
	assert_memory_equal(g(f, DATA, 1024), want, 1024);
	char head[4];
	file_read(f, 0, head, 4);
	assert_memory_equal(head, "QFI\xfb", 4); /* still a qcow2 file */
	uint32_t wz[4] = {0, 0, 2, 0};
	memcpy(g(f, DATA, 16), wz, 16);
	assert_int_equal(request(f, 13, 0, 16, true), 0);
	assert_int_equal(request(f, 0, 0, 1024, false), 0);
	memset(want, 0, sizeof(want));
	assert_memory_equal(g(f, DATA, 1024), want, 1024);
	struct qcow2_check_result r;
	struct err e;
	assert_int_equal(request(f, 4, 0, 0, false), 0);
	/* The disk holds the image's lock: nothing else may open it meanwhile. */
	assert_int_equal(qcow2_check(f->path, false, &r, &e), -1);
	assert_contains(e.msg, "is locked");
	virtio_blk_destroy(&f->blk); /* the teardown's second destroy does nothing */
	block_close(f->disk);        /* closes the image */
	f->disk = NULL;
	assert_int_equal(qcow2_check(f->path, false, &r, &e), 0);
	assert_int_equal(r.corruptions + r.leaks, 0);
}

/* Without format= a file that starts with the qcow2 magic is refused, in one line. */
static void qcow2_magic_refused_without_format(void **state)
{
	(void)state;
	char path[96];
	unit_tmp_path(path, sizeof(path), "shoji-blk-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	struct qcow2_create_opts o = {.size = 1 << 20};
	struct err e;
	assert_int_equal(qcow2_create(path, &o, &e), 0);
	struct block_dev *d;
	assert_int_equal(block_open(&d, path, BLOCK_FORMAT_PROBE, 0, &e), -1);
	assert_contains(e.msg, "say format=qcow2");
	assert_null(strchr(e.msg, '\n'));
	unlink(path);
}

/* Request i of a batch: header, 512 bytes of data and status in their own slots (the queue
 * has room for two 3-descriptor requests). */
static void batch_request(struct bfx *f, unsigned i, uint32_t type, uint64_t sector)
{
	uint64_t hdr = HDR + 0x100 * i, data = DATA + 0x1000 * i, status = STATUS + 0x10 * i;
	uint32_t h[4] = {type, 0, (uint32_t)sector, (uint32_t)(sector >> 32)};
	memcpy(g(f, hdr, 16), h, 16);
	*(uint8_t *)g(f, status, 1) = 0xee;
	unsigned d = 3 * i;
	vfx_desc(&f->v, d, hdr, 16, 1, (uint16_t)(d + 1));
	vfx_desc(&f->v, d + 1, data, 512, (uint16_t)(1 | (type == VIRTIO_BLK_T_IN ? 2 : 0)), (uint16_t)(d + 2));
	vfx_desc(&f->v, d + 2, status, 1, 2, 0);
	vfx_offer(&f->v, (uint16_t)d);
}

/* Two requests offered at once are both in flight and both complete, each with its own status
 * and data, whatever order the workers finish them in. */
static void requests_in_flight(void **state)
{
	struct bfx *f = *state;
	memset(g(f, DATA, 512), 'A', 512);
	memset(g(f, DATA + 0x1000, 512), 'B', 512);
	batch_request(f, 0, VIRTIO_BLK_T_OUT, 10);
	batch_request(f, 1, VIRTIO_BLK_T_OUT, 20);
	uint16_t before = vfx_used_idx(&f->v);
	vfx_run(&f->v);
	virtio_blk_settle(&f->blk);
	assert_int_equal(vfx_used_idx(&f->v), (uint16_t)(before + 2));
	assert_int_equal(*(uint8_t *)g(f, STATUS, 1), 0);
	assert_int_equal(*(uint8_t *)g(f, STATUS + 0x10, 1), 0);
	memset(g(f, DATA, 512), 0, 512);
	memset(g(f, DATA + 0x1000, 512), 0, 512);
	batch_request(f, 0, VIRTIO_BLK_T_IN, 20);
	batch_request(f, 1, VIRTIO_BLK_T_IN, 10);
	vfx_run(&f->v);
	virtio_blk_settle(&f->blk);
	assert_int_equal(vfx_used_idx(&f->v), (uint16_t)(before + 4));
	assert_int_equal(((uint8_t *)g(f, DATA, 512))[511], 'B');
	assert_int_equal(((uint8_t *)g(f, DATA + 0x1000, 512))[0], 'A');
}

/* A reset while requests are in flight waits for them and drops them: nothing is completed
 * into the rings the driver has taken back. */
static void reset_with_requests_in_flight(void **state)
{
	struct bfx *f = *state;
	memset(g(f, DATA, 512), 'R', 512);
	memset(g(f, DATA + 0x1000, 512), 'S', 512);
	batch_request(f, 0, VIRTIO_BLK_T_OUT, 30);
	batch_request(f, 1, VIRTIO_BLK_T_OUT, 31);
	uint16_t before = vfx_used_idx(&f->v);
	vfx_run(&f->v);
	vfx_wr(&f->v, 0x14, 0, 1); /* device status 0: reset */
	assert_int_equal(vfx_used_idx(&f->v), before);
	assert_int_equal(workpool_pending(&f->blk.pool), 0);
	char buf[512];
	file_read(f, 31 * 512, buf, 512); /* it ran: the driver cannot know, and may not care */
	assert_int_equal(buf[0], 'S');
}

/* Two request queues (one per vCPU): VIRTIO_BLK_F_MQ and num_queues offered, and a request on
 * each, in flight together, completed on its own queue. */
static void two_queues(void **state)
{
	struct bfx *f = *state;
	assert_true(vfx_rd(&f->v, 0x04, 4) & (1u << VIRTIO_BLK_F_MQ));
	assert_int_equal(vfx_rd(&f->v, 0x2000 + 34, 2), 2); /* num_queues */
	assert_int_equal(vfx_rd(&f->v, 0x12, 2), 2);        /* the transport's num_queues */
	memset(g(f, DATA, 512), 'M', 512);
	uint32_t w[4] = {VIRTIO_BLK_T_OUT, 0, 40, 0}, r[4] = {VIRTIO_BLK_T_IN, 0, 0, 0};
	memcpy(g(f, HDR, 16), w, 16);
	memcpy(g(f, HDR + 0x100, 16), r, 16);
	vfx_desc_q(&f->v, 1, 0, HDR, 16, 1, 1);
	vfx_desc_q(&f->v, 1, 1, DATA, 512, 1, 2);
	vfx_desc_q(&f->v, 1, 2, STATUS, 1, 2, 0);
	vfx_desc_q(&f->v, 0, 0, HDR + 0x100, 16, 1, 1);
	vfx_desc_q(&f->v, 0, 1, DATA + 0x1000, 512, 3, 2);
	vfx_desc_q(&f->v, 0, 2, STATUS + 0x10, 1, 2, 0);
	vfx_offer_q(&f->v, 1, 0);
	vfx_offer_q(&f->v, 0, 0);
	vfx_run_q(&f->v, 1);
	vfx_run_q(&f->v, 0);
	virtio_blk_settle(&f->blk);
	assert_int_equal(vfx_used_idx_q(&f->v, 0), 1);
	assert_int_equal(vfx_used_idx_q(&f->v, 1), 1);
	assert_int_equal(vfx_used_len_q(&f->v, 0, 0), 513); /* the read's data and status */
	assert_int_equal(*(uint8_t *)g(f, STATUS, 1), 0);
	assert_int_equal(*(uint8_t *)g(f, STATUS + 0x10, 1), 0);
	char buf[512];
	file_read(f, 40 * 512, buf, 512);
	assert_int_equal(buf[0], 'M');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(write_then_read, setup, teardown),
		cmocka_unit_test_setup_teardown(split_header, setup, teardown),
		cmocka_unit_test_setup_teardown(device_id_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(requests_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(requests_in_flight, setup_qcow2, teardown),
		cmocka_unit_test_setup_teardown(reset_with_requests_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(two_queues, setup_mq, teardown),
		cmocka_unit_test_setup_teardown(read_only_disk, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(qcow2_disk, setup_qcow2, teardown),
		cmocka_unit_test(qcow2_magic_refused_without_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

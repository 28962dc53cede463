/* test_virtio_pci: the virtio PCI transport with virtio-rng behind it: identity and
 * capabilities, feature negotiation, queue set-up through the common configuration, a request
 * served end to end, MSI-X routing, masking and pending bits, reset, and hostile register
 * accesses (bad queue selects, sizes, addresses and offsets). */
#include "unit.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "virtio_fixture.h"
#include "vmm/devices/virtio_rng.h"

#define BUF 0x20000ull

struct fx {
	struct vfx v;
	struct virtio_dev rng;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e;
	if (!f || vfx_init(&f->v) < 0 || virtio_rng_init(&f->rng, &f->v.fm.m, &f->v.mem, &e) < 0 ||
	    vfx_attach(&f->v, &f->rng) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	virtio_dev_destroy(&f->rng);
	vfx_destroy(&f->v);
	free(f);
	return 0;
}

static uint64_t rd(struct fx *f, uint64_t off, uint32_t len)
{
	return vfx_rd(&f->v, off, len);
}
static void wr(struct fx *f, uint64_t off, uint64_t v, uint32_t len)
{
	vfx_wr(&f->v, off, v, len);
}
static void cfg_wr(struct fx *f, uint32_t off, uint32_t v, uint32_t len)
{
	vfx_cfg_wr(&f->v, off, v, len);
}
static void bring_up(struct fx *f)
{
	vfx_bring_up(&f->v, 0);
}
static void run_queue(struct fx *f)
{
	vfx_run(&f->v);
}

/* One writable 16-byte buffer in the available ring. */
static void offer_buffer(struct fx *f)
{
	vfx_desc(&f->v, 0, BUF, 16, 2 /* WRITE */, 0);
	vfx_offer(&f->v, 0);
}

static void identity_and_capabilities(void **state)
{
	struct fx *f = *state;
	const uint8_t *cfg = f->v.vp.pci.cfg;
	assert_int_equal(cfg[0] | cfg[1] << 8, 0x1af4);
	assert_int_equal(cfg[2] | cfg[3] << 8, 0x1044);
	assert_int_equal(cfg[8], 1); /* revision 1: modern only */
	/* A subsystem ID of 0x40 or more, which firmware drivers require of a modern device. */
	assert_true((cfg[0x2e] | cfg[0x2f] << 8) >= 0x40);
	unsigned types = 0, msix = 0;
	for (uint8_t at = cfg[PCI_CAPABILITY_LIST]; at; at = cfg[at + 1]) {
		if (cfg[at] == 0x09)
			types |= 1u << cfg[at + 3];
		if (cfg[at] == 0x11)
			msix = (cfg[at + 2] | cfg[at + 3] << 8) & 0x7ff;
	}
	/* common, notify, ISR and the PCI configuration access window */
	assert_int_equal(types, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 5));
	assert_int_equal(msix, 1);             /* two vectors: the queue and configuration changes */
	assert_int_equal(rd(f, 0x12, 2), 1);   /* num_queues */
	assert_int_equal(rd(f, 0x18, 2), 256); /* queue size: the maximum */
}

static void feature_negotiation(void **state)
{
	struct fx *f = *state;
	wr(f, 0x00, 1, 4);
	assert_true(rd(f, 0x04, 4) & 1); /* VERSION_1 offered */
	wr(f, 0x00, 7, 4);
	assert_int_equal(rd(f, 0x04, 4), 0); /* no such feature word */
	/* Without VERSION_1, FEATURES_OK does not stick. */
	wr(f, 0x14, 1 | 2 | 8, 1);
	assert_int_equal(rd(f, 0x14, 1), 1 | 2);
	/* A feature never offered is refused too. */
	wr(f, 0x08, 1, 4);
	wr(f, 0x0c, 1 | (1u << 8), 4); /* VERSION_1 and bit 40 */
	wr(f, 0x14, 1 | 2 | 8, 1);
	assert_int_equal(rd(f, 0x14, 1), 1 | 2);
	wr(f, 0x0c, 1, 4);
	wr(f, 0x14, 1 | 2 | 8, 1);
	assert_int_equal(rd(f, 0x14, 1), 1 | 2 | 8);
	/* After FEATURES_OK the driver's features are frozen. */
	wr(f, 0x0c, 0, 4);
	assert_int_equal(rd(f, 0x0c, 4), 1);
}

static void request_served_and_interrupt(void **state)
{
	struct fx *f = *state;
	bring_up(f);
	assert_int_equal(f->v.fm.ioeventfds, 1);
	assert_int_equal(f->v.fm.last_ioeventfd_addr, f->v.vp.pci.bars[0].addr + 0x3000);
	/* MSI-X: vector 0 for the queue, entry programmed and unmasked, then enabled. */
	wr(f, 0x1a, 0, 2);
	assert_int_equal(rd(f, 0x1a, 2), 0);
	wr(f, 0x4000, 0xfee00000, 4);
	wr(f, 0x4004, 0, 4);
	wr(f, 0x4008, 0x4041, 4);
	wr(f, 0x400c, 0, 4);
	cfg_wr(f, f->v.vp.msix_cap + 2, 0x8000, 2);
	assert_int_equal(f->v.fm.last_msi_data, 0x4041);

	offer_buffer(f);
	run_queue(f);
	uint16_t *used = guest_mem_ptr(&f->v.mem, VFX_USED, 4 + 8 * 8);
	assert_int_equal(used[1], 1);
	uint32_t written;
	memcpy(&written, (uint8_t *)used + 8, 4);
	assert_int_equal(written, 16);
	static const uint8_t zero[16];
	assert_memory_not_equal(guest_mem_ptr(&f->v.mem, BUF, 16), zero, 16);
	/* The interrupt went out through an irqfd bound to the vector's GSI. */
	assert_int_equal(f->v.fm.irqfds_bound, 1);
	assert_int_equal(f->v.fm.last_irqfd_gsi, f->v.fm.last_route_gsi);
	uint64_t count = 0;
	assert_int_equal(read(f->v.vp.irqs[0].fd, &count, 8), 8);
	assert_int_equal(count, 1);
	/* --stats counts what --stats says: run here without a kick, one buffer, one interrupt. */
	char line[256];
	virtio_queue_stats(f->v.vdev, line, sizeof(line));
	assert_string_equal(line, "q0 kicks 0 (0 wake-ups), buffers 1, interrupts 1 of 1");
}

static void masked_vector_is_pending(void **state)
{
	struct fx *f = *state;
	bring_up(f);
	wr(f, 0x1a, 0, 2);
	wr(f, 0x4000, 0xfee00000, 4);
	wr(f, 0x4008, 0x4042, 4);
	cfg_wr(f, f->v.vp.msix_cap + 2, 0x8000, 2); /* enabled, entry still masked */
	offer_buffer(f);
	run_queue(f);
	assert_int_equal(rd(f, 0x5000, 8) & 1, 1); /* pending */
	uint64_t count = 0;
	assert_int_equal(read(f->v.vp.irqs[0].fd, &count, 8), -1); /* nothing sent */
	wr(f, 0x400c, 0, 4);                                       /* unmask: the pending interrupt is delivered */
	assert_int_equal(rd(f, 0x5000, 8) & 1, 0);
	assert_int_equal(read(f->v.vp.irqs[0].fd, &count, 8), 8);
}

static uint32_t cfg_rd(struct fx *f, uint32_t off, uint32_t len)
{
	uint32_t v = 0;
	pci_cfg_access(&f->v.bus, f->v.vp.pci.slot, 0, off, (uint8_t *)&v, len, false);
	return v;
}

/* VIRTIO_PCI_CAP_PCI_CFG: BAR 0 reached through configuration space alone. */
static void pci_cfg_window(void **state)
{
	struct fx *f = *state;
	uint32_t cap = f->v.vp.pci_cfg_cap;
	assert_int_not_equal(cap, 0);
	cfg_wr(f, cap + 4, 0, 1);    /* BAR 0 */
	cfg_wr(f, cap + 8, 0x12, 4); /* num_queues */
	cfg_wr(f, cap + 12, 2, 4);
	assert_int_equal(cfg_rd(f, cap + 16, 4) & 0xffff, 1);
	cfg_wr(f, cap + 8, 0x14, 4); /* device_status */
	cfg_wr(f, cap + 12, 1, 4);
	cfg_wr(f, cap + 16, 1, 1); /* ACKNOWLEDGE, written through the window */
	assert_int_equal(rd(f, 0x14, 1), 1);
	/* Bad windows do nothing: another BAR, a length of 3, misaligned, past the BAR. */
	cfg_wr(f, cap + 4, 2, 1);
	cfg_wr(f, cap + 16, 0, 1);
	assert_int_equal(rd(f, 0x14, 1), 1);
	cfg_wr(f, cap + 4, 0, 1);
	cfg_wr(f, cap + 12, 3, 4);
	cfg_wr(f, cap + 16, 0, 1);
	cfg_wr(f, cap + 8, 0x13, 4);
	cfg_wr(f, cap + 12, 2, 4);
	cfg_wr(f, cap + 16, 0, 2);
	cfg_wr(f, cap + 8, 0xfffffffe, 4);
	cfg_wr(f, cap + 16, 0, 2);
	assert_int_equal(rd(f, 0x14, 1), 1);
}

static void hostile_registers(void **state)
{
	struct fx *f = *state;
	/* A queue that does not exist: reads zero, writes vanish. */
	wr(f, 0x16, 7, 2);
	assert_int_equal(rd(f, 0x18, 2), 0);
	wr(f, 0x18, 4, 2);
	wr(f, 0x1c, 1, 2);
	assert_int_equal(rd(f, 0x1c, 2), 0);
	/* Sizes that are not powers of two or exceed the maximum are ignored. */
	wr(f, 0x16, 0, 2);
	wr(f, 0x18, 6, 2);
	assert_int_equal(rd(f, 0x18, 2), 256);
	wr(f, 0x18, 512, 2);
	assert_int_equal(rd(f, 0x18, 2), 256);
	/* Vectors beyond the table become NO_VECTOR. */
	wr(f, 0x1a, 9, 2);
	assert_int_equal(rd(f, 0x1a, 2), 0xffff);
	/* Rings outside guest RAM: the queue is refused and the device asks for a reset. */
	wr(f, 0x14, 1 | 2, 1);
	wr(f, 0x08, 1, 4);
	wr(f, 0x0c, 1, 4);
	wr(f, 0x14, 1 | 2 | 8, 1);
	wr(f, 0x20, 0xfffffffffffff000ull, 8);
	wr(f, 0x1c, 1, 2);
	assert_int_equal(rd(f, 0x1c, 2), 0);
	assert_true(rd(f, 0x14, 1) & 0x40);
	/* Odd places in BAR 0 read as zero; MSI-X entries past the table float. */
	assert_int_equal(rd(f, 0x7ff8, 8), 0);
	assert_int_equal(rd(f, 0x1001, 1), 0);
	assert_int_equal(rd(f, 0x4020, 4), 0);      /* past the table */
	assert_int_equal(rd(f, 0x4002, 2), 0xffff); /* not a DWORD access */
	wr(f, 0x4000, 0x00000000fee00000ull, 8);    /* QWORD: address low and high */
	assert_int_equal(rd(f, 0x4000, 4), 0xfee00000);
	/* Straddling the end of the common configuration is not a common access. */
	assert_int_equal(rd(f, 0x36, 4), 0);
}

static void device_reset(void **state)
{
	struct fx *f = *state;
	bring_up(f);
	assert_int_equal(rd(f, 0x1c, 2), 1);
	wr(f, 0x14, 0, 1);
	assert_int_equal(rd(f, 0x14, 1), 0);
	assert_int_equal(rd(f, 0x1c, 2), 0);
	assert_int_equal(rd(f, 0x0c, 4), 0);
	assert_int_equal(f->v.fm.ioeventfds_removed, 1);
	/* A notification after reset does nothing (the I/O thread checks DRIVER_OK). */
	assert_int_equal(rd(f, 0x10, 2), 0xffff);
}

/* A device whose queues the kernel serves: its I/O thread leaves the kicks alone, it hears of
 * DRIVER_OK once, and gets each queue's interrupt eventfd already bound to the vector's route. */
struct kfx {
	struct virtio_dev vdev;
	unsigned driver_ok_calls;
};

static void kernel_driver_ok(struct virtio_dev *vdev)
{
	((struct kfx *)vdev->device)->driver_ok_calls++;
}
static void kernel_notify(struct virtio_dev *vdev, unsigned q)
{
	(void)vdev, (void)q;
}

static void kernel_served_queues(void **state)
{
	(void)state;
	static const struct virtio_device_ops ops = {
		.name = "kernel-test",
		.device_id = 19,
		.num_queues = 1,
		.queue_max_size = 8,
		.queue_notify = kernel_notify,
		.driver_ok = kernel_driver_ok,
	};
	struct vfx v;
	struct kfx k;
	struct err e;
	assert_int_equal(vfx_init(&v), 0);
	assert_int_equal(virtio_dev_init(&k.vdev, &ops, &k, &v.fm.m, &v.mem, &e), 0);
	virtio_set_kernel_queues(&k.vdev, k.vdev.num_queues);
	k.driver_ok_calls = 0;
	assert_int_equal(vfx_attach(&v, &k.vdev), 0);
	vfx_bring_up(&v, 0);
	assert_int_equal(k.driver_ok_calls, 1);
	vfx_wr(&v, 0x14, 0x0f, 1); /* DRIVER_OK again: no second call */
	assert_int_equal(k.driver_ok_calls, 1);
	assert_int_equal(virtio_queue_call_fd(&k.vdev, 0), -1); /* no vector yet */
	vfx_wr(&v, 0x16, 0, 2);
	vfx_wr(&v, 0x1a, 0, 2);
	vfx_wr(&v, 0x4000, 0xfee00000, 4);
	vfx_wr(&v, 0x4008, 0x4042, 4);
	vfx_wr(&v, 0x400c, 0, 4);
	vfx_cfg_wr(&v, v.vp.msix_cap + 2, 0x8000, 2);
	int fd = virtio_queue_call_fd(&k.vdev, 0);
	assert_int_equal(fd, v.vp.irqs[0].fd);
	assert_int_equal(v.fm.irqfds_bound, 1);
	assert_int_equal(v.fm.last_irqfd_gsi, v.fm.last_route_gsi);
	assert_int_equal(virtio_queue_call_fd(&k.vdev, 0), fd); /* bound once */
	assert_int_equal(v.fm.irqfds_bound, 1);
	/* The kick eventfd is registered with KVM but not in the I/O thread's epoll. */
	assert_int_equal(v.fm.ioeventfds, 1);
	assert_int_equal(epoll_ctl(k.vdev.epoll_fd, EPOLL_CTL_DEL, k.vdev.queues[0].kick_fd, NULL), -1);
	virtio_dev_destroy(&k.vdev);
	vfx_destroy(&v);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(identity_and_capabilities),
		T(feature_negotiation),
		T(request_served_and_interrupt),
		T(masked_vector_is_pending),
		T(pci_cfg_window),
		T(hostile_registers),
		T(device_reset),
		cmocka_unit_test(kernel_served_queues),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

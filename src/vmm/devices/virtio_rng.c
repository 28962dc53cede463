/* virtio_rng: the entropy device (see virtio_rng.h; virtio 1.x section 5.4). */
#include "virtio_rng.h"

#include <errno.h>
#include <sys/random.h>

#include "../../common/log.h"

#define RNG_QUEUE_SIZE 256
#define RNG_MAX_REQUEST (64u << 10) /* bytes filled per request, at most */

static uint32_t fill(struct virtq_iov *iov, unsigned n)
{
	uint32_t done = 0;
	for (unsigned i = 0; i < n && done < RNG_MAX_REQUEST; i++) {
		uint32_t want = iov[i].len;
		if (want > RNG_MAX_REQUEST - done)
			want = RNG_MAX_REQUEST - done;
		uint32_t got = 0;
		while (got < want) {
			ssize_t r = getrandom((uint8_t *)iov[i].base + got, want - got, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return done + got;
			got += (uint32_t)r;
		}
		done += got;
	}
	return done;
}

static void rng_notify(struct virtio_pci *vp, unsigned q)
{
	struct virtq *vq = &vp->queues[q].vq;
	struct virtq_iov iov[64];
	struct virtq_chain chain;
	struct err e;
	virtq_chain_init(&chain, iov, 64);
	for (unsigned budget = RNG_QUEUE_SIZE;; budget--) {
		if (budget == 0) {
			virtio_pci_requeue(vp, q); /* more may be waiting: come back after the others */
			break;
		}
		int r = virtq_pop(vq, &chain, &e);
		if (r == 0)
			break;
		if (r < 0) {
			log_warn("virtio-rng: %s", e.msg);
			virtio_pci_set_needs_reset(vp);
			return;
		}
		virtq_push(vq, chain.head, fill(virtq_chain_writable(&chain), chain.n_writable));
	}
	virtio_pci_notify_queue(vp, q);
}

static const struct virtio_device_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = 4,
	.class_code = 0xff0000, /* "other" */
	.num_queues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.queue_notify = rng_notify,
};

int virtio_rng_init(struct virtio_pci *vp, struct machine *m, const struct guest_mem *mem,
		    struct err *e)
{
	return virtio_pci_init(vp, &rng_ops, NULL, m, mem, e);
}

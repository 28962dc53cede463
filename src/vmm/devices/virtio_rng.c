/* virtio_rng: the entropy device (see virtio_rng.h; virtio 1.x section 5.4). */
#include "virtio_rng.h"

#include <errno.h>
#include <sys/random.h>

#define RNG_QUEUE_SIZE  256
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

static uint32_t rng_serve(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	(void)vdev;
	return fill(virtq_chain_writable(chain), chain->n_writable);
}

static void rng_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtq_iov iov[64];
	virtio_serve_queue(vdev, q, iov, 64, rng_serve);
}

static const struct virtio_device_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.queue_notify = rng_notify,
};

int virtio_rng_init(struct virtio_dev *vdev, struct machine *m, const struct guest_mem *mem, struct err *e)
{
	return virtio_dev_init(vdev, &rng_ops, NULL, m, mem, e);
}

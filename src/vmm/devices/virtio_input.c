/* virtio_input: keyboard, tablet and mouse (see virtio_input.h). Queue 0 carries events to the
 * guest, queue 1 the guest's status events (LEDs), which are dropped. */
#include "virtio_input.h"

#include <linux/input.h> /* event codes, BUS_VIRTUAL */
#include <linux/virtio_input.h>
#include <string.h>

#include "../../common/log.h"
#include "../virtio/iov.h"

#define EVENTQ           0
#define STATUSQ          1
#define INPUT_QUEUE_SIZE 64
#define VENDOR           0x0627

static const char *const names[] = {"shoji keyboard", "shoji tablet", "shoji mouse"};

static struct virtio_input *input_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

static void set_bit(uint8_t *map, unsigned bit)
{
	map[bit / 8] |= (uint8_t)(1u << (bit % 8));
}

/* The bitmap of codes for event type `type`; returns its size in bytes (0: type absent). */
static uint8_t event_bits(uint32_t kind, uint8_t type, uint8_t map[128])
{
	memset(map, 0, 128);
	switch (type) {
	case EV_KEY:
		if (kind == DISPLAY_INPUT_KEYBOARD) {
			for (unsigned k = KEY_ESC; k <= KEY_MICMUTE; k++)
				set_bit(map, k);
		} else {
			for (unsigned b = BTN_LEFT; b <= BTN_EXTRA; b++)
				set_bit(map, b);
		}
		break;
	case EV_REL:
		if (kind == DISPLAY_INPUT_MOUSE) {
			set_bit(map, REL_X);
			set_bit(map, REL_Y);
		}
		if (kind != DISPLAY_INPUT_KEYBOARD)
			set_bit(map, REL_WHEEL);
		break;
	case EV_ABS:
		if (kind == DISPLAY_INPUT_TABLET) {
			set_bit(map, ABS_X);
			set_bit(map, ABS_Y);
		}
		break;
	case EV_LED:
		if (kind == DISPLAY_INPUT_KEYBOARD) {
			set_bit(map, LED_NUML);
			set_bit(map, LED_CAPSL);
			set_bit(map, LED_SCROLLL);
		}
		break;
	default: break;
	}
	uint8_t size = 128;
	while (size && !map[size - 1])
		size--;
	return size;
}

/* The configuration space as the driver's current select/subsel shows it. */
static void config_image(const struct virtio_input *vi, struct virtio_input_config *c)
{
	memset(c, 0, sizeof(*c));
	c->select = vi->select;
	c->subsel = vi->subsel;
	switch (vi->select) {
	case VIRTIO_INPUT_CFG_ID_NAME:
		if (vi->subsel == 0) {
			c->size = (uint8_t)strlen(names[vi->kind]);
			memcpy(c->u.string, names[vi->kind], c->size);
		}
		break;
	case VIRTIO_INPUT_CFG_ID_SERIAL:
		if (vi->subsel == 0) {
			c->size = 1;
			c->u.string[0] = (char)('0' + vi->kind);
		}
		break;
	case VIRTIO_INPUT_CFG_ID_DEVIDS:
		if (vi->subsel == 0) {
			c->size = sizeof(c->u.ids);
			c->u.ids = (struct virtio_input_devids){.bustype = BUS_VIRTUAL,
								.vendor = VENDOR,
								.product = (uint16_t)(1 + vi->kind),
								.version = 1};
		}
		break;
	case VIRTIO_INPUT_CFG_PROP_BITS: break; /* no properties */
	case VIRTIO_INPUT_CFG_EV_BITS: c->size = event_bits(vi->kind, vi->subsel, c->u.bitmap); break;
	case VIRTIO_INPUT_CFG_ABS_INFO:
		if (vi->kind == DISPLAY_INPUT_TABLET && (vi->subsel == ABS_X || vi->subsel == ABS_Y)) {
			c->size = sizeof(c->u.abs);
			c->u.abs = (struct virtio_input_absinfo){.min = 0, .max = 32767};
		}
		break;
	default: break;
	}
}

static void input_config_read(struct virtio_dev *vdev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_input_config c;
	config_image(input_of(vdev), &c);
	if (offset > sizeof(c) || len > sizeof(c) - offset) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, (uint8_t *)&c + offset, len);
}

static void input_config_write(struct virtio_dev *vdev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	struct virtio_input *vi = input_of(vdev);
	for (uint32_t i = 0; i < len; i++) { /* only select and subsel are writable */
		if (offset + i == 0)
			vi->select = data[i];
		else if (offset + i == 1)
			vi->subsel = data[i];
	}
}

/* Moves pending events into the guest's buffers. Lock held. */
static void deliver(struct virtio_input *vi)
{
	struct virtio_dev *vdev = &vi->vdev;
	if (!virtio_queue_live(vdev, EVENTQ))
		return;
	struct virtq *vq = &vdev->queues[EVENTQ].vq;
	struct virtq_iov iov[4];
	struct virtq_chain chain;
	struct err e;
	virtq_chain_init(&chain, iov, 4);
	bool pushed = false;
	while (vi->count) {
		int r = virtq_pop(vq, &chain, &e);
		if (r < 0) {
			log_guest(LOG_WARN, "%s: %s", vdev->ops->name, e.msg);
			virtio_set_needs_reset(vdev);
			return;
		}
		if (r == 0)
			break; /* no buffers: keep the rest */
		const struct display_input_event *ev = &vi->pending[vi->head];
		struct virtio_input_event out = {.type = ev->type, .code = ev->code, .value = (uint32_t)ev->value};
		size_t put = iov_from_buf(virtq_chain_writable(&chain), chain.n_writable, 0, &out, sizeof(out));
		virtq_push(vq, chain.head, (uint32_t)put);
		pushed = true;
		vi->head = (vi->head + 1) % VIRTIO_INPUT_PENDING;
		vi->count--;
	}
	if (pushed)
		virtio_notify_queue(vdev, EVENTQ);
}

void virtio_input_inject(struct virtio_input *vi, const struct display_input_event *ev, unsigned n)
{
	pthread_mutex_lock(&vi->vdev.lock);
	if (!(vi->vdev.status & VIRTIO_CONFIG_S_DRIVER_OK)) {
		/* No driver: nobody to type to. */
	} else if (n > VIRTIO_INPUT_PENDING - vi->count) {
		vi->dropped += n;
	} else {
		for (unsigned i = 0; i < n; i++)
			vi->pending[(vi->head + vi->count + i) % VIRTIO_INPUT_PENDING] = ev[i];
		vi->count += n;
		deliver(vi);
	}
	pthread_mutex_unlock(&vi->vdev.lock);
}

static uint32_t status_serve(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	(void)vdev, (void)chain;
	return 0;
}

static void input_notify(struct virtio_dev *vdev, unsigned q)
{
	if (q == EVENTQ) {
		deliver(input_of(vdev)); /* new buffers */
		return;
	}
	struct virtq_iov iov[4];
	virtio_serve_queue(vdev, q, iov, 4, status_serve);
}

static void input_reset(struct virtio_dev *vdev)
{
	struct virtio_input *vi = input_of(vdev);
	vi->head = vi->count = 0;
	vi->select = vi->subsel = 0;
}

static const struct virtio_device_ops input_ops = {
	.name = "virtio-input",
	.device_id = VIRTIO_ID_INPUT,
	.num_queues = 2,
	.queue_max_size = INPUT_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_input_config),
	.config_read = input_config_read,
	.config_write = input_config_write,
	.queue_notify = input_notify,
	.reset = input_reset,
};

int virtio_input_init(struct virtio_input *vi, uint32_t kind, struct machine *m, const struct guest_mem *mem,
		      struct err *e)
{
	memset(vi, 0, sizeof(*vi));
	if (kind > DISPLAY_INPUT_MOUSE)
		return err_set(e, "virtio-input: unknown device kind %u", kind);
	vi->kind = kind;
	return virtio_dev_init(&vi->vdev, &input_ops, vi, m, mem, e);
}

bool virtio_input_live(struct virtio_input *vi)
{
	pthread_mutex_lock(&vi->vdev.lock);
	bool live = virtio_queue_live(&vi->vdev, 0);
	pthread_mutex_unlock(&vi->vdev.lock);
	return live;
}

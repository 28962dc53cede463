/* virtio_gpu: the GPU device's virtio glue and display channel wiring (see virtio_gpu.h).
 * Queue 0 carries control commands, queue 1 cursor commands. */
#include "virtio_gpu.h"

#include <errno.h>
#include <linux/virtio_gpu.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../virtio/iov.h"

#define CONTROLQ       0
#define CURSORQ        1
#define GPU_QUEUE_SIZE 256
#define TOKEN_LISTEN   0
#define TOKEN_SEAT     1

static struct virtio_gpu *gpu_of(struct virtio_dev *vdev)
{
	return vdev->device;
}

/* --- the guest's side --------------------------------------------------------------------- */

static uint32_t gpu_serve(struct virtio_dev *vdev, const struct virtq_chain *chain)
{
	struct virtio_gpu *gpu = gpu_of(vdev);
	size_t n = gpu_2d_execute(&gpu->g, chain->iov, chain->n_readable, chain->readable_bytes, gpu->resp);
	return (uint32_t)iov_from_buf(virtq_chain_writable(chain), chain->n_writable, 0, gpu->resp, n);
}

static void gpu_notify(struct virtio_dev *vdev, unsigned q)
{
	virtio_serve_queue(vdev, q, gpu_of(vdev)->iov, VIRTQ_MAX_IOV, gpu_serve);
}

static void gpu_config_read(struct virtio_dev *vdev, uint32_t offset, uint8_t *data, uint32_t len)
{
	struct virtio_gpu_config c = {.events_read = gpu_of(vdev)->events_read, .num_scanouts = 1};
	memset(data, 0, len);
	if (offset < sizeof(c))
		memcpy(data, (uint8_t *)&c + offset, len < sizeof(c) - offset ? len : sizeof(c) - offset);
}

static void gpu_config_write(struct virtio_dev *vdev, uint32_t offset, const uint8_t *data, uint32_t len)
{
	if (offset == offsetof(struct virtio_gpu_config, events_clear) && len == 4) {
		uint32_t clear;
		memcpy(&clear, data, 4);
		gpu_of(vdev)->events_read &= ~clear;
	}
}

static void gpu_reset(struct virtio_dev *vdev)
{
	struct virtio_gpu *gpu = gpu_of(vdev);
	bool was_on = gpu->g.scanout_res != 0;
	gpu_2d_reset(&gpu->g);
	gpu->events_read = 0;
	if (was_on && gpu->ds)
		display_server_surface(gpu->ds, 0, 0);
}

/* --- what the guest made visible ---------------------------------------------------------- */

static void scanout_changed(void *opaque)
{
	struct virtio_gpu *gpu = opaque;
	if (gpu->g.scanout_res)
		display_server_surface(gpu->ds, gpu->g.scanout.w, gpu->g.scanout.h);
	else
		display_server_surface(gpu->ds, 0, 0);
}

static void flushed(void *opaque, struct gpu_rect r)
{
	struct virtio_gpu *gpu = opaque;
	display_server_damage(gpu->ds, (struct display_rect){r.x, r.y, r.w, r.h});
}

static void send_cursor(struct virtio_gpu *gpu)
{
	const struct gpu_cursor *c = &gpu->g.cursor;
	struct display_cursor dc = {.hot_x = c->hot_x, .hot_y = c->hot_y, .x = c->x, .y = c->y, .visible = c->visible};
	display_server_cursor(gpu->ds, &dc, c->image);
}

static void cursor_changed(void *opaque, bool image_changed)
{
	struct virtio_gpu *gpu = opaque;
	if (image_changed)
		send_cursor(gpu);
	else
		display_server_cursor_move(gpu->ds, gpu->g.cursor.x, gpu->g.cursor.y);
}

static const struct gpu_2d_events gpu_events = {
	.scanout_changed = scanout_changed,
	.flushed = flushed,
	.cursor_changed = cursor_changed,
};

/* --- the seat's side ---------------------------------------------------------------------- */

static void seat_connected(void *opaque)
{
	struct virtio_gpu *gpu = opaque;
	scanout_changed(gpu);
	if (gpu->g.cursor.visible)
		send_cursor(gpu);
}

/* Whether a batch for `device` goes to the PS/2 side (see virtio_gpu.h). */
static bool to_ps2(struct virtio_gpu *gpu, uint32_t device)
{
	if (!gpu->ps2 || (device != DISPLAY_INPUT_KEYBOARD && device != DISPLAY_INPUT_MOUSE))
		return false;
	if (gpu->inputs[device] && virtio_input_live(gpu->inputs[device]))
		return false;
	return device == DISPLAY_INPUT_KEYBOARD ? i8042_keyboard_active(gpu->ps2) : i8042_mouse_active(gpu->ps2);
}

void virtio_gpu_seat_input(struct virtio_gpu *gpu, uint32_t device, const struct display_input_event *ev, unsigned n)
{
	if (device >= 3)
		return;
	if (to_ps2(gpu, device))
		i8042_input(gpu->ps2, device, ev, n);
	else if (gpu->inputs[device])
		virtio_input_inject(gpu->inputs[device], ev, n);
}

static void seat_input(void *opaque, uint32_t device, const struct display_input_event *ev, unsigned n)
{
	virtio_gpu_seat_input(opaque, device, ev, n);
}

static void seat_preferred_size(void *opaque, uint32_t width, uint32_t height)
{
	struct virtio_gpu *gpu = opaque;
	if (!gpu_2d_set_preferred(&gpu->g, width, height))
		return;
	gpu->events_read |= VIRTIO_GPU_EVENT_DISPLAY;
	virtio_config_changed(&gpu->vdev);
	__atomic_store_n(&gpu->seat_size, (uint64_t)width << 32 | height, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (gpu->size_fd >= 0 && write(gpu->size_fd, &one, sizeof(one)) < 0)
		log_warn("virtio-gpu: cannot tell the main loop of the new size: %s", strerror(errno));
}

bool virtio_gpu_take_size(struct virtio_gpu *gpu, uint32_t *width, uint32_t *height)
{
	uint64_t n;
	if (gpu->size_fd < 0 || read(gpu->size_fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
		return false;
	uint64_t v = __atomic_load_n(&gpu->seat_size, __ATOMIC_ACQUIRE);
	*width = (uint32_t)(v >> 32);
	*height = (uint32_t)v;
	return v != 0;
}

static void seat_fill(void *opaque, struct display_rect r, uint8_t *pixels, uint32_t stride)
{
	struct virtio_gpu *gpu = opaque;
	gpu_2d_read_scanout(&gpu->g, (struct gpu_rect){r.x, r.y, r.w, r.h}, pixels, stride);
}

static const struct display_handler seat_handler = {
	.connected = seat_connected,
	.input = seat_input,
	.preferred_size = seat_preferred_size,
	.fill = seat_fill,
};

static void gpu_fd_ready(struct virtio_dev *vdev, unsigned token)
{
	struct virtio_gpu *gpu = gpu_of(vdev);
	if (token == TOKEN_LISTEN) {
		display_server_accept(gpu->ds); /* the seat it replaces left the epoll when closed */
		if (gpu->ds->client_fd >= 0 && virtio_watch(vdev, gpu->ds->client_fd, TOKEN_SEAT) < 0)
			log_warn("virtio-gpu: cannot watch the seat's socket: %s", strerror(errno));
		return;
	}
	display_server_receive(gpu->ds); /* a closed seat socket leaves the epoll by itself */
}

/* Before the I/O thread starts: the display channel's sockets go into its epoll. */
static int gpu_start(struct virtio_dev *vdev, struct err *e)
{
	struct virtio_gpu *gpu = gpu_of(vdev);
	if (virtio_watch(vdev, gpu->ds->listen_fd, TOKEN_LISTEN) < 0 ||
	    (gpu->ds->client_fd >= 0 && virtio_watch(vdev, gpu->ds->client_fd, TOKEN_SEAT) < 0))
		return err_errno(e, errno, "cannot watch display socket '%s'", gpu->ds->path);
	return 0;
}

static const struct virtio_device_ops gpu_ops = {
	.name = "virtio-gpu",
	.device_id = VIRTIO_ID_GPU,
	.features = VIRTIO_BIT(VIRTIO_GPU_F_EDID) | VIRTIO_BIT(VIRTIO_GPU_F_RESOURCE_BLOB),
	.num_queues = 2,
	.queue_max_size = GPU_QUEUE_SIZE,
	.config_size = sizeof(struct virtio_gpu_config),
	.config_read = gpu_config_read,
	.config_write = gpu_config_write,
	.queue_notify = gpu_notify,
	.reset = gpu_reset,
	.fd_ready = gpu_fd_ready,
	.start = gpu_start,
};

int virtio_gpu_init(struct virtio_gpu *gpu, struct display_server *ds, struct virtio_input *inputs[3],
		    struct machine *m, const struct guest_mem *mem, struct err *e)
{
	memset(gpu, 0, sizeof(*gpu));
	gpu->size_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	gpu->ds = ds;
	for (int i = 0; i < 3; i++)
		gpu->inputs[i] = inputs ? inputs[i] : NULL;
	gpu_2d_init(&gpu->g, mem, ds->width, ds->height, &gpu_events, gpu);
	if (virtio_dev_init(&gpu->vdev, &gpu_ops, gpu, m, mem, e) < 0)
		return -1;
	display_server_set_handler(ds, &seat_handler, gpu);
	display_server_surface(ds, 0, 0); /* a seat that stayed across a reboot: off until set */
	return 0;
}

void virtio_gpu_destroy(struct virtio_gpu *gpu)
{
	virtio_dev_destroy(&gpu->vdev); /* stops the I/O thread first */
	if (!gpu->ds)                   /* its init never ran */
		return;
	if (gpu->size_fd >= 0)
		close(gpu->size_fd);
	gpu->size_fd = -1;
	display_server_set_handler(gpu->ds, NULL, NULL);
	if (gpu->g.scanout_res)
		display_server_surface(gpu->ds, 0, 0);
	gpu_2d_reset(&gpu->g);
	gpu->ds = NULL;
}

/* gpu_2d: the virtio-gpu 2D command engine (see gpu_2d.h). Error answers follow QEMU's choices
 * so that a Linux guest reacts the same way: unknown ids INVALID_RESOURCE_ID, bad rectangles,
 * formats and sizes INVALID_PARAMETER, short requests and bad backing UNSPEC, over the memory
 * bound OUT_OF_MEMORY. Blobs follow QEMU's too: only guest memory (no host3d blobs, no
 * mapping), a transfer to one is a no-op, and a blob used as the cursor is a 64 x 64
 * B8G8R8A8 picture at its start. */
#include "gpu_2d.h"

#include <linux/virtio_gpu.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../virtio/iov.h"
#include "edid.h"
#include "pixel.h"

#define BPP 4u

_Static_assert(sizeof(struct virtio_gpu_resp_edid) <= GPU_2D_RESP_MAX &&
		       sizeof(struct virtio_gpu_resp_display_info) <= GPU_2D_RESP_MAX,
	       "GPU_2D_RESP_MAX holds every response");
#define CURSOR_PIXELS (GPU_2D_CURSOR * GPU_2D_CURSOR)

void gpu_2d_init(struct gpu_2d *g, const struct guest_mem *mem, uint32_t width, uint32_t height,
		 const struct gpu_2d_events *events, void *opaque)
{
	memset(g, 0, sizeof(*g));
	g->mem = mem;
	g->host_limit = GPU_2D_HOST_LIMIT;
	g->events = events;
	g->opaque = opaque;
	g->pref_w = GPU_2D_MIN_SIZE, g->pref_h = GPU_2D_MIN_SIZE;
	gpu_2d_set_preferred(g, width, height);
}

bool gpu_2d_set_preferred(struct gpu_2d *g, uint32_t width, uint32_t height)
{
	uint32_t w = width < GPU_2D_MIN_SIZE ? GPU_2D_MIN_SIZE : width > 8192 ? 8192 : width;
	uint32_t h = height < GPU_2D_MIN_SIZE ? GPU_2D_MIN_SIZE : height > 8192 ? 8192 : height;
	bool changed = w != g->pref_w || h != g->pref_h;
	g->pref_w = w, g->pref_h = h;
	return changed;
}

/* --- resources ---------------------------------------------------------------------------- */

static struct gpu_resource *find(const struct gpu_2d *g, uint32_t id)
{
	for (unsigned i = 0; i < g->nres; i++)
		if (g->res[i]->id == id)
			return g->res[i];
	return NULL;
}

static void detach(struct gpu_2d *g, struct gpu_resource *r)
{
	g->host_bytes -= (uint64_t)r->nbacking * sizeof(*r->backing);
	free(r->backing);
	r->backing = NULL;
	r->nbacking = 0;
	r->backing_len = 0;
}

static void destroy(struct gpu_2d *g, unsigned i)
{
	struct gpu_resource *r = g->res[i];
	detach(g, r);
	if (r->pixels)
		g->host_bytes -= (uint64_t)r->width * r->height * BPP;
	free(r->pixels);
	free(r);
	g->res[i] = g->res[--g->nres];
}

void gpu_2d_reset(struct gpu_2d *g)
{
	while (g->nres)
		destroy(g, g->nres - 1);
	free(g->res);
	g->res = NULL;
	g->scanout_res = 0;
	g->cursor.visible = false;
}

/* Whether r lies inside a w x h area. */
static bool rect_inside(const struct virtio_gpu_rect *r, uint32_t w, uint32_t h)
{
	return (uint64_t)r->x + r->width <= w && (uint64_t)r->y + r->height <= h;
}

/* Copies len bytes of the resource's backing from offset off into dst. */
static bool backing_read(const struct gpu_resource *r, uint64_t off, uint8_t *dst, uint64_t len)
{
	if (off > r->backing_len || len > r->backing_len - off)
		return false;
	/* The entry holding off: the last whose start is <= off. */
	uint32_t lo = 0, hi = r->nbacking;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->backing[mid].start <= off)
			lo = mid;
		else
			hi = mid;
	}
	for (uint32_t i = lo; len && i < r->nbacking; i++) {
		uint64_t in = off - r->backing[i].start;
		uint64_t n = r->backing[i].len - in;
		if (n > len)
			n = len;
		memcpy(dst, r->backing[i].host + in, n);
		dst += n, off += n, len -= n;
	}
	return len == 0;
}

/* --- commands ----------------------------------------------------------------------------- */

struct request {
	const struct virtq_iov *iov;
	unsigned n;
	uint64_t len;
};

/* Reads the command's fixed part; false when the request is shorter. */
static bool take(const struct request *q, void *cmd, size_t size)
{
	return q->len >= size && iov_to_buf(q->iov, q->n, 0, cmd, size) == size;
}

/* Reads a create command, whose new resource's id is at *id: 0, or the error to answer (a
 * short request; an id of 0 or one in use). */
static uint32_t take_new(const struct gpu_2d *g, const struct request *q, void *cmd, size_t size, const uint32_t *id)
{
	if (!take(q, cmd, size))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	return *id == 0 || find(g, *id) ? VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID : 0;
}

/* Reads the command, then finds the resource it names at *id: 0, or the error to answer. */
static uint32_t take_resource(const struct gpu_2d *g, const struct request *q, void *cmd, size_t size,
			      const uint32_t *id, struct gpu_resource **r)
{
	if (!take(q, cmd, size))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	*r = find(g, *id);
	return *r ? 0 : VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
}

/* A new resource with id in the table (its fields zero but the id); NULL at the count bound or
 * out of memory. */
static struct gpu_resource *new_resource(struct gpu_2d *g, uint32_t id)
{
	if (g->nres >= GPU_2D_MAX_RESOURCES)
		return NULL;
	if (g->nres % 64 == 0) {
		struct gpu_resource **grown = realloc(g->res, (g->nres + 64) * sizeof(*grown));
		if (!grown)
			return NULL;
		g->res = grown;
	}
	struct gpu_resource *r = calloc(1, sizeof(*r));
	if (r) {
		r->id = id;
		g->res[g->nres++] = r;
	}
	return r;
}

static uint32_t create_2d(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_resource_create_2d c;
	uint32_t err = take_new(g, q, &c, sizeof(c), &c.resource_id);
	if (err)
		return err;
	if (!pixel_format_known(c.format) || c.width == 0 || c.height == 0 || c.width > 8192 || c.height > 8192)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	uint64_t bytes = (uint64_t)c.width * c.height * BPP;
	if (g->nres >= GPU_2D_MAX_RESOURCES || bytes > g->host_limit - g->host_bytes)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	uint8_t *pixels = calloc(1, bytes);
	struct gpu_resource *r = pixels ? new_resource(g, c.resource_id) : NULL;
	if (!r) {
		free(pixels);
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	}
	r->format = c.format, r->width = c.width, r->height = c.height, r->pixels = pixels;
	g->host_bytes += bytes;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

/* Reads nr backing entries from offset at of the request into r's backing: 0, or the error to
 * answer (r unchanged). Each entry must be non-empty and wholly in guest RAM. */
static uint32_t take_backing(struct gpu_2d *g, const struct request *q, uint64_t at, uint32_t nr,
			     struct gpu_resource *r)
{
	if (nr == 0 || nr > GPU_2D_MAX_BACKING_ENTRIES || q->len < at ||
	    q->len - at < (uint64_t)nr * sizeof(struct virtio_gpu_mem_entry))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	uint64_t bytes = (uint64_t)nr * sizeof(*r->backing);
	if (bytes > g->host_limit - g->host_bytes)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	struct gpu_backing_entry *b = malloc(bytes);
	if (!b)
		return VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY;
	uint64_t total = 0;
	for (uint32_t i = 0; i < nr; i++) {
		struct virtio_gpu_mem_entry m;
		iov_to_buf(q->iov, q->n, at + (uint64_t)i * sizeof(m), &m, sizeof(m));
		uint8_t *host = m.length ? guest_mem_ptr(g->mem, m.addr, m.length) : NULL;
		if (!host) { /* empty, or not all in guest RAM */
			free(b);
			return VIRTIO_GPU_RESP_ERR_UNSPEC;
		}
		b[i] = (struct gpu_backing_entry){.host = host, .len = m.length, .start = total};
		total += m.length;
	}
	r->backing = b;
	r->nbacking = nr;
	r->backing_len = total;
	g->host_bytes += bytes;
	return 0;
}

static uint32_t create_blob(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_resource_create_blob c;
	uint32_t err = take_new(g, q, &c, sizeof(c), &c.resource_id);
	if (err)
		return err;
	if (c.blob_mem != VIRTIO_GPU_BLOB_MEM_GUEST || (c.blob_flags & VIRTIO_GPU_BLOB_FLAG_USE_MAPPABLE) ||
	    c.size == 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	struct gpu_resource probe = {0};
	err = take_backing(g, q, sizeof(c), c.nr_entries, &probe);
	if (err)
		return err;
	struct gpu_resource *r = probe.backing_len >= c.size ? new_resource(g, c.resource_id) : NULL;
	if (!r) {
		detach(g, &probe);
		return probe.backing_len >= c.size ? VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY : VIRTIO_GPU_RESP_ERR_UNSPEC;
	}
	r->blob = true, r->blob_size = c.size;
	r->backing = probe.backing, r->nbacking = probe.nbacking, r->backing_len = probe.backing_len;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static void scanout_off(struct gpu_2d *g)
{
	if (!g->scanout_res)
		return;
	g->scanout_res = 0;
	g->events->scanout_changed(g->opaque);
}

static uint32_t unref(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_resource_unref c;
	if (!take(q, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	for (unsigned i = 0; i < g->nres; i++) {
		if (g->res[i]->id != c.resource_id)
			continue;
		if (g->scanout_res == c.resource_id)
			scanout_off(g); /* a driver should disable it first; do it for one that did not */
		destroy(g, i);
		return VIRTIO_GPU_RESP_OK_NODATA;
	}
	return VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
}

/* Shows rectangle sr of picture im of resource r (all checked); an event when it changed. */
static uint32_t show(struct gpu_2d *g, const struct gpu_resource *r, const struct gpu_image *im,
		     const struct virtio_gpu_rect *sr)
{
	struct gpu_rect s = {sr->x, sr->y, sr->width, sr->height};
	if (g->scanout_res == r->id && !memcmp(&s, &g->scanout, sizeof(s)) && !memcmp(im, &g->image, sizeof(*im)))
		return VIRTIO_GPU_RESP_OK_NODATA;
	g->scanout_res = r->id;
	g->image = *im;
	g->scanout = s;
	g->events->scanout_changed(g->opaque);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

_Static_assert(offsetof(struct virtio_gpu_set_scanout_blob, resource_id) ==
		       offsetof(struct virtio_gpu_set_scanout, resource_id),
	       "SET_SCANOUT_BLOB begins as SET_SCANOUT does");

/* The scanout commands' common start (c: their first bytes): 0 with *r the resource to show,
 * or the status to answer, *r NULL (an empty rectangle or resource 0 turns the scanout off). */
static uint32_t scanout_target(struct gpu_2d *g, const void *cmd, struct gpu_resource **r)
{
	struct virtio_gpu_set_scanout c;
	memcpy(&c, cmd, sizeof(c));
	*r = NULL;
	if (c.scanout_id != 0)
		return VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	if (c.resource_id == 0 || c.r.width == 0 || c.r.height == 0) {
		scanout_off(g);
		return VIRTIO_GPU_RESP_OK_NODATA;
	}
	*r = find(g, c.resource_id);
	return *r ? 0 : VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID;
}

static uint32_t set_scanout(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_set_scanout c;
	struct gpu_resource *r;
	if (!take(q, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	uint32_t status = scanout_target(g, &c, &r);
	if (!r)
		return status;
	if (r->blob || !rect_inside(&c.r, r->width, r->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	struct gpu_image im = {r->format, r->width, r->height, r->width * BPP, 0};
	return show(g, r, &im, &c.r);
}

/* SET_SCANOUT_BLOB: the picture is described by the command and must lie in the blob and in its
 * pages (a blob whose pages were taken back shows nothing). */
static uint32_t set_scanout_blob(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_set_scanout_blob c;
	struct gpu_resource *r;
	if (!take(q, &c, sizeof(c)))
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	uint32_t status = scanout_target(g, &c, &r);
	if (!r)
		return status;
	struct gpu_image im = {c.format, c.width, c.height, c.strides[0], c.offsets[0]};
	/* The last row's end, in the blob: at most 8191 * (2^32 - 1) + 2^32 - 1 + 8192 * 4. */
	uint64_t end = im.offset + (uint64_t)im.stride * (im.height - 1) + (uint64_t)im.width * BPP;
	if (!r->blob || !pixel_format_known(im.format) || im.width == 0 || im.height == 0 || im.width > 8192 ||
	    im.height > 8192 || im.stride < im.width * BPP || end > r->blob_size || end > r->backing_len ||
	    !rect_inside(&c.r, im.width, im.height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	r->format = im.format, r->width = im.width, r->height = im.height;
	if (!g->blob_shown)
		log_info("virtio-gpu: the guest shows a %ux%u blob: its framebuffer stays in guest memory, "
			 "with no copy in the monitor",
			 im.width, im.height);
	g->blob_shown = true;
	return show(g, r, &im, &c.r);
}

static uint32_t flush(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_resource_flush c;
	struct gpu_resource *r;
	uint32_t err = take_resource(g, q, &c, sizeof(c), &c.resource_id, &r);
	if (err)
		return err;
	if (g->scanout_res != c.resource_id && r->blob) /* a blob's size is the one it is shown with */
		return VIRTIO_GPU_RESP_OK_NODATA;
	if (!rect_inside(&c.r, r->width, r->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (g->scanout_res != c.resource_id)
		return VIRTIO_GPU_RESP_OK_NODATA;
	/* The flushed part that the scanout shows, in scanout coordinates. */
	const struct gpu_rect *s = &g->scanout;
	uint64_t x0 = c.r.x > s->x ? c.r.x : s->x, y0 = c.r.y > s->y ? c.r.y : s->y;
	uint64_t x1 = (uint64_t)c.r.x + c.r.width, y1 = (uint64_t)c.r.y + c.r.height;
	if (x1 > (uint64_t)s->x + s->w)
		x1 = (uint64_t)s->x + s->w;
	if (y1 > (uint64_t)s->y + s->h)
		y1 = (uint64_t)s->y + s->h;
	if (x1 > x0 && y1 > y0)
		g->events->flushed(g->opaque,
				   (struct gpu_rect){(uint32_t)(x0 - s->x), (uint32_t)(y0 - s->y), (uint32_t)(x1 - x0),
						     (uint32_t)(y1 - y0)});
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t transfer(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_transfer_to_host_2d c;
	struct gpu_resource *r;
	uint32_t err = take_resource(g, q, &c, sizeof(c), &c.resource_id, &r);
	if (err)
		return err;
	if (r->blob) /* the guest's pages are the picture: nothing to copy */
		return VIRTIO_GPU_RESP_OK_NODATA;
	if (!r->backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (!rect_inside(&c.r, r->width, r->height))
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	if (c.r.width == 0 || c.r.height == 0)
		return VIRTIO_GPU_RESP_OK_NODATA;
	uint64_t stride = (uint64_t)r->width * BPP, row = (uint64_t)c.r.width * BPP;
	/* Row h of the rectangle is at offset + stride * h in the backing (as QEMU reads it). */
	uint64_t last = c.offset + stride * (c.r.height - 1);
	if (c.offset > r->backing_len || last < c.offset || last > r->backing_len || row > r->backing_len - last)
		return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	uint8_t *dst = r->pixels + c.r.y * stride + (uint64_t)c.r.x * BPP;
	if (c.r.x == 0 && c.r.width == r->width) /* whole rows: one run */
		return backing_read(r, c.offset, dst, stride * c.r.height) ? VIRTIO_GPU_RESP_OK_NODATA
									   : VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	for (uint32_t h = 0; h < c.r.height; h++)
		if (!backing_read(r, c.offset + stride * h, dst + stride * h, row))
			return VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER;
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t attach_backing(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_resource_attach_backing c;
	struct gpu_resource *r;
	uint32_t err = take_resource(g, q, &c, sizeof(c), &c.resource_id, &r);
	if (err)
		return err;
	if (r->backing || r->blob) /* a blob's pages come with it, once */
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	err = take_backing(g, q, sizeof(c), c.nr_entries, r);
	return err ? err : VIRTIO_GPU_RESP_OK_NODATA;
}

static uint32_t detach_backing(struct gpu_2d *g, const struct request *q)
{
	struct virtio_gpu_resource_detach_backing c;
	struct gpu_resource *r;
	uint32_t err = take_resource(g, q, &c, sizeof(c), &c.resource_id, &r);
	if (err)
		return err;
	if (!r->backing)
		return VIRTIO_GPU_RESP_ERR_UNSPEC;
	if (r->blob && g->scanout_res == r->id)
		scanout_off(g); /* its picture was those pages */
	detach(g, r);
	return VIRTIO_GPU_RESP_OK_NODATA;
}

static size_t display_info(const struct gpu_2d *g, uint8_t *resp)
{
	struct virtio_gpu_resp_display_info d;
	memset(&d, 0, sizeof(d));
	d.hdr.type = VIRTIO_GPU_RESP_OK_DISPLAY_INFO;
	d.pmodes[0].r.width = g->pref_w;
	d.pmodes[0].r.height = g->pref_h;
	d.pmodes[0].enabled = 1;
	memcpy(resp, &d, sizeof(d));
	return sizeof(d);
}

static size_t get_edid(const struct gpu_2d *g, const struct request *q, uint8_t *resp)
{
	struct virtio_gpu_cmd_get_edid c;
	struct virtio_gpu_resp_edid d;
	memset(&d, 0, sizeof(d));
	if (!take(q, &c, sizeof(c)))
		d.hdr.type = VIRTIO_GPU_RESP_ERR_UNSPEC;
	else if (c.scanout != 0)
		d.hdr.type = VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID;
	if (d.hdr.type) {
		memcpy(resp, &d.hdr, sizeof(d.hdr));
		return sizeof(d.hdr);
	}
	d.hdr.type = VIRTIO_GPU_RESP_OK_EDID;
	d.size = EDID_SIZE;
	edid_build(d.edid, g->pref_w, g->pref_h);
	memcpy(resp, &d, sizeof(d));
	return sizeof(d);
}

/* --- cursor ------------------------------------------------------------------------------- */

static void cursor_command(struct gpu_2d *g, const struct request *q, uint32_t type)
{
	struct virtio_gpu_update_cursor c;
	if (!take(q, &c, sizeof(c)) || c.pos.scanout_id != 0)
		return; /* the cursor queue has no answers: a bad command is ignored */
	struct gpu_cursor *cur = &g->cursor;
	cur->x = (int32_t)c.pos.x, cur->y = (int32_t)c.pos.y;
	if (type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
		g->events->cursor_changed(g->opaque, false);
		return;
	}
	struct gpu_resource *r = c.resource_id ? find(g, c.resource_id) : NULL;
	cur->visible = r != NULL;
	memset(cur->image, 0, sizeof(cur->image));
	if (r && r->blob) /* B8G8R8A8 already, the cursor image's own layout */
		cur->visible = r->blob_size >= sizeof(cur->image) && backing_read(r, 0, cur->image, sizeof(cur->image));
	else if (r) {
		uint32_t w = r->width < GPU_2D_CURSOR ? r->width : GPU_2D_CURSOR;
		uint32_t h = r->height < GPU_2D_CURSOR ? r->height : GPU_2D_CURSOR;
		for (uint32_t y = 0; y < h; y++)
			pixel_row_to_bgra(r->format, r->pixels + (uint64_t)y * r->width * BPP,
					  cur->image + y * GPU_2D_CURSOR * BPP, w);
	}
	if (cur->visible) {
		cur->hot_x = c.hot_x < GPU_2D_CURSOR ? c.hot_x : GPU_2D_CURSOR - 1;
		cur->hot_y = c.hot_y < GPU_2D_CURSOR ? c.hot_y : GPU_2D_CURSOR - 1;
	}
	g->events->cursor_changed(g->opaque, true);
}

/* --- dispatch ----------------------------------------------------------------------------- */

size_t gpu_2d_execute(struct gpu_2d *g, const struct virtq_iov *iov, unsigned n, uint64_t len,
		      uint8_t resp[GPU_2D_RESP_MAX])
{
	const struct request q = {iov, n, len};
	struct virtio_gpu_ctrl_hdr hdr;
	if (!take(&q, &hdr, sizeof(hdr))) {
		memset(resp, 0, sizeof(hdr));
		uint32_t type = VIRTIO_GPU_RESP_ERR_UNSPEC;
		memcpy(resp, &type, sizeof(type));
		return sizeof(hdr);
	}
	if (hdr.type == VIRTIO_GPU_CMD_UPDATE_CURSOR || hdr.type == VIRTIO_GPU_CMD_MOVE_CURSOR) {
		cursor_command(g, &q, hdr.type);
		return 0;
	}
	uint32_t status;
	size_t size = sizeof(hdr);
	switch (hdr.type) {
	case VIRTIO_GPU_CMD_GET_DISPLAY_INFO:
		size = display_info(g, resp);
		status = 0;
		break;
	case VIRTIO_GPU_CMD_GET_EDID:
		size = get_edid(g, &q, resp);
		status = 0;
		break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_2D: status = create_2d(g, &q); break;
	case VIRTIO_GPU_CMD_RESOURCE_UNREF: status = unref(g, &q); break;
	case VIRTIO_GPU_CMD_SET_SCANOUT: status = set_scanout(g, &q); break;
	case VIRTIO_GPU_CMD_SET_SCANOUT_BLOB: status = set_scanout_blob(g, &q); break;
	case VIRTIO_GPU_CMD_RESOURCE_CREATE_BLOB: status = create_blob(g, &q); break;
	case VIRTIO_GPU_CMD_RESOURCE_FLUSH: status = flush(g, &q); break;
	case VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D: status = transfer(g, &q); break;
	case VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING: status = attach_backing(g, &q); break;
	case VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING: status = detach_backing(g, &q); break;
	default: status = VIRTIO_GPU_RESP_ERR_UNSPEC; break; /* 3D, mapped blobs, capsets: not offered */
	}
	struct virtio_gpu_ctrl_hdr out;
	if (status) {
		memset(resp, 0, sizeof(out));
		size = sizeof(out);
	}
	memcpy(&out, resp, sizeof(out));
	if (status)
		out.type = status;
	/* Commands complete in order, before the answer: a fence is signalled by echoing it. */
	out.flags = hdr.flags & VIRTIO_GPU_FLAG_FENCE;
	out.fence_id = out.flags ? hdr.fence_id : 0;
	out.ctx_id = hdr.ctx_id;
	out.ring_idx = 0;
	memcpy(resp, &out, sizeof(out));
	return size;
}

/* Converts n pixels of blob r from offset off to XRGB8888 at dst, through a small bounce buffer
 * (the guest's bytes are copied once before they are looked at). */
static bool blob_row(const struct gpu_resource *r, uint32_t format, uint64_t off, uint8_t *dst, uint32_t n)
{
	uint8_t chunk[256 * BPP];
	while (n) {
		uint32_t k = n < 256 ? n : 256;
		if (!backing_read(r, off, chunk, (uint64_t)k * BPP))
			return false;
		pixel_row_to_bgrx(format, chunk, dst, k);
		off += (uint64_t)k * BPP, dst += (size_t)k * BPP, n -= k;
	}
	return true;
}

bool gpu_2d_read_scanout(const struct gpu_2d *g, struct gpu_rect r, uint8_t *dst, size_t dst_stride)
{
	const struct gpu_resource *res = g->scanout_res ? find(g, g->scanout_res) : NULL;
	if (!res || (uint64_t)r.x + r.w > g->scanout.w || (uint64_t)r.y + r.h > g->scanout.h)
		return false;
	const struct gpu_image *im = &g->image;
	uint64_t src = im->offset + (uint64_t)(g->scanout.y + r.y) * im->stride + (uint64_t)(g->scanout.x + r.x) * BPP;
	for (uint32_t y = 0; y < r.h; y++, src += im->stride, dst += dst_stride) {
		if (!res->blob)
			pixel_row_to_bgrx(im->format, res->pixels + src, dst, r.w);
		else if (!blob_row(res, im->format, src, dst, r.w))
			return false;
	}
	return true;
}

/* usb_libusb: usbip_export on the host's usbfs through libusb (usb_libusb.h). */
#include "usb_libusb.h"

#include <errno.h>
#include <libusb.h>
#include <linux/usbdevice_fs.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usbip_export.h"

#define CHUNK     (64u << 10)
#define MAX_FDS   16
#define MAX_IFACE 32

struct dev {
	libusb_context *ctx;
	libusb_device_handle *h;
	int config;          /* the active configuration's value */
	uint8_t claimed[32]; /* the interface numbers claimed, a bit each */
	uint32_t endpoints;  /* their endpoints in every alternate setting: bit n out, 16 + n in */
	struct usbip_export x;
};

static struct dev dev; /* the one device this process serves (a device gone is shojid's to see: it
			* ends this process) */

/* libusb's word as an errno, for the guest's status. */
static int errno_of(int r)
{
	switch (r) {
	case LIBUSB_ERROR_NOT_FOUND: return -ENOENT;
	case LIBUSB_ERROR_INVALID_PARAM: return -EINVAL;
	case LIBUSB_ERROR_NO_DEVICE: return -ENODEV;
	case LIBUSB_ERROR_BUSY: return -EBUSY;
	case LIBUSB_ERROR_PIPE: return -EPIPE;
	case LIBUSB_ERROR_TIMEOUT: return -ETIMEDOUT;
	case LIBUSB_ERROR_OVERFLOW: return -EOVERFLOW;
	case LIBUSB_ERROR_NO_MEM: return -ENOMEM;
	case LIBUSB_ERROR_NOT_SUPPORTED: return -EOPNOTSUPP;
	default: return -EIO;
	}
}

/* A transfer's end as the status a Linux URB would have. */
static int status_of(enum libusb_transfer_status s)
{
	switch (s) {
	case LIBUSB_TRANSFER_COMPLETED: return 0;
	case LIBUSB_TRANSFER_CANCELLED: return -ECONNRESET;
	case LIBUSB_TRANSFER_STALL: return -EPIPE;
	case LIBUSB_TRANSFER_NO_DEVICE: return -ESHUTDOWN;
	case LIBUSB_TRANSFER_TIMED_OUT: return -ETIMEDOUT;
	case LIBUSB_TRANSFER_OVERFLOW: return -EOVERFLOW;
	default: return -EPROTO;
	}
}

static void LIBUSB_CALL done(struct libusb_transfer *t)
{
	struct usbip_urb *u = t->user_data;
	u->actual = t->actual_length > 0 ? (uint32_t)t->actual_length : 0;
	if (u->type == USBIP_XFER_CONTROL && u->in && u->actual)
		memcpy(u->buf, t->buffer + LIBUSB_CONTROL_SETUP_SIZE, u->actual < u->len ? u->actual : u->len);
	for (uint32_t i = 0; u->type == USBIP_XFER_ISO && i < u->npackets; i++) {
		u->iso[i].actual = t->iso_packet_desc[i].actual_length;
		u->iso[i].status = status_of(t->iso_packet_desc[i].status);
	}
	int status = status_of(t->status);
	libusb_free_transfer(t); /* a control transfer's own buffer with it (LIBUSB_TRANSFER_FREE_BUFFER) */
	usbip_export_complete(&dev.x, u, status);
}

/* ISO packets as usbfs lays them out: one after the other from the buffer's start. */
static bool iso_packed(const struct usbip_urb *u)
{
	uint64_t at = 0;
	for (uint32_t i = 0; i < u->npackets; i++) {
		if (u->iso[i].offset != at)
			return false;
		at += u->iso[i].length;
	}
	return true;
}

/* The transfer for u, filled; NULL when out of memory. */
static struct libusb_transfer *transfer_of(struct dev *d, struct usbip_urb *u)
{
	unsigned char ep = (unsigned char)(u->ep | (u->in ? LIBUSB_ENDPOINT_IN : 0));
	struct libusb_transfer *t = libusb_alloc_transfer((int)u->npackets);
	if (!t)
		return NULL;
	if (u->type == USBIP_XFER_CONTROL) {
		unsigned char *buf = malloc(LIBUSB_CONTROL_SETUP_SIZE + u->len);
		if (!buf) {
			libusb_free_transfer(t);
			return NULL;
		}
		memcpy(buf, u->setup, LIBUSB_CONTROL_SETUP_SIZE);
		if (!u->in)
			memcpy(buf + LIBUSB_CONTROL_SETUP_SIZE, u->buf, u->len);
		libusb_fill_control_transfer(t, d->h, buf, done, u, 0);
		t->flags = LIBUSB_TRANSFER_FREE_BUFFER;
	} else if (u->type == USBIP_XFER_ISO) {
		libusb_fill_iso_transfer(t, d->h, ep, u->buf, (int)u->len, (int)u->npackets, done, u, 0);
		for (uint32_t i = 0; i < u->npackets; i++)
			t->iso_packet_desc[i].length = u->iso[i].length;
	} else { /* usbfs runs a bulk transfer on an interrupt endpoint as an interrupt one */
		libusb_fill_bulk_transfer(t, d->h, ep, u->buf, (int)u->len, done, u, 0);
	}
	if (u->flags & USBIP_URB_SHORT_NOT_OK)
		t->flags |= LIBUSB_TRANSFER_SHORT_NOT_OK;
	if (u->flags & USBIP_URB_ZERO_PACKET)
		t->flags |= LIBUSB_TRANSFER_ADD_ZERO_PACKET;
	return t;
}

static bool is_claimed(const struct dev *d, uint8_t interface)
{
	return d->claimed[interface / 8] & (1u << (interface % 8));
}

/* Whether a control request names an interface or an endpoint the device's claimed interfaces
 * do not have: usbfs would try to claim one on the guest's word (and log each try), so such a
 * request stalls here. */
static bool names_another(const struct dev *d, const uint8_t setup[8])
{
	unsigned recipient = setup[0] & 0x1f, index = setup[4];
	if (recipient == LIBUSB_RECIPIENT_INTERFACE)
		return !is_claimed(d, (uint8_t)index);
	if (recipient == LIBUSB_RECIPIENT_ENDPOINT && (index & 0x0f))
		return !(d->endpoints & (1u << ((index & 0x0f) + (index & 0x80 ? 16 : 0))));
	return false;
}

static int b_submit(void *ctx, struct usbip_urb *u)
{
	struct dev *d = ctx;
	if (u->type == USBIP_XFER_ISO && !iso_packed(u))
		return -EINVAL;
	if (u->type == USBIP_XFER_CONTROL && names_another(d, u->setup))
		return -EPIPE;
	struct libusb_transfer *t = transfer_of(d, u);
	if (!t)
		return -ENOMEM;
	int r = libusb_submit_transfer(t);
	if (r < 0) {
		libusb_free_transfer(t);
		return errno_of(r);
	}
	u->backend = t; /* until done() */
	return 0;
}

static void b_cancel(void *ctx, struct usbip_urb *u)
{
	(void)ctx;
	libusb_cancel_transfer(u->backend); /* one that has just ended is done() all the same */
}

static int b_set_configuration(void *ctx, uint8_t value)
{
	struct dev *d = ctx;
	return value == d->config ? 0 : -EPIPE;
}

static int b_set_interface(void *ctx, uint8_t interface, uint8_t alt)
{
	struct dev *d = ctx;
	if (!is_claimed(d, interface))
		return -EPIPE;
	int r = libusb_set_interface_alt_setting(d->h, interface, alt);
	return r < 0 ? errno_of(r) : 0;
}

static int b_clear_halt(void *ctx, uint8_t endpoint_address)
{
	struct dev *d = ctx;
	const uint8_t setup[8] = {LIBUSB_RECIPIENT_ENDPOINT, 0, 0, 0, endpoint_address};
	if (names_another(d, setup))
		return -EPIPE;
	int r = libusb_clear_halt(d->h, endpoint_address);
	return r < 0 ? errno_of(r) : 0;
}

static const struct usbip_backend ops = {b_submit, b_cancel, b_set_configuration, b_set_interface, b_clear_halt};

/* The active configuration's interfaces, from their host drivers to this process. */
static int claim_all(struct dev *d, struct err *e)
{
	struct libusb_config_descriptor *c;
	int r = libusb_get_configuration(d->h, &d->config);
	if (r < 0)
		return err_set(e, "cannot read the device's configuration (%s)", libusb_strerror(r));
	if (d->config == 0)
		return 0; /* not configured: nothing to claim */
	if ((r = libusb_get_active_config_descriptor(libusb_get_device(d->h), &c)) < 0)
		return err_set(e, "cannot read the device's configuration (%s)", libusb_strerror(r));
	for (int i = 0; i < c->bNumInterfaces && i < MAX_IFACE && r >= 0; i++) {
		if (c->interface[i].num_altsetting < 1)
			continue;
		int n = c->interface[i].altsetting[0].bInterfaceNumber;
		if (n >= MAX_IFACE) { /* beyond what usbfs's privilege mask can name */
			r = LIBUSB_ERROR_NOT_SUPPORTED;
			err_set(e, "the device's interface %d is numbered beyond what shoji serves (below %d)", n,
				MAX_IFACE);
			break;
		}
		r = libusb_detach_kernel_driver(d->h, n);
		if (r == LIBUSB_ERROR_NOT_FOUND)
			r = 0; /* no host driver had it */
		if (r >= 0)
			r = libusb_claim_interface(d->h, n);
		if (r < 0) {
			err_set(e, "cannot take interface %d from the host's driver (%s)", n, libusb_strerror(r));
			break;
		}
		d->claimed[n / 8] |= (uint8_t)(1u << (n % 8));
		for (int a = 0; a < c->interface[i].num_altsetting; a++)
			for (int k = 0; k < c->interface[i].altsetting[a].bNumEndpoints; k++) {
				uint8_t ep = c->interface[i].altsetting[a].endpoint[k].bEndpointAddress;
				d->endpoints |= 1u << ((ep & 0x0f) + (ep & 0x80 ? 16 : 0));
			}
	}
	libusb_free_config_descriptor(c);
	return r < 0 ? -1 : 0;
}

int usb_libusb_open(int usbfs, struct err *e)
{
	int r;
	libusb_set_option(NULL, LIBUSB_OPTION_NO_DEVICE_DISCOVERY); /* it names no device: it has one */
	if ((r = libusb_init(&dev.ctx)) < 0)
		return err_set(e, "libusb: %s", libusb_strerror(r));
	if ((r = libusb_wrap_sys_device(dev.ctx, (intptr_t)usbfs, &dev.h)) < 0)
		return err_set(e, "libusb cannot use the device (%s)", libusb_strerror(r));
	if (claim_all(&dev, e) < 0)
		return -1;
	/* usbfs's own bounds on this descriptor from now: only the interfaces claimed, no driver
	 * given or taken, no reset */
	uint32_t mask = 0;
	for (int n = 0; n < MAX_IFACE; n++)
		mask |= is_claimed(&dev, (uint8_t)n) ? 1u << n : 0;
	if (ioctl(usbfs, USBDEVFS_DROP_PRIVILEGES, &mask) < 0)
		return err_errno(e, errno, "cannot drop the device's usbfs privileges");
	return 0;
}

/* The guest's bytes in[*at..*have): as many as the exporter takes now. */
static int take(uint8_t *in, size_t *at, size_t have, struct err *e)
{
	size_t used;
	if (*at == have || !usbip_export_can_take(&dev.x))
		return 0;
	if (usbip_export_feed(&dev.x, in + *at, have - *at, &used, e) < 0)
		return -1;
	*at += used;
	return 0;
}

#define GO_ON (-1)

/* One read of the guest (when all it sent before was taken) and one write of the replies, which
 * goes out as soon as there is one (a transfer that has just ended, whatever poll said before
 * it did): GO_ON, else how it ended. */
static int guest_io(int guest, short revents, uint8_t *in, size_t *at, size_t *have, struct err *e)
{
	size_t n;
	const uint8_t *out = usbip_export_output(&dev.x, &n);
	if (n) {
		ssize_t w = send(guest, out, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return err_set(e,
				       errno == EPIPE || errno == ECONNRESET ? "the guest closed it"
									     : "writing to the guest failed"),
			       errno == EPIPE || errno == ECONNRESET ? USBIP_END_CLOSED : USBIP_END_FAILED;
		if (w > 0)
			usbip_export_consumed(&dev.x, (size_t)w);
	}
	if ((revents & (POLLHUP | POLLERR)) && *at < *have) /* nobody is left to answer what waits */
		return err_set(e, "the guest closed it"), USBIP_END_CLOSED;
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && *at == *have) { /* its last bytes first; then its end */
		ssize_t r = recv(guest, in, CHUNK, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return err_set(e, "the guest closed it"), USBIP_END_CLOSED;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return err_errno(e, errno, "reading the guest"), USBIP_END_FAILED;
		*at = 0;
		*have = r > 0 ? (size_t)r : 0;
	}
	return take(in, at, *have, e) < 0 ? USBIP_END_BROKE : GO_ON;
}

enum usbip_end usb_libusb_serve(int guest, uint32_t devid, const uint8_t *configs, unsigned n, struct err *e)
{
	static uint8_t in[CHUNK];
	size_t at = 0, have = 0;
	if (usbip_export_init(&dev.x, devid, configs, n, &ops, &dev) < 0)
		return err_set(e, "out of memory"), USBIP_END_FAILED;
	for (;;) {
		struct pollfd p[1 + MAX_FDS];
		size_t out, np = 1;
		usbip_export_output(&dev.x, &out);
		bool reading = at == have && usbip_export_can_take(&dev.x);
		p[0] = (struct pollfd){.fd = guest, .events = (short)((reading ? POLLIN : 0) | (out ? POLLOUT : 0))};
		const struct libusb_pollfd **lp = libusb_get_pollfds(dev.ctx);
		for (size_t i = 0; lp && lp[i] && np < 1 + MAX_FDS; i++)
			p[np++] = (struct pollfd){.fd = lp[i]->fd, .events = lp[i]->events};
		libusb_free_pollfds(lp);
		if (poll(p, np, -1) < 0 && errno != EINTR)
			return err_errno(e, errno, "poll"), USBIP_END_FAILED;
		bool usb = false;
		for (size_t i = 1; i < np; i++)
			usb |= p[i].revents != 0;
		if (usb) {
			struct timeval now = {0, 0};
			libusb_handle_events_timeout_completed(dev.ctx, &now, NULL);
		}
		int end = guest_io(guest, p[0].revents, in, &at, &have, e);
		if (end != GO_ON)
			return (enum usbip_end)end;
	}
}

unsigned long usb_libusb_passed(void)
{
	return dev.x.filter.passed;
}

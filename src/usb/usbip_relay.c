/* usbip_relay: the copy loop (usbip_relay.h). Both kernels read and write a USB/IP connection on
 * threads of their own, so the relay may block on a write: the peer's reader drains it. */
#include "usbip_relay.h"

#include "../common/file.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (64u << 10)

/* What the guest sent, through the filter to the host: true to go on, else false with *end. */
static bool from_guest(int guest, int host, struct usbip_filter *f, uint8_t *buf, enum usbip_relay_end *end,
		       struct err *e)
{
	ssize_t n = recv(guest, buf, CHUNK, 0);
	*end = USBIP_RELAY_FAILED;
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		if (n == 0 || errno == ECONNRESET) {
			*end = USBIP_RELAY_CLOSED;
			err_set(e, "the guest closed it");
		} else
			err_errno(e, errno, "reading the guest");
		return false;
	}
	for (size_t at = 0, used; at < (size_t)n; at += used) {
		enum usbip_feed r = usbip_filter_feed(f, buf + at, (size_t)n - at, &used, e);
		if (r == USBIP_FEED_ERROR) {
			*end = USBIP_RELAY_BROKE;
			return false;
		}
		if (r == USBIP_FEED_MSG) {
			if (file_write_all(host, f->msg, f->have) < 0) {
				if (errno == EPIPE || errno == ECONNRESET) {
					*end = USBIP_RELAY_CLOSED;
					err_set(e, "usbip-host closed it");
				} else
					err_errno(e, errno, "writing to usbip-host");
				return false;
			}
			usbip_filter_next(f);
		}
	}
	return true;
}

/* What usbip-host sent, to the guest as it is: true to go on, else false with *end. */
static bool from_host(int guest, int host, uint8_t *buf, enum usbip_relay_end *end, struct err *e)
{
	ssize_t n = recv(host, buf, CHUNK, 0);
	*end = USBIP_RELAY_CLOSED;
	if (n < 0 && errno == EINTR)
		return true;
	if (n < 0) {
		*end = USBIP_RELAY_FAILED;
		err_errno(e, errno, "reading usbip-host");
		return false;
	}
	if (n == 0) {
		err_set(e, "usbip-host closed it");
		return false;
	}
	if (file_write_all(guest, buf, (size_t)n) == 0)
		return true;
	if (errno == EPIPE || errno == ECONNRESET) {
		err_set(e, "the guest closed it");
	} else {
		*end = USBIP_RELAY_FAILED;
		err_errno(e, errno, "writing to the guest");
	}
	return false;
}

enum usbip_relay_end usbip_relay(int guest, int host, struct usbip_filter *f, struct err *e)
{
	static uint8_t buf[CHUNK];
	enum usbip_relay_end end = USBIP_RELAY_CLOSED;
	for (;;) {
		struct pollfd p[2] = {{.fd = guest, .events = POLLIN}, {.fd = host, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			err_errno(e, errno, "poll");
			return USBIP_RELAY_FAILED;
		}
		if (p[0].revents && !from_guest(guest, host, f, buf, &end, e))
			return end;
		if (p[1].revents && !from_host(guest, host, buf, &end, e))
			return end;
	}
}

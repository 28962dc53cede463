/* usbip_export: the device side of USB/IP for one device, in userspace. The guest's vhci-hcd
 * sends its URBs as USB/IP messages; usbip_filter frames and checks each one whole; this turns
 * a CMD_SUBMIT into a transfer that a backend runs on the real device (usb_libusb.c: the host's
 * usbfs, through libusb, in a jailed process), and the backend's completion into the RET_SUBMIT
 * the guest waits for; a CMD_UNLINK cancels a transfer in flight (RET_UNLINK). Written here
 * because no library serves USB/IP's device side in userspace: the kernel's usbip-host is the
 * only one, and it parses a guest's words in the host kernel (docs/SECURITY.md).
 *
 * The standard requests that change the device's state are not passed on raw, since the host
 * kernel must know of them: SET_CONFIGURATION, SET_INTERFACE and CLEAR_FEATURE(ENDPOINT_HALT)
 * become the backend's calls of those names and complete at once. At most
 * USBIP_EXPORT_MAX_URBS transfers and USBIP_EXPORT_MAX_BYTES of buffers are in flight; further
 * ones wait, in order, until completions free room, and an unlink still reaches one that waits
 * (it is answered at once, never started). Only when USBIP_EXPORT_MAX_WAITING wait too does
 * usbip_export_can_take say no, and the caller stops reading the guest (flow control, not an
 * error). Replies queue in an output buffer the caller writes to the guest.
 *
 * Replies (48-byte header, big-endian; devid, direction and endpoint 0, as the protocol says):
 *   RET_SUBMIT (3): seqnum, status (0 or -errno), actual_length, start_frame,
 *                   number_of_packets, error_count; then the data read (direction in: for ISO,
 *                   each packet's actual bytes one after the other), then the ISO packets'
 *                   descriptors (offset, length, actual_length, status)
 *   RET_UNLINK (4): the unlink's own seqnum, status (-ECONNRESET: cancelled in flight; 0: it
 *                   had completed already)
 * Pure; one thread. */
#ifndef SHOJI_USB_USBIP_EXPORT_H
#define SHOJI_USB_USBIP_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "usbip_filter.h"

/* How a guest's connection ended. */
enum usbip_end {
	USBIP_END_CLOSED, /* either side ended it, or the device went (e says which) */
	USBIP_END_BROKE,  /* the guest broke a rule: e says which */
	USBIP_END_FAILED, /* a read or write failed otherwise: e says which */
};

#define USBIP_EXPORT_MAX_URBS    256
#define USBIP_EXPORT_MAX_WAITING 64
#define USBIP_EXPORT_MAX_BYTES   (4u << 20) /* usbfs's buffers are one pool for the whole host (16 MiB) */

enum usbip_xfer { USBIP_XFER_CONTROL, USBIP_XFER_BULK /* or interrupt: the endpoint says */, USBIP_XFER_ISO };

struct usbip_iso_packet {
	uint32_t offset, length, actual;
	int32_t status;
};

/* One transfer the guest asked for; the backend fills in actual, iso[].actual and iso[].status. */
struct usbip_urb {
	uint32_t seqnum;
	uint8_t ep; /* the endpoint's number, 0..15 */
	bool in;
	enum usbip_xfer type;
	uint32_t flags;   /* the URB's transfer flags (USBIP_URB_SHORT_NOT_OK, USBIP_URB_ZERO_PACKET) */
	uint8_t setup[8]; /* control transfers */
	uint8_t *buf;     /* len bytes: the data stage (control), or the whole transfer */
	uint32_t len, actual;
	int32_t interval, start_frame, packets_sent; /* packets_sent: number_of_packets as the guest sent it */
	uint32_t npackets;
	struct usbip_iso_packet *iso;
	bool unlinking;         /* a CMD_UNLINK asked for it to be cancelled */
	uint32_t unlink_seqnum; /* that unlink's own seqnum */
	void *backend;          /* the backend's own transfer */
	struct usbip_urb *next; /* in flight */
};

#define USBIP_URB_SHORT_NOT_OK 0x0001u
#define USBIP_URB_ZERO_PACKET  0x0040u

/* What runs the transfers on the device. submit starts u (0), or refuses it (-errno: the guest
 * gets that status at once); its completion is usbip_export_complete, later, on the same thread.
 * cancel asks for u to end early: its completion still comes. The other three run at once and
 * return 0 or -errno. */
struct usbip_backend {
	int (*submit)(void *ctx, struct usbip_urb *u);
	void (*cancel)(void *ctx, struct usbip_urb *u);
	int (*set_configuration)(void *ctx, uint8_t value);
	int (*set_interface)(void *ctx, uint8_t interface, uint8_t alt);
	int (*clear_halt)(void *ctx, uint8_t endpoint_address);
};

struct usbip_export {
	struct usbip_filter filter;
	const struct usbip_backend *ops;
	void *ctx;
	struct usbip_urb *inflight;
	unsigned nurbs;
	size_t bytes;                             /* buffers in flight */
	struct usbip_urb *waiting, *waiting_tail; /* taken, not yet started: for room in flight */
	unsigned nwaiting;
	size_t waiting_bytes;
	uint8_t *out; /* replies: out[out_start..out_len) not yet taken by usbip_export_consumed */
	size_t out_start, out_len, out_cap;
};

/* An exporter of device devid (its configurations configs[0..n), as usbip_filter_init) whose
 * transfers ops runs with ctx. 0, or -1 when out of memory. */
int usbip_export_init(struct usbip_export *x, uint32_t devid, const uint8_t *configs, unsigned n,
		      const struct usbip_backend *ops, void *ctx);
/* Cancels nothing: the caller ends the backend's transfers first (their completions free them). */
void usbip_export_free(struct usbip_export *x);

/* Whether another message may be read: room for a transfer in flight. */
bool usbip_export_can_take(const struct usbip_export *x);
/* Takes the guest's bytes data[0..n): *used of them (it stops after a message once
 * usbip_export_can_take says no). 0, or -1 when the guest broke a rule (e says which) or memory
 * ran out: end the connection. */
int usbip_export_feed(struct usbip_export *x, const uint8_t *data, size_t n, size_t *used, struct err *e);
/* The backend's word that u ended with status (0 or -errno) and u->actual bytes (ISO: each
 * packet's); u is freed. */
void usbip_export_complete(struct usbip_export *x, struct usbip_urb *u, int status);

/* The replies waiting for the guest, and that n of them were written. */
const uint8_t *usbip_export_output(const struct usbip_export *x, size_t *n);
void usbip_export_consumed(struct usbip_export *x, size_t n);

#endif

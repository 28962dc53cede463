/* usbip_relay: the one process between a guest's USB/IP connection and the host kernel's
 * usbip-host (a socket pair whose other end usbip-host holds). What the guest sends passes
 * usbip_filter whole, message by message; what usbip-host sends is copied as it is. Runs in a
 * child of shojid confined as nobody under seccomp (shojid/usbassign.c), since it parses a
 * guest's bytes; the harness's fuzzing of usbip-host runs it too. */
#ifndef SHOJI_USB_USBIP_RELAY_H
#define SHOJI_USB_USBIP_RELAY_H

#include "../common/err.h"
#include "usbip_filter.h"

enum usbip_relay_end {
	USBIP_RELAY_CLOSED, /* either side ended the connection (e says which) */
	USBIP_RELAY_BROKE,  /* the guest broke a rule: e says which */
	USBIP_RELAY_FAILED, /* a read or write failed otherwise: e says which */
};

/* Relays until the connection ends; guest and host are blocking stream sockets, and SIGPIPE
 * is to be ignored (a peer gone is an end, not a signal). */
enum usbip_relay_end usbip_relay(int guest, int host, struct usbip_filter *f, struct err *e);

#endif

/* usbip_filter: the guest's USB/IP messages framed and checked whole before the exporter
 * (usbip_export.c) makes a transfer of one: values no honest vhci-hcd sends (a control transfer
 * whose setup packet's direction contradicts its own, a buffer of gigabytes, ISO packets outside
 * their buffer, a SET_CONFIGURATION to a configuration policy never judged) end the connection
 * at the first, in the jailed exporter process (shojid's usbexport.c), and the device goes back
 * to the host. (The rules were first written for the host kernel's usbip-host, which took such
 * values into host kernel code; the exporter relies on them for its own bounds.)
 *
 * The guest's messages (USB/IP, big-endian; 48-byte header):
 *   0 command (1 CMD_SUBMIT, 2 CMD_UNLINK), 4 seqnum, 8 devid, 12 direction (0 out, 1 in), 16 ep
 *   CMD_SUBMIT: 20 transfer_flags, 24 transfer_buffer_length, 28 start_frame,
 *               32 number_of_packets, 36 interval, 40 setup[8];
 *               then the buffer (direction out), then number_of_packets ISO descriptors of 16
 *               bytes (offset, length, actual_length, status)
 *   CMD_UNLINK: 20 the seqnum to unlink; the rest zero
 * The rules: one of those two commands, this device's devid, a direction of 0 or 1, an endpoint
 * below 16, transfer flags among those vhci-hcd sends, a buffer of at most USBIP_FILTER_MAX_XFER
 * bytes, at most USBIP_FILTER_MAX_ISO packets whose ranges lie within the buffer; on endpoint 0 a
 * setup packet whose wLength is the buffer's length and whose direction is the message's, and
 * a SET_CONFIGURATION only to 0 or a configuration in the allowed set. A message passes as it
 * came, save the guest kernel's DMA-mapping flags (0xff0000), which are cleared. What the host
 * sends back is the kernel's, copied as it is. Pure; one filter per connection; any thread. */
#ifndef SHOJI_USB_USBIP_FILTER_H
#define SHOJI_USB_USBIP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

#define USBIP_HEADER_SIZE     48u
#define USBIP_FILTER_MAX_XFER (1u << 20) /* bytes in one transfer (usb-storage asks 120 KiB at most) */
#define USBIP_FILTER_MAX_ISO  1024u      /* ISO packets in one transfer (the kernel's own bound) */
#define USBIP_FILTER_MAX_MSG  (USBIP_HEADER_SIZE + USBIP_FILTER_MAX_XFER + 16u * USBIP_FILTER_MAX_ISO)

struct usbip_filter {
	uint32_t devid;
	uint8_t configs[32]; /* the configuration values a SET_CONFIGURATION may choose */
	unsigned nconfigs;
	uint8_t *msg;      /* the message so far (USBIP_FILTER_MAX_MSG bytes, heap) */
	size_t have, want; /* bytes in msg, bytes the message has in all (48 until its header came) */
	bool failed;
	unsigned long passed; /* messages passed */
};

/* A filter for the device devid whose configurations are configs[0..n) (at most 32 kept). 0, or
 * -1 when out of memory. */
int usbip_filter_init(struct usbip_filter *f, uint32_t devid, const uint8_t *configs, unsigned n);
void usbip_filter_free(struct usbip_filter *f);

enum usbip_feed {
	USBIP_FEED_MORE,  /* all of the bytes taken; no whole message yet */
	USBIP_FEED_MSG,   /* *used bytes taken, and f->msg[0..f->have) is a whole message that passed */
	USBIP_FEED_ERROR, /* a rule broken (e says which): end the connection */
};

/* Takes bytes from data[0..n) up to the end of the next whole message. After USBIP_FEED_MSG, the
 * caller sends the message on and calls usbip_filter_next before feeding the rest. */
enum usbip_feed usbip_filter_feed(struct usbip_filter *f, const uint8_t *data, size_t n, size_t *used, struct err *e);
void usbip_filter_next(struct usbip_filter *f);

#endif

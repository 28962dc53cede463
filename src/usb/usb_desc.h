/* usb_desc: a USB device's descriptors, as the host's sysfs gives them in its `descriptors` file
 * (the device descriptor, then each configuration with its interfaces and endpoints, as the
 * device sent them), reduced to what policy judges: identity, class, and every interface of every
 * configuration and alternate setting. The bytes are the device's own, so hostile: every length
 * is checked, and a walk that does not add up ends with what was read marked incomplete. Pure. */
#ifndef SHOJI_USB_USB_DESC_H
#define SHOJI_USB_USB_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "usb_policy.h"

#define USB_DESCRIPTORS_MAX (64u << 10) /* bytes of descriptors read; beyond: incomplete */

/* Fills d's vid, pid, dev_class, ifaces and n_ifaces from the bytes (d's port and names are the
 * caller's). A device descriptor that is not one is an error; a configuration that is cut short
 * or malformed keeps the interfaces read before the fault and sets ifaces_truncated, which policy refuses. */
int usb_desc_parse(const uint8_t *bytes, size_t len, struct usb_device_info *d, struct err *e);

#endif

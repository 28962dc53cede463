/* usb_libusb: one guest's USB/IP connection served from a device the host's usbfs gives, through
 * libusb: usbip_export's backend (each guest URB a libusb transfer, submitted at once and
 * completed out of order, as usbfs allows) and the loop that moves the guest's bytes in and the
 * replies out. Runs in the exporter process, a child of shojid confined as nobody
 * (shojid/usbexport.c), which got the device's usbfs descriptor from shojid: libusb only wraps
 * it (no device discovery), so the process opens no device and names none.
 *
 * At the start the device's interfaces (its active configuration's) are taken from their host
 * drivers and claimed; at the end nothing is given back here (shojid lets the host's drivers probe
 * the device again). A guest's SET_CONFIGURATION to the active configuration succeeds without
 * touching the device; to another one it stalls, since the host's drivers would take the new
 * configuration's interfaces before they could be claimed. One thread. */
#ifndef SHOJI_USB_USB_LIBUSB_H
#define SHOJI_USB_USB_LIBUSB_H

#include <stdint.h>

#include "../common/err.h"
#include "usbip_export.h"

/* Takes the device whose usbfs descriptor is usbfs: libusb wraps it, and its interfaces leave
 * their host drivers for this process. 0, or -1 with e. */
int usb_libusb_open(int usbfs, struct err *e);
/* Serves the guest's connection (guest, a stream socket) for that device, whose USB/IP id is
 * devid and whose judged configurations are configs[0..n), until either side ends: how it ended,
 * with e saying why. Transfers may still be in flight then: the process is to exit (closing the
 * device ends them). */
enum usbip_end usb_libusb_serve(int guest, uint32_t devid, const uint8_t *configs, unsigned n, struct err *e);
/* The guest's messages that passed usbip_filter so far. */
unsigned long usb_libusb_passed(void);

#endif

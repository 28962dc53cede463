/* usb_sysfs: the USB devices the host has now, read from sysfs (/sys/bus/usb/devices): each
 * device's port (its directory's name), numbers, descriptors (usb_desc.c) and the names it gave
 * (made printable). Root hubs and interfaces are skipped. What a device wrote is hostile: this
 * runs in a confined process (shojid's USB scan), never in root's. */
#ifndef SHOJI_USB_USB_SYSFS_H
#define SHOJI_USB_USB_SYSFS_H

#include "../common/err.h"
#include "usb_policy.h"

#define USB_SYSFS_DEVICES "/sys/bus/usb/devices"
#define USB_MAX_DEVICES   SHOJI_USB_MAX_DEVICES

/* Fills out[0..*n) with the devices under dir, in port order. A device whose files cannot be
 * read (it went away meanwhile) is left out; one whose descriptors are not a device's is kept
 * with ifaces_truncated (policy refuses it). Where dir does not exist (a host with no USB bus)
 * there are none; -1 with e when it cannot be read. */
int usb_sysfs_scan(const char *dir, struct usb_device_info *out, unsigned cap, unsigned *n, struct err *e);

/* A number the kernel keeps in the directory of the device at port under USB_SYSFS_DEVICES
 * (devnum, bConfigurationValue); -1 when the device or the file is not there, or it holds none. */
long usb_sysfs_number(const char *port, const char *file);

#endif

/* usb_desc: the descriptors walk (usb_desc.h). Our own rather than libusb's parser, which works
 * only on a device libusb has enumerated through usbfs: this runs in a confined process that
 * reads sysfs and nothing else. Pure. */
#include "usb_desc.h"

#include <string.h>

#define DT_DEVICE    1
#define DT_CONFIG    2
#define DT_INTERFACE 4
#define DEVICE_LEN   18
#define CONFIG_LEN   9
#define IFACE_LEN    9

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void add_iface(struct usb_device_info *d, uint8_t config, const uint8_t *p)
{
	if (d->n_ifaces == USB_MAX_IFACES) {
		d->ifaces_truncated = true;
		return;
	}
	d->ifaces[d->n_ifaces++] = (struct usb_iface){.config = config,
						      .number = p[2],
						      .alt = p[3],
						      .cls = p[5],
						      .subclass = p[6],
						      .protocol = p[7]};
}

/* One configuration at p: its header says its total length, within which its descriptors must
 * add up. Returns the bytes it took, or 0 when it is malformed (the interfaces before the fault
 * stay in d). */
static size_t walk_config(const uint8_t *p, size_t left, struct usb_device_info *d)
{
	if (left < CONFIG_LEN || p[0] < CONFIG_LEN || p[1] != DT_CONFIG)
		return 0;
	size_t total = le16(p + 2);
	if (total < p[0] || total > left)
		return 0;
	uint8_t value = p[5];
	for (size_t off = p[0]; off < total;) {
		uint8_t len = p[off];
		if (len < 2 || len > total - off)
			return 0;
		if (p[off + 1] == DT_INTERFACE && len < IFACE_LEN)
			return 0; /* an interface that does not say its class: not to be judged */
		if (p[off + 1] == DT_INTERFACE)
			add_iface(d, value, p + off);
		off += len;
	}
	return total;
}

int usb_desc_parse(const uint8_t *bytes, size_t len, struct usb_device_info *d, struct err *e)
{
	if (len < DEVICE_LEN || bytes[0] != DEVICE_LEN || bytes[1] != DT_DEVICE)
		return err_set(e, "the device's descriptors do not start with a device descriptor");
	d->dev_class = bytes[4];
	d->vid = le16(bytes + 8);
	d->pid = le16(bytes + 10);
	d->n_ifaces = 0;
	d->ifaces_truncated = false;
	unsigned configs = bytes[17], seen = 0;
	size_t off = DEVICE_LEN;
	while (off < len) {
		size_t took = walk_config(bytes + off, len - off, d);
		if (took == 0)
			break;
		off += took;
		seen++;
	}
	if (off < len || seen < configs || len >= USB_DESCRIPTORS_MAX)
		d->ifaces_truncated = true;
	return 0;
}

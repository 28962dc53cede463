/* usbhotplug: USB devices plugged in and pulled out, heard from the kernel through libudev (the
 * udev daemon's events where it runs, the kernel's own otherwise), as usb-plug and usb-unplug
 * events: the port and vendor:product, nothing a device named itself. A device pulled out while
 * a VM holds it is given back at once (usbassign.c), without waiting for its relay to notice.
 * Main thread. */
#include <libudev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "daemon.h"

static struct udev *udev;
static struct udev_monitor *mon;

int usbhotplug_open(void)
{
	const char *source = access("/run/udev/control", F_OK) == 0 ? "udev" : "kernel";
	udev = udev_new();
	mon = udev ? udev_monitor_new_from_netlink(udev, source) : NULL;
	if (!mon || udev_monitor_filter_add_match_subsystem_devtype(mon, "usb", "usb_device") < 0 ||
	    udev_monitor_enable_receiving(mon) < 0) {
		log_warn("USB hot-plug: cannot hear the kernel's USB events (libudev, %s); usb-plug and "
			 "usb-unplug events will not come",
			 source);
		if (mon)
			udev_monitor_unref(mon);
		if (udev)
			udev_unref(udev);
		mon = NULL;
		udev = NULL;
		return -1;
	}
	return udev_monitor_get_fd(mon);
}

/* "46f4/1/0" (the kernel's PRODUCT: hex vendor, product, release) as "46f4:0001"; false when it
 * is not that. */
static bool product_id(const char *product, char out[10])
{
	unsigned vid, pid;
	int n = 0;
	if (!product || sscanf(product, "%4x/%4x/%*x%n", &vid, &pid, &n) < 2 || n == 0 || product[n])
		return false;
	snprintf(out, 10, "%04x:%04x", vid, pid);
	return true;
}

void usbhotplug_io(struct daemon *d)
{
	struct udev_device *dev = mon ? udev_monitor_receive_device(mon) : NULL;
	if (!dev)
		return;
	const char *action = udev_device_get_action(dev), *port = udev_device_get_sysname(dev);
	char id[10];
	bool add = action && strcmp(action, "add") == 0, remove = action && strcmp(action, "remove") == 0;
	if ((add || remove) && port && usb_port_ok(port) &&
	    product_id(udev_device_get_property_value(dev, "PRODUCT"), id)) {
		events_add(d, NULL, add ? "usb-plug" : "usb-unplug", "%s %s", port, id);
		const char *devnum = udev_device_get_property_value(dev, "DEVNUM");
		if (remove && devnum)
			usbassign_unplugged(d, port, (unsigned)strtoul(devnum, NULL, 10));
		if (add && !udev_device_get_property_value(dev, "SYNTH_UUID")) /* not udevadm trigger's replay */
			usbassign_plugged(d, port);
	}
	udev_device_unref(dev);
}

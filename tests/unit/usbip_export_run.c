/* usbip_export_run: runs the USB exporter (usb/usb_libusb.c) on a guest connection it inherits
 * and a device node it opens, so that the harness can give it a hostile stand-in guest
 * (test_toolstack.py test_usb_exporter_fuzzed). Not confined: the test is the only peer.
 *
 *   usbip_export_run GUEST_FD DEVICE_NODE DEVID [CONFIG]...
 * prints "closed", "broke: RULE" or "failed: WHY" when it ends, and how many messages passed. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "usb/usb_libusb.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: usbip_export_run GUEST_FD DEVICE_NODE DEVID [CONFIG]...\n");
		return 2;
	}
	uint8_t configs[32];
	unsigned n = 0;
	for (int i = 4; i < argc && n < 32; i++)
		configs[n++] = (uint8_t)atoi(argv[i]);
	signal(SIGPIPE, SIG_IGN);
	struct err e = {""};
	int usbfs = open(argv[2], O_RDWR | O_CLOEXEC);
	if (usbfs < 0) {
		perror(argv[2]);
		return 1;
	}
	enum usbip_end end = USBIP_END_FAILED;
	if (usb_libusb_open(usbfs, &e) == 0)
		end = usb_libusb_serve(atoi(argv[1]), (uint32_t)strtoul(argv[3], NULL, 0), configs, n, &e);
	static const char *const what[] = {"closed", "broke", "failed"};
	printf("%s%s%s (%lu messages passed)\n", what[end], e.msg[0] ? ": " : "", e.msg, usb_libusb_passed());
	return 0;
}

/* usbip_relay_run: runs the USB relay (usb/usbip_relay.c) on two descriptors it inherits, so
 * that the harness can put it between a hostile stand-in guest and the kernel's usbip-host
 * (test_toolstack.py test_usbip_host_fuzzed). Not confined: the test is the only peer.
 *
 *   usbip_relay_run GUEST_FD HOST_FD DEVID [CONFIG]...
 * prints "closed", "broke: RULE" or "failed: WHY" when the relay ends. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "usb/usbip_relay.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: usbip_relay_run GUEST_FD HOST_FD DEVID [CONFIG]...\n");
		return 2;
	}
	uint8_t configs[32];
	unsigned n = 0;
	for (int i = 4; i < argc && n < 32; i++)
		configs[n++] = (uint8_t)atoi(argv[i]);
	signal(SIGPIPE, SIG_IGN);
	static struct usbip_filter f;
	struct err e = {""};
	if (usbip_filter_init(&f, (uint32_t)strtoul(argv[3], NULL, 0), configs, n) < 0)
		return 1;
	enum usbip_relay_end end = usbip_relay(atoi(argv[1]), atoi(argv[2]), &f, &e);
	static const char *const what[] = {"closed", "broke", "failed"};
	printf("%s%s%s (%lu messages passed)\n", what[end], e.msg[0] ? ": " : "", e.msg, f.passed);
	usbip_filter_free(&f);
	return 0;
}

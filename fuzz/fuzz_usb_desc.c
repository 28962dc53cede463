/* fuzz_usb_desc: libFuzzer target: arbitrary bytes as a USB device's descriptors (what a hostile
 * device makes sysfs show) to usb_desc_parse, and whatever parses judged by usb_policy_decide
 * under a policy with every kind of rule. Nothing may crash or read out of bounds; the interfaces
 * kept stay within their bound, and a device cut short is never judged allowed. */
#include <stdint.h>
#include <string.h>

#include "usb/usb_desc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct usb_device_info d;
	struct err e;
	memset(&d, 0, sizeof(d));
	strcpy(d.port, "1-2");
	if (usb_desc_parse(data, size, &d, &e) < 0)
		return 0;
	check(d.n_ifaces <= USB_MAX_IFACES);
	struct usb_policy p = {0};
	bool known;
	check(usb_policy_apply(&p, "usb-allow", "class:audio class:hid id:1234:* port:1-2", &known, &e) == 0);
	check(usb_policy_apply(&p, "usb-deny", "class:storage", &known, &e) == 0);
	struct usb_verdict v = usb_policy_decide(&p, NULL, "f", &d);
	check(!v.allowed || !d.ifaces_truncated);
	check(!v.allowed || !usb_device_has_class(&d, 0x08));
	return 0;
}

/* Unit tests for USB policy: rule words parsed and refused with the accepted forms, lists written
 * back as they parse, and the decisions on devices described as the host would (a stick, a
 * keyboard, a headset with a HID interface, a composite that hides storage in its second
 * configuration, a hub), under a VM's rules and the host's. */
#include "unit.h"
#include "usb/usb_policy.h"

static struct err e;

static struct usb_device_info device(uint16_t vid, uint16_t pid, const char *port, const uint8_t *classes, unsigned n)
{
	struct usb_device_info d = {.vid = vid, .pid = pid};
	snprintf(d.port, sizeof(d.port), "%s", port);
	for (unsigned i = 0; i < n; i++)
		d.ifaces[i] = (struct usb_iface){.config = 1, .number = (uint8_t)i, .cls = classes[i]};
	d.n_ifaces = n;
	return d;
}

static const uint8_t storage_c[] = {0x08}, kbd_c[] = {0x03}, headset_c[] = {0x01, 0x01, 0x03}, serial_c[] = {0xff};
#define DEV(vid, pid, port, c) device(vid, pid, port, c, sizeof(c))

static struct usb_policy policy(const char *const *kv)
{
	struct usb_policy p = {0};
	bool known;
	for (; kv[0]; kv += 2) {
		assert_int_equal(usb_policy_apply(&p, kv[0], kv[1], &known, &e), 0);
		assert_true(known);
	}
	return p;
}

static void test_rules_parse(void **state)
{
	(void)state;
	struct usb_rules rs;
	char text[512];
	assert_int_equal(usb_rules_parse("class:storage, class:0B id:046D:C52B id:1d6b:* port:1-2 port:3-1.4.2", &rs,
					 &e),
			 0);
	assert_int_equal(rs.n, 6);
	usb_rules_format(&rs, text, sizeof(text));
	assert_string_equal(text, "class:storage class:smartcard id:046d:c52b id:1d6b:* port:1-2 port:3-1.4.2");
	assert_int_equal(usb_rules_parse("none", &rs, &e), 0);
	assert_int_equal(rs.n, 0);
	usb_rules_format(&rs, text, sizeof(text));
	assert_string_equal(text, "none");

	const struct {
		const char *word, *msg;
	} bad[] = {
		{"class:floppy", "names no USB class"},
		{"class:1", "names no USB class"},
		{"id:46d:c52b", "not VVVV:PPPP"},
		{"id:046d", "not VVVV:PPPP"},
		{"id:046d:c52bx", "not VVVV:PPPP"},
		{"id:046d:**", "not VVVV:PPPP"},
		{"id:g46d:c52b", "not VVVV:PPPP"},
		{"port:1", "not a port"},
		{"port:0-1", "not a port"},
		{"port:1-256", "not a port"},
		{"port:1-2.", "not a port"},
		{"port:1-2..3", "not a port"},
		{"port:1-1.2.3.4.5.6.7.8", "not a port"},
		{"port:a-1", "not a port"},
		{"port:1-0001", "not a port"},
		{"usb:all", "not a USB rule"},
		{"none class:hid", "not a USB rule"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(usb_rules_parse(bad[i].word, &rs, &e), -1);
		assert_contains(e.msg, bad[i].msg);
	}
	assert_int_equal(usb_rules_parse("port:1-1.2.3.4.5.6.7", &rs, &e), 0);
	char many[600] = "";
	for (int i = 0; i < USB_MAX_RULES + 1; i++)
		strcat(many, "class:hid ");
	assert_int_equal(usb_rules_parse(many, &rs, &e), -1);
	assert_contains(e.msg, "more than 16 rules");
}

static void test_policy_keys(void **state)
{
	(void)state;
	struct usb_policy p = {0};
	bool known;
	char text[1024];
	assert_int_equal(usb_policy_format(&p, text, sizeof(text)), 0);
	assert_string_equal(text, "");
	assert_int_equal(usb_policy_apply(&p, "usb-storage", "maybe", &known, &e), -1);
	assert_contains(e.msg, "write allow or deny");
	assert_int_equal(usb_policy_apply(&p, "usb-auto", "always", &known, &e), -1);
	assert_contains(e.msg, "write no or focused");
	assert_int_equal(usb_policy_apply(&p, "clipboard-in", "deny", &known, &e), 0);
	assert_false(known);
	p = policy((const char *const[]){"usb-allow", "none", "usb-deny", "class:storage id:1234:*", "usb-storage",
					 "deny", "usb-auto", "focused", NULL});
	assert_true(usb_policy_format(&p, text, sizeof(text)) > 0);
	assert_string_equal(text,
			    "usb-allow = none\nusb-deny = class:storage id:1234:*\nusb-storage = deny\n"
			    "usb-auto = focused\n");
	assert_int_equal(usb_policy_format(&p, text, 20), -1);
}

static void test_decisions(void **state)
{
	(void)state;
	struct usb_device_info stick = DEV(0x0781, 0x5567, "1-2", storage_c), kbd = DEV(0x046d, 0xc31c, "1-3", kbd_c);
	struct usb_device_info headset = DEV(0x0d8c, 0x0014, "1-4", headset_c),
			       serial = DEV(0x0403, 0x6001, "2-1.1", serial_c);
	struct usb_device_info hub = device(0x05e3, 0x0608, "1-1", (const uint8_t[]){0x09}, 1);
	struct usb_policy none = {0};
	struct usb_verdict v;

	/* Defaults: anything but a hub or an input device. */
	assert_true(usb_policy_decide(&none, NULL, "work", &stick).allowed);
	assert_true(usb_policy_decide(&none, NULL, "work", &serial).allowed);
	v = usb_policy_decide(&none, NULL, "work", &hub);
	assert_false(v.allowed);
	assert_contains(v.why, "a hub stays with the host");
	v = usb_policy_decide(&none, NULL, "work", &kbd);
	assert_false(v.allowed);
	assert_contains(v.why, "an input device stays with the seat unless a usb-allow rule names it (id:046d:c31c");
	v = usb_policy_decide(&none, NULL, "work", &headset);
	assert_false(v.allowed); /* its HID interface (volume keys) counts */

	/* usb-storage = deny: in the VM's policy, or the host's when the VM says nothing. */
	struct usb_policy work = policy((const char *const[]){"usb-storage", "deny", NULL});
	v = usb_policy_decide(&work, NULL, "work", &stick);
	assert_false(v.allowed);
	assert_string_equal(v.why, "work may not have USB storage (usb-storage = deny in its policy)");
	struct usb_policy host = policy((const char *const[]){"usb-storage", "deny", NULL});
	v = usb_policy_decide(&none, &host, "personal", &stick);
	assert_false(v.allowed);
	assert_contains(v.why, "in the host's policy");
	struct usb_policy personal = policy((const char *const[]){"usb-storage", "allow", NULL});
	assert_true(usb_policy_decide(&personal, &host, "personal", &stick).allowed);

	/* Storage in a second configuration is storage too. */
	struct usb_device_info sly = DEV(0x1234, 0x0001, "1-5", serial_c);
	sly.ifaces[sly.n_ifaces++] = (struct usb_iface){.config = 2, .cls = 0x08};
	assert_false(usb_policy_decide(&work, NULL, "work", &sly).allowed);

	/* An allow list: id or port names a device; classes only when every interface's is listed. */
	struct usb_policy audio = policy((const char *const[]){"usb-allow", "class:audio", NULL});
	v = usb_policy_decide(&audio, NULL, "media", &headset);
	assert_false(v.allowed);
	struct usb_policy audio_hid = policy((const char *const[]){"usb-allow", "class:audio class:hid", NULL});
	assert_true(usb_policy_decide(&audio_hid, NULL, "media", &headset).allowed);
	struct usb_policy by_id = policy((const char *const[]){"usb-allow", "id:0d8c:*", NULL});
	assert_true(usb_policy_decide(&by_id, NULL, "media", &headset).allowed);
	v = usb_policy_decide(&by_id, NULL, "media", &serial);
	assert_false(v.allowed);
	assert_contains(v.why, "media's usb-allow does not name it; add id:0403:6001");
	struct usb_policy by_port = policy((const char *const[]){"usb-allow", "port:1-3", NULL});
	assert_true(usb_policy_decide(&by_port, NULL, "kiosk", &kbd).allowed);

	/* The host's allow list holds for a VM that gives none; the VM's own replaces it. */
	struct usb_policy host_allow = policy((const char *const[]){"usb-allow", "class:smartcard", NULL});
	v = usb_policy_decide(&none, &host_allow, "work", &serial);
	assert_false(v.allowed);
	assert_contains(v.why, "the host's usb-allow does not name it");
	assert_true(usb_policy_decide(&by_id, &host_allow, "media", &headset).allowed);

	/* Deny rules come before any allow: the VM's, then the host's. */
	struct usb_policy deny_port =
		policy((const char *const[]){"usb-allow", "id:0403:6001", "usb-deny", "port:2-1.1", NULL});
	v = usb_policy_decide(&deny_port, NULL, "lab", &serial);
	assert_false(v.allowed);
	assert_string_equal(v.why, "lab's usb-deny names it (port:2-1.1)");
	struct usb_policy host_deny = policy((const char *const[]){"usb-deny", "class:vendor", NULL});
	v = usb_policy_decide(&none, &host_deny, "lab", &serial);
	assert_false(v.allowed);
	assert_string_equal(v.why, "the host's usb-deny names it (class:vendor)");

	/* A device with more interfaces than are kept is not judged on part of them. */
	struct usb_device_info big = DEV(0x1111, 0x2222, "1-6", serial_c);
	big.ifaces_truncated = true;
	v = usb_policy_decide(&none, NULL, "lab", &big);
	assert_false(v.allowed);
	assert_contains(v.why, "too many to judge");

	/* usb-auto: the VM's word, else the host's. */
	struct usb_policy auto_on = policy((const char *const[]){"usb-auto", "focused", NULL});
	struct usb_policy auto_off = policy((const char *const[]){"usb-auto", "no", NULL});
	assert_false(usb_policy_auto_focused(&none, NULL));
	assert_true(usb_policy_auto_focused(&none, &auto_on));
	assert_false(usb_policy_auto_focused(&auto_off, &auto_on));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_parse),
		cmocka_unit_test(test_policy_keys),
		cmocka_unit_test(test_decisions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

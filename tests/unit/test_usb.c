/* Unit tests for USB: rule words parsed and refused with the accepted forms, lists written back
 * as they parse, and the decisions on devices described as the host would (a stick, a keyboard,
 * a headset with a HID interface, a composite that hides storage in its second configuration, a
 * hub), under a VM's rules and the host's; descriptors walked, hostile ones included; and a
 * sysfs tree of devices scanned. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "usb/usb_desc.h"
#include "usb/usb_policy.h"
#include "usb/usb_sysfs.h"
#include "usb/usbip_export.h"
#include "usb/usbip_filter.h"

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

static const uint8_t audio_c[] = {0x01}, storage_c[] = {0x08}, kbd_c[] = {0x03}, headset_c[] = {0x01, 0x01, 0x03},
		     serial_c[] = {0xff};
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
		{"port:1-02", "not a port"},
		{"port:01-2", "not a port"},
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
	/* 16 long port rules do not fit a definition's line: refused, never cut when written back. */
	many[0] = '\0';
	for (int i = 0; i < USB_MAX_RULES; i++)
		strcat(many, "port:110-100.100.100 ");
	assert_int_equal(usb_rules_parse(many, &rs, &e), -1);
	assert_contains(e.msg, "longer than 160 characters");
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
	for (const char *const *k = (const char *const[]){"usb-allow", "usb-deny", "usb-storage", "usb-auto", NULL}; *k;
	     k++)
		assert_int_equal(usb_policy_apply(&p, *k, "", &known, &e), 0); /* empty: unset */
	assert_int_equal(usb_policy_format(&p, text, sizeof(text)), 0);
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

	/* The device's own class counts beside its interfaces', unless it is 0 or 0xef (composite). */
	struct usb_device_info radio_audio = DEV(0x2222, 0x0001, "1-7", (const uint8_t[]){0x01});
	radio_audio.dev_class = 0xe0;
	assert_false(usb_policy_decide(&audio, NULL, "media", &radio_audio).allowed);
	struct usb_policy audio_radio = policy((const char *const[]){"usb-allow", "class:audio class:wireless", NULL});
	assert_true(usb_policy_decide(&audio_radio, NULL, "media", &radio_audio).allowed);
	radio_audio.dev_class = 0xef;
	assert_true(usb_policy_decide(&audio, NULL, "media", &radio_audio).allowed);

	/* A device with more interfaces than are kept is not judged on part of them. */
	struct usb_device_info big = DEV(0x1111, 0x2222, "1-6", serial_c);
	big.ifaces_truncated = true;
	v = usb_policy_decide(&none, NULL, "lab", &big);
	assert_false(v.allowed);
	assert_contains(v.why, "so it cannot be judged");

	/* usb-auto: the VM's word, else the host's; the host's no holds whatever the VM says. */
	struct usb_policy auto_on = policy((const char *const[]){"usb-auto", "focused", NULL});
	struct usb_policy auto_off = policy((const char *const[]){"usb-auto", "no", NULL});
	assert_false(usb_policy_auto_focused(&none, NULL));
	assert_true(usb_policy_auto_focused(&none, &auto_on));
	assert_false(usb_policy_auto_focused(&auto_off, &auto_on));
	assert_true(usb_policy_auto_focused(&auto_on, &none));
	assert_false(usb_policy_auto_focused(&auto_on, &auto_off));
}

/* --- descriptors ---------------------------------------------------------------------------- */

struct blob {
	uint8_t b[8192];
	size_t n;
};

static void put(struct blob *b, const uint8_t *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void put_device(struct blob *b, uint16_t vid, uint16_t pid, uint8_t cls, uint8_t nconfigs)
{
	const uint8_t d[18] =
		{18, 1, 0, 2, cls, 0,       0, 64, (uint8_t)vid, (uint8_t)(vid >> 8), (uint8_t)pid, (uint8_t)(pid >> 8),
		 0,  1, 1, 2, 3,   nconfigs};
	put(b, d, sizeof(d));
}

/* A configuration with one interface (and an endpoint) a class in classes[] each. */
static void put_config(struct blob *b, uint8_t value, const uint8_t *classes, unsigned n)
{
	uint16_t total = (uint16_t)(9 + n * (9 + 7));
	const uint8_t c[9] = {9, 2, (uint8_t)total, (uint8_t)(total >> 8), (uint8_t)n, value, 0, 0x80, 50};
	put(b, c, sizeof(c));
	for (unsigned i = 0; i < n; i++) {
		const uint8_t in[9] = {9, 4, (uint8_t)i, 0, 1, classes[i], 6, 0x50, 0};
		const uint8_t ep[7] = {7, 5, 0x81, 2, 0, 2, 0};
		put(b, in, sizeof(in));
		put(b, ep, sizeof(ep));
	}
}

static void test_descriptors(void **state)
{
	(void)state;
	struct blob b = {0};
	struct usb_device_info d = {0};
	put_device(&b, 0x0781, 0x5567, 0, 2);
	put_config(&b, 1, serial_c, 1);
	put_config(&b, 2, (const uint8_t[]){0xff, 0x08}, 2);
	assert_int_equal(usb_desc_parse(b.b, b.n, &d, &e), 0);
	assert_int_equal(d.vid, 0x0781);
	assert_int_equal(d.pid, 0x5567);
	assert_int_equal(d.n_ifaces, 3);
	assert_false(d.ifaces_truncated);
	assert_int_equal(d.ifaces[2].config, 2);
	assert_int_equal(d.ifaces[2].number, 1);
	assert_int_equal(d.ifaces[2].cls, 0x08);
	assert_int_equal(d.ifaces[2].subclass, 6);
	assert_true(usb_device_has_class(&d, USB_CLASS_STORAGE)); /* in its second configuration */

	/* Cut short anywhere: what is whole is kept, and the device is marked incomplete. */
	for (size_t cut = 18; cut < b.n; cut++) {
		assert_int_equal(usb_desc_parse(b.b, cut, &d, &e), 0);
		assert_true(d.ifaces_truncated);
		assert_false(usb_policy_decide(&(struct usb_policy){0}, NULL, "vm", &d).allowed);
	}
	/* Fewer configurations than the device says it has. */
	b.b[17] = 3;
	assert_int_equal(usb_desc_parse(b.b, b.n, &d, &e), 0);
	assert_true(d.ifaces_truncated);
	b.b[17] = 2;
	/* A descriptor of length 0 or one that runs past its configuration. */
	b.b[18 + 9 + 9] = 0;
	assert_int_equal(usb_desc_parse(b.b, b.n, &d, &e), 0);
	assert_true(d.ifaces_truncated);
	assert_int_equal(d.n_ifaces, 1); /* the interface read before it */
	b.b[18 + 9 + 9] = 200;
	assert_int_equal(usb_desc_parse(b.b, b.n, &d, &e), 0);
	assert_true(d.ifaces_truncated);
	/* An interface descriptor too short to say its class (8 bytes: a HID one, say). */
	struct blob shorty = {0};
	put_device(&shorty, 1, 2, 0, 1);
	put_config(&shorty, 1, audio_c, 1);
	const uint8_t hid8[8] = {8, 4, 1, 0, 0, 0x03, 0, 0};
	put(&shorty, hid8, sizeof(hid8));
	shorty.b[18 + 2] += 8; /* the configuration's total length takes it in */
	assert_int_equal(usb_desc_parse(shorty.b, shorty.n, &d, &e), 0);
	assert_true(d.ifaces_truncated);
	/* More interfaces than are kept. */
	struct blob many = {0};
	uint8_t cls[100];
	memset(cls, 0xff, sizeof(cls));
	put_device(&many, 1, 2, 0, 1);
	put_config(&many, 1, cls, 100);
	assert_int_equal(usb_desc_parse(many.b, many.n, &d, &e), 0);
	assert_int_equal(d.n_ifaces, USB_MAX_IFACES);
	assert_true(d.ifaces_truncated);
	/* Not a device descriptor. */
	assert_int_equal(usb_desc_parse(many.b + 18, many.n - 18, &d, &e), -1);
	assert_contains(e.msg, "do not start with a device descriptor");
	assert_int_equal(usb_desc_parse(many.b, 17, &d, &e), -1);
}

/* --- sysfs ---------------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
	char path[1024]; /* a directory of up to 512 and a name */
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
}

static void make_device(const char *root, const char *port, const struct blob *b, const char *product)
{
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/%s", root, port);
	assert_int_equal(mkdir(dir, 0700), 0);
	if (b)
		write_file(dir, "descriptors", b->b, b->n);
	write_file(dir, "busnum", "1\n", 2);
	write_file(dir, "devnum", "7\n", 2);
	if (product)
		write_file(dir, "product", product, strlen(product));
	/* a stick at high speed, a keyboard at low, one (1-2.1) at a speed sysfs never writes */
	const char *speed = strcmp(port, "1-2") == 0 ? "480\n" : strcmp(port, "1-10") == 0 ? "1.5\n" : "480.5\n";
	write_file(dir, "speed", speed, strlen(speed));
}

static void test_sysfs_scan(void **state)
{
	(void)state;
	char root[256];
	unit_tmp_path(root, sizeof(root), "usb-sysfs-XXXXXX");
	assert_non_null(mkdtemp(root));
	struct blob stick = {0}, kbd = {0};
	put_device(&stick, 0x0781, 0x5567, 0, 1);
	put_config(&stick, 1, storage_c, 1);
	put_device(&kbd, 0x046d, 0xc31c, 0, 1);
	put_config(&kbd, 1, kbd_c, 1);
	make_device(root, "usb1", &stick, NULL);    /* a root hub: skipped */
	make_device(root, "1-2:1.0", &stick, NULL); /* an interface: skipped */
	make_device(root, "1-10", &kbd, "Keyboard\n");
	make_device(root, "1-2", &stick, "\x1b[31mCruzer\x07 Blade\n");
	make_device(root, "1-2.1", &kbd, NULL);
	make_device(root, "2-1", NULL, "gone"); /* no descriptors: it left while being read */

	static struct usb_device_info devs[8];
	unsigned n = 0;
	assert_int_equal(usb_sysfs_scan(root, devs, 8, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(devs[0].port, "1-2");
	assert_string_equal(devs[1].port, "1-2.1");
	assert_string_equal(devs[2].port, "1-10");
	assert_int_equal(devs[0].vid, 0x0781);
	assert_int_equal(devs[0].busnum, 1);
	assert_int_equal(devs[0].devnum, 7);
	assert_int_equal(devs[0].speed, 3); /* USB_SPEED_HIGH, as vhci-hcd takes it */
	assert_int_equal(devs[2].speed, 1);
	assert_int_equal(devs[1].speed, 0);                         /* unknown: an attach refuses it */
	assert_string_equal(devs[0].product, "?[31mCruzer? Blade"); /* no escape reaches a terminal */
	assert_string_equal(devs[2].product, "Keyboard");
	assert_string_equal(devs[1].manufacturer, "");
	assert_true(usb_device_has_class(&devs[0], USB_CLASS_STORAGE));
	assert_true(usb_device_has_class(&devs[2], USB_CLASS_HID));
	assert_int_equal(usb_sysfs_scan(root, devs, 2, &n, &e), 0); /* capped */
	assert_int_equal(n, 2);

	char cmd[600], file[600];
	snprintf(file, sizeof(file), "%s/1-2/busnum", root);
	assert_int_equal(usb_sysfs_scan(file, devs, 8, &n, &e), -1); /* not a directory */
	assert_contains(e.msg, "cannot read the host's USB devices in");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(usb_sysfs_scan(root, devs, 8, &n, &e), 0); /* no USB bus: no devices */
	assert_int_equal(n, 0);
}

/* A USB/IP CMD_SUBMIT as vhci-hcd writes it (big-endian), with a setup packet for endpoint 0. */
static size_t submit(uint8_t *m, uint32_t devid, uint32_t dir, uint32_t ep, uint32_t flags, uint32_t len,
		     uint32_t packets, const uint8_t setup[8])
{
	uint32_t w[10] = {1, 7, devid, dir, ep, flags, len, 0, packets, 0};
	memset(m, 0, USBIP_HEADER_SIZE);
	for (int i = 0; i < 10; i++)
		for (int b = 0; b < 4; b++)
			m[4 * i + b] = (uint8_t)(w[i] >> (24 - 8 * b));
	if (setup)
		memcpy(m + 40, setup, 8);
	return USBIP_HEADER_SIZE;
}

/* Feeds n bytes one at a time (the worst split): the last outcome, and the messages passed. */
static enum usbip_feed feed_bytewise(struct usbip_filter *f, const uint8_t *m, size_t n, unsigned *msgs,
				     struct err *why)
{
	enum usbip_feed r = USBIP_FEED_MORE;
	for (size_t i = 0; i < n; i++) {
		size_t used;
		r = usbip_filter_feed(f, m + i, 1, &used, why);
		assert_true(used == 1 || r == USBIP_FEED_ERROR);
		if (r == USBIP_FEED_ERROR)
			return r;
		if (r == USBIP_FEED_MSG) {
			(*msgs)++;
			usbip_filter_next(f);
		}
	}
	return r;
}

static void test_usbip_filter(void **state)
{
	(void)state;
	static uint8_t m[USBIP_HEADER_SIZE + 8192];
	struct usbip_filter f;
	const uint8_t configs[] = {1, 2};
	const uint8_t get_desc[8] = {0x80, 6, 0, 1, 0, 0, 18, 0};     /* in, 18 bytes */
	const uint8_t get_desc_out[8] = {0x00, 6, 0, 1, 0, 0, 18, 0}; /* says out, sent as in */
	const uint8_t set_config2[8] = {0x00, 9, 2, 0, 0, 0, 0, 0};
	const uint8_t set_config7[8] = {0x00, 9, 7, 0, 0, 0, 0, 0};
	const uint8_t in_no_bytes[8] = {0x80, 0, 0, 0, 0, 0, 0, 0}; /* GET_STATUS of 0 bytes, sent as in */
	unsigned msgs = 0;
	assert_int_equal(usbip_filter_init(&f, 0x10005, configs, 2), 0);
	/* honest: a descriptor read, a configuration judged, a bulk write of 512 bytes, an unlink */
	size_t n = submit(m, 0x10005, 1, 0, 0x40201, 18, 0, get_desc); /* with a guest DMA flag */
	assert_int_equal(feed_bytewise(&f, m, n, &msgs, &e), USBIP_FEED_MSG);
	assert_int_equal(f.msg[21], 0); /* cleared */
	assert_int_equal(f.msg[22], 0x02);
	assert_int_equal(f.msg[23], 0x01);
	n = submit(m, 0x10005, 0, 0, 0, 0, 0, set_config2);
	assert_int_equal(feed_bytewise(&f, m, n, &msgs, &e), USBIP_FEED_MSG);
	n = submit(m, 0x10005, 0, 2, 0, 512, 0xffffffffu, NULL);
	memset(m + n, 0xab, 512);
	assert_int_equal(feed_bytewise(&f, m, n + 512, &msgs, &e), USBIP_FEED_MSG);
	n = submit(m, 0x10005, 0, 0, 0, 0, 0, NULL);
	m[3] = 2; /* CMD_UNLINK */
	assert_int_equal(feed_bytewise(&f, m, n, &msgs, &e), USBIP_FEED_MSG);
	assert_int_equal(msgs, 4);
	/* ISO: two packets within a 64-byte buffer pass; one reaching past it does not */
	n = submit(m, 0x10005, 1, 1, 0x2, 64, 2, NULL);
	uint8_t iso[32] = {0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 32};
	memcpy(m + n, iso, 32);
	assert_int_equal(feed_bytewise(&f, m, n + 32, &msgs, &e), USBIP_FEED_MSG);
	usbip_filter_free(&f);

	struct {
		uint32_t devid, dir, ep, flags, len, packets;
		const uint8_t *setup;
		const char *why;
	} bad[] = {
		{0x10006, 1, 0, 0, 18, 0, get_desc, "not 65541"},
		{0x10005, 2, 0, 0, 18, 0, get_desc, "out of range"},
		{0x10005, 1, 16, 0, 0, 0, NULL, "out of range"},
		{0x10005, 1, 0, 0x400, 18, 0, get_desc, "transfer flags"},
		{0x10005, 1, 0, 0x1000000, 18, 0, get_desc, "transfer flags"},
		{0x10005, 0, 2, 0, 0x80000000u, 0, NULL, "over"},
		{0x10005, 0, 2, 0, USBIP_FILTER_MAX_XFER + 1, 0, NULL, "over"},
		{0x10005, 1, 1, 0, 64, 1025, NULL, "ISO packets"},
		{0x10005, 1, 0, 0, 18, 0, get_desc_out, "setup says out"},
		{0x10005, 1, 0, 0, 64, 0, get_desc, "setup says 18 bytes"},
		{0x10005, 0, 0, 0, 0, 0, set_config7, "configuration 7"},
		{0x10005, 1, 0, 0, 0, 0, in_no_bytes, "setup says out and the message in"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(usbip_filter_init(&f, 0x10005, configs, 2), 0);
		n = submit(m, bad[i].devid, bad[i].dir, bad[i].ep, bad[i].flags, bad[i].len, bad[i].packets,
			   bad[i].setup);
		assert_int_equal(feed_bytewise(&f, m, n, &msgs, &e), USBIP_FEED_ERROR);
		assert_non_null(strstr(e.msg, bad[i].why));
		size_t used;
		assert_int_equal(usbip_filter_feed(&f, m, 1, &used, &e), USBIP_FEED_ERROR); /* and stays so */
		usbip_filter_free(&f);
	}
	assert_int_equal(usbip_filter_init(&f, 0x10005, configs, 2), 0);
	n = submit(m, 0x10005, 1, 1, 0, 16, 1, NULL);
	uint8_t past[16] = {0, 0, 0, 8, 0, 0, 0, 9}; /* offset 8, length 9: one byte past 16 */
	memcpy(m + n, past, 16);
	assert_int_equal(feed_bytewise(&f, m, n + 16, &msgs, &e), USBIP_FEED_ERROR);
	assert_non_null(strstr(e.msg, "outside"));
	m[3] = 3; /* a command a guest never sends */
	usbip_filter_free(&f);
	assert_int_equal(usbip_filter_init(&f, 0x10005, configs, 2), 0);
	assert_int_equal(feed_bytewise(&f, m, USBIP_HEADER_SIZE, &msgs, &e), USBIP_FEED_ERROR);
	usbip_filter_free(&f);
}

/* A stand-in device for usbip_export: it keeps what it was given and answers as told. */
static struct fake_dev {
	struct usbip_urb *urbs[USBIP_EXPORT_MAX_URBS + 8];
	unsigned n;
	int refuse; /* submit's answer */
	unsigned cancels, config, iface, alt, halted;
} fd_;

static int fake_submit(void *ctx, struct usbip_urb *u)
{
	struct fake_dev *d = ctx;
	if (d->refuse)
		return d->refuse;
	d->urbs[d->n++] = u;
	return 0;
}

static void fake_cancel(void *ctx, struct usbip_urb *u)
{
	(void)u;
	((struct fake_dev *)ctx)->cancels++;
}

static int fake_config(void *ctx, uint8_t v)
{
	((struct fake_dev *)ctx)->config = v;
	return v == 1 ? 0 : -EINVAL;
}

static int fake_iface(void *ctx, uint8_t i, uint8_t alt)
{
	((struct fake_dev *)ctx)->iface = i, ((struct fake_dev *)ctx)->alt = alt;
	return 0;
}

static int fake_halt(void *ctx, uint8_t ep)
{
	((struct fake_dev *)ctx)->halted = ep;
	return 0;
}

static const struct usbip_backend fake_ops = {fake_submit, fake_cancel, fake_config, fake_iface, fake_halt};

static uint32_t word(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A message fed whole: it must all be taken. */
static void feed_all(struct usbip_export *x, const uint8_t *m, size_t n)
{
	size_t used;
	assert_int_equal(usbip_export_feed(x, m, n, &used, &e), 0);
	assert_int_equal(used, n);
}

/* The next reply: its command, seqnum, and word k (0: status) from byte 20; it is taken. */
static const uint8_t *next_reply(struct usbip_export *x, uint32_t cmd, uint32_t seqnum, size_t *len)
{
	size_t n;
	const uint8_t *r = usbip_export_output(x, &n);
	assert_true(n >= USBIP_HEADER_SIZE);
	assert_int_equal(word(r), cmd);
	assert_int_equal(word(r + 4), seqnum);
	assert_int_equal(word(r + 8) | word(r + 12) | word(r + 16), 0); /* devid, direction, ep: 0 */
	*len = n;
	return r;
}

static void set_seq(uint8_t *m, uint32_t seq)
{
	m[4] = (uint8_t)(seq >> 24), m[5] = (uint8_t)(seq >> 16), m[6] = (uint8_t)(seq >> 8), m[7] = (uint8_t)seq;
}

/* The exporter against the stand-in device: control, bulk in and out, ISO in with its data
 * packed, unlinks (in flight, and of what is done), the three requests the host must hear of,
 * a refused transfer, a backend's count kept within the buffer, flow control, a broken rule. */
static void test_usbip_export(void **state)
{
	(void)state;
	static struct usbip_export x;
	static uint8_t m[USBIP_HEADER_SIZE + 4096 + 16 * 3];
	const uint8_t get_desc[8] = {0x80, 6, 0, 1, 0, 0, 18, 0}, set_cfg[8] = {0, 9, 1, 0, 0, 0, 0, 0},
		      set_alt[8] = {1, 11, 1, 0, 2, 0, 0, 0}, clear_halt[8] = {2, 1, 0, 0, 0x81, 0, 0, 0};
	const uint8_t configs[1] = {1};
	size_t n, len;
	fd_ = (struct fake_dev){0};
	assert_int_equal(usbip_export_init(&x, 5, configs, 1, &fake_ops, &fd_), 0);
	/* control in: the device's 18 bytes come back after the header */
	n = submit(m, 5, 1, 0, 0, 18, 0, get_desc);
	set_seq(m, 10);
	feed_all(&x, m, n);
	assert_int_equal(fd_.n, 1);
	struct usbip_urb *u = fd_.urbs[0];
	assert_int_equal(u->type, USBIP_XFER_CONTROL);
	assert_true(u->in);
	assert_memory_equal(u->setup, get_desc, 8);
	memset(u->buf, 0xd1, 18);
	u->actual = 18;
	usbip_export_complete(&x, u, 0);
	const uint8_t *r = next_reply(&x, 3, 10, &len);
	assert_int_equal(len, USBIP_HEADER_SIZE + 18);
	assert_int_equal(word(r + 20), 0);  /* status */
	assert_int_equal(word(r + 24), 18); /* actual_length */
	assert_int_equal(r[USBIP_HEADER_SIZE + 17], 0xd1);
	usbip_export_consumed(&x, len);
	/* bulk out: the guest's bytes reach the device; nothing comes back but the count */
	n = submit(m, 5, 0, 2, 0, 512, 0xffffffffu, NULL);
	set_seq(m, 11);
	memset(m + n, 0x5a, 512);
	feed_all(&x, m, n + 512);
	u = fd_.urbs[1];
	assert_int_equal(u->type, USBIP_XFER_BULK);
	assert_int_equal(u->ep, 2);
	assert_int_equal(u->buf[511], 0x5a);
	u->actual = 512;
	usbip_export_complete(&x, u, 0);
	r = next_reply(&x, 3, 11, &len);
	assert_int_equal(len, USBIP_HEADER_SIZE);
	assert_int_equal(word(r + 24), 512);
	assert_int_equal(word(r + 32), 0xffffffffu); /* number_of_packets as the guest sent it */
	usbip_export_consumed(&x, len);
	/* bulk in, short, with a count beyond the buffer from the backend: kept to the buffer */
	n = submit(m, 5, 1, 1, 0, 13, 0, NULL);
	set_seq(m, 12);
	feed_all(&x, m, n);
	u = fd_.urbs[2];
	u->actual = 4096;
	usbip_export_complete(&x, u, 0);
	r = next_reply(&x, 3, 12, &len);
	assert_int_equal(len, USBIP_HEADER_SIZE + 13);
	usbip_export_consumed(&x, len);
	/* an unlink of a transfer in flight cancels it, and its end answers the unlink alone */
	n = submit(m, 5, 1, 1, 0, 64, 0, NULL);
	set_seq(m, 13);
	feed_all(&x, m, n);
	u = fd_.urbs[3];
	n = submit(m, 5, 0, 0, 0, 0, 0, NULL);
	m[3] = 2; /* CMD_UNLINK */
	set_seq(m, 14);
	m[20] = 0, m[21] = 0, m[22] = 0, m[23] = 13;
	memset(m + 24, 0, 24);
	feed_all(&x, m, n);
	assert_int_equal(fd_.cancels, 1);
	usbip_export_output(&x, &len);
	assert_int_equal(len, 0);
	usbip_export_complete(&x, u, -ECONNRESET);
	r = next_reply(&x, 4, 14, &len);
	assert_int_equal(len, USBIP_HEADER_SIZE);
	assert_int_equal((int32_t)word(r + 20), -ECONNRESET);
	usbip_export_consumed(&x, len);
	/* an unlink of what is done: answered at once, 0 */
	set_seq(m, 15);
	feed_all(&x, m, n);
	r = next_reply(&x, 4, 15, &len);
	assert_int_equal(word(r + 20), 0);
	usbip_export_consumed(&x, len);
	/* SET_CONFIGURATION, SET_INTERFACE, CLEAR_FEATURE(halt): the backend's calls, at once */
	const uint8_t *specials[3] = {set_cfg, set_alt, clear_halt};
	for (int i = 0; i < 3; i++) {
		n = submit(m, 5, 0, 0, 0, 0, 0, specials[i]);
		set_seq(m, 20 + (uint32_t)i);
		feed_all(&x, m, n);
		r = next_reply(&x, 3, 20 + (uint32_t)i, &len);
		assert_int_equal(word(r + 20), 0);
		usbip_export_consumed(&x, len);
	}
	assert_int_equal(fd_.config, 1);
	assert_int_equal(fd_.iface, 2);
	assert_int_equal(fd_.alt, 1);
	assert_int_equal(fd_.halted, 0x81);
	assert_int_equal(fd_.n, 4); /* none of them went to the device as a transfer */
	/* a transfer the backend refuses: its status at once */
	fd_.refuse = -ENOENT;
	n = submit(m, 5, 1, 5, 0, 8, 0, NULL);
	set_seq(m, 30);
	feed_all(&x, m, n);
	r = next_reply(&x, 3, 30, &len);
	assert_int_equal((int32_t)word(r + 20), -ENOENT);
	usbip_export_consumed(&x, len);
	fd_.refuse = 0;
	/* ISO in, three packets of 100: the data comes back packed, then the descriptors */
	n = submit(m, 5, 1, 3, 0, 300, 3, NULL);
	set_seq(m, 40);
	for (uint32_t i = 0; i < 3; i++) {
		uint8_t *d = m + n + 16 * i;
		memset(d, 0, 16);
		d[2] = (uint8_t)((100 * i) >> 8), d[3] = (uint8_t)(100 * i), d[7] = 100;
	}
	feed_all(&x, m, n + 48);
	u = fd_.urbs[4];
	assert_int_equal(u->type, USBIP_XFER_ISO);
	assert_int_equal(u->npackets, 3);
	assert_int_equal(u->iso[2].offset, 200);
	memset(u->buf, 0xaa, 100);
	memset(u->buf + 100, 0xbb, 100);
	u->iso[0].actual = 100, u->iso[1].actual = 50, u->iso[2].status = -EXDEV;
	usbip_export_complete(&x, u, 0);
	r = next_reply(&x, 3, 40, &len);
	assert_int_equal(len, USBIP_HEADER_SIZE + 150 + 48);
	assert_int_equal(word(r + 24), 150); /* actual_length: the packets' */
	assert_int_equal(word(r + 32), 3);
	assert_int_equal(word(r + 36), 1); /* error_count */
	assert_int_equal(r[USBIP_HEADER_SIZE + 99], 0xaa);
	assert_int_equal(r[USBIP_HEADER_SIZE + 100], 0xbb);
	const uint8_t *iso = r + USBIP_HEADER_SIZE + 150;
	assert_int_equal(word(iso + 16 + 8), 50);
	assert_int_equal((int32_t)word(iso + 32 + 12), -EXDEV);
	usbip_export_consumed(&x, len);
	/* flow control: no more than USBIP_EXPORT_MAX_URBS in flight, the next ones wait in order
	 * (an unlink reaches one that waits at once), one done starts the next that waits, and
	 * only once USBIP_EXPORT_MAX_WAITING wait too is the guest read no further */
	enum { MANY = USBIP_EXPORT_MAX_URBS + USBIP_EXPORT_MAX_WAITING + 2 };
	n = submit(m, 5, 1, 1, 0, 8, 0, NULL);
	static uint8_t many[MANY * USBIP_HEADER_SIZE];
	for (unsigned i = 0; i < MANY; i++) {
		set_seq(m, 100 + i);
		memcpy(many + i * n, m, n);
	}
	size_t used;
	assert_int_equal(usbip_export_feed(&x, many, (USBIP_EXPORT_MAX_URBS + 2) * n, &used, &e), 0);
	assert_int_equal(used, (USBIP_EXPORT_MAX_URBS + 2) * n);
	assert_int_equal(fd_.n, 5 + USBIP_EXPORT_MAX_URBS); /* two wait */
	assert_true(usbip_export_can_take(&x));
	uint8_t unlink[USBIP_HEADER_SIZE] = {0, 0, 0, 2};
	set_seq(unlink, 900);
	unlink[11] = 5;
	uint32_t waiting = 100 + USBIP_EXPORT_MAX_URBS; /* the first that waits */
	unlink[22] = (uint8_t)(waiting >> 8), unlink[23] = (uint8_t)waiting;
	feed_all(&x, unlink, sizeof(unlink));
	r = next_reply(&x, 4, 900, &len);
	assert_int_equal((int32_t)word(r + 20), -ECONNRESET);
	usbip_export_consumed(&x, len);
	usbip_export_complete(&x, fd_.urbs[5], 0); /* room: the other one that waited starts */
	assert_int_equal(fd_.n, 6 + USBIP_EXPORT_MAX_URBS);
	assert_int_equal(fd_.urbs[fd_.n - 1]->seqnum, waiting + 1);
	const uint8_t *rest = many + (USBIP_EXPORT_MAX_URBS + 2) * n;
	assert_int_equal(usbip_export_feed(&x, rest, (MANY - USBIP_EXPORT_MAX_URBS - 2) * n, &used, &e), 0);
	assert_int_equal(used, USBIP_EXPORT_MAX_WAITING * n);
	assert_false(usbip_export_can_take(&x));
	usbip_export_free(&x); /* frees what is in flight and what waits */
	/* a broken rule: another device's id */
	assert_int_equal(usbip_export_init(&x, 5, configs, 1, &fake_ops, &fd_), 0);
	n = submit(m, 6, 1, 1, 0, 8, 0, NULL);
	assert_int_equal(usbip_export_feed(&x, m, n, &used, &e), -1);
	assert_non_null(strstr(e.msg, "device 6"));
	usbip_export_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_parse),  cmocka_unit_test(test_descriptors),
		cmocka_unit_test(test_sysfs_scan),   cmocka_unit_test(test_policy_keys),
		cmocka_unit_test(test_decisions),    cmocka_unit_test(test_usbip_filter),
		cmocka_unit_test(test_usbip_export),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* usb_policy: which USB device a VM may be given, decided from what the device says it is (its
 * identity, its port, and the class of every interface of every configuration and alternate
 * setting) against the VM's rules and the host's. Pure: no device is touched, so every decision
 * is unit-tested; shojid asks it before an attach and when a device is plugged in.
 *
 * Rules (the words of usb-allow and usb-deny, in a definition's [policy] or the host default):
 *   class:NAME | class:HH   an interface class: audio cdc hid printer storage smartcard video
 *                           wireless vendor ..., or two hex digits
 *   id:VVVV:PPPP | id:VVVV:* vendor and product, four hex digits each
 *   port:B-P[.P]...         the physical port, as the host's sysfs names it (1-2, 3-1.4)
 *
 * A deny list names a device when an id or port rule matches it or any of its interfaces is of a
 * class it lists. An allow list names it when an id or port rule matches it or every one of its
 * interfaces is of a class it lists: a composite device cannot pass as a headset with a keyboard
 * hidden in its second interface. */
#ifndef SHOJI_USB_USB_POLICY_H
#define SHOJI_USB_USB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"
#include "../common/limits.h"

#define USB_PORT_MAX       32 /* "B-P.P.P.P.P.P.P" and its NUL with room to spare */
#define USB_NAME_MAX       64 /* a string descriptor as shown, NUL included */
#define USB_MAX_IFACES     64 /* interfaces kept across every configuration and alternate setting */
#define USB_MAX_RULES      SHOJI_USB_MAX_RULES
#define USB_RULES_TEXT_MAX 160 /* a list as written back, so that "usb-allow = LIST" fits a definition's line */

enum {
	USB_CLASS_PER_IFACE = 0x00,
	USB_CLASS_AUDIO = 0x01,
	USB_CLASS_CDC = 0x02,
	USB_CLASS_HID = 0x03,
	USB_CLASS_STORAGE = 0x08,
	USB_CLASS_HUB = 0x09,
	USB_CLASS_MISC = 0xef,
};

struct usb_iface {
	uint8_t config; /* bConfigurationValue */
	uint8_t number; /* bInterfaceNumber */
	uint8_t alt;    /* bAlternateSetting */
	uint8_t cls, subclass, protocol;
};

/* One device as the host sees it: what shoji usb list shows and what policy decides on. */
struct usb_device_info {
	char port[USB_PORT_MAX];
	unsigned busnum, devnum; /* the host's numbers for it now (they change when it is plugged again) */
	uint16_t vid, pid;
	uint8_t dev_class;
	uint8_t speed; /* the kernel's enum usb_device_speed (1 low .. 6 super+), 0 unknown */
	char manufacturer[USB_NAME_MAX], product[USB_NAME_MAX];
	struct usb_iface ifaces[USB_MAX_IFACES];
	unsigned n_ifaces;
	bool ifaces_truncated; /* its descriptors were not all read (cut short, malformed, more than
				* USB_MAX_IFACES interfaces): policy then refuses it */
};

enum usb_rule_kind { USB_RULE_CLASS, USB_RULE_ID, USB_RULE_PORT };

struct usb_rule {
	enum usb_rule_kind kind;
	uint8_t cls;
	uint16_t vid, pid;
	bool any_pid;
	char port[USB_PORT_MAX];
};

struct usb_rules {
	struct usb_rule rule[USB_MAX_RULES];
	unsigned n;
};

enum usb_tristate { USB_UNSET, USB_ALLOW, USB_DENY };
enum usb_auto { USB_AUTO_UNSET, USB_AUTO_NO, USB_AUTO_FOCUSED };

/* One VM's USB policy, or the host's default. An empty allow list (n == 0) with allow_given
 * false lets every device through that nothing denies. */
struct usb_policy {
	struct usb_rules allow, deny;
	bool allow_given;
	enum usb_tristate storage; /* usb-storage */
	enum usb_auto autoattach;  /* usb-auto */
};

/* Parses one rule word ("class:storage", "id:046d:c52b", "port:1-2"). */
int usb_rule_parse(const char *word, struct usb_rule *out, struct err *e);
/* Parses a list of rule words separated by spaces or commas; "none" is the empty list. A list
 * longer than USB_RULES_TEXT_MAX characters as written back is refused. */
int usb_rules_parse(const char *value, struct usb_rules *out, struct err *e);
/* Writes a rule (or a list, words separated by one space; "none" when empty) as it parses; the
 * list -1 when it does not fit in size. */
void usb_rule_format(const struct usb_rule *r, char *buf, size_t size);
int usb_rules_format(const struct usb_rules *r, char *buf, size_t size);

/* Applies one key (usb-allow, usb-deny, usb-storage, usb-auto); an empty value unsets it. *known
 * false (no error) for any other key, so that a caller can offer its own; -1 with an error
 * naming the accepted forms. */
int usb_policy_apply(struct usb_policy *p, const char *key, const char *value, bool *known, struct err *e);

/* The keys p sets, one "KEY = VALUE" line each, as usb_policy_apply reads them; "" when none is
 * set. Returns the length, or -1 when it does not fit. */
int usb_policy_format(const struct usb_policy *p, char *buf, size_t size);

/* Whether s is a port's name: "B-P[.P]...", a bus and one to seven port numbers, each 1..255. */
bool usb_port_ok(const char *s);

/* A class's name ("storage") or NULL for a class with none. */
const char *usb_class_name(uint8_t cls);
/* Whether a device's own class says nothing beyond its interfaces': 0 (defined per interface) or
 * 0xef (miscellaneous: composite). Any other class of a device is judged as an interface's is. */
bool usb_dev_class_neutral(uint8_t cls);
/* Whether any interface of d (or, with none, the device itself) is of class cls. */
bool usb_device_has_class(const struct usb_device_info *d, uint8_t cls);

struct usb_verdict {
	bool allowed;
	char why[200]; /* a sentence saying which rule refused it, and how to allow it */
};

/* Whether VM vm may be given d under its policy and the host's (NULL: none). The order: hubs
 * never; a deny rule (the VM's, then the host's); mass storage where usb-storage = deny (the
 * VM's word, else the host's); an input device (HID) only when an allow rule names it; a device
 * whose descriptors were not all read never; then the VM's allow list if it gave one, else the
 * host's, else allowed. */
struct usb_verdict usb_policy_decide(const struct usb_policy *vm_policy, const struct usb_policy *host, const char *vm,
				     const struct usb_device_info *d);

/* Whether a device newly plugged in goes to the VM in front: its usb-auto, else the host's; the
 * host's "no" holds whatever the VM says. */
bool usb_policy_auto_focused(const struct usb_policy *vm_policy, const struct usb_policy *host);

#endif

/* usb_policy: USB rules parsed and written back, and the decision whether a VM may be given a
 * device (usb_policy.h says the rules' meaning). Our own: the rule language is shoji's policy
 * in a definition's words; USBGuard's daemon and language judge what the host itself may use,
 * not which of several VMs a device may go to. Pure. */
#include "usb_policy.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	uint8_t cls;
	const char *name;
} class_names[] = {
	{0x01, "audio"},      {0x02, "cdc"},      {0x03, "hid"},    {0x05, "physical"},    {0x06, "image"},
	{0x07, "printer"},    {0x08, "storage"},  {0x09, "hub"},    {0x0a, "cdc-data"},    {0x0b, "smartcard"},
	{0x0d, "security"},   {0x0e, "video"},    {0x0f, "health"}, {0x10, "av"},          {0x11, "billboard"},
	{0xdc, "diagnostic"}, {0xe0, "wireless"}, {0xef, "misc"},   {0xfe, "application"}, {0xff, "vendor"},
};

const char *usb_class_name(uint8_t cls)
{
	for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++)
		if (class_names[i].cls == cls)
			return class_names[i].name;
	return NULL;
}

/* Exactly n hex digits at s, followed by end or ':'. */
static bool hex_n(const char *s, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		char c = (char)tolower((unsigned char)s[i]);
		v = v * 16 + (unsigned)(isdigit((unsigned char)c) ? c - '0' : c - 'a' + 10);
	}
	*out = v;
	return s[n] == '\0' || s[n] == ':';
}

static int parse_class(const char *s, struct usb_rule *r, struct err *e)
{
	unsigned v;
	for (size_t i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++)
		if (strcmp(s, class_names[i].name) == 0) {
			r->cls = class_names[i].cls;
			return 0;
		}
	if (strlen(s) == 2 && hex_n(s, 2, &v)) {
		r->cls = (uint8_t)v;
		return 0;
	}
	return err_set(e,
		       "'class:%.20s' names no USB class; write class:audio, cdc, hid, printer, storage, "
		       "smartcard, video, wireless, vendor (or another class's name) or class:HH in hex",
		       s);
}

static int parse_id(const char *s, struct usb_rule *r, struct err *e)
{
	unsigned vid = 0, pid = 0;
	size_t len = strlen(s);
	bool ok = (len == 9 || len == 6) && hex_n(s, 4, &vid) && s[4] == ':';
	bool any = ok && len == 6 && s[5] == '*';
	if (!ok || (!any && (len != 9 || !hex_n(s + 5, 4, &pid))))
		return err_set(e, "'id:%.20s' is not VVVV:PPPP or VVVV:* (vendor and product, 4 hex digits each)", s);
	r->vid = (uint16_t)vid;
	r->pid = (uint16_t)pid;
	r->any_pid = any;
	return 0;
}

/* One number 1..255 at *s, written as sysfs writes it (no leading zero: rules match by the name),
 * then `sep` or the end; *s moves past both. */
static bool port_number(const char **s, char sep)
{
	const char *p = *s;
	unsigned v = 0, digits = 0;
	while (isdigit((unsigned char)*p) && digits < 4)
		v = v * 10 + (unsigned)(*p++ - '0'), digits++;
	if (digits == 0 || digits > 3 || v == 0 || v > 255 || **s == '0' || (*p && *p != sep) || (*p == sep && !p[1]))
		return false;
	*s = *p ? p + 1 : p;
	return true;
}

bool usb_port_ok(const char *s)
{
	if (!port_number(&s, '-') || !*s)
		return false;
	for (unsigned depth = 1; depth <= 7; depth++) {
		if (!port_number(&s, '.'))
			return false;
		if (!*s)
			return true;
	}
	return false;
}

int usb_rule_parse(const char *word, struct usb_rule *out, struct err *e)
{
	struct usb_rule r = {0};
	if (strncmp(word, "class:", 6) == 0) {
		r.kind = USB_RULE_CLASS;
		if (parse_class(word + 6, &r, e) < 0)
			return -1;
	} else if (strncmp(word, "id:", 3) == 0) {
		r.kind = USB_RULE_ID;
		if (parse_id(word + 3, &r, e) < 0)
			return -1;
	} else if (strncmp(word, "port:", 5) == 0) {
		r.kind = USB_RULE_PORT;
		if (strlen(word + 5) >= USB_PORT_MAX || !usb_port_ok(word + 5))
			return err_set(e,
				       "'%.40s' is not a port; write port:BUS-PORT[.PORT]..., as shoji usb list shows",
				       word);
		snprintf(r.port, sizeof(r.port), "%s", word + 5);
	} else {
		return err_set(e, "'%.40s' is not a USB rule; write class:NAME, id:VVVV:PPPP or port:BUS-PORT", word);
	}
	*out = r;
	return 0;
}

int usb_rules_parse(const char *value, struct usb_rules *out, struct err *e)
{
	char buf[512];
	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf))
		return err_set(e, "the list is too long; give at most %d rules", USB_MAX_RULES);
	struct usb_rules rs = {0};
	char *save = NULL, back[USB_RULES_TEXT_MAX + 64];
	for (char *w = strtok_r(buf, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
		if (strcmp(w, "none") == 0 && rs.n == 0 && !strtok_r(NULL, " ,", &save))
			break;
		if (rs.n == USB_MAX_RULES)
			return err_set(e, "more than %d rules; give at most %d", USB_MAX_RULES, USB_MAX_RULES);
		if (usb_rule_parse(w, &rs.rule[rs.n], e) < 0)
			return -1;
		rs.n++;
	}
	if (usb_rules_format(&rs, back, sizeof(back)) < 0 || strlen(back) > USB_RULES_TEXT_MAX)
		return err_set(e, "the list is longer than %d characters as written back; give fewer rules",
			       USB_RULES_TEXT_MAX);
	*out = rs;
	return 0;
}

void usb_rule_format(const struct usb_rule *r, char *buf, size_t size)
{
	const char *name = usb_class_name(r->cls);
	if (r->kind == USB_RULE_CLASS && name)
		snprintf(buf, size, "class:%s", name);
	else if (r->kind == USB_RULE_CLASS)
		snprintf(buf, size, "class:%02x", r->cls);
	else if (r->kind == USB_RULE_ID && r->any_pid)
		snprintf(buf, size, "id:%04x:*", r->vid);
	else if (r->kind == USB_RULE_ID)
		snprintf(buf, size, "id:%04x:%04x", r->vid, r->pid);
	else
		snprintf(buf, size, "port:%s", r->port);
}

int usb_rules_format(const struct usb_rules *r, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "%s", r->n ? "" : "none");
	for (unsigned i = 0; i < r->n && used < size; i++) {
		char w[64];
		usb_rule_format(&r->rule[i], w, sizeof(w));
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? " " : "", w);
	}
	return used < size ? 0 : -1;
}

static int parse_choice(const char *value, const char *a, const char *b, int *out, struct err *e, const char *key)
{
	if (strcmp(value, a) == 0)
		*out = 1;
	else if (strcmp(value, b) == 0)
		*out = 2;
	else
		return err_set(e, "%s = '%.20s'; write %s or %s", key, value, a, b);
	return 0;
}

static int unset(struct usb_policy *p, const char *key, bool *known)
{
	if (strcmp(key, "usb-allow") == 0)
		p->allow = (struct usb_rules){0}, p->allow_given = false;
	else if (strcmp(key, "usb-deny") == 0)
		p->deny = (struct usb_rules){0};
	else if (strcmp(key, "usb-storage") == 0)
		p->storage = USB_UNSET;
	else if (strcmp(key, "usb-auto") == 0)
		p->autoattach = USB_AUTO_UNSET;
	else
		*known = false;
	return 0;
}

int usb_policy_apply(struct usb_policy *p, const char *key, const char *value, bool *known, struct err *e)
{
	int c;
	*known = true;
	if (!*value) /* an empty value unsets the key: the host's word holds again */
		return unset(p, key, known);
	if (strcmp(key, "usb-allow") == 0) {
		if (usb_rules_parse(value, &p->allow, e) < 0)
			return -1;
		p->allow_given = true;
		return 0;
	}
	if (strcmp(key, "usb-deny") == 0)
		return usb_rules_parse(value, &p->deny, e);
	if (strcmp(key, "usb-storage") == 0) {
		if (parse_choice(value, "allow", "deny", &c, e, key) < 0)
			return -1;
		p->storage = c == 1 ? USB_ALLOW : USB_DENY;
		return 0;
	}
	if (strcmp(key, "usb-auto") == 0) {
		if (parse_choice(value, "no", "focused", &c, e, key) < 0)
			return -1;
		p->autoattach = c == 1 ? USB_AUTO_NO : USB_AUTO_FOCUSED;
		return 0;
	}
	*known = false;
	return 0;
}

int usb_policy_format(const struct usb_policy *p, char *buf, size_t size)
{
	char allow[USB_RULES_TEXT_MAX + 1], deny[USB_RULES_TEXT_MAX + 1];
	if (usb_rules_format(&p->allow, allow, sizeof(allow)) < 0 || usb_rules_format(&p->deny, deny, sizeof(deny)) < 0)
		return -1;
	const char *storage[] = {[USB_ALLOW] = "allow", [USB_DENY] = "deny"};
	const char *autoattach[] = {[USB_AUTO_NO] = "no", [USB_AUTO_FOCUSED] = "focused"};
	size_t n = 0;
	buf[0] = '\0';
	if (p->allow_given)
		n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "usb-allow = %s\n", allow);
	if (p->deny.n && n < size)
		n += (size_t)snprintf(buf + n, size - n, "usb-deny = %s\n", deny);
	if (p->storage != USB_UNSET && n < size)
		n += (size_t)snprintf(buf + n, size - n, "usb-storage = %s\n", storage[p->storage]);
	if (p->autoattach != USB_AUTO_UNSET && n < size)
		n += (size_t)snprintf(buf + n, size - n, "usb-auto = %s\n", autoattach[p->autoattach]);
	return n >= size ? -1 : (int)n;
}

/* --- decisions ------------------------------------------------------------------------------ */

bool usb_device_has_class(const struct usb_device_info *d, uint8_t cls)
{
	if (d->dev_class == cls && (cls != USB_CLASS_PER_IFACE || d->n_ifaces == 0))
		return true;
	for (unsigned i = 0; i < d->n_ifaces; i++)
		if (d->ifaces[i].cls == cls)
			return true;
	return false;
}

static bool lists_class(const struct usb_rules *rs, uint8_t cls)
{
	for (unsigned i = 0; i < rs->n; i++)
		if (rs->rule[i].kind == USB_RULE_CLASS && rs->rule[i].cls == cls)
			return true;
	return false;
}

/* The first id or port rule that matches d, or NULL. */
static const struct usb_rule *match_device(const struct usb_rules *rs, const struct usb_device_info *d)
{
	for (unsigned i = 0; i < rs->n; i++) {
		const struct usb_rule *r = &rs->rule[i];
		if (r->kind == USB_RULE_ID && r->vid == d->vid && (r->any_pid || r->pid == d->pid))
			return r;
		if (r->kind == USB_RULE_PORT && strcmp(r->port, d->port) == 0)
			return r;
	}
	return NULL;
}

/* The deny rule that names d (an id or port, or any interface's class), or NULL. */
static const struct usb_rule *deny_names(const struct usb_rules *rs, const struct usb_device_info *d)
{
	const struct usb_rule *r = match_device(rs, d);
	for (unsigned i = 0; !r && i < rs->n; i++)
		if (rs->rule[i].kind == USB_RULE_CLASS && usb_device_has_class(d, rs->rule[i].cls))
			r = &rs->rule[i];
	return r;
}

bool usb_dev_class_neutral(uint8_t cls)
{
	return cls == USB_CLASS_PER_IFACE || cls == USB_CLASS_MISC;
}

/* Whether an allow list names d: an id or port rule, or every class it has listed (each
 * interface's, and the device's own unless it is neutral). */
static bool allow_names(const struct usb_rules *rs, const struct usb_device_info *d)
{
	if (match_device(rs, d))
		return true;
	if (d->n_ifaces == 0 || !usb_dev_class_neutral(d->dev_class))
		if (!lists_class(rs, d->dev_class))
			return false;
	for (unsigned i = 0; i < d->n_ifaces; i++)
		if (!lists_class(rs, d->ifaces[i].cls))
			return false;
	return true;
}

static struct usb_verdict refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct usb_verdict refuse(const char *fmt, ...)
{
	struct usb_verdict v = {.allowed = false};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v.why, sizeof(v.why), fmt, ap);
	va_end(ap);
	return v;
}

static struct usb_verdict deny_rules_verdict(const struct usb_policy *p, const char *whose,
					     const struct usb_device_info *d)
{
	const struct usb_rule *r = p ? deny_names(&p->deny, d) : NULL;
	if (!r)
		return (struct usb_verdict){.allowed = true};
	char w[64];
	usb_rule_format(r, w, sizeof(w));
	return refuse("%s's usb-deny names it (%s)", whose, w);
}

struct usb_verdict usb_policy_decide(const struct usb_policy *vm_policy, const struct usb_policy *host, const char *vm,
				     const struct usb_device_info *d)
{
	struct usb_verdict v;
	if (usb_device_has_class(d, USB_CLASS_HUB))
		return refuse("a hub stays with the host; attach the devices behind it one by one");
	if (!(v = deny_rules_verdict(vm_policy, vm, d)).allowed ||
	    !(v = deny_rules_verdict(host, "the host", d)).allowed)
		return v;
	enum usb_tristate storage = vm_policy->storage != USB_UNSET ? vm_policy->storage
		: host                                              ? host->storage
								    : USB_UNSET;
	if (storage == USB_DENY && usb_device_has_class(d, USB_CLASS_STORAGE))
		return refuse("%s may not have USB storage (usb-storage = deny in %s)", vm,
			      vm_policy->storage == USB_DENY ? "its policy" : "the host's policy");
	bool named = (vm_policy->allow_given && allow_names(&vm_policy->allow, d)) ||
		(host && host->allow_given && allow_names(&host->allow, d));
	if (usb_device_has_class(d, USB_CLASS_HID) && !named)
		return refuse("an input device stays with the seat unless a usb-allow rule names it "
			      "(id:%04x:%04x, its port, or class:hid with each of its classes)",
			      d->vid, d->pid);
	if (d->ifaces_truncated)
		return refuse(
			"its descriptors could not all be read (cut short, malformed, or more than %d interfaces), so it cannot be judged",
			USB_MAX_IFACES);
	if (vm_policy->allow_given && !allow_names(&vm_policy->allow, d))
		return refuse("%s's usb-allow does not name it; add id:%04x:%04x or its classes", vm, d->vid, d->pid);
	if (!vm_policy->allow_given && host && host->allow_given && !allow_names(&host->allow, d))
		return refuse("the host's usb-allow does not name it (and %s gives no usb-allow of its own)", vm);
	return (struct usb_verdict){.allowed = true};
}

bool usb_policy_auto_focused(const struct usb_policy *vm_policy, const struct usb_policy *host)
{
	if (host && host->autoattach == USB_AUTO_NO)
		return false; /* the host's no binds every VM */
	enum usb_auto a = vm_policy->autoattach != USB_AUTO_UNSET ? vm_policy->autoattach
		: host                                            ? host->autoattach
								  : USB_AUTO_UNSET;
	return a == USB_AUTO_FOCUSED;
}

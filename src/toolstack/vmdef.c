/* vmdef: the definition's keys and how values apply, whole-definition checks, single edits and
 * the --disk/--net shorthands (see vmdef.h). */
#include "vmdef.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef_keys.h"

static const char *const vm_keys[] = {"name",    "memory",   "cpus",          "kernel", "initrd",
				      "cmdline", "firmware", "firmware-vars", "boot",   "vsock-cid",
				      "display", "label",    "autostart",     "param",  NULL};
static const char *const disk_keys[] = {"path", "template", "format", "readonly", "serial", NULL};
static const char *const nic_keys[] = {"type",  "mac",    "ifname", "forward", "host-loopback",
				       "vhost", "queues", "peer",   NULL};

const char *const vmdef_nic_type_names[5] = {[VMDEF_NIC_NONE] = "none",
					     [VMDEF_NIC_SLIRP] = "slirp",
					     [VMDEF_NIC_TAP] = "tap",
					     [VMDEF_NIC_VM] = "vm",
					     [VMDEF_NIC_PASST] = "passt"};

bool vmdef_nic_user_mode(enum vmdef_nic_type t)
{
	return t == VMDEF_NIC_SLIRP || t == VMDEF_NIC_PASST;
}

bool vmdef_has_nic(const struct vmdef *d, enum vmdef_nic_type t)
{
	for (unsigned i = 0; i < d->nnics; i++)
		if (d->nics[i].type == t)
			return true;
	return false;
}
static const char *const policy_keys[] = {"clipboard-out", "clipboard-in", "clipboard-max", "usb-allow",
					  "usb-deny",      "usb-storage",  "usb-auto",      NULL};
static const char *const no_keys[] = {NULL};

static const char *const *keys_of(enum vmdef_section sec)
{
	switch (sec) {
	case VMDEF_SEC_VM: return vm_keys;
	case VMDEF_SEC_DISK: return disk_keys;
	case VMDEF_SEC_NIC: return nic_keys;
	case VMDEF_SEC_POLICY: return policy_keys;
	default: return no_keys;
	}
}

int vmdef_key_index(enum vmdef_section sec, const char *key, struct err *e)
{
	const char *const *keys = keys_of(sec);
	char known[160] = "";
	for (int i = 0; keys[i]; i++) {
		if (strcmp(keys[i], key) == 0)
			return i;
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "", keys[i]);
	}
	if (sec == VMDEF_SEC_NONE)
		return err_set(e, "key '%s' is outside any section; put it under [vm]", key);
	return err_set(e, "unknown key '%s'; known keys here: %s", key, known);
}

bool vmdef_key_repeats(enum vmdef_section sec, int index)
{
	const char *const *keys = sec == VMDEF_SEC_NIC ? nic_keys : sec == VMDEF_SEC_VM ? vm_keys : NULL;
	return keys && keys[index] && (strcmp(keys[index], "forward") == 0 || strcmp(keys[index], "param") == 0);
}

bool vmdef_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > VMDEF_NAME_MAX || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

static int name_error(const char *what, const char *name, struct err *e)
{
	return err_set(e,
		       "%s '%.40s' is not allowed; use 1 to %d letters, digits, '.', '_' or '-', "
		       "starting with a letter or digit",
		       what, name, VMDEF_NAME_MAX);
}

void vmdef_init(struct vmdef *d, const char *name)
{
	*d = (struct vmdef){.memory_mib = 512, .cpus = 1};
	snprintf(d->name, sizeof(d->name), "%s", name ? name : "");
	strcpy(d->cmdline, "console=ttyS0");
	vmdef_policy_defaults(&d->policy);
}

static int parse_uint(const char *s, unsigned long long min, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int set_cmdline(struct vmdef *d, const char *value, bool append, struct err *e)
{
	size_t have = append ? strlen(d->cmdline) : 0;
	if (have + (append ? 1 : 0) + strlen(value) >= sizeof(d->cmdline))
		return err_set(e, "cmdline is longer than %d characters; shorten it", VMDEF_CMDLINE_MAX - 1);
	for (const char *p = value; *p; p++) {
		if (iscntrl((unsigned char)*p))
			return err_set(e, "cmdline contains a control character; remove it");
	}
	/* Written back as lines of at most 160 characters split at spaces. */
	for (const char *w = value; *w;) {
		size_t len = strcspn(w, " ");
		if (len > 160)
			return err_set(e, "cmdline has a word longer than 160 characters; shorten it");
		if (*w == ';' || *w == '#' || *w == '[') /* a comment or, on a line of its own, a section */
			return err_set(e,
				       "cmdline has a word starting with '%c', which the definition file would "
				       "read as a comment or a section; remove it",
				       *w);
		w += len + strspn(w + len, " ");
	}
	if (have)
		d->cmdline[have++] = ' ';
	memcpy(d->cmdline + have, value, strlen(value) + 1); /* fits: checked above */
	/* Runs of spaces as one, as the kernel reads them: what is written back in lines, split
	 * at spaces, then reads back the same. */
	char *to = d->cmdline;
	for (const char *from = d->cmdline; *from; from++)
		if (*from != ' ' || (to > d->cmdline && to[-1] != ' '))
			*to++ = *from;
	*to = 0;
	return 0;
}

/* kernel, initrd, firmware, firmware-vars and boot (*handled set): 0, or -1 with e. */
static int apply_boot_key(struct vmdef *d, const char *key, const char *value, bool *handled, struct err *e)
{
	char *dst = strcmp(key, "kernel") == 0      ? d->kernel
		: strcmp(key, "initrd") == 0        ? d->initrd
		: strcmp(key, "firmware-vars") == 0 ? d->firmware_vars
		: strcmp(key, "firmware") == 0      ? d->firmware
						    : NULL;
	int r = 0;
	*handled = dst || strcmp(key, "boot") == 0;
	if (strcmp(key, "boot") == 0) {
		if (!*value || strcmp(value, "kernel") == 0 || strcmp(value, "disk") == 0)
			d->boot = !*value ? VMDEF_BOOT_AUTO : value[0] == 'k' ? VMDEF_BOOT_KERNEL : VMDEF_BOOT_DISK;
		else
			r = err_set(e,
				    "boot '%s' is not kernel or disk; write 'boot = kernel' (direct kernel boot) "
				    "or 'boot = disk' (the firmware boots the disks)",
				    value);
	} else if (!dst) {
		return 0;
	} else if (!*value) {
		dst[0] = '\0';
	} else if (dst == d->firmware && strcmp(value, VMDEF_FIRMWARE_UEFI) == 0) {
		strcpy(dst, VMDEF_FIRMWARE_UEFI);
	} else if (dst == d->firmware && value[0] != '/') {
		r = err_set(e,
			    "firmware '%s' is not uefi or a path; write 'firmware = uefi' (Debian's OVMF) or "
			    "the absolute path of a firmware code image",
			    value);
	} else {
		r = vmdef_parse_path(value, dst, e);
	}
	return r;
}

/* param = KEY=VALUE: a guest parameter added, or a key's value replaced; an empty value
 * removes them all (as "shoji set NAME param=" does). */
static int apply_param(struct vmdef *d, const char *value, struct err *e)
{
	struct guest_param p;
	if (!*value)
		return d->nparams = 0, 0;
	if (guest_param_parse(value, &p, e) < 0)
		return -1;
	unsigned i = 0;
	while (i < d->nparams && strcmp(d->params[i].key, p.key) != 0)
		i++;
	if (i == GUEST_PARAM_MAX)
		return err_set(e, "more than %d guest parameters; remove some", GUEST_PARAM_MAX);
	d->params[i] = p;
	d->nparams += i == d->nparams;
	return 0;
}

int vmdef_apply_vm(struct vmdef *d, const char *key, const char *value, bool append, struct err *e)
{
	unsigned long long v;
	bool boot_key;
	if (append && strcmp(key, "cmdline"))
		return err_set(e,
			       "this indented line continues '%s', which only cmdline may do; remove "
			       "the indentation",
			       key);
	int r = apply_boot_key(d, key, value, &boot_key, e);
	if (boot_key)
		return r;
	if (strcmp(key, "name") == 0) {
		if (!vmdef_name_ok(value))
			return name_error("name", value, e);
		strcpy(d->name, value);
	} else if (strcmp(key, "memory") == 0) {
		return vmdef_parse_size_mib(value, &d->memory_mib, e);
	} else if (strcmp(key, "cpus") == 0) {
		if (parse_uint(value, 1, VMDEF_MAX_CPUS, &v) < 0)
			return err_set(e, "cpus '%s' is not a whole number from 1 to %d; fix it", value,
				       VMDEF_MAX_CPUS);
		d->cpus = (unsigned)v;
	} else if (strcmp(key, "cmdline") == 0) {
		if (set_cmdline(d, value, append, e) < 0)
			return -1;
		d->cmdline_given = d->cmdline[0] != '\0';
	} else if (strcmp(key, "vsock-cid") == 0) {
		d->vsock_auto = strcmp(value, "auto") == 0;
		if (!*value || strcmp(value, "none") == 0 || d->vsock_auto)
			return d->vsock_cid = 0, 0;
		if (parse_uint(value, 3, 0xFFFFFFFEull, &v) < 0)
			return err_set(e,
				       "vsock-cid '%s' is not auto, none or a number from 3 to 4294967294 (0-2 "
				       "are reserved); pick another",
				       value);
		d->vsock_cid = (uint32_t)v;
	} else if (strcmp(key, "display") == 0) {
		return vmdef_parse_bool(value, &d->display, e);
	} else if (strcmp(key, "autostart") == 0) {
		return vmdef_parse_bool(value, &d->autostart, e);
	} else if (strcmp(key, "label") == 0) {
		if (!*value || strcmp(value, "none") == 0)
			return d->label[0] = '\0', 0;
		return vmdef_parse_label(value, d->label, e);
	} else if (strcmp(key, "param") == 0) {
		return apply_param(d, value, e);
	} else {
		return vmdef_key_index(VMDEF_SEC_VM, key, e);
	}
	return 0;
}

int vmdef_apply_disk(struct vmdef_disk *k, const char *key, const char *value, struct err *e)
{
	if (strcmp(key, "path") == 0)
		return vmdef_parse_path(value, k->path, e);
	if (strcmp(key, "template") == 0) {
		if (*value && !vmdef_name_ok(value))
			return err_set(e, "template '%s' is not a template name (1 to %d of A-Z a-z 0-9 . _ -)", value,
				       VMDEF_NAME_MAX);
		strcpy(k->template_name, value);
		return 0;
	}
	if (strcmp(key, "readonly") == 0)
		return vmdef_parse_bool(value, &k->readonly, e);
	if (strcmp(key, "format") == 0) {
		if (strcmp(value, "raw") && strcmp(value, "qcow2"))
			return err_set(e, "format '%s' is not raw or qcow2; write one of those", value);
		k->format = strcmp(value, "raw") ? VMDEF_DISK_QCOW2 : VMDEF_DISK_RAW;
		return 0;
	}
	if (strcmp(key, "serial") == 0) {
		if (strlen(value) > VMDEF_SERIAL_MAX || (*value && !vmdef_name_ok(value)))
			return err_set(e,
				       "serial '%s' is not allowed; use up to %d letters, digits, '.', "
				       "'_' or '-'",
				       value, VMDEF_SERIAL_MAX);
		strcpy(k->serial, value);
		return 0;
	}
	return vmdef_key_index(VMDEF_SEC_DISK, key, e);
}

/* "VM" or "VM:NIC": the VM whose NIC this one links to. */
static int parse_peer(struct vmdef_nic *n, const char *value, struct err *e)
{
	char vm[VMDEF_NAME_MAX + 1] = "", nic[VMDEF_NAME_MAX + 1] = "";
	const char *colon = strchr(value, ':');
	size_t len = colon ? (size_t)(colon - value) : strlen(value);
	if (len < sizeof(vm))
		memcpy(vm, value, len);
	if (colon && strlen(colon + 1) < sizeof(nic))
		strcpy(nic, colon + 1);
	if (len >= sizeof(vm) || !vmdef_name_ok(vm) ||
	    (colon && (strlen(colon + 1) >= sizeof(nic) || !vmdef_name_ok(nic))))
		return err_set(e,
			       "peer '%s' is not VM or VM:NIC; name the VM (and optionally its [nic ID]) this "
			       "NIC links to, e.g. 'peer = firewall:down'",
			       value);
	strcpy(n->peer, vm);
	strcpy(n->peer_nic, nic);
	return 0;
}

int vmdef_apply_nic(struct vmdef_nic *n, const char *key, const char *value, struct err *e)
{
	if (strcmp(key, "type") == 0) {
		for (int t = VMDEF_NIC_SLIRP; t <= VMDEF_NIC_PASST; t++)
			if (strcmp(value, vmdef_nic_type_names[t]) == 0)
				return n->type = (enum vmdef_nic_type)t, 0;
		return err_set(e, "type '%s' is not passt, slirp, tap or vm; write one of those", value);
	}
	if (strcmp(key, "peer") == 0)
		return parse_peer(n, value, e);
	if (strcmp(key, "mac") == 0) {
		if (!*value)
			return n->mac[0] = '\0', 0;
		return vmdef_parse_mac(value, n->mac, e);
	}
	if (strcmp(key, "ifname") == 0) {
		if (strlen(value) >= sizeof(n->ifname) || !vmdef_name_ok(value))
			return err_set(e,
				       "ifname '%s' is not an interface name; use up to 15 letters, "
				       "digits, '.', '_' or '-'",
				       value);
		strcpy(n->ifname, value);
		return 0;
	}
	if (strcmp(key, "host-loopback") == 0)
		return vmdef_parse_bool(value, &n->host_loopback, e);
	if (strcmp(key, "vhost") == 0) {
		int mode = vhost_mode_parse(value);
		if (mode < 0)
			return err_set(e, "vhost '%s' is not auto, on or off", value);
		n->vhost = (enum vhost_mode)mode;
		return 0;
	}
	if (strcmp(key, "queues") == 0) {
		char *end;
		unsigned long q = strtoul(value, &end, 10);
		if (value[0] < '1' || value[0] > '9' || *end || q > SHOJI_MAX_NIC_QUEUES)
			return err_set(e, "queues '%s' is not a number of queue pairs from 1 to %d", value,
				       SHOJI_MAX_NIC_QUEUES);
		n->queues = (unsigned)q;
		return 0;
	}
	if (strcmp(key, "forward") == 0) {
		if (!*value)
			return n->nfwds = 0, 0;
		if (n->nfwds == VMDEF_MAX_FWDS)
			return err_set(e, "more than %d forwards on one NIC; remove some", VMDEF_MAX_FWDS);
		if (vmdef_parse_fwd(value, &n->fwds[n->nfwds], e) < 0)
			return -1;
		n->nfwds++;
		return 0;
	}
	return vmdef_key_index(VMDEF_SEC_NIC, key, e);
}

struct vmdef_disk *vmdef_new_disk(struct vmdef *d, const char *id, struct err *e)
{
	if (!vmdef_name_ok(id))
		return name_error("disk ID", id, e), NULL;
	for (unsigned i = 0; i < d->ndisks; i++) {
		if (strcmp(d->disks[i].id, id) == 0)
			return err_set(e, "disk '%s' is defined twice; give each disk its own ID", id), NULL;
	}
	if (d->ndisks == VMDEF_MAX_DISKS)
		return err_set(e, "more than %d disks; remove one", VMDEF_MAX_DISKS), NULL;
	struct vmdef_disk *k = &d->disks[d->ndisks++];
	*k = (struct vmdef_disk){0};
	strcpy(k->id, id);
	return k;
}

struct vmdef_nic *vmdef_new_nic(struct vmdef *d, const char *id, struct err *e)
{
	if (!vmdef_name_ok(id))
		return name_error("nic ID", id, e), NULL;
	for (unsigned i = 0; i < d->nnics; i++) {
		if (strcmp(d->nics[i].id, id) == 0)
			return err_set(e, "nic '%s' is defined twice; give each NIC its own ID", id), NULL;
	}
	if (d->nnics == VMDEF_MAX_NICS)
		return err_set(e, "more than %d NICs; remove one", VMDEF_MAX_NICS), NULL;
	struct vmdef_nic *n = &d->nics[d->nnics++];
	*n = (struct vmdef_nic){0};
	strcpy(n->id, id);
	return n;
}

/* "FILE:LINE: msg", "FILE: msg" or "msg". */
__attribute__((format(printf, 4, 5))) static int located(struct err *e, const char *file, int line, const char *fmt,
							 ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (file && line > 0)
		return err_set(e, "%s:%d: %s", file, line, msg);
	if (file)
		return err_set(e, "%s: %s", file, msg);
	return err_set(e, "%s", msg);
}

enum vmdef_boot vmdef_boot_of(const struct vmdef *d)
{
	if (d->boot != VMDEF_BOOT_AUTO)
		return d->boot;
	return d->kernel[0] || !d->firmware[0] ? VMDEF_BOOT_KERNEL : VMDEF_BOOT_DISK;
}

/* A NIC without a MAC in its definition gets one that stays the same for this VM and NIC at
 * every start and differs between VMs (so two VMs on one link or bridge never share one): QEMU's
 * 52:54:00 prefix, then 24 bits of an FNV-1a hash of "VM/NIC". */
void vmdef_nic_mac(const char *vm, const struct vmdef_nic *n, char out[18])
{
	if (n->mac[0]) {
		memcpy(out, n->mac, 18);
		return;
	}
	uint32_t h = 2166136261u;
	for (const char *p = vm;; p++) {
		h = (h ^ (uint8_t)(*p ? *p : '/')) * 16777619u;
		if (!*p)
			break;
	}
	for (const char *p = n->id; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

bool vmdef_firmware_files(const struct vmdef *d, const char **code, const char **vars_template)
{
	bool uefi = strcmp(d->firmware, VMDEF_FIRMWARE_UEFI) == 0;
	*code = uefi ? VMDEF_UEFI_CODE : d->firmware;
	*vars_template = uefi ? VMDEF_UEFI_VARS : d->firmware_vars;
	return d->firmware[0] != '\0';
}

/* firmware, firmware-vars and boot against each other and the kernel. */
static int check_boot(const struct vmdef *d, const char *file, struct err *e)
{
	int vl = d->vm_line;
	bool uefi = strcmp(d->firmware, VMDEF_FIRMWARE_UEFI) == 0;
	if (d->firmware_vars[0] && !d->firmware[0])
		return located(e, file, vl,
			       "firmware-vars is the variable store template of firmware = PATH; add "
			       "'firmware = /path/to/CODE.fd' or remove firmware-vars");
	if (uefi && d->firmware_vars[0])
		return located(e, file, vl,
			       "firmware = uefi takes its variable store template from Debian's OVMF (%s); "
			       "remove firmware-vars, or set firmware to the path of the code image it goes with",
			       VMDEF_UEFI_VARS);
	if (d->firmware[0] && !uefi && !d->firmware_vars[0])
		return located(e, file, vl,
			       "firmware = PATH needs firmware-vars = PATH, the template of its variable "
			       "store (such as %s); add it",
			       VMDEF_UEFI_VARS);
	if (vmdef_boot_of(d) == VMDEF_BOOT_DISK) {
		if (!d->firmware[0])
			return located(e, file, vl,
				       "boot = disk needs firmware to boot the disks; add 'firmware = uefi' "
				       "(Debian's OVMF: apt install %s)",
				       VMDEF_UEFI_PACKAGE);
		if (d->kernel[0] || d->initrd[0] || d->cmdline_given)
			return located(e, file, vl,
				       "boot = disk boots the disks through the firmware; remove kernel, "
				       "initrd and cmdline (or set 'boot = kernel')");
		return 0;
	}
	if (!d->kernel[0])
		return located(e, file, vl,
			       "[vm] has no kernel; add 'kernel = /path/to/bzImage' (or 'firmware = uefi' "
			       "to boot from the disks)");
	if (d->firmware[0])
		return located(e, file, vl,
			       "a kernel booted through firmware (boot = kernel with firmware) is not "
			       "supported yet; remove kernel, initrd and cmdline to boot the disks "
			       "through the firmware, or remove firmware for a direct kernel boot");
	return 0;
}

/* A vm NIC names its peer, not this VM; two that name one peer VM each name its NIC, and not
 * the same one. A NIC of another type takes no peer. */
static int vm_nic_check(const struct vmdef *d, const struct vmdef_nic *n, const char *file, struct err *e)
{
	if (n->type != VMDEF_NIC_VM)
		return n->peer[0]
			? located(e, file, n->line,
				  "[nic %s]: peer is for NICs of type = vm; remove it or set 'type = vm'", n->id)
			: 0;
	if (!n->peer[0])
		return located(e, file, n->line,
			       "[nic %s] is a link to another VM without a peer; add 'peer = VM' or "
			       "'peer = VM:NIC'",
			       n->id);
	if (strcmp(n->peer, d->name) == 0)
		return located(e, file, n->line, "[nic %s]: a VM cannot link to itself; name another VM as peer",
			       n->id);
	for (const struct vmdef_nic *o = d->nics; o < n; o++) {
		if (o->type != VMDEF_NIC_VM || strcmp(o->peer, n->peer))
			continue;
		if (!o->peer_nic[0] || !n->peer_nic[0] || strcmp(o->peer_nic, n->peer_nic) == 0)
			return located(e, file, n->line,
				       "[nic %s] and [nic %s] both link to VM '%s': name a different NIC of it "
				       "in each, e.g. 'peer = %s:NIC'",
				       o->id, n->id, n->peer, n->peer);
	}
	return 0;
}

int vmdef_check(const struct vmdef *d, const char *file, struct err *e)
{
	int vl = d->vm_line;
	if (!d->name[0])
		return located(e, file, vl, "[vm] has no name; add 'name = NAME'");
	if (check_boot(d, file, e) < 0)
		return -1;
	for (unsigned i = 0; i < d->ndisks; i++) {
		const struct vmdef_disk *k = &d->disks[i];
		if (!k->path[0] && !k->template_name[0])
			return located(e, file, k->line,
				       "[disk %s] has no path; add 'path = /path/to/image' "
				       "or 'template = NAME'",
				       k->id);
		if (k->path[0] && k->template_name[0])
			return located(e, file, k->line,
				       "[disk %s] has both path and template; keep one "
				       "(a template disk is a fresh overlay at each start)",
				       k->id);
		if (k->template_name[0] && (k->readonly || k->format != VMDEF_DISK_RAW))
			return located(e, file, k->line,
				       "[disk %s]: a template disk takes no format or "
				       "readonly (its overlay is qcow2 and writable); remove them",
				       k->id);
	}
	for (unsigned i = 0; i < d->nnics; i++) {
		const struct vmdef_nic *n = &d->nics[i];
		if (n->type == VMDEF_NIC_NONE)
			return located(e, file, n->line,
				       "[nic %s] has no type; add 'type = passt', 'type = slirp', "
				       "'type = tap' or 'type = vm'",
				       n->id);
		if (vm_nic_check(d, n, file, e) < 0)
			return -1;
		if (n->type == VMDEF_NIC_TAP && !n->ifname[0])
			return located(e, file, n->line,
				       "[nic %s] is a tap NIC without ifname; add "
				       "'ifname = tap0'",
				       n->id);
		if (!vmdef_nic_user_mode(n->type) && (n->nfwds || n->host_loopback))
			return located(e, file, n->line,
				       "[nic %s]: forward and host-loopback work only "
				       "with type = passt or slirp; remove them",
				       n->id);
		if (n->type != VMDEF_NIC_TAP && (n->ifname[0] || n->vhost != VHOST_AUTO || n->queues))
			return located(e, file, n->line,
				       "[nic %s]: ifname, vhost and queues are for tap NICs; remove them or "
				       "set 'type = tap'",
				       n->id);
	}
	return 0;
}

static int remove_device(struct vmdef *d, bool disk, const char *id, struct err *e)
{
	unsigned *count = disk ? &d->ndisks : &d->nnics;
	for (unsigned i = 0; i < *count; i++) {
		if (strcmp(disk ? d->disks[i].id : d->nics[i].id, id))
			continue;
		if (disk)
			memmove(&d->disks[i], &d->disks[i + 1], (*count - i - 1) * sizeof(d->disks[0]));
		else
			memmove(&d->nics[i], &d->nics[i + 1], (*count - i - 1) * sizeof(d->nics[0]));
		(*count)--;
		return 0;
	}
	return err_set(e, "there is no %s '%s' to remove", disk ? "disk" : "nic", id);
}

static int set_device_key(struct vmdef *d, bool disk, const char *id, const char *key, const char *value, struct err *e)
{
	for (unsigned i = 0; i < (disk ? d->ndisks : d->nnics); i++) {
		if (disk && strcmp(d->disks[i].id, id) == 0) {
			struct vmdef_disk *k = &d->disks[i];
			/* A disk is either a file or a template: setting one drops the other. */
			if (strcmp(key, "template") == 0 && *value)
				k->path[0] = '\0', k->format = VMDEF_DISK_RAW, k->readonly = false;
			if (strcmp(key, "path") == 0 && *value)
				k->template_name[0] = '\0';
			return vmdef_apply_disk(k, key, value, e);
		}
		if (!disk && strcmp(d->nics[i].id, id) == 0)
			return vmdef_apply_nic(&d->nics[i], key, value, e);
	}
	if (disk) {
		struct vmdef_disk *k = vmdef_new_disk(d, id, e);
		return k ? vmdef_apply_disk(k, key, value, e) : -1;
	}
	struct vmdef_nic *n = vmdef_new_nic(d, id, e);
	return n ? vmdef_apply_nic(n, key, value, e) : -1;
}

static int apply_assignment(struct vmdef *d, char *key, const char *value, struct err *e)
{
	char *dot = strchr(key, '.');
	if (!dot) {
		if (strcmp(key, "name") == 0)
			return err_set(e, "a VM cannot be renamed; create a new one with the new name");
		return vmdef_apply_vm(d, key, value, false, e);
	}
	*dot = '\0';
	if (strcmp(key, "policy") == 0)
		return vmdef_apply_policy(&d->policy, dot + 1, value, e);
	bool disk = strcmp(key, "disk") == 0;
	if (!disk && strcmp(key, "nic"))
		return err_set(e, "unknown key '%s.%s'; write a [vm] key, disk.ID.KEY, nic.ID.KEY or policy.KEY", key,
			       dot + 1);
	char *id = dot + 1, *sub = strchr(id, '.');
	if (!sub) {
		if (*value)
			return err_set(e, "'%s.%s=%s': write %s.%s.KEY=VALUE, or %s.%s= to remove it", key, id, value,
				       key, id, key, id);
		return remove_device(d, disk, id, e);
	}
	*sub++ = '\0';
	return set_device_key(d, disk, id, sub, value, e);
}

/* One KEY=VALUE applied to d, unchecked; errors start with KEY. */
static int apply_one(struct vmdef *d, const char *assignment, struct err *e)
{
	char key[96];
	const char *eq = strchr(assignment, '=');
	if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof(key))
		return err_set(e, "'%.60s' is not KEY=VALUE; write e.g. memory=1G or disk.root.path=/img", assignment);
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	struct err sub;
	if (apply_assignment(d, key, eq + 1, &sub) < 0)
		return err_set(e, "%.*s: %s", (int)(eq - assignment), assignment, sub.msg);
	return 0;
}

int vmdef_set_all(struct vmdef *d, char *const *assignments, int n, struct err *e)
{
	struct vmdef *tmp = malloc(sizeof(*tmp));
	if (!tmp)
		return err_set(e, "out of memory");
	*tmp = *d;
	int r = 0;
	for (int i = 0; i < n && r == 0; i++)
		r = apply_one(tmp, assignments[i], e);
	struct err sub;
	if (r == 0 && vmdef_check(tmp, NULL, &sub) < 0) {
		/* One edit: the error starts with its key, as a bad value's does. */
		const char *a = n == 1 ? assignments[0] : "";
		r = err_set(e, "%.*s%s%s", (int)strcspn(a, "="), a, n == 1 ? ": " : "", sub.msg);
	}
	if (r == 0)
		*d = *tmp;
	free(tmp);
	return r;
}

int vmdef_set(struct vmdef *d, const char *assignment, struct err *e)
{
	char *one = (char *)assignment; /* read only */
	return vmdef_set_all(d, &one, 1, e);
}

/* Splits "HEAD,opt,opt..." in buf (modified); returns HEAD and sets *opts. */
static char *split_spec(char *buf, char **opts)
{
	char *comma = strchr(buf, ',');
	*opts = comma ? comma + 1 : NULL;
	if (comma)
		*comma = '\0';
	return buf;
}

int vmdef_add_disk_spec(struct vmdef *d, const char *id, const char *spec, struct err *e)
{
	char buf[512], *opts, *opt;
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return err_set(e, "--disk '%.40s...' is too long", spec);
	struct vmdef_disk k = {0};
	struct err sub;
	char *path = split_spec(buf, &opts);
	if (vmdef_apply_disk(&k, "path", path, &sub) < 0)
		return err_set(e, "--disk %s: %s", spec, sub.msg);
	while ((opt = strsep(&opts, ",")) != NULL) {
		int r;
		if (strcmp(opt, "ro") == 0)
			r = vmdef_apply_disk(&k, "readonly", "yes", &sub);
		else if (strncmp(opt, "serial=", 7) == 0)
			r = vmdef_apply_disk(&k, "serial", opt + 7, &sub);
		else if (strncmp(opt, "format=", 7) == 0)
			r = vmdef_apply_disk(&k, "format", opt + 7, &sub);
		else
			r = err_set(&sub, "unknown option '%s'; use ro, serial=ID or format=raw|qcow2", opt);
		if (r < 0)
			return err_set(e, "--disk %s: %s", spec, sub.msg);
	}
	struct vmdef_disk *slot = vmdef_new_disk(d, id, e);
	if (!slot)
		return -1;
	strcpy(k.id, slot->id);
	*slot = k;
	return 0;
}

int vmdef_add_nic_spec(struct vmdef *d, const char *id, const char *spec, struct err *e)
{
	char buf[512], *opts, *opt;
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return err_set(e, "--net '%.40s...' is too long", spec);
	struct vmdef_nic n = {0};
	struct err sub;
	char *head = split_spec(buf, &opts);
	int r = 0;
	if (strcmp(head, "slirp") == 0 || strcmp(head, "passt") == 0)
		n.type = head[0] == 's' ? VMDEF_NIC_SLIRP : VMDEF_NIC_PASST;
	else if (strncmp(head, "tap=", 4) == 0)
		r = vmdef_apply_nic(&n, "type", "tap", &sub) || vmdef_apply_nic(&n, "ifname", head + 4, &sub);
	else if (strncmp(head, "vm=", 3) == 0)
		r = vmdef_apply_nic(&n, "type", "vm", &sub) || vmdef_apply_nic(&n, "peer", head + 3, &sub);
	else
		r = err_set(&sub,
			    "write passt or slirp[,mac=MAC][,fwd=tcp:HOSTPORT:GUESTPORT], "
			    "tap=IFNAME[,mac=MAC] or vm=PEER[:NIC][,mac=MAC]");
	while (!r && (opt = strsep(&opts, ",")) != NULL) {
		if (strncmp(opt, "mac=", 4) == 0)
			r = vmdef_apply_nic(&n, "mac", opt + 4, &sub);
		else if (strncmp(opt, "fwd=", 4) == 0 && vmdef_nic_user_mode(n.type))
			r = vmdef_apply_nic(&n, "forward", opt + 4, &sub);
		else if (strncmp(opt, "host-loopback=", 14) == 0 && vmdef_nic_user_mode(n.type))
			r = vmdef_apply_nic(&n, "host-loopback", opt + 14, &sub);
		else if (strncmp(opt, "vhost=", 6) == 0 && n.type == VMDEF_NIC_TAP)
			r = vmdef_apply_nic(&n, "vhost", opt + 6, &sub);
		else if (strncmp(opt, "queues=", 7) == 0 && n.type == VMDEF_NIC_TAP)
			r = vmdef_apply_nic(&n, "queues", opt + 7, &sub);
		else
			r = err_set(&sub,
				    "unknown option '%s'; use mac=MAC, (passt, slirp) fwd=... or "
				    "host-loopback=yes, or (tap) vhost=auto|on|off or queues=N",
				    opt);
	}
	if (r)
		return err_set(e, "--net %s: %s", spec, sub.msg);
	struct vmdef_nic *slot = vmdef_new_nic(d, id, e);
	if (!slot)
		return -1;
	strcpy(n.id, slot->id);
	*slot = n;
	return 0;
}

int vmdef_set_firmware_spec(struct vmdef *d, const char *spec, struct err *e)
{
	char buf[512], fw[600], vars[600] = "firmware-vars=";
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return err_set(e, "--firmware '%.40s...' is too long", spec);
	char *opts, *code = split_spec(buf, &opts);
	if (opts && strncmp(opts, "vars=", 5) == 0 && strcmp(code, VMDEF_FIRMWARE_UEFI))
		snprintf(vars + strlen(vars), sizeof(vars) - strlen(vars), "%s", opts + 5);
	else if (opts)
		return err_set(e,
			       "--firmware %s: write uefi (Debian's OVMF) or CODE,vars=TEMPLATE (a code image "
			       "and its variable store template)",
			       spec);
	snprintf(fw, sizeof(fw), "firmware=%s", code);
	char *both[] = {fw, vars};
	struct err sub;
	if (vmdef_set_all(d, both, 2, &sub) < 0)
		return err_set(e, "--firmware %s: %s", spec, sub.msg);
	return 0;
}

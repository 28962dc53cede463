/* vmdef_format: a definition written back as INI text, in the layout vmdef_parse reads (long
 * command lines continue on indented lines). */
#include "vmdef.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct out {
	char *buf;
	size_t size, len;
	bool overflow;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0 || o->len + (size_t)n >= o->size)
		o->overflow = true;
	else
		o->len += (size_t)n;
}

static void put_memory(struct out *o, uint32_t mib)
{
	if (mib % 1024 == 0)
		put(o, "memory = %uG\n", mib / 1024);
	else
		put(o, "memory = %uM\n", mib);
}

/* cmdline = first words, then indented lines of at most 160 characters, split at spaces. */
static void put_cmdline(struct out *o, const char *s)
{
	const char *prefix = "cmdline = ";
	while (*s == ' ')
		s++;
	do {
		size_t take = strlen(s);
		if (take > 160) {
			take = 160;
			while (take > 0 && s[take] != ' ')
				take--;
			if (take == 0)
				take = strcspn(s, " ");
		}
		while (take > 0 && s[take - 1] == ' ') /* read back, a line loses its trailing spaces */
			take--;
		put(o, "%s%.*s\n", prefix, (int)take, s);
		prefix = "\t";
		s += take;
		while (*s == ' ')
			s++;
	} while (*s);
}

static void put_rule(struct out *o, const char *key, const struct vmdef_peers *r)
{
	bool allow = r->mode == VMDEF_PEERS_ALL || r->mode == VMDEF_PEERS_ONLY;
	put(o, "%s = %s", key, allow ? "allow" : "deny");
	for (unsigned i = 0; i < r->n; i++)
		put(o, " %s", r->peer[i]);
	put(o, "\n");
}

/* [policy], with only the keys that differ from their defaults; nothing when none does. */
static void put_policy(struct out *o, const struct vmdef_policy *p)
{
	bool out = p->clip_out.mode != VMDEF_PEERS_ALL, in = p->clip_in.mode != VMDEF_PEERS_ALL;
	bool max = p->clip_max != SHOJI_CLIPBOARD_MAX;
	char usb[1024];
	int usb_len = usb_policy_format(&p->usb, usb, sizeof(usb));
	if (usb_len < 0) /* cannot be: the lists were bounded when parsed; written, they would be cut */
		o->overflow = true;
	if (!out && !in && !max && usb_len <= 0)
		return;
	put(o, "\n[policy]\n");
	if (out)
		put_rule(o, "clipboard-out", &p->clip_out);
	if (in)
		put_rule(o, "clipboard-in", &p->clip_in);
	if (max)
		put(o, "clipboard-max = %u\n", p->clip_max);
	if (usb_len > 0)
		put(o, "%s", usb);
}

int vmdef_format(const struct vmdef *d, char *buf, size_t size)
{
	struct out o = {.buf = buf, .size = size};
	put(&o, "[vm]\nname = %s\n", d->name);
	put_memory(&o, d->memory_mib);
	put(&o, "cpus = %u\n", d->cpus);
	if (d->kernel[0])
		put(&o, "kernel = %s\n", d->kernel);
	if (d->initrd[0])
		put(&o, "initrd = %s\n", d->initrd);
	bool kernel_boot = vmdef_boot_of(d) == VMDEF_BOOT_KERNEL;
	if (d->cmdline[0] && kernel_boot) /* boot = disk: the default, unused */
		put_cmdline(&o, d->cmdline);
	else if (kernel_boot) /* an empty one asked for, which read back must not become the default */
		put(&o, "cmdline =\n");
	if (d->firmware[0])
		put(&o, "firmware = %s\n", d->firmware);
	if (d->firmware_vars[0])
		put(&o, "firmware-vars = %s\n", d->firmware_vars);
	if (d->firmware[0] || d->boot != VMDEF_BOOT_AUTO)
		put(&o, "boot = %s\n", kernel_boot ? "kernel" : "disk");
	if (d->vsock_auto)
		put(&o, "vsock-cid = auto\n");
	else if (d->vsock_cid)
		put(&o, "vsock-cid = %u\n", d->vsock_cid);
	put(&o, "display = %s\n", d->display ? "on" : "off");
	if (d->label[0])
		put(&o, "label = %s\n", d->label);
	put(&o, "autostart = %s\n", d->autostart ? "yes" : "no");
	for (unsigned i = 0; i < d->nparams; i++)
		put(&o, "param = %s=%s\n", d->params[i].key, d->params[i].value);
	for (unsigned i = 0; i < d->ndisks; i++) {
		const struct vmdef_disk *k = &d->disks[i];
		if (k->template_name[0])
			put(&o, "\n[disk %s]\ntemplate = %s\n", k->id, k->template_name);
		else
			put(&o, "\n[disk %s]\npath = %s\nformat = %s\nreadonly = %s\n", k->id, k->path,
			    k->format == VMDEF_DISK_QCOW2 ? "qcow2" : "raw", k->readonly ? "yes" : "no");
		if (k->serial[0])
			put(&o, "serial = %s\n", k->serial);
	}
	for (unsigned i = 0; i < d->nnics; i++) {
		const struct vmdef_nic *n = &d->nics[i];
		put(&o, "\n[nic %s]\ntype = %s\n", n->id, vmdef_nic_type_names[n->type]);
		if (n->peer[0])
			put(&o, "peer = %s%s%s\n", n->peer, n->peer_nic[0] ? ":" : "", n->peer_nic);
		if (n->mac[0])
			put(&o, "mac = %s\n", n->mac);
		if (n->ifname[0])
			put(&o, "ifname = %s\n", n->ifname);
		if (n->host_loopback)
			put(&o, "host-loopback = yes\n");
		if (n->vhost != VHOST_AUTO)
			put(&o, "vhost = %s\n", vhost_mode_names[n->vhost]);
		if (n->queues)
			put(&o, "queues = %u\n", n->queues);
		for (unsigned f = 0; f < n->nfwds; f++) {
			const struct vmdef_fwd *w = &n->fwds[f];
			put(&o, "forward = %s:%s%s%u:%u\n", w->proto, w->host_addr, w->host_addr[0] ? ":" : "",
			    w->host_port, w->guest_port);
		}
	}
	put_policy(&o, &d->policy);
	return o.overflow ? -1 : (int)o.len;
}

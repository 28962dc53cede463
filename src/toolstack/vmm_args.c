/* vmm_args: a definition turned into shoji-vmm options (see vmm_args.h). */
#include "vmm_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/usernet.h"

__attribute__((format(printf, 2, 3))) static int add(struct vmm_args *a, const char *fmt, ...)
{
	if (a->argc == VMM_ARGS_MAX)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	size_t room = sizeof(a->buf) - a->used;
	int n = vsnprintf(a->buf + a->used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return -1;
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += (size_t)n + 1;
	return 0;
}

static int add_nic(struct vmm_args *a, const char *vm, const struct vmdef_nic *n)
{
	char spec[512];
	size_t len = 0;
	if (n->type == VMDEF_NIC_TAP)
		len = (size_t)snprintf(spec, sizeof(spec), "tap=%s", n->ifname);
	else if (n->type == VMDEF_NIC_VM)
		len = (size_t)snprintf(spec, sizeof(spec), "link");
	else if (n->type == VMDEF_NIC_PASST) /* forwards and host loopback are passt's (uplinks.c) */
		len = (size_t)snprintf(spec, sizeof(spec), "passt");
	else
		len = (size_t)snprintf(spec, sizeof(spec), "slirp");
	char mac[18];
	vmdef_nic_mac(vm, n, mac);
	len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",mac=%s", mac);
	if (n->type == VMDEF_NIC_PASST)
		return len < sizeof(spec) ? (add(a, "--net") || add(a, "%s", spec)) : -1;
	if (n->host_loopback)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",host-loopback=on");
	if (n->vhost != VHOST_AUTO)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",vhost=%s", vhost_mode_names[n->vhost]);
	if (n->queues)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",queues=%u", n->queues);
	for (unsigned i = 0; i < n->nfwds; i++) {
		const struct vmdef_fwd *f = &n->fwds[i];
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, ",fwd=%s:%s%s%u:%u", f->proto, f->host_addr,
					f->host_addr[0] ? ":" : "", f->host_port, f->guest_port);
	}
	return len < sizeof(spec) ? (add(a, "--net") || add(a, "%s", spec)) : -1;
}

/* The forwards of one protocol as passt's -t/-u options ("none" when there are none), on
 * 127.0.0.1 unless they name an address, as slirp's. */
static int passt_forwards(struct vmm_args *a, const struct vmdef_nic *n, const char *proto, const char *opt)
{
	int r = 0, any = 0;
	for (unsigned i = 0; i < n->nfwds; i++) {
		const struct vmdef_fwd *f = &n->fwds[i];
		if (strcmp(f->proto, proto))
			continue;
		r = r || add(a, "%s", opt) ||
			add(a, "%s/%u:%u", f->host_addr[0] ? f->host_addr : "127.0.0.1", f->host_port, f->guest_port);
		any = 1;
	}
	return r || (!any && (add(a, "%s", opt) || add(a, "none")));
}

int vmm_args_passt(const char *passt, const struct vmdef_nic *n, struct vmm_args *a)
{
	/* In the foreground, quiet, one client then exit, IPv4 only (as slirp), its socket at
	 * descriptor 3; slirp's addresses: the guest's, its prefix, the gateway, and 10.0.2.3 for
	 * DNS, which passt maps to the host's first resolver in /etc/resolv.conf. No -D: naming
	 * 10.0.2.3 as the resolver too sent the guest's queries to the host's 127.0.0.1:53,
	 * past --no-map-gw (test_passt_uplink's passt_dns). */
	/* clang-format off */
	static const char *const fixed[] = {
		"-f", "-q", "-1", "-4", "--fd", "3",
		"-a", USERNET_GUEST, "-n", USERNET_PREFIX, "-g", USERNET_HOST, "--dns-forward", USERNET_DNS,
		NULL};
	/* clang-format on */
	a->argc = 0;
	a->used = 0;
	int r = add(a, "%s", passt);
	for (const char *const *s = fixed; *s; s++)
		r = r || add(a, "%s", *s);
	if (!n->host_loopback)
		r = r || add(a, "--no-map-gw");
	return r || passt_forwards(a, n, "tcp", "-t") || passt_forwards(a, n, "udp", "-u") ? -1 : 0;
}

int vmm_args_slirp(const char *helper, const struct vmdef_nic *n, struct vmm_args *a)
{
	/* No --ready: nothing waits for it. One that cannot bind a forward says why in the
	 * monitor's log and ends, and the NIC stays down. The MTU is its default, the monitor's. */
	a->argc = 0;
	a->used = 0;
	int r = add(a, "%s", helper) || add(a, "--fd") || add(a, "3");
	if (n->host_loopback)
		r = r || add(a, "--host-loopback");
	for (unsigned i = 0; i < n->nfwds; i++) {
		const struct vmdef_fwd *f = &n->fwds[i];
		r = r || add(a, "--fwd") ||
			add(a, "%s:%s:%u:%u", f->proto, f->host_addr[0] ? f->host_addr : "127.0.0.1", f->host_port,
			    f->guest_port);
	}
	return r ? -1 : 0;
}

int vmm_args_build(const struct vmdef *d, const struct vmm_args_in *in, struct vmm_args *a, struct err *e)
{
	a->argc = 0;
	a->used = 0;
	const char *code, *vars_template;
	int r = add(a, "%s", in->vmm);
	if (vmdef_firmware_files(d, &code, &vars_template)) {
		/* The VM's own copy of the template (shojid's), never the template itself. */
		if (!in->firmware_vars || !in->firmware_vars[0])
			return err_set(e, "VM '%s' boots through firmware but has no variable store", d->name);
		r = r || add(a, "--firmware") || add(a, "%s,vars=%s", code, in->firmware_vars);
	} else {
		r = r || add(a, "--kernel") || add(a, "%s", d->kernel);
		if (d->initrd[0])
			r = r || add(a, "--initrd") || add(a, "%s", d->initrd);
		r = r || add(a, "--cmdline") || add(a, "%s", d->cmdline);
	}
	r = r || add(a, "--memory") || add(a, "%u", d->memory_mib);
	r = r || add(a, "--cpus") || add(a, "%u", d->cpus);
	r = r || add(a, "--control-socket") || add(a, "%s", in->control);
	r = r || add(a, "--serial") || add(a, "socket:%s", in->serial_socket);
	r = r || add(a, "--serial-log") || add(a, "%s", in->serial_log);
	r = r || add(a, "--rng");
	if (d->display && in->display)
		r = r || add(a, "--display") || add(a, "socket:%s", in->display);
	for (unsigned i = 0; i < d->ndisks; i++) {
		const struct vmdef_disk *k = &d->disks[i];
		/* format=raw is the monitor's default and is left out. */
		bool vol = k->template_name[0] && k->path[0] && in->volatile_dir;
		r = r || add(a, "--disk") ||
			add(a, "%s%s%s%s%s%s%s", k->path, k->readonly ? ",ro" : "", k->serial[0] ? ",serial=" : "",
			    k->serial, vol || k->format == VMDEF_DISK_QCOW2 ? ",format=qcow2" : "",
			    vol ? ",volatile=" : "", vol ? in->volatile_dir : "");
	}
	for (unsigned i = 0; i < d->nnics; i++)
		r = r || add_nic(a, d->name, &d->nics[i]);
	if (d->vsock_cid)
		r = r || add(a, "--vsock") || add(a, "%u", d->vsock_cid);
	for (unsigned i = 0; i < d->nparams; i++)
		r = r || add(a, "--param") || add(a, "%s=%s", d->params[i].key, d->params[i].value);
	if (in->jail)
		r = r || add(a, "--jail-uid") || add(a, "%u", (unsigned)in->jail_uid) || add(a, "--jail-gid") ||
			add(a, "%u", (unsigned)in->jail_gid);
	if (in->jail && in->net_uid && vmdef_has_nic(d, VMDEF_NIC_SLIRP))
		r = r || add(a, "--net-uid") || add(a, "%u", (unsigned)in->net_uid);
	return r ? err_set(e, "the monitor's command line for '%s' is too long", d->name) : 0;
}

/* jailuid: one jail uid per VM. shojid hands each VM a uid of its own from a range
 * (--jail-uids, default JAILUID_DEFAULT_FIRST-JAILUID_DEFAULT_LAST) when it is created (a
 * disposable VM: when it is run; a VM from before: at its next start, or at the daemon's start
 * when it is stopped), records it in the VM's state.json and frees it when the VM is removed.
 * A uid is given only when no other VM has it, no passwd entry has it (getpwuid, so every NSS
 * source counts) and no /etc/subuid range holds it (a user's rootless containers would map
 * it). The search goes on from the last uid given (STATE/jail-uids.json keeps the place
 * across restarts), so a freed uid is given again only once the whole range has been used.
 * A VM with a NIC of type passt gets a second uid, its net uid, the same way: its passt runs as
 * that, never as its monitor, so neither can signal, trace or read the other.
 * All of it runs on shojid's one thread. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../statefile.h"
#include "daemon.h"

int jailuid_parse_range(const char *text, uid_t *first, uid_t *last, struct err *e)
{
	char *end;
	errno = 0;
	unsigned long long a = strtoull(text, &end, 10), b = 0;
	bool ok = errno == 0 && end != text && *end == '-';
	if (ok) {
		const char *s = end + 1;
		b = strtoull(s, &end, 10);
		ok = errno == 0 && end != s && *end == '\0';
	}
	if (!ok || text[0] == '-' || strchr(text, '+'))
		return err_set(e, "--jail-uids '%s' is not a range; write FIRST-LAST (e.g. %u-%u)", text,
			       JAILUID_DEFAULT_FIRST, JAILUID_DEFAULT_LAST);
	if (a < 1000 || a > b || b >= 0x7fffffffULL || (a <= 65535 && b >= 65534))
		return err_set(e,
			       "--jail-uids %llu-%llu: the range must lie between 1000 and 2147483646, "
			       "first <= last, and hold neither 65534 (nobody) nor 65535",
			       a, b);
	*first = (uid_t)a;
	*last = (uid_t)b;
	return 0;
}

/* True when a passwd entry has uid, or when NSS cannot say (then it is not given either). */
static bool has_passwd_entry(uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r = getpwuid_r(uid, &pw, buf, sizeof(buf), &res);
	return r != 0 || res != NULL;
}

/* True when a /etc/subuid range holds uid. */
static bool in_subuid(uid_t uid)
{
	FILE *f = fopen("/etc/subuid", "re");
	char line[512];
	bool in = false;
	while (f && !in && fgets(line, sizeof(line), f)) {
		unsigned long long start, count;
		char *c = strchr(line, ':');
		if (c && sscanf(c + 1, "%llu:%llu", &start, &count) == 2)
			in = uid >= start && uid - start < count;
	}
	if (f)
		fclose(f);
	return in;
}

static struct vm_entry *holder(struct daemon *d, uid_t uid, const struct vm_entry *except)
{
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		struct vm_entry *v = &d->vms[i];
		if (v->used && v != except &&
		    ((v->jail_assigned && v->jail_uid == uid) || (v->net_assigned && v->net_uid == uid)))
			return v;
	}
	return NULL;
}

static void save_cursor(struct daemon *d)
{
	char p[512], text[64];
	if (paths_get(&d->paths, PATHS_JAIL_UIDS, NULL, p, sizeof(p), NULL) < 0)
		return;
	int n = snprintf(text, sizeof(text), "{\"next\":%u}\n", (unsigned)d->jail_next);
	struct err e;
	if (statefile_write(p, text, (size_t)n, false, &e) < 0)
		fprintf(stderr, "shojid: %s\n", e.msg);
}

static void load_cursor(struct daemon *d)
{
	char p[512], *text;
	size_t len;
	int en;
	unsigned long long next;
	d->jail_next = d->jail_first;
	if (paths_get(&d->paths, PATHS_JAIL_UIDS, NULL, p, sizeof(p), NULL) < 0 ||
	    statefile_read(p, 4096, &text, &len, &en, NULL) < 0)
		return;
	if (sscanf(text, "{\"next\":%llu}", &next) == 1 && next >= d->jail_first && next <= d->jail_last)
		d->jail_next = (uid_t)next;
	free(text);
}

void jailuid_init(struct daemon *d)
{
	load_cursor(d);
	unsigned taken = 0;
	struct passwd *pw;
	setpwent();
	while ((pw = getpwent()))
		taken += pw->pw_uid >= d->jail_first && pw->pw_uid <= d->jail_last;
	endpwent();
	if (taken)
		fprintf(stderr,
			"shojid: %u passwd entries have uids in the jail range %u-%u; those uids are "
			"never given to a VM\n",
			taken, (unsigned)d->jail_first, (unsigned)d->jail_last);
	fprintf(stderr, "shojid: each VM's monitor runs as a uid of its own from %u-%u, gid %u\n",
		(unsigned)d->jail_first, (unsigned)d->jail_last, (unsigned)d->jail_gid);
}

static int allocate(struct daemon *d, const struct vm_entry *vm, uid_t *out, struct err *e)
{
	uint64_t n = (uint64_t)d->jail_last - d->jail_first + 1;
	for (uint64_t i = 0; i < n; i++) {
		uid_t u = (uid_t)(d->jail_first + ((uint64_t)d->jail_next - d->jail_first + i) % n);
		if (holder(d, u, vm) || (vm->jail_assigned && vm->jail_uid == u) ||
		    (vm->net_assigned && vm->net_uid == u) || has_passwd_entry(u) || in_subuid(u))
			continue;
		*out = u;
		d->jail_next = u == d->jail_last ? d->jail_first : u + 1;
		save_cursor(d);
		return 0;
	}
	return err_set(e,
		       "VM '%s': no free jail uid in %u-%u (each VM needs one that no other VM, "
		       "passwd entry or /etc/subuid range has); give shojid a wider --jail-uids range",
		       vm->name, (unsigned)d->jail_first, (unsigned)d->jail_last);
}

/* One of the VM's uids (*uid, given when *assigned), recorded in its state. */
static int assign(struct daemon *d, struct vm_entry *vm, bool *assigned, uid_t *uid, struct err *e)
{
	if (!d->jail || *assigned)
		return 0;
	if (allocate(d, vm, uid, e) < 0)
		return -1;
	*assigned = true;
	vm_save(d, vm);
	return 0;
}

int jailuid_assign(struct daemon *d, struct vm_entry *vm, struct err *e)
{
	return assign(d, vm, &vm->jail_assigned, &vm->jail_uid, e);
}

int jailuid_assign_new(struct daemon *d, const char *name, struct err *e)
{
	struct vm_entry *vm = vm_find(d, name, true);
	if (!vm)
		return err_set(e, "shojid supervises at most %d VMs", DAEMON_MAX_VMS);
	return jailuid_assign(d, vm, e);
}

int jailuid_assign_net(struct daemon *d, struct vm_entry *vm, struct err *e)
{
	return assign(d, vm, &vm->net_assigned, &vm->net_uid, e);
}

void jailuid_recorded_net(struct daemon *d, struct vm_entry *vm, uid_t uid)
{
	if (!holder(d, uid, vm) && !has_passwd_entry(uid) && !(vm->jail_assigned && vm->jail_uid == uid)) {
		vm->net_uid = uid;
		vm->net_assigned = true;
	} /* else a new one at its next start */
}

void jailuid_recorded(struct daemon *d, struct vm_entry *vm, uid_t uid)
{
	struct vm_entry *other = holder(d, uid, vm);
	if (!other && !has_passwd_entry(uid)) {
		vm->jail_uid = uid;
		vm->jail_assigned = true;
		return;
	}
	if (other)
		fprintf(stderr,
			"shojid: VM '%s': its recorded jail uid %u is also that of VM '%s'; it gets a new "
			"one at its next start\n",
			vm->name, (unsigned)uid, other->name);
	else
		fprintf(stderr,
			"shojid: VM '%s': its recorded jail uid %u belongs to a passwd entry now; it "
			"gets a new one at its next start\n",
			vm->name, (unsigned)uid);
}

void jailuid_startup(struct daemon *d)
{
	for (int i = 0; d->jail && i < DAEMON_MAX_VMS; i++) {
		struct vm_entry *vm = &d->vms[i];
		struct err e;
		if (!vm->used || vm_active(vm) || vm->jail_assigned)
			continue;
		if (jailuid_assign(d, vm, &e) < 0 || jailfiles_give(d, vm, &e) < 0)
			fprintf(stderr, "shojid: %s\n", e.msg);
		else
			fprintf(stderr,
				"shojid: VM '%s' has no jail uid of its own yet: it gets %u, and its files "
				"with it\n",
				vm->name, (unsigned)vm->jail_uid);
	}
}

int vm_jail_identity(struct daemon *d, const char *name, struct jail_id *out, struct err *e)
{
	struct vm_entry *vm = vm_find(d, name, false);
	if (!d->jail)
		return err_set(e, "shojid runs without a jail (not root, or --no-jail): VM '%s' has no jail uid", name);
	if (!vm || !vm->jail_assigned)
		return err_set(e, "VM '%s' has no jail uid yet; it gets one when it is started", name);
	*out = (struct jail_id){.uid = vm->jail_uid, .gid = d->jail_gid};
	return 0;
}

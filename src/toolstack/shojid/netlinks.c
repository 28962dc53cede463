/* netlinks: links between VMs' NICs ([nic ID] type = vm, peer = VM[:NIC]; see vmdef.h). Two
 * NICs are joined only when each one's definition names the other VM (and, where it names a NIC,
 * that NIC): a VM's owner cannot attach to a NIC the other VM's definition did not offer. When
 * both VMs run, shojid makes a SOCK_SEQPACKET socket pair and hands one end to each monitor
 * (the control socket's net-link): frames then go from monitor to monitor, with no host bridge
 * or host IP stack between, one frame a message, bounded by the sockets' buffers. A monitor sees
 * its end close when the other VM stops, and its NIC's link goes down by itself (the guest sees
 * the link status); the other VM's next start joins them again, without restarting this one.
 * Before a hand-over, both monitors' status must show the NIC the definition says (a link, with
 * its MAC), so a definition edited while its VM runs never steers a link to another NIC.
 * Whether a VM runs or exists is said only to the owner of a NIC its definition offers a link.
 * Runs on shojid's main thread: each join is a few control calls, each bounded in time. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"

static bool running(const struct vm_entry *vm)
{
	return vm && (vm->state == VM_RUNNING || vm->state == VM_PAUSED);
}

/* The index of the NIC of peer (its definition) that NIC mine of VM me links to; -1: none. */
static int peer_nic(const struct vmdef *peer, const char *me, const struct vmdef_nic *mine)
{
	for (unsigned i = 0; i < peer->nnics; i++) {
		const struct vmdef_nic *p = &peer->nics[i];
		if (p->type != VMDEF_NIC_VM || strcmp(p->peer, me))
			continue;
		if ((mine->peer_nic[0] && strcmp(mine->peer_nic, p->id)) ||
		    (p->peer_nic[0] && strcmp(p->peer_nic, mine->id)))
			continue;
		return (int)i;
	}
	return -1;
}

/* NIC mine of VM me: the index of the NIC of its peer's definition (loaded into pdef) that
 * names it back; -1 when none does, or the peer has no definition (the same answer, so that
 * nobody learns which VMs exist). */
static int offered(struct daemon *d, const char *me, const struct vmdef_nic *mine, struct vmdef *pdef)
{
	enum proto_code code;
	struct err e;
	return vm_load_definition(d, mine->peer, pdef, &code, &e) < 0 ? -1 : peer_nic(pdef, me, mine);
}

/* A running VM's status reply, whose nics say each NIC's kind, MAC and link (NULL when its
 * monitor does not answer); one call serves all of the VM's NICs. */
struct json_object *netlinks_monitor_status(struct daemon *d, struct vm_entry *vm)
{
	struct json_object *rep;
	struct err e;
	return vm_control(d, vm, CONTROL_STATUS, &rep, &e) < 0 ? NULL : rep;
}

/* Field key of NIC i in a status reply, of type t; NULL when it does not say. */
static struct json_object *nic_value(struct json_object *status, unsigned i, const char *key, json_type t)
{
	struct json_object *nics, *v;
	struct json_object *nic = status && json_object_object_get_ex(status, CONTROL_R_NICS, &nics) &&
			json_object_is_type(nics, json_type_array)
		? json_object_array_get_idx(nics, i)
		: NULL;
	return nic && json_object_object_get_ex(nic, key, &v) && json_object_is_type(v, t) ? v : NULL;
}

/* The same for a boolean field (false when it does not say). */
static bool nic_flag(struct json_object *status, unsigned i, const char *key)
{
	struct json_object *v = nic_value(status, i, key, json_type_boolean);
	return v && json_object_get_boolean(v);
}

/* The same for a string field ("" when it does not say). */
static const char *nic_field(struct json_object *status, unsigned i, const char *key)
{
	struct json_object *v = nic_value(status, i, key, json_type_string);
	return v ? json_object_get_string(v) : "";
}

/* Whether NIC i has its link up in a status reply (false when it does not say). */
bool netlinks_nic_up(struct json_object *status, unsigned i)
{
	return strcmp(nic_field(status, i, CONTROL_R_LINK), "up") == 0;
}

/* Whether net-link may hand NIC i a socket: a link's or passt's always; a slirp NIC's only where
 * the monitor says so (one started before shojid restarted slirp NICs' NATs refuses it). */
bool netlinks_nic_takes_socket(struct json_object *status, unsigned i)
{
	return strcmp(nic_field(status, i, CONTROL_R_KIND), "slirp") ? true : nic_flag(status, i, CONTROL_R_TAKES);
}

/* Whether the running monitor's NIC i is NIC n of VM vm's definition (of that kind, with its
 * MAC): a definition edited while the VM runs may have moved, added or changed NICs, and a
 * socket must never reach a NIC the monitor has for something else. */
bool netlinks_nic_is(struct json_object *status, unsigned i, const char *kind, const char *vm,
		     const struct vmdef_nic *n)
{
	char mac[18];
	vmdef_nic_mac(vm, n, mac);
	return strcmp(nic_field(status, i, CONTROL_R_KIND), kind) == 0 &&
		strcasecmp(nic_field(status, i, CONTROL_R_MAC), mac) == 0;
}

/* Hands NIC i of vm its end of the link (each frame after its header, where offload). */
int netlinks_hand_over(struct daemon *d, struct vm_entry *vm, unsigned i, int fd, bool offload, struct err *e)
{
	struct json_object *req = json_object_new_object();
	char nic[12];
	snprintf(nic, sizeof(nic), "%u", i);
	json_object_object_add(req, "cmd", json_object_new_string(control_cmd_name(CONTROL_NET_LINK)));
	json_object_object_add(req, CONTROL_F_NIC, json_object_new_string(nic));
	if (offload)
		json_object_object_add(req, CONTROL_F_OFFLOAD, json_object_new_boolean(true));
	return vm_control_req(d, vm, req, fd, NULL, e);
}

/* A fresh pair, one end to each NIC, carrying headers where both monitors take them. Should the
 * second hand-over fail, the first end sees the other closed and its link goes down at once. */
static int join(struct daemon *d, struct vm_entry *a, unsigned ai, struct vm_entry *b, unsigned bi, bool offload,
		struct err *e)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_errno(e, errno, "cannot make a socket pair for the link");
	int r = netlinks_hand_over(d, a, ai, sv[0], offload, e) < 0 ||
			netlinks_hand_over(d, b, bi, sv[1], offload, e) < 0
		? -1
		: 0;
	close(sv[0]);
	close(sv[1]);
	return r;
}

/* Joins NIC i of vm with NIC j of p (both running), unless both monitors say so already (a
 * daemon restarted while they ran) or either monitor's NIC is not the one its definition says. */
static void join_checked(struct daemon *d, struct vm_entry *vm, const struct vmdef_nic *n, unsigned i,
			 struct vm_entry *p, const struct vmdef_nic *pn, unsigned j)
{
	struct json_object *s = netlinks_monitor_status(d, vm), *ps = netlinks_monitor_status(d, p);
	const char *stale = !netlinks_nic_is(s, i, "link", vm->name, n) ? vm->name
		: !netlinks_nic_is(ps, j, "link", p->name, pn)          ? p->name
									: NULL;
	struct err e;
	if (stale)
		events_add(d, vm->name, "link-failed",
			   "nic %s to %s:%s: the running monitor of VM '%s' has no such link NIC (its definition "
			   "changed after it started, or it does not answer); restart that VM to apply its "
			   "definition",
			   n->id, p->name, pn->id, stale);
	else if (netlinks_nic_up(s, i) && netlinks_nic_up(ps, j))
		; /* joined already */
	else if (join(d, vm, i, p, j, nic_flag(s, i, CONTROL_R_OFFLOAD) && nic_flag(ps, j, CONTROL_R_OFFLOAD), &e) < 0)
		events_add(d, vm->name, "link-failed", "nic %s to %s:%s: %s", n->id, p->name, pn->id, e.msg);
	else {
		events_add(d, vm->name, "link-up", "nic %s linked to %s:%s", n->id, p->name, pn->id);
		events_add(d, p->name, "link-up", "nic %s linked to %s:%s", pn->id, vm->name, n->id);
	}
	json_object_put(s);
	json_object_put(ps);
}

/* NIC i of vm (its definition def, running) with its peer, if the peer's definition offers a NIC
 * back (refused, whether or not the peer runs, when not) and the peer runs. */
static void link_one(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, unsigned i, struct vmdef *pdef)
{
	const struct vmdef_nic *n = &def->nics[i];
	int j = offered(d, vm->name, n, pdef);
	if (j < 0) {
		events_add(d, vm->name, "link-refused",
			   "nic %s: VM '%s' has no NIC of type vm whose peer is '%s'%s%s; the link stays down", n->id,
			   n->peer, vm->name, n->peer_nic[0] ? " named " : "", n->peer_nic);
		return;
	}
	char mac[18], pmac[18];
	vmdef_nic_mac(vm->name, n, mac);
	vmdef_nic_mac(pdef->name, &pdef->nics[j], pmac);
	if (strcasecmp(mac, pmac) == 0) {
		events_add(d, vm->name, "link-refused",
			   "nic %s: it and %s:%s have the same MAC %s; give one of them another mac", n->id, n->peer,
			   pdef->nics[j].id, mac);
		return;
	}
	struct vm_entry *p = vm_find(d, n->peer, false);
	if (running(p)) /* else joined when it starts */
		join_checked(d, vm, n, i, p, &pdef->nics[j], (unsigned)j);
}

void netlinks_vm_running(struct daemon *d, struct vm_entry *vm)
{
	struct vmdef *def = malloc(2 * sizeof(*def));
	enum proto_code code;
	struct err e;
	if (!def || vm_load_definition(d, vm->name, def, &code, &e) < 0) {
		free(def);
		return;
	}
	for (unsigned i = 0; i < def->nnics; i++)
		if (def->nics[i].type == VMDEF_NIC_VM)
			link_one(d, vm, def, i, def + 1);
	free(def);
}

void netlinks_vm_stopped(struct daemon *d, const char *name)
{
	struct vmdef *def = malloc(2 * sizeof(*def));
	enum proto_code code;
	struct err e;
	if (!def || vm_load_definition(d, name, def, &code, &e) < 0) {
		free(def);
		return;
	}
	for (unsigned i = 0; i < def->nnics; i++) {
		const struct vmdef_nic *n = &def->nics[i];
		int j = n->type == VMDEF_NIC_VM && running(vm_find(d, n->peer, false)) ? offered(d, name, n, def + 1)
										       : -1;
		if (j >= 0) /* only a peer that named this VM back had a link to it */
			events_add(d, n->peer, "link-down", "nic %s: the link to %s:%s is down: VM '%s' stopped",
				   def[1].nics[j].id, name, n->id, name);
	}
	free(def);
}

struct list_ctx {
	struct json_object *arr;
	uid_t viewer;
};

/* Why a link NIC (n of VM name, NIC i) is down; NULL when it is up. Whether the peer runs is
 * said only of a peer whose definition offers this VM a NIC back (its guest sees the link's
 * carrier anyway). */
static const char *down_why(struct daemon *d, const char *name, const struct vmdef_nic *n, bool vm_runs, bool up,
			    struct vmdef *pdef)
{
	if (!vm_runs)
		return "the VM is not running";
	if (up)
		return NULL;
	if (offered(d, name, n, pdef) < 0)
		return "the peer offers no NIC of type vm back";
	if (!running(vm_find(d, n->peer, false)))
		return "the peer is not running";
	return "not joined: see the VM's events";
}

/* One entry: NIC i (n) of VM name, a link or a passt NIC, its state as the monitor reports it. */
static struct json_object *list_entry(struct daemon *d, const char *name, const struct vmdef_nic *n, unsigned i,
				      struct json_object *status, bool runs, struct vmdef *pdef)
{
	bool link = n->type == VMDEF_NIC_VM;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "vm", json_object_new_string(name));
	json_object_object_add(o, "nic", json_object_new_string(n->id));
	json_object_object_add(o, "type", json_object_new_string(vmdef_nic_type_names[n->type]));
	if (link)
		json_object_object_add(o, "peer", json_object_new_string(n->peer));
	if (link && n->peer_nic[0])
		json_object_object_add(o, "peer_nic", json_object_new_string(n->peer_nic));
	bool up = runs && netlinks_nic_up(status, i) && netlinks_nic_is(status, i, link ? "link" : "passt", name, n);
	json_object_object_add(o, "state", json_object_new_string(up ? "up" : "down"));
	const char *why = link ? down_why(d, name, n, runs, up, pdef) : NULL;
	if (!link && !up)
		why = runs ? "no passt serves it now: shojid starts another (see the VM's events)"
			   : "the VM is not running";
	if (why)
		json_object_object_add(o, "why", json_object_new_string(why));
	return o;
}

/* The link and passt NICs of VM name, for a viewer who may see it. */
static void list_vm(struct daemon *d, const char *name, void *arg)
{
	struct list_ctx *l = arg;
	struct vmdef *def = malloc(2 * sizeof(*def));
	enum proto_code code;
	struct err e;
	if (!def || !authz_may_see(d, l->viewer, name) || vm_load_definition(d, name, def, &code, &e) < 0) {
		free(def);
		return;
	}
	struct vm_entry *vm = vm_find(d, name, false);
	struct json_object *status = NULL;
	for (unsigned i = 0; i < def->nnics; i++) {
		const struct vmdef_nic *n = &def->nics[i];
		if (n->type != VMDEF_NIC_VM && n->type != VMDEF_NIC_PASST)
			continue;
		if (running(vm) && !status)
			status = netlinks_monitor_status(d, vm);
		json_object_array_add(l->arr, list_entry(d, name, n, i, status, running(vm), def + 1));
	}
	json_object_put(status);
	free(def);
}

struct json_object *netlinks_list(struct daemon *d, uid_t viewer)
{
	struct list_ctx l = {json_object_new_array(), viewer};
	vm_each_defined(d, list_vm, &l);
	return l.arr;
}

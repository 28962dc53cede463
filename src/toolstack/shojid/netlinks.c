/* netlinks: links between VMs' NICs ([nic ID] type = vm, peer = VM[:NIC]; see vmdef.h). Two
 * NICs are joined only when each one's definition names the other VM (and, where it names a NIC,
 * that NIC): a VM's owner cannot attach to a NIC the other VM's definition did not offer. When
 * both VMs run, shojid makes a SOCK_SEQPACKET socket pair and hands one end to each monitor
 * (the control socket's net-link): frames then go from monitor to monitor, with no host bridge
 * or host IP stack between, one frame a message, bounded by the sockets' buffers. A monitor sees
 * its end close when the other VM stops, and its NIC's link goes down by itself (the guest sees
 * the link status); the other VM's next start joins them again, without restarting this one.
 * Runs on shojid's main thread. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A running VM's status reply, whose nics say each NIC's link (NULL when its monitor does not
 * answer); one call serves all of the VM's NICs. */
static struct json_object *monitor_status(struct daemon *d, const struct vm_entry *vm)
{
	struct json_object *rep;
	struct err e;
	return vm_control(d, vm, CONTROL_STATUS, &rep, &e) < 0 ? NULL : rep;
}

/* Whether NIC i has its link up in a status reply (false when it does not say). */
static bool nic_up(struct json_object *status, unsigned i)
{
	struct json_object *nics, *link;
	struct json_object *nic = status && json_object_object_get_ex(status, CONTROL_R_NICS, &nics) &&
			json_object_is_type(nics, json_type_array)
		? json_object_array_get_idx(nics, i)
		: NULL;
	return nic && json_object_object_get_ex(nic, CONTROL_R_LINK, &link) &&
		json_object_is_type(link, json_type_string) && strcmp(json_object_get_string(link), "up") == 0;
}

/* Whether NIC i of a running VM has its link up, as its monitor says (false when it cannot). */
static bool link_up(struct daemon *d, const struct vm_entry *vm, unsigned i)
{
	struct json_object *status = monitor_status(d, vm);
	bool up = nic_up(status, i);
	json_object_put(status);
	return up;
}

/* Hands NIC i of vm its end of the link. */
static int hand_over(struct daemon *d, const struct vm_entry *vm, unsigned i, int fd, struct err *e)
{
	struct json_object *req = json_object_new_object();
	char nic[12];
	snprintf(nic, sizeof(nic), "%u", i);
	json_object_object_add(req, "cmd", json_object_new_string(control_cmd_name(CONTROL_NET_LINK)));
	json_object_object_add(req, CONTROL_F_NIC, json_object_new_string(nic));
	return vm_control_req(d, vm, req, fd, NULL, e);
}

/* A fresh pair, one end to each NIC. Should the second hand-over fail, the first end sees the
 * other closed and its link goes down at once. */
static int join(struct daemon *d, const struct vm_entry *a, unsigned ai, const struct vm_entry *b, unsigned bi,
		struct err *e)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return err_errno(e, errno, "cannot make a socket pair for the link");
	int r = hand_over(d, a, ai, sv[0], e) < 0 || hand_over(d, b, bi, sv[1], e) < 0 ? -1 : 0;
	close(sv[0]);
	close(sv[1]);
	return r;
}

/* NIC i of vm (its definition def, running) with its peer, if that runs and offers a NIC back. */
static void link_one(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, unsigned i, struct vmdef *pdef)
{
	const struct vmdef_nic *n = &def->nics[i];
	struct vm_entry *p = vm_find(d, n->peer, false);
	enum proto_code code;
	struct err e;
	if (!running(p))
		return; /* joined when it starts */
	int j = vm_load_definition(d, p->name, pdef, &code, &e) < 0 ? -1 : peer_nic(pdef, vm->name, n);
	if (j < 0) {
		events_add(d, vm->name, "link-refused",
			   "nic %s: VM '%s' has no NIC of type vm whose peer is '%s'%s%s; the link stays down", n->id,
			   n->peer, vm->name, n->peer_nic[0] ? " named " : "", n->peer_nic);
		return;
	}
	if (link_up(d, vm, i) && link_up(d, p, (unsigned)j))
		return; /* joined already (before this daemon restarted) */
	if (join(d, vm, i, p, (unsigned)j, &e) < 0) {
		events_add(d, vm->name, "link-failed", "nic %s to %s:%s: %s", n->id, p->name, pdef->nics[j].id, e.msg);
		return;
	}
	events_add(d, vm->name, "link-up", "nic %s linked to %s:%s", n->id, p->name, pdef->nics[j].id);
	events_add(d, p->name, "link-up", "nic %s linked to %s:%s", pdef->nics[j].id, vm->name, n->id);
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
	struct vmdef *def = malloc(sizeof(*def));
	enum proto_code code;
	struct err e;
	if (!def || vm_load_definition(d, name, def, &code, &e) < 0) {
		free(def);
		return;
	}
	for (unsigned i = 0; i < def->nnics; i++) {
		const struct vmdef_nic *n = &def->nics[i];
		if (n->type == VMDEF_NIC_VM && running(vm_find(d, n->peer, false)))
			events_add(d, n->peer, "link-down", "the link to %s:%s is down: VM '%s' stopped", name, n->id,
				   name);
	}
	free(def);
}

struct list_ctx {
	struct json_object *arr;
	uid_t viewer;
};

/* One entry a link NIC of VM name: its peer, and its state as the monitor reports it. */
static void list_vm(struct daemon *d, const char *name, void *arg)
{
	struct list_ctx *l = arg;
	struct vmdef *def = malloc(sizeof(*def));
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
		if (n->type != VMDEF_NIC_VM)
			continue;
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "vm", json_object_new_string(name));
		json_object_object_add(o, "nic", json_object_new_string(n->id));
		json_object_object_add(o, "peer", json_object_new_string(n->peer));
		if (n->peer_nic[0])
			json_object_object_add(o, "peer_nic", json_object_new_string(n->peer_nic));
		if (running(vm) && !status)
			status = monitor_status(d, vm);
		bool up = running(vm) && nic_up(status, i);
		json_object_object_add(o, "state", json_object_new_string(up ? "up" : "down"));
		if (!running(vm))
			json_object_object_add(o, "why", json_object_new_string("the VM is not running"));
		else if (!up && !running(vm_find(d, n->peer, false)))
			json_object_object_add(o, "why", json_object_new_string("the peer is not running"));
		json_object_array_add(l->arr, o);
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

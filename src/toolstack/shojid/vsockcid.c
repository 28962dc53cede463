/* vsockcid: the CID of a VM whose definition says vsock-cid = auto (shoji browse's browser VMs,
 * for their guest agent). At each start shojid gives it the lowest CID from VSOCKCID_AUTO_FIRST
 * that no other active VM of this daemon runs with, when the host has /dev/vhost-vsock, else
 * none (the VM then runs without a vsock device, as its "started" event says). The CID is kept in
 * the VM's state.json while it runs, so a restarted daemon does not give it twice. A CID that a
 * VM outside shojid holds makes the monitor's start fail with "already has that CID"; fixed
 * CIDs in definitions are usually small, hence the high start. All on shojid's one thread. */
#include <unistd.h>

#include "daemon.h"

static bool taken(const struct daemon *d, const struct vm_entry *except, uint32_t cid)
{
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		const struct vm_entry *v = &d->vms[i];
		if (v->used && v != except && vm_active(v) && v->vsock_cid == cid)
			return true;
	}
	return false;
}

void vsockcid_assign(struct daemon *d, struct vm_entry *vm, struct vmdef *def)
{
	vm->vsock_cid = def->vsock_cid;
	vm->vsock_unavailable = false;
	if (!def->vsock_auto)
		return;
	def->vsock_cid = vm->vsock_cid = 0;
	if (access(VSOCKCID_DEVICE, F_OK) != 0) {
		vm->vsock_unavailable = true;
		return;
	}
	uint32_t cid = VSOCKCID_AUTO_FIRST;
	while (taken(d, vm, cid))
		cid++; /* at most DAEMON_MAX_VMS steps */
	def->vsock_cid = vm->vsock_cid = cid;
}

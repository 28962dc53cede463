/* vsockcid: the CID of a VM whose definition says vsock-cid = auto (shoji browse's browser VMs,
 * for their guest agent). At each start shojid picks, from a random point in
 * [VSOCKCID_AUTO_FIRST, VSOCKCID_AUTO_FIRST + VSOCKCID_AUTO_SPAN), the first CID that no other
 * active VM of this daemon runs with and that the host's vhost-vsock does not hold (asked by
 * setting it on a descriptor of our own and closing it: another daemon's VMs, any process's),
 * when the host has /dev/vhost-vsock; else none (the VM runs without a vsock device, as its
 * "started" event says). A CID taken between the check and the monitor's start fails that
 * start with the monitor's "already has that CID". The CID is kept in the VM's state.json while
 * it runs, so a restarted daemon does not give it twice. All on shojid's one thread. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "daemon.h"

#define VSOCKCID_AUTO_SPAN  (1u << 24)
#define VSOCKCID_AUTO_TRIES 64

static bool taken(const struct daemon *d, const struct vm_entry *except, uint32_t cid)
{
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		const struct vm_entry *v = &d->vms[i];
		if (v->used && v != except && vm_active(v) && v->vsock_cid == cid)
			return true;
	}
	return false;
}

/* Whether the host holds cid for another VM (false also when it cannot be told: the
 * monitor's start then says so). */
static bool held_by_host(uint32_t cid)
{
	int fd = open(VSOCKCID_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	uint64_t c = cid;
	bool held =
		ioctl(fd, VHOST_SET_OWNER) == 0 && ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &c) < 0 && errno == EADDRINUSE;
	close(fd);
	return held;
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
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)getpid() * 2654435761u;
	uint32_t cid = VSOCKCID_AUTO_FIRST + r % VSOCKCID_AUTO_SPAN;
	for (int i = 0; i < VSOCKCID_AUTO_TRIES && (taken(d, vm, cid) || held_by_host(cid)); i++)
		cid = cid + 1 < VSOCKCID_AUTO_FIRST + VSOCKCID_AUTO_SPAN ? cid + 1 : VSOCKCID_AUTO_FIRST;
	def->vsock_cid = vm->vsock_cid = cid;
}

/* uplinks: user-mode networking out of the monitor ([nic ID] type = passt, and type = slirp once
 * its first NAT ended). For each passt NIC of a VM that runs, shojid starts a passt (Debian's:
 * it serves the guest's frames with host sockets, DHCP and DNS forwarding included) and hands
 * the monitor the other end of passt's stream socket (net-link). The monitor itself then holds
 * no host socket and runs in an empty network namespace: the process that parses the guest's
 * virtio rings cannot reach the network but through passt's frames, and the process with host
 * sockets (passt) runs as the VM's net uid, not its monitor's, in passt's own sandbox
 * (namespaces, seccomp), in the VM's cgroup.
 *
 * The guest sees what libslirp gave it: 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3 (which
 * passt forwards to the host's first resolver; vmm_args_passt), but the MTU is passt's and the
 * NIC's, 65520: fewer, larger frames through the stream. The
 * gateway reaches the host's loopback only with host-loopback = yes (else --no-map-gw), and
 * forwards bind 127.0.0.1 unless they name an address, as slirp's do. passt serves one socket
 * and ends when it closes (-1), that is with the monitor; it is started in a session of its own
 * and left to init, so it outlives a restart of shojid as the monitor does. A passt that ends
 * first takes the NIC's link down (the guest sees no carrier) until shojid, which looks at each
 * such VM's NICs every 10 s, starts another: at once, then 1, 2, 4 ... 60 s apart while each
 * ends at once (passt refuses to start on a host with no routable interface: a laptop off any
 * network gets its VMs' user networking when it joins one), one event a series.
 *
 * type = slirp stays beside it (libslirp in shoji-slirp, which the monitor starts as the same
 * net uid, --net-uid): hosts without passt keep a
 * user-mode network, and Debian 12's passt mangles a guest's connection that the guest
 * half-closes (it repeats the answer and drops the server's FIN: docs/SECURITY.md), so shoji
 * browse keeps slirp as its default. The monitor, jailed in an empty network namespace, cannot
 * start a shoji-slirp again; when one ends, shojid starts another as passt's are (the same
 * uid, cgroup and back-off, from beside the monitor), and hands its SOCK_SEQPACKET socket over
 * the same way. Runs on shojid's main thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/identity.h"
#include "../../common/unix_socket.h"
#include "../vmm_args.h"
#include "daemon.h"

/* The program that serves NIC n out of the monitor. */
static const char *program(const struct vmdef_nic *n)
{
	return n->type == VMDEF_NIC_PASST ? "passt" : "shoji-slirp";
}

static bool served(const struct vmdef_nic *n)
{
	return n->type == VMDEF_NIC_PASST || n->type == VMDEF_NIC_SLIRP;
}

/* In passt's (or shoji-slirp's) process: the VM's cgroup, descriptors 0 null, 1 and 2 the
 * monitor's log, 3 the socket, a session of its own; never returns. */
static void uplink_exec(const struct vmm_args *a, int sock, int log, const char *procs, const uid_t *uid)
{
	int cg = procs[0] ? open(procs, O_WRONLY | O_CLOEXEC) : -1;
	if (cg >= 0 && write(cg, "0", 1) != 1)
		dprintf(log, "shojid: %s: cannot join the VM's cgroup: %s\n", a->argv[0], strerror(errno));
	int s = fcntl(sock, F_DUPFD, 100), l = fcntl(log, F_DUPFD, 100), null = open("/dev/null", O_RDONLY);
	if (s < 0 || l < 0 || null < 0 || dup2(null, 0) < 0 || dup2(l, 1) < 0 || dup2(l, 2) < 0 || dup2(s, 3) < 0)
		_exit(127);
	file_close_from(4);
	setsid();
	/* The net uid before passt runs at all: passt as root would open the forwards' ports
	 * before dropping to --runas, so a definition could take ports below 1024. */
	if (uid && identity_become(*uid, *uid, NULL, 0) < 0) {
		dprintf(2, "shojid: %s: cannot become uid %u: %s\n", a->argv[0], (unsigned)*uid, strerror(errno));
		_exit(127);
	}
	execv(a->argv[0], a->argv);
	dprintf(2, "shojid: cannot run %s: %s\n", a->argv[0], strerror(errno));
	_exit(127);
}

/* Starts passt (or shoji-slirp) on sock, left to init (a child that forks it and exits); its
 * pid, or -1. */
static pid_t uplink_spawn(const struct vmm_args *a, int sock, int log, const char *procs, const uid_t *uid,
			  struct err *e)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_errno(e, errno, "pipe");
	pid_t mid = fork();
	if (mid == 0) {
		pid_t pid = fork();
		if (pid == 0)
			uplink_exec(a, sock, log, procs, uid);
		_exit(write(p[1], &pid, sizeof(pid)) == sizeof(pid) && pid > 0 ? 0 : 1);
	}
	int saved = errno;
	close(p[1]);
	pid_t pid = -1;
	if (mid > 0) {
		while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
			;
		if (read(p[0], &pid, sizeof(pid)) != sizeof(pid))
			pid = -1;
	}
	close(p[0]);
	if (mid < 0 || pid <= 0)
		return err_errno(e, mid < 0 ? saved : EAGAIN, "cannot start %s", a->argv[0]);
	return pid;
}

int uplinks_prepare(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, struct err *e)
{
	for (unsigned i = 0; i < def->nnics; i++) {
		if (def->nics[i].type == VMDEF_NIC_PASST && access(d->passt, X_OK) < 0)
			return err_errno(e, errno,
					 "VM '%s': nic %s is of type passt, and passt (%s) cannot run; install it "
					 "(apt install passt) or set type = slirp",
					 vm->name, def->nics[i].id, d->passt);
	}
	/* passt's, or the monitor's shoji-slirp's (--net-uid) */
	return vmdef_has_nic(def, VMDEF_NIC_PASST) || vmdef_has_nic(def, VMDEF_NIC_SLIRP) ? jailuid_assign_net(d, vm, e)
											  : 0;
}

static void said_up(struct daemon *d, const struct vm_entry *vm, const struct vmdef_nic *n, pid_t pid, bool again)
{
	char as[32] = "";
	if (d->jail || geteuid() == 0)
		snprintf(as, sizeof(as), " as uid %u", (unsigned)(d->jail ? vm->net_uid : IDENTITY_NOBODY));
	events_add(d, vm->name, "uplink-up", "nic %s: %s pid %d%s%s", n->id, program(n), (int)pid, as,
		   again ? " serves it again" : "");
}

/* The command line of NIC n's passt or shoji-slirp into a; -1 (said) when it cannot be. */
static int uplink_args(struct daemon *d, const struct vmdef_nic *n, struct vmm_args *a, struct err *e)
{
	if (n->type == VMDEF_NIC_SLIRP && access(d->slirp, X_OK) < 0)
		return err_errno(e, errno, "%s cannot run; it comes with shoji-vmm and must be installed beside it",
				 d->slirp);
	if ((n->type == VMDEF_NIC_PASST ? vmm_args_passt(d->passt, n, a) : vmm_args_slirp(d->slirp, n, a)) < 0)
		return err_set(e, "%s's command line is too long", program(n));
	return 0;
}

/* passt's socket is a stream; shoji-slirp's carries one frame a message, with room for a burst
 * of them (as the monitor makes its first one's). */
static int uplink_pair(const struct vmdef_nic *n, int sv[2], struct err *e)
{
	if (n->type == VMDEF_NIC_SLIRP)
		return unix_socket_frame_pair(sv, program(n), e);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return err_errno(e, errno, "cannot make %s's socket pair", program(n));
	return 0;
}

/* A passt (or shoji-slirp) for NIC i (n) of vm, its socket handed to the monitor; said as an
 * event unless quiet (a series of restarts). */
static int start_one(struct daemon *d, struct vm_entry *vm, const struct vmdef_nic *n, unsigned i, int log, bool quiet,
		     struct err *e)
{
	struct vmm_args *a = malloc(sizeof(*a));
	char procs[PATHS_MAX * 2 + 16] = "";
	int sv[2];
	if (!a)
		return err_set(e, "out of memory");
	if (d->jail && jailuid_assign_net(d, vm, e) < 0) { /* never root: a uid of its own, or none */
		free(a);
		return -1;
	}
	if (uplink_pair(n, sv, e) < 0) {
		free(a);
		return -1;
	}
	if (vm->cgroup[0])
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", vm->cgroup);
	/* Never root: the VM's net uid, or nobody where shojid runs unjailed monitors as root (passt
	 * would bind the forwards before dropping to nobody, shoji-slirp would not drop at all). */
	uid_t nobody = IDENTITY_NOBODY;
	const uid_t *as = d->jail ? &vm->net_uid : geteuid() == 0 ? &nobody : NULL;
	pid_t pid = uplink_args(d, n, a, e) < 0 ? -1 : uplink_spawn(a, sv[1], log, procs, as, e);
	close(sv[1]);
	free(a);
	int r = pid < 0 ? -1 : netlinks_hand_over(d, vm, i, sv[0], false, e);
	close(sv[0]); /* it ends with its socket, should the hand-over have failed */
	vm->uplink_pid[i] = r == 0 ? pid : 0;
	if (r == 0 && !quiet)
		said_up(d, vm, n, pid, false);
	return r;
}

/* NIC i (n) of vm, whose monitor's status says it is down: the passt or shoji-slirp that served
 * it ended (its pid unknown to a shojid that adopted the VM, or that did not start it). */
static void ended(struct daemon *d, struct vm_entry *vm, const struct vmdef_nic *n, unsigned i)
{
	char pid[24] = "";
	if (vm->uplink_down)
		return; /* said once a series */
	vm->uplink_down = true;
	if (vm->uplink_pid[i])
		snprintf(pid, sizeof(pid), " pid %d", (int)vm->uplink_pid[i]);
	events_add(d, vm->name, "uplink-failed",
		   "nic %s: %s%s ended (why is in the VM's monitor log: shoji logs %s); shojid "
		   "starts another at once, then 1, 2, 4 ... 60 s apart until one stays",
		   n->id, program(n), pid, vm->name);
}

/* NIC i (n) of vm is down, and its monitor (started before an upgrade) cannot take a new
 * shoji-slirp's socket: said once, never tried. */
static void refused(struct daemon *d, struct vm_entry *vm, const struct vmdef_nic *n, unsigned i)
{
	if (vm->uplink_refused & 1u << i)
		return;
	vm->uplink_refused |= 1u << i;
	events_add(d, vm->name, "uplink-failed",
		   "nic %s: its shoji-slirp ended, and this VM's monitor (started by an older shoji) cannot "
		   "take another; restart the VM to get its user-mode network back",
		   n->id);
}

/* Each passt (slirp) NIC of vm whose link is down gets a passt (shoji-slirp). Returns how many
 * were started, -1 when there is none or its definition or its monitor does not answer; *any is
 * false only when the definition, read, names no such NIC. */
static int serve(struct daemon *d, struct vm_entry *vm, bool first, bool *any)
{
	struct vmdef *def = malloc(sizeof(*def));
	enum proto_code code;
	struct err e;
	char mlog[512];
	*any = true;
	if (!def || vm_load_definition(d, vm->name, def, &code, &e) < 0) {
		free(def);
		return -1;
	}
	struct json_object *status = NULL;
	int log = -1, started = 0, nics = 0;
	for (unsigned i = 0; i < def->nnics; i++) {
		const struct vmdef_nic *n = &def->nics[i];
		if (!served(n))
			continue;
		nics++;
		if (!status && !(status = netlinks_monitor_status(d, vm)))
			break;
		const char *kind = n->type == VMDEF_NIC_PASST ? "passt" : "slirp";
		if (!netlinks_nic_is(status, i, kind, vm->name, n)) {
			if (first)
				events_add(d, vm->name, "uplink-failed",
					   "nic %s: the running monitor has no such %s NIC (its definition "
					   "changed after it started); restart the VM to apply its definition",
					   n->id, kind);
			continue;
		}
		if (netlinks_nic_up(status, i)) { /* its passt (shoji-slirp) serves it */
			if (vm->uplink_down && vm->uplink_pid[i])
				said_up(d, vm, n, vm->uplink_pid[i], true);
			continue;
		}
		if (!netlinks_nic_takes_socket(status, i)) {
			refused(d, vm, n, i);
			continue;
		}
		if (!first)
			ended(d, vm, n, i);
		if (log < 0 && paths_get(&d->paths, PATHS_MONITOR_LOG, vm->name, mlog, sizeof(mlog), NULL) == 0)
			log = open(mlog, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
		if ((log < 0 ? err_errno(&e, errno, "cannot open the VM's monitor log")
			     : start_one(d, vm, n, i, log, vm->uplink_down, &e)) < 0)
			events_add(d, vm->name, "uplink-failed", "nic %s: %s", n->id, e.msg);
		started++;
	}
	if (log >= 0)
		close(log);
	json_object_put(status);
	free(def);
	*any = nics > 0;
	return nics && status ? started : -1;
}

/* The next look: soon after a start (a passt that cannot run ends at once), backing off while
 * each ends, every 10 s while all serve. */
static void schedule(struct vm_entry *vm, int started)
{
	if (started > 0)
		vm->uplink_wait_ms =
			vm->uplink_wait_ms ? (vm->uplink_wait_ms >= 30000 ? 60000 : 2 * vm->uplink_wait_ms) : 1000;
	else
		vm->uplink_wait_ms = 0;
	vm->uplink_next_ms = daemon_now_ms() + (started > 0 ? vm->uplink_wait_ms : 10000);
}

void uplinks_vm_running(struct daemon *d, struct vm_entry *vm)
{
	vm->uplink_down = false;
	vm->uplink_wait_ms = 0;
	vm->uplink_refused = 0;
	memset(vm->uplink_pid, 0, sizeof(vm->uplink_pid));
	bool any;
	int started = serve(d, vm, true, &any);
	vm->has_uplink = any; /* looked at again by the tick, should this look have failed */
	schedule(vm, started);
}

void uplinks_tick(struct daemon *d)
{
	for (int i = 0; i < DAEMON_MAX_VMS; i++) {
		struct vm_entry *vm = &d->vms[i];
		if (!vm->used || !vm->has_uplink || (vm->state != VM_RUNNING && vm->state != VM_PAUSED) ||
		    daemon_now_ms() < vm->uplink_next_ms)
			continue;
		bool any;
		int started = serve(d, vm, false, &any);
		if (started == 0)
			vm->uplink_down = false; /* each serves: the series ended (said by serve) */
		schedule(vm, started);
	}
}

/* runloop: event loop of the main thread (see runloop.h). */
#include "runloop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../common/log.h"
#include "agent_link.h"
#include "disks.h"

/* What the control callback reaches: the machine of this boot and its agent link. */
struct runloop {
	struct vm *vm;
	struct agent_link agent;
};

static void on_signal(struct vm *vm, int signal_fd)
{
	struct signalfd_siginfo si;
	if (read(signal_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return;
	if (si.ssi_signo == SIGCHLD) { /* a slirp NIC's shoji-slirp ended */
		for (unsigned i = 0; i < vm->cfg.nnics; i++)
			net_slirp_reap(&vm->cfg.nics[i], i);
		return;
	}
	char why[64];
	snprintf(why, sizeof(why), "stopped by signal %s", strsignal((int)si.ssi_signo));
	vm->machine.request_exit(&vm->machine, MACHINE_STOPPED, why);
}

/* Serial input from fd (the terminal or the serial socket's client): returns false at its end. */
static bool on_input(struct vm *vm, struct console *con, int fd, bool filter)
{
	uint8_t in[1024], out[1024];
	size_t space = serial_rx_space(&vm->serial);
	if (space > sizeof(in))
		space = sizeof(in);
	ssize_t n = read(fd, in, space);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	bool quit = false;
	size_t m = (size_t)n;
	if (filter)
		m = console_filter(con, in, (size_t)n, out, &quit);
	serial_receive(&vm->serial, filter ? out : in, m);
	if (quit)
		vm->machine.request_exit(&vm->machine, MACHINE_STOPPED, "stopped from the console (Ctrl-A x)");
	return true;
}

#ifdef SHOJI_TEST_HOOKS
/* A system call outside the seccomp allow-list (sandbox/seccomp.c): with the filter on, the
 * kernel kills the monitor here with SIGSYS. kcmp of the process with itself is harmless. */
static void forbidden_syscall(void)
{
	long r = syscall(SYS_kcmp, (long)getpid(), (long)getpid(), 0L, 0L, 0L);
	log_warn("test hook: kcmp returned %ld: the seccomp filter is off", r);
}
#endif

static int failed(struct err *e, char *why)
{
	snprintf(why, CONTROL_WHY_MAX, "%.*s", CONTROL_WHY_MAX - 1, e->msg);
	return -1;
}

/* Resumes the guest, whose clock is then set through its agent (kvmclock stood still). */
static void resume(struct runloop *rl)
{
	vm_resume(rl->vm);
	int64_t now = agent_link_now_ms();
	agent_link_paused(&rl->agent, false, now);
	agent_link_sync_time(&rl->agent, now);
}

/* The guest is asked to power off: through its agent where one is ready, else the ACPI
 * power button (a paused guest cannot take it, so it is resumed first). */
static void shutdown_guest(struct runloop *rl, struct control_status *st)
{
	struct vm *vm = rl->vm;
	if (vm_paused(vm))
		resume(rl);
	if (agent_link_power(&rl->agent, AGENT_SHUTDOWN, agent_link_now_ms()) == 0) {
		st->via = "agent";
		return;
	}
	vm_power_button(vm);
	st->via = "acpi";
}

/* clipboard-get and clipboard-set: asked of the agent, the reply parked until its outcome
 * (clipboard_outcome). */
static int clipboard(struct runloop *rl, const struct control_request *req, char *why)
{
	struct err e;
	int64_t now = agent_link_now_ms();
	int r = req->cmd == CONTROL_CLIPBOARD_GET ? agent_link_clip_get(&rl->agent, now, &e)
						  : agent_link_clip_set(&rl->agent, req->data, req->data_len, now, &e);
	return r < 0 ? failed(&e, why) : CONTROL_PARKED;
}

static int on_control(void *ctx, const struct control_request *req, int fd, struct control_status *st, char *why);

/* net-link: NIC nic of this machine takes the link's socket fd (closed on failure). A slirp
 * NIC's new shoji-slirp (shojid's, where the monitor's own ended) also serves the boots to come. */
static int net_link(struct vm *vm, unsigned nic, int fd, bool offload, struct err *e)
{
	if (fd < 0)
		return err_set(e, "net-link needs the link's socket attached to the request (SCM_RIGHTS)");
	if (nic >= vm->cfg.nnics || !vm->nics[nic]) {
		close(fd);
		return err_set(e, "net-link: this VM has no NIC %u (it has %u)", nic, vm->cfg.nnics);
	}
	struct net_config *c = &vm->cfg.nics[nic];
	int keep = c->kind == NET_SLIRP ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (c->kind == NET_SLIRP && keep < 0) {
		close(fd);
		return err_errno(e, errno, "net-link: cannot duplicate the socket");
	}
	if (virtio_net_link_set(vm->nics[nic], fd, offload, e) < 0) {
		if (keep >= 0)
			close(keep);
		return -1;
	}
	if (keep >= 0) {
		if (c->helper_fd >= 0)
			close(c->helper_fd);
		c->helper_fd = keep;
		c->helper_pid = 0; /* not this monitor's child */
	}
	return 0;
}

/* status's nics: each NIC's kind, MAC, link state, whether net-link may give it a socket (a
 * monitor from before shojid restarted slirp NICs' NATs says no such thing), dropped frames. */
static json_object *nics_describe(struct vm *vm)
{
	static const char *const kinds[] =
		{[NET_SLIRP] = "slirp", [NET_TAP] = "tap", [NET_LINK] = "link", [NET_PASST] = "passt"};
	json_object *a = json_object_new_array();
	for (unsigned i = 0; a && i < vm->cfg.nnics && vm->nics[i]; i++) {
		const struct net_config *c = &vm->cfg.nics[i];
		bool up;
		uint64_t rx, tx;
		virtio_net_state(vm->nics[i], &up, &rx, &tx);
		char mac[18];
		net_mac_text(c->mac, mac);
		json_object *o = json_object_new_object();
		json_object_object_add(o, CONTROL_R_KIND, json_object_new_string(kinds[c->kind]));
		json_object_object_add(o, CONTROL_R_MAC, json_object_new_string(mac));
		json_object_object_add(o, CONTROL_R_LINK, json_object_new_string(up ? "up" : "down"));
		json_object_object_add(o, CONTROL_R_TAKES, json_object_new_boolean(net_kind_takes_socket(c->kind)));
		json_object_object_add(o, CONTROL_R_OFFLOAD, json_object_new_boolean(c->kind == NET_LINK));
		json_object_object_add(o, "rx_dropped", json_object_new_int64((int64_t)rx));
		json_object_object_add(o, "tx_dropped", json_object_new_int64((int64_t)tx));
		json_object_array_add(a, o);
	}
	return a;
}

/* The clipboard request's outcome, once the agent link has one, to the parked client (dropped
 * when that client has gone). */
static void clipboard_outcome(struct runloop *rl, struct control_server *ctl)
{
	uint8_t *text;
	uint32_t len;
	char why[CONTROL_WHY_MAX];
	enum agent_clip_state st = agent_link_clip_take(&rl->agent, &text, &len, why, sizeof(why));
	if (st == AGENT_CLIP_FAILED) {
		control_server_finish(ctl, NULL, 0, why, on_control, rl);
	} else if (st == AGENT_CLIP_DONE && ctl->parked_cmd == CONTROL_CLIPBOARD_GET && control_server_parked(ctl)) {
		size_t n;
		char *line = control_reply_clipboard(text, len, &n);
		control_server_finish(ctl, line, n, line ? NULL : "out of memory for the clipboard's reply", on_control,
				      rl);
		free(line);
	} else if (st == AGENT_CLIP_DONE) {
		control_server_finish(ctl, NULL, 0, NULL, on_control, rl);
	}
	free(text);
}

static int on_control(void *ctx, const struct control_request *req, int fd, struct control_status *st, char *why)
{
	struct runloop *rl = ctx;
	struct vm *vm = rl->vm;
	struct err e;
	if (fd >= 0 && req->cmd != CONTROL_DISK_SNAPSHOT && req->cmd != CONTROL_NET_LINK) {
		close(fd);
		fd = -1;
	}
	switch (req->cmd) {
	case CONTROL_PAUSE:
		if (vm_pause(vm, &e) < 0)
			return failed(&e, why);
		agent_link_paused(&rl->agent, true, agent_link_now_ms());
		break;
	case CONTROL_DISK_SNAPSHOT:
		if (fd < 0) {
			snprintf(why, CONTROL_WHY_MAX,
				 "disk-snapshot needs the new image's file descriptor "
				 "attached to the request (SCM_RIGHTS)");
			return -1;
		}
		if (disk_snapshot(vm, req->disk, req->backing, fd, &st->paused_ms, &e) < 0)
			return failed(&e, why);
		break;
	case CONTROL_RESUME:
		if (vm_paused(vm))
			resume(rl);
		break;
	case CONTROL_SHUTDOWN: shutdown_guest(rl, st); break;
	case CONTROL_STOP:
		vm->machine.request_exit(&vm->machine, MACHINE_STOPPED, "stopped through the control socket");
		break;
	case CONTROL_TEST_FORBIDDEN_SYSCALL:
#ifdef SHOJI_TEST_HOOKS
		forbidden_syscall();
#endif
		break;
	case CONTROL_NET_LINK:
		if (net_link(vm, req->nic, fd, req->offload, &e) < 0)
			return failed(&e, why);
		break;
	case CONTROL_STATUS:
		st->agent = agent_link_describe(&rl->agent, agent_link_now_ms());
		st->nics = nics_describe(vm);
		break;
	case CONTROL_CLIPBOARD_GET:
	case CONTROL_CLIPBOARD_SET: return clipboard(rl, req, why);
	case CONTROL_NCMDS: break;
	}
	st->paused = vm_paused(vm);
	st->cpus = vm->cfg.ncpus;
	st->memory_mib = vm->cfg.mem_size >> 20;
	return 0;
}

#define MAX_FDS (8 + CONTROL_POLL_FDS)

/* An agent that did not acknowledge a power-off in time: the ACPI button instead. */
static void agent_fallback(struct runloop *rl)
{
	if (!rl->agent.power_failed)
		return;
	rl->agent.power_failed = false;
	log_warn("guest agent: the power-off was not carried out (%s); pressing the ACPI power button",
		 rl->agent.last_error[0] ? rl->agent.last_error : "no acknowledgement");
	vm_power_button(rl->vm);
}

/* The agent's descriptors into fds at *n: the seat's size from the GPU's I/O thread, then the
 * link's; idx: where each went (MAX_FDS: not there). */
static void agent_fds(struct runloop *rl, struct pollfd *fds, nfds_t *n, nfds_t idx[2], int *timeout)
{
	struct virtio_gpu *gpu = rl->vm->gpu;
	idx[0] = idx[1] = MAX_FDS;
	if (gpu && gpu->size_fd >= 0)
		fds[idx[0] = (*n)++] = (struct pollfd){.fd = gpu->size_fd, .events = POLLIN};
	if (agent_link_poll_fd(&rl->agent, &fds[*n], timeout, agent_link_now_ms()))
		idx[1] = (*n)++;
}

/* After poll (r: its result): a new seat size to the agent, the link served, and the ACPI
 * button for a power-off the agent did not carry out. */
static void agent_events(struct runloop *rl, const struct pollfd *fds, int r, const nfds_t idx[2])
{
	uint32_t w, h;
	if (r > 0 && idx[0] < MAX_FDS && (fds[idx[0]].revents & POLLIN) && virtio_gpu_take_size(rl->vm->gpu, &w, &h))
		agent_link_resize(&rl->agent, w, h, agent_link_now_ms());
	agent_link_serve(&rl->agent, r > 0 && idx[1] < MAX_FDS ? fds[idx[1]].revents : 0, agent_link_now_ms());
	agent_fallback(rl);
}

enum machine_exit runloop_run(struct vm *vm, struct console *con, int signal_fd, struct control_server *ctl)
{
	static struct runloop rl; /* main thread only; its agent link is too big for the stack */
	rl.vm = vm;
	agent_link_init(&rl.agent, (uint32_t)vm->cfg.vsock_cid, vm->agent_token);
	while (!vm_stopping(vm)) {
		struct pollfd fds[MAX_FDS];
		nfds_t n = 0;
		fds[n++] = (struct pollfd){.fd = vm->stop_fd, .events = POLLIN};
		nfds_t sig = n, input = MAX_FDS, listen = MAX_FDS, client = MAX_FDS;
		if (signal_fd >= 0)
			fds[n++] = (struct pollfd){.fd = signal_fd, .events = POLLIN};
		int timeout = -1;
		bool room = serial_rx_space(&vm->serial) > 0;
		if (con->in_fd >= 0 && !con->eof && room)
			fds[input = n++] = (struct pollfd){.fd = con->in_fd, .events = POLLIN};
		if (con->listen_fd >= 0)
			fds[listen = n++] = (struct pollfd){.fd = con->listen_fd, .events = POLLIN};
		if (con->client_fd >= 0) /* hang-ups are reported even without POLLIN */
			fds[client = n++] = (struct pollfd){.fd = con->client_fd, .events = room ? POLLIN : 0};
		if (!room && ((con->in_fd >= 0 && !con->eof) || con->client_fd >= 0))
			timeout = 10; /* the guest has not drained its input yet */
		nfds_t agent[2];
		agent_fds(&rl, fds, &n, agent, &timeout);
		nfds_t ctl_first = n;
		n += control_server_poll_fds(ctl, fds + n, &timeout);
		int r = poll(fds, n, timeout);
		if (r < 0 && errno != EINTR) {
			log_error("poll failed: %s", strerror(errno));
			vm->machine.request_exit(&vm->machine, MACHINE_INTERNAL_ERROR, "monitor event loop failed");
			break;
		}
		agent_events(&rl, fds, r, agent);
		clipboard_outcome(&rl, ctl);
		if (r <= 0)
			continue;
		if (signal_fd >= 0 && (fds[sig].revents & POLLIN))
			on_signal(vm, signal_fd);
		if (input < n && (fds[input].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !on_input(vm, con, con->in_fd, true))
			con->eof = true; /* the guest keeps running without input */
		if (client < n && (fds[client].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    !on_input(vm, con, con->client_fd, false))
			console_drop_client(con);
		if (listen < n && (fds[listen].revents & POLLIN))
			console_accept(con);
		control_server_serve(ctl, fds + ctl_first, (unsigned)(n - ctl_first), on_control, &rl);
		clipboard_outcome(&rl, ctl); /* a request that failed at once (a pause) */
	}
	agent_link_close(&rl.agent); /* a clipboard request in progress fails */
	clipboard_outcome(&rl, ctl);
	vm_stop(vm);
	return (enum machine_exit)__atomic_load_n(&vm->exit_reason, __ATOMIC_ACQUIRE);
}

/* daemon: shojid's shared state: the VMs it supervises, the API clients, the events log, and
 * the functions its parts call on one another. shojid is one thread around poll(); every
 * request is handled to the end (or parked on its VM) before the next one is read, which is
 * what keeps concurrent callers from ever interleaving state changes. */
#ifndef SHOJI_SHOJID_DAEMON_H
#define SHOJI_SHOJID_DAEMON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../common/control_proto.h"
#include "../../common/err.h"
#include "../../common/jsonl_server.h"
#include "../paths.h"
#include "../proto.h"
#include "../vmdef.h"

#define DAEMON_MAX_VMS            256
#define DAEMON_MAX_CLIENTS        64
#define DAEMON_START_TIMEOUT_MS   120000 /* to the monitor's control socket answering */
#define DAEMON_HARD_STOP_MS       5000   /* after "stop", before SIGKILL */
#define DAEMON_CONTROL_TIMEOUT_MS 3000   /* one control-socket call */
#define DAEMON_CONTROL_QUIET_MS   10000  /* a monitor that let a call time out is not asked again for this long */
#define DAEMON_MAX_JOBS           16     /* image jobs running at once */
#define DAEMON_MAX_USB            32     /* USB devices attached to VMs at once */
#define USBHOST_DEFAULT           "/etc/shoji/usb.conf"

enum vm_state { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_PAUSED, VM_STOPPING };

struct client;
struct image_job;

/* How a request's handler ended: with its reply; answered already (a descriptor went with
 * the reply); parked (answered when a VM or an image job gets there); or failed (a code and
 * a message). */
enum api_outcome { API_REPLY, API_ANSWERED, API_PARKED, API_FAILED };
struct pollfd;

/* A VM in shojid's table: what it knows of it, running or not (the monitor's struct vm is the
 * machine itself, in another program). */
struct vm_entry {
	bool used;
	char name[VMDEF_NAME_MAX + 1];
	enum vm_state state;
	pid_t keeper, monitor;
	int keeper_pidfd, monitor_pidfd;
	bool our_child;           /* the keeper is this daemon's child (reap it) */
	double started_at;        /* wall clock */
	long long deadline_ms;    /* start or stop phase deadline (monotonic) */
	long long start_ms;       /* when its last start began (monotonic) */
	long long quiet_until_ms; /* no control call before this (monotonic): its monitor let one time out */
	int stop_phase;           /* 0, 1 shutdown sent, 2 stop sent, 3 SIGKILL sent */
	bool stop_requested, kill_requested;
	bool start_pending;    /* the waiter asked for a start that has not completed */
	struct client *waiter; /* the caller of start/stop/kill, answered when it completes */
	char last_exit[256];
	bool disposable;                            /* removed, definition and files, when it stops */
	char uses[VMDEF_MAX_DISKS][PATHS_MAX + 64]; /* template images it runs on (kept while active) */
	unsigned nuses;
	uid_t owner;        /* who created it (SO_PEERCRED; recorded in state.json); 0 for VMs
			     * from before owners were recorded */
	bool jail_assigned; /* jail_uid is this VM's own (jailuid.c; recorded in state.json) */
	uid_t jail_uid;
	bool net_assigned; /* net_uid, another uid of its own, runs its passt or shoji-slirp (uplinks.c) */
	uid_t net_uid;
	/* uplinks.c, while it runs: whether it has passt or slirp NICs, the passt or shoji-slirp
	 * started for each, whether one ended (a series of restarts, quiet until one stays), the NICs
	 * (bits) whose monitor cannot take another (said once), when to look next, and the wait */
	bool has_uplink, uplink_down;
	unsigned uplink_refused;
	pid_t uplink_pid[VMDEF_MAX_NICS];
	int64_t uplink_next_ms;
	int uplink_wait_ms;
	char cgroup[PATHS_MAX * 2]; /* its cgroup's directory while it has one, else "" */
	uint32_t vsock_cid;         /* the CID its monitor runs with (vsockcid.c), 0 none */
	bool vsock_unavailable;     /* it asked for auto on a host without a vsock device */
};

/* The clipboard held between the user's copy and paste (clipboard.c). */
struct clip_hold {
	bool held;
	char from[VMDEF_NAME_MAX + 1]; /* the VM it was copied from */
	uint8_t *data;                 /* len bytes, malloc'd */
	size_t len;
	double at; /* wall clock of the copy */
};

/* The jailed process that serves an attached device to its guest (usbexport.c). */
struct usbexport {
	pid_t pid; /* -1: none */
	int pidfd; /* readable once it ended */
	int why;   /* the pipe on which it says why it ended */
};

/* The device an exporter serves, as the scan saw it. */
struct usbexport_device {
	const char *port;
	unsigned busnum, devnum;
};

/* Where a device given to a VM stands (usbassign.c): attached, or one step of an attach under
 * way, each with its deadline. */
enum usb_step {
	USB_HELD,       /* attached: the exporter serves the guest */
	USB_CONNECTING, /* to the guest agent's USB port, until USBIP_CONNECT_MS */
	USB_ASKING,     /* for the agent's answer, until USBIP_ANSWER_MS */
	USB_SETTLING,   /* the exporter started: attached once it has stood SETTLE_MS */
};

/* A USB device attached, or being attached, to a VM (usbassign.c). */
struct usb_hold {
	bool used;
	enum usb_step step;
	char port[USB_PORT_MAX];
	char vm[VMDEF_NAME_MAX + 1];
	uint16_t vid, pid;
	unsigned busnum, devnum;   /* the host's numbers for it when attached (a replug gives another) */
	struct usbexport exporter; /* its end says the device is let go (pid -1 before it starts) */
	/* While attaching: */
	int sock;              /* the connection to the guest agent, -1 once the exporter holds it */
	long long deadline_ms; /* when the step ends: a time-out, or (settling) success */
	struct client *waiter; /* the caller parked on the attach, NULL for none or gone */
	bool plugged;          /* given because it was plugged in (usb-auto = focused) */
	uint8_t speed;         /* the kernel's enum usb_device_speed, for the guest's port */
	char product[USB_NAME_MAX];
	uint8_t configs[USB_MAX_IFACES]; /* the configuration values its interfaces belong to */
	unsigned nconfigs;
};

/* An API caller: its connection (the JSON-lines server's) and who it is. */
struct client {
	struct jsonl_conn *conn;
	uid_t uid;
	bool subscriber; /* events --follow */
	char filter[VMDEF_NAME_MAX + 1];
	char focus[VMDEF_NAME_MAX + 1]; /* the VM it said the seat shows (seatfocus.c) */
	unsigned long long focus_seq;   /* when it said so (d->focus_seq); 0: it said nothing that stands */
	bool resume_pending;            /* its parked request was answered: serve what it sent since */
};

struct daemon {
	struct paths paths;
	const char *vmm;
	const char *passt;       /* the passt binary for NICs of type passt (uplinks.c) */
	char slirp[PATHS_MAX];   /* shoji-slirp, beside the monitor: a slirp NIC's NAT again (uplinks.c) */
	const char *usb_policy;  /* the host's default USB policy file (usbhost.c) */
	struct jsonl_server api; /* the API socket and its connections (client.c) */
	int lock_fd;
	char group[64];
	bool have_group;
	bool have_seat_user; /* --seat-user: the one user whose seat may take displays */
	uid_t seat_uid;
	gid_t group_gid;
	bool jail;
	gid_t jail_gid;              /* every monitor's gid: the group of /dev/kvm */
	uid_t jail_first, jail_last; /* the range VMs' jail uids come from (--jail-uids) */
	uid_t jail_next;             /* where the search for a free one starts */
	bool cgroups;                /* VMs get a cgroup each, under cgroup_base */
	char cgroup_base[PATHS_MAX * 2 - 64];
	struct vm_entry vms[DAEMON_MAX_VMS];
	struct client *clients[DAEMON_MAX_CLIENTS];
	unsigned long long event_seq;
	struct image_job *jobs[DAEMON_MAX_JOBS];
	struct clip_hold clip;
	/* The VM the seat shows (seatfocus.c): a device plugged in goes there when its policy says
	 * usb-auto = focused. "" none. */
	char focus[VMDEF_NAME_MAX + 1];
	unsigned long long focus_seq;
	struct usb_hold usb[DAEMON_MAX_USB];
};

long long daemon_now_ms(void);
double daemon_wall(void);
const char *vm_state_name(enum vm_state s);

/* vm.c: lifecycle */
struct vm_entry *vm_find(struct daemon *d, const char *name, bool add);
int vm_load_definition(struct daemon *d, const char *name, struct vmdef *def, enum proto_code *code, struct err *e);
/* Starts a stopped VM, c parked until it runs or fails (the files it names are checked first,
 * in a job): 0, or -1 with code and e. */
int vm_start(struct daemon *d, struct vm_entry *vm, struct client *c, enum proto_code *code, struct err *e);
/* The rest of a start, once its files passed the check: 0 with c parked on the VM. */
int vm_start_checked(struct daemon *d, struct vm_entry *vm, struct vmdef *def, struct client *c, enum proto_code *code,
		     struct err *e);
int vm_stop(struct daemon *d, struct vm_entry *vm, struct client *c, int timeout_s, enum proto_code *code,
	    struct err *e);
int vm_kill(struct daemon *d, struct vm_entry *vm, struct client *c, enum proto_code *code, struct err *e);
int vm_pause(struct daemon *d, struct vm_entry *vm, bool pause, enum proto_code *code, struct err *e);
/* The keeper's pidfd became readable: the monitor has ended. */
void vm_on_keeper_exit(struct daemon *d, struct vm_entry *vm);
/* Deadlines: start progress, stop escalation. */
void vm_tick(struct daemon *d);
/* How soon (ms) the loop must look again at a starting monitor's control socket, which its
 * caller waits on: a tenth of the time since the start, from 5 to 50 ms, so that the look adds
 * about 5 % to a start and a slow start is not polled hard; -1 when no VM is starting. */
int vm_start_poll_ms(const struct daemon *d);
/* At daemon start: find running VMs from their state files and adopt them. */
void vm_adopt_all(struct daemon *d);
/* Calls fn for each VM with a definition file, in name order. */
void vm_each_defined(struct daemon *d, void (*fn)(struct daemon *, const char *, void *), void *arg);
void vm_save(struct daemon *d, struct vm_entry *vm);
/* Records who created a VM (at create and run). */
int vm_set_owner(struct daemon *d, const char *name, uid_t owner, struct err *e);
/* A control-socket call to the VM's monitor. */
int vm_control(struct daemon *d, struct vm_entry *vm, enum control_cmd cmd, struct json_object **reply, struct err *e);
/* The same with a whole request object (consumed) and a descriptor to pass (-1: none). */
int vm_control_req(struct daemon *d, struct vm_entry *vm, struct json_object *req, int send_fd,
		   struct json_object **reply, struct err *e);
/* Removes a stopped VM: definition, state, logs, snapshot overlays, sockets. */
void vm_remove(struct daemon *d, const char *name);
/* Starts a disposable VM from a definition whose root disk is on a template; its name is
 * picked here (disp1, disp2, ...). */
int vm_run_disposable(struct daemon *d, const char *definition, struct client *c, enum proto_code *code, struct err *e);
bool vm_active(const struct vm_entry *vm);

/* vsockcid.c: the CID of a VM started with vsock-cid = auto (all on shojid's one thread) */
#define VSOCKCID_AUTO_FIRST 1000000u
#define VSOCKCID_DEVICE     "/dev/vhost-vsock"
/* At a start: vm's CID from def (a fixed one, or with vsock_auto a free one written into def).
 * When def asks for auto and the host has no vsock device, def and vm get none and
 * vm->vsock_unavailable is set (the "started" event says so). */
void vsockcid_assign(struct daemon *d, struct vm_entry *vm, struct vmdef *def);

/* jailuid.c: one jail uid per VM, from --jail-uids (all on shojid's one thread) */
#define JAILUID_DEFAULT_FIRST 65536
#define JAILUID_DEFAULT_LAST  99999
struct jail_id {
	uid_t uid;
	gid_t gid;
};
/* Parses --jail-uids FIRST-LAST. */
int jailuid_parse_range(const char *text, uid_t *first, uid_t *last, struct err *e);
/* At daemon start: where the search goes on, and what of the range passwd entries hold. */
void jailuid_init(struct daemon *d);
/* Gives vm a jail uid of its own when it has none (and the daemon jails monitors), and saves
 * its state; jailuid_assign_new does it for a VM just created. */
int jailuid_assign(struct daemon *d, struct vm_entry *vm, struct err *e);
int jailuid_assign_new(struct daemon *d, const char *name, struct err *e);
/* The VM's net uid (for its passt), given once like its jail uid and never the same. */
int jailuid_assign_net(struct daemon *d, struct vm_entry *vm, struct err *e);
void jailuid_recorded_net(struct daemon *d, struct vm_entry *vm, uid_t uid);
/* At adoption: the uid state.json records, kept unless another VM or a passwd entry has it. */
void jailuid_recorded(struct daemon *d, struct vm_entry *vm, uid_t uid);
/* After adoption: stopped VMs without a uid of their own get one, and their files with it. */
void jailuid_startup(struct daemon *d);
/* The uid and gid VM name's monitor runs as, for anything that acts on its files for it (an
 * image job of a stopped VM included). Fails when it has none yet or monitors are not jailed. */
int vm_jail_identity(struct daemon *d, const char *name, struct jail_id *out, struct err *e);

/* pathcheck.c: before a start, the files def names looked at with the rights of the VM's owner
 * in an image job; the start goes on (vm_start_checked) when it passes. Takes def. */
int pathcheck_start(struct daemon *d, struct vm_entry *vm, struct vmdef *def, struct client *c, struct err *e);

/* confine.c: in a child of shojid, before it reads what others control: it dies with shojid,
 * becomes id (NULL: keeps shojid's) with those groups, sets no_new_privs and loads the allow-list
 * of file, memory and time calls, with extra[] added. what names it in errors. */
int confine_child(const char *what, const struct jail_id *id, const gid_t *groups, unsigned ngroups,
		  const char *const *extra, size_t nextra, struct err *e);
/* Later in such a child, once it has set itself up: a second allow-list on top of the first,
 * which leaves it calls[] only (and what a sanitized build's run-time needs), with ioctl allowed
 * only for the commands ioctls[] (compared as the kernel reads them, 32 bits). */
int confine_narrow(const char *what, const char *const *calls, size_t ncalls, const unsigned long *ioctls,
		   size_t nioctls, struct err *e);

/* usbscan.c: the host's USB devices now (at most cap), read by a confined child as nobody and
 * checked as they come back; -1 with e when the scan fails or does not end in time. */
int usbscan_run(struct usb_device_info *out, unsigned cap, unsigned *n, struct err *e);
/* usbhost.c: the host's default USB policy from its file (*have false where there is none);
 * -1 with e naming the file, the line and the fix when it is not to be believed or parsed. */
int usbhost_policy(const struct daemon *d, struct usb_policy *out, bool *have, struct err *e);

/* usb-list's answer: every device (port, numbers, ids, names, classes, interfaces, whether its
 * descriptors were whole, who holds it) and, with vm, whether that VM's policy lets it have each
 * and why not; NULL with code and e when the scan fails or vm is not known. */
struct json_object *usbscan_list(struct daemon *d, const char *vm, enum proto_code *code, struct err *e);

/* usbassign.c: USB devices given to VMs and taken back (main thread). An attach judges the
 * device on a fresh scan under the VM's policy and the host's (a refusal is an event too), at
 * once; then the hand-over goes on from shojid's loop (usbassign_io, usbassign_tick), which
 * serves other callers meanwhile, with c parked until it ends. 0 with c parked, or -1 with code
 * and e and the device the host's still. */
int usbassign_attach(struct daemon *d, const char *vm, const char *port, struct client *c, enum proto_code *code,
		     struct err *e);
/* Takes the device at port back from the VM that holds it, or ends an attach of it under way
 * (its caller told so). */
int usbassign_detach(struct daemon *d, const char *port, enum proto_code *code, struct err *e);
/* The VM that holds the device at port, or NULL (the host's). */
const char *usbassign_holder(struct daemon *d, const char *port);
/* A VM stopped: every device it held goes back to the host. */
void usbassign_release_vm(struct daemon *d, const char *vm);
/* What each hold waits for (an attached device's exporter ending, an attach's next step;
 * usbassign_io then): how many were put in fds, who[] their holds. */
int usbassign_pollfds(struct daemon *d, struct pollfd *fds, void **who, int room);
void usbassign_io(struct daemon *d, struct usb_hold *h);
/* Attaches under way: whether there are any (the loop then looks often), and those whose step's
 * time has come, ended (usbassign_tick: after each pass of the loop). */
bool usbassign_busy(const struct daemon *d);
void usbassign_tick(struct daemon *d);
/* c's connection ended: an attach it waits for goes on, with nobody to answer. */
void usbassign_forget(struct daemon *d, const struct client *c);

/* The device numbered devnum was pulled out of port: if a VM holds it, it is given back now
 * ("unplugged"). */
void usbassign_unplugged(struct daemon *d, const char *port, unsigned devnum);
/* A device was just plugged in at port: it goes to the VM the seat shows (d->focus) when that VM
 * runs and its usb-auto (else the host's) is focused, judged and handed over as any attach; a
 * refusal or a failure is an event. */
void usbassign_plugged(struct daemon *d, const char *port);
/* At shojid's end: every device given back, with why in its event. */
void usbassign_release_all(struct daemon *d, const char *why);
/* At shojid's start: the devices a shojid that stopped (killed, crashed) had given to VMs, whose
 * exporters ended with it, are given back to the host (reset, offered to its drivers). */
void usbassign_recover(struct daemon *d);

/* seatfocus.c: the seat's word on which VM it shows (main thread). seat-focus from c (name "" for
 * none, else a VM that exists: api.c checks, having taken c's earlier word back with
 * seatfocus_forget): 0, or -1 with code and e when it is not one the caller may name. */
int seatfocus_say(struct daemon *d, struct client *c, const char *name, enum proto_code *code, struct err *e);
/* c's connection ends: its word goes, and the latest word of another open one stands. */
void seatfocus_forget(struct daemon *d, struct client *c);

/* usbhotplug.c: the kernel's USB add and remove events (main thread). The descriptor to poll,
 * or -1 (logged) when they cannot be heard; usbhotplug_io takes one when it is readable. */
int usbhotplug_open(void);
void usbhotplug_io(struct daemon *d);

/* usbexport.c: starts the exporter for a guest's connection (guest, which shojid keeps its copy
 * of) to dev (it opens the device itself, and checks it is dev), whose configurations are
 * configs[0..n). 0, or -1 with e and nothing left running. */
int usbexport_start(struct usbexport *x, int guest, const struct usbexport_device *dev, const uint8_t *configs,
		    unsigned n, struct err *e);
/* Ends the exporter (killed if it still runs, reaped) and, with why, says why it had ended. */
void usbexport_end(struct usbexport *x, char *why, size_t size);

/* imagejob.c: work on files others control (images, the paths a definition names) run as the
 * VM's jail uid (or another given identity), confined, in a child process, its request parked
 * until it ends (see there). An operation is nsteps steps: the child runs work(ctx, i) for
 * each in turn on its own copy of ctx (a step may change that copy for the next), and shojid,
 * told that step i is done, runs step_done(d, ctx, i) on its copy (the same change to the
 * record, then saved), so the record never runs ahead of the files. finish ends it, given ok
 * and the child's result (what the last step left in e->msg) or not ok and why; it frees ctx
 * and says how the parked caller c (NULL: gone) is answered. Main thread. */
enum image_end {
	IMAGE_REPLY,     /* with *reply */
	IMAGE_FAILED,    /* with code and e */
	IMAGE_PASSED_ON, /* c is parked on something else now (a VM's start), which answers it */
};
struct image_op {
	const char *what;   /* "deleting a snapshot": for errors */
	bool starts_the_vm; /* the first part of a start: the VM counts as starting meanwhile */
	int (*work)(void *ctx, unsigned step, struct err *e);
	int (*step_done)(struct daemon *d, void *ctx, unsigned step, struct err *e); /* NULL: none */
	enum image_end (*finish)(struct daemon *d, void *ctx, struct client *c, bool ok, const char *msg,
				 struct json_object **reply, enum proto_code *code, struct err *e);
};
#define IMAGE_JOB_MAX_GROUPS 64
struct image_job_spec {
	const struct image_op *op;
	void *ctx;
	unsigned nsteps;
	const char *key; /* what it holds busy: a VM's name, or "template NAME" */
	const char *vm;  /* the VM whose jail uid it runs as, or NULL: as id */
	struct jail_id id;
	gid_t groups[IMAGE_JOB_MAX_GROUPS]; /* with id: its supplementary groups (none by default) */
	unsigned ngroups;
	bool stay; /* keep shojid's identity (a check that only looks at types) */
};
/* Starts the job with c parked on it: 0 (ctx is the job's from then on), or -1 with e (ctx
 * still the caller's). */
int image_job_start(struct daemon *d, struct client *c, const struct image_job_spec *spec, struct err *e);
/* The operation of the job holding key busy, or NULL. */
const struct image_op *image_job_busy(const struct daemon *d, const char *key);
/* The loop's part: the jobs' pipes to poll, what came on one, deadlines, a caller gone. */
int image_job_pollfds(struct daemon *d, struct pollfd *fds, void **who, int room);
void image_job_io(struct daemon *d, void *job);
void image_job_tick(struct daemon *d);
void image_job_forget(struct daemon *d, const struct client *c);

/* jailfiles.c: the VM's runtime directory, serial log, volatile directory and disks/ overlays
 * (created where missing) given to its jail uid alone. Main thread. */
int jailfiles_give(struct daemon *d, struct vm_entry *vm, struct err *e);

/* fwvars.c: a firmware VM's UEFI variable store, the VM's own copy of its firmware's template,
 * which the monitor writes as the VM's jail uid: shojid creates it and never reads it. Main
 * thread. */
/* Its path: STATE/vms/NAME/uefi-vars.fd (a disposable VM's: in its volatile directory). */
int fwvars_path(struct daemon *d, const struct vm_entry *vm, char *buf, size_t size, struct err *e);
/* At a start, first: firmware = uefi needs Debian's OVMF installed. */
int fwvars_available(const struct vmdef *def, struct err *e);
/* At a start: the store copied from the template when missing (a disposable VM's: fresh at each
 * start), given to the VM's jail uid (0600). Nothing without firmware. */
int fwvars_create(struct daemon *d, const struct vm_entry *vm, const struct vmdef *def, struct err *e);

/* cgroup.c: a cgroup v2 per running VM (all on shojid's one thread) */
#define CGROUP_OVERHEAD_MIB 256 /* memory.max: guest RAM + this (+ CGROUP_DISPLAY_MIB with a display) */
#define CGROUP_DISPLAY_MIB  256 /* the framebuffer (up to 8192x8192x4) and its copies */
#define CGROUP_DISK_MIB     48  /* a disk's qcow2 L2 caches at most (block/qcow2.h), per disk */
#define CGROUP_PIDS_BASE    64  /* pids.max: this + vCPUs + 2 per NIC, 2 + SHOJI_DISK_WORKERS per disk */
uint64_t cgroup_memory_max_mib(const struct vmdef *def);
unsigned cgroup_pids_max(const struct vmdef *def);
/* At daemon start: finds or makes the VMs' parent cgroup; says once when there is none. */
void cgroup_init(struct daemon *d);
/* The VM's cgroup with its limits; *procs its cgroup.procs, open for the keeper to join (-1:
 * no cgroups here). */
int cgroup_vm_create(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, int *procs, struct err *e);
/* An adopted VM: its cgroup found again from its keeper's. */
void cgroup_vm_adopt(struct vm_entry *vm, pid_t keeper);
/* The VM has ended: its cgroup removed (what is left in it killed; cgroup_tick retries). */
void cgroup_vm_remove(struct daemon *d, struct vm_entry *vm);
void cgroup_tick(struct daemon *d);
/* Adds cgroup, cgroup_memory_max and cgroup_pids_max of a running VM to o. */
void cgroup_describe(const struct vm_entry *vm, struct json_object *o);

/* keeper.c: starting a monitor under its keeper, and the keeper's exit record */
struct keeper_start {
	char *const *argv;
	const char *monitor_log, *exit_file;
	int lock_fd;
	int cgroup_procs_fd; /* the VM cgroup's cgroup.procs, which the keeper joins first; -1: none */
	bool pid_ns;         /* start the monitor as the first process of a new PID namespace (jailed) */
};
int keeper_spawn(const struct keeper_start *ks, pid_t *keeper, pid_t *monitor, struct err *e);
/* Reads the exit record into a one-line description; returns -1 when there is none. sets
 * *signal_out (0 for a normal exit) and *status_out. */
int keeper_read_exit(const char *exit_file, int *status_out, int *signal_out);

/* uplinks.c: user-mode networking out of the monitor ([nic ID] type = passt or slirp). Before a
 * start: passt is there, and the VM has its net uid (jailed; a slirp NIC's first shoji-slirp
 * runs as it too, started by the monitor with --net-uid). Once the VM runs (started or
 * adopted): a passt for each passt NIC, and a shoji-slirp for each slirp NIC, whose link is
 * down, its socket's other end handed to the monitor. */
#define PASST_DEFAULT "/usr/bin/passt"
int uplinks_prepare(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, struct err *e);
void uplinks_vm_running(struct daemon *d, struct vm_entry *vm);
/* From vm_tick: a passt or shoji-slirp that ended is replaced (1 s, then 2, 4, ... 60 s apart while each ends
 * at once, as on a host without a network; every 10 s a look while all serve). */
void uplinks_tick(struct daemon *d);

/* netlinks.c: links between VMs' NICs (type = vm). A VM that now runs (started or adopted) is
 * joined to each peer that runs and names it back; one that stopped: its peers' events. */
void netlinks_vm_running(struct daemon *d, struct vm_entry *vm);
void netlinks_vm_stopped(struct daemon *d, const char *name);
/* The link NICs of the VMs viewer may see: vm, nic, peer, peer_nic, state, why. */
struct json_object *netlinks_list(struct daemon *d, uid_t viewer);
/* From a monitor's status reply: whether its NIC i is of kind (link, passt) with the MAC that
 * NIC n of VM vm's definition gives it, and whether its link is up. */
bool netlinks_nic_is(struct json_object *status, unsigned i, const char *kind, const char *vm,
		     const struct vmdef_nic *n);
bool netlinks_nic_up(struct json_object *status, unsigned i);
bool netlinks_nic_takes_socket(struct json_object *status, unsigned i);
/* A running VM's status reply (NULL when its monitor does not answer); json_object_put it. */
struct json_object *netlinks_monitor_status(struct daemon *d, struct vm_entry *vm);
/* Hands NIC i of vm the socket fd (the control socket's net-link; fd stays the caller's). */
int netlinks_hand_over(struct daemon *d, struct vm_entry *vm, unsigned i, int fd, bool offload, struct err *e);

/* templates.c: the template store (STATE/templates) */
int template_begin(struct daemon *d, const char *name, bool replace, int *version, int *fd, enum proto_code *code,
		   struct err *e);
/* Publishes an import once an image job has checked it: 0 with c parked (answered with the
 * version and size when the job ends), or -1 with code and e. */
int template_commit(struct daemon *d, struct client *c, const char *name, int version, const char *source,
		    enum proto_code *code, struct err *e);
struct json_object *template_list(struct daemon *d);
struct json_object *template_info(struct daemon *d, const char *name, enum proto_code *code, struct err *e);
int template_delete(struct daemon *d, const char *name, enum proto_code *code, struct err *e);
/* The current version's image of a template. */
int template_current(struct daemon *d, const char *name, char *path, size_t size, enum proto_code *code, struct err *e);
/* At a start: each template disk of def becomes a fresh overlay on the template's current
 * version (a disposable VM's: the image itself, opened volatile); vm->uses records them. */
int template_apply(struct daemon *d, struct vm_entry *vm, struct vmdef *def, enum proto_code *code, struct err *e);
bool template_file_in_use(struct daemon *d, const char *file);
/* Removes versions that are not current and that no active VM uses. */
void template_gc(struct daemon *d);
/* At daemon start: unfinished imports removed, then template_gc. */
void template_startup(struct daemon *d);

/* snapshots.c: external snapshots of a VM's qcow2 disks */
/* create, revert and delete change files in an image job, the caller parked until it ends
 * (create while the VM runs is answered at once, with *reply). */
enum api_outcome snapshot_create(struct daemon *d, struct client *c, const char *name, const char *snap,
				 struct json_object **reply, enum proto_code *code, struct err *e);
struct json_object *snapshot_list(struct daemon *d, const char *name, enum proto_code *code, struct err *e);
enum api_outcome snapshot_revert(struct daemon *d, struct client *c, const char *name, const char *snap,
				 enum proto_code *code, struct err *e);
enum api_outcome snapshot_delete(struct daemon *d, struct client *c, const char *name, const char *snap,
				 enum proto_code *code, struct err *e);
/* At a start: each disk with snapshots runs on the top of its chain. */
int snapshot_apply(struct daemon *d, const char *name, struct vmdef *def, struct err *e);
/* A new qcow2 overlay of the given size on backing (an absolute path, whose header is not
 * read), written by root into a file it makes and then given to VM vm's jail uid. */
int overlay_create_sized(struct daemon *d, const char *vm, const char *path, const char *backing, uint64_t size,
			 struct err *e);
void snapshot_remove_all(struct daemon *d, const char *name);
bool snapshot_any(struct daemon *d, const char *name);

/* clipboard.c: the user's copy from a running VM into shojid's hold, and paste from it into
 * another (emptying it), under both VMs' [policy]; the reply object, or NULL with code and e
 * (PROTO_REFUSED: policy said no, an event says so too). */
struct json_object *clipboard_copy(struct daemon *d, struct vm_entry *vm, enum proto_code *code, struct err *e);
struct json_object *clipboard_paste(struct daemon *d, struct vm_entry *vm, enum proto_code *code, struct err *e);
/* {"ok":true,"held":...,"from":...,"bytes":...,"age_s":...} */
struct json_object *clipboard_status(struct daemon *d);
void clipboard_clear(struct daemon *d);

/* events.c */
void events_init(struct daemon *d);
void events_add(struct daemon *d, const char *vm, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The last max events (of one VM when vm is not NULL), oldest first. */
struct json_object *events_recent(struct daemon *d, const char *vm, int max, uid_t viewer);

/* client.c */
/* Serves the API on listen_fd (shojid's socket, listening); d->api then holds it. */
int client_serve(struct daemon *d, int listen_fd, struct err *e);
void client_send(struct client *c, struct json_object *reply); /* consumes reply */
void client_send_error(struct client *c, enum proto_code code, const char *msg);
void client_send_error_conn(struct jsonl_conn *conn, enum proto_code code, const char *msg);
void client_send_line(struct client *c, const char *line, size_t len);
int client_send_fd(struct client *c, struct json_object *reply, int fd); /* consumes reply */
/* The request in progress continues after the handler returns: read no further request. */
void client_park(struct client *c);
/* A parked request completed: answer it; the client's next requests are served from the top
 * of the loop (client_serve_resumed), never from inside whatever completed it (a VM's end, an
 * attach's step), which would run them in the middle of that work. */
void client_resume(struct daemon *d, struct client *c, struct json_object *reply);
/* At the top of the loop: the requests that came meanwhile from each client answered since. */
void client_serve_resumed(struct daemon *d);
/* The same for the caller *waiter parked on something, which is forgotten; reply is dropped
 * where nobody waits (NULL: it had gone). */
void client_answer(struct daemon *d, struct client **waiter, struct json_object *reply);
/* The same with an error reply: code and msg. */
void client_answer_error(struct daemon *d, struct client **waiter, enum proto_code code, const char *msg);

/* authz.c: who may do what (root and the daemon's uid: all; a member: the VMs it owns; the
 * seat's user: also seeing and taking the displays). Main thread. */
bool authz_privileged(const struct daemon *d, uid_t uid);
uid_t authz_owner(struct daemon *d, const char *name);
bool authz_owns(struct daemon *d, uid_t uid, const char *name);
/* In list and events: the VMs the caller owns, and the seat's user those with a display. */
bool authz_may_see(struct daemon *d, uid_t uid, const char *name);
/* Root, the daemon's uid or the seat's user: who may take displays and move the clipboard. */
bool authz_is_seat(const struct daemon *d, uid_t uid);
/* Before a request is handled: 0, or -1 with code PROTO_PERMISSION and a line in e. */
int authz_check(struct daemon *d, const struct client *c, const struct proto_request *r, enum proto_code *code,
		struct err *e);

/* api.c */
void api_handle(struct daemon *d, struct client *c, const char *line, size_t len);

#endif

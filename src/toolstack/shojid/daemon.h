/* daemon: shojid's shared state: the VMs it supervises, the API clients, the events log, and
 * the functions its parts call on one another. shojid is one thread around poll(); every
 * request is handled to the end (or parked on its VM) before the next one is read, which is
 * what keeps concurrent callers from ever interleaving state changes. */
#ifndef SHOJI_SHOJID_DAEMON_H
#define SHOJI_SHOJID_DAEMON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "../../common/err.h"
#include "../paths.h"
#include "../proto.h"
#include "../vmdef.h"

#define DAEMON_MAX_VMS 256
#define DAEMON_MAX_CLIENTS 64
#define DAEMON_START_TIMEOUT_MS 120000 /* to the monitor's control socket answering */
#define DAEMON_HARD_STOP_MS 5000       /* after "stop", before SIGKILL */
#define DAEMON_CONTROL_TIMEOUT_MS 3000 /* one control-socket call */

enum vm_state { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_PAUSED, VM_STOPPING };

struct client;

struct vm {
	bool used;
	char name[VMDEF_NAME_MAX + 1];
	enum vm_state state;
	pid_t keeper, monitor;
	int keeper_pidfd, monitor_pidfd;
	bool our_child;		/* the keeper is this daemon's child (reap it) */
	double started_at;	/* wall clock */
	long long deadline_ms;	/* start or stop phase deadline (monotonic) */
	int stop_phase;		/* 0, 1 shutdown sent, 2 stop sent, 3 SIGKILL sent */
	bool stop_requested, kill_requested;
	bool start_pending;	/* the waiter asked for a start that has not completed */
	struct client *waiter;	/* the caller of start/stop/kill, answered when it completes */
	char last_exit[256];
	bool disposable;	/* removed, definition and files, when it stops */
	char uses[VMDEF_MAX_DISKS][PATHS_MAX + 64]; /* template images it runs on (kept while active) */
	unsigned nuses;
};

struct client {
	int fd;
	uid_t uid;
	char *in;
	size_t inlen, incap;
	char *out;
	size_t outlen, outcap;
	bool busy;	 /* parked on a VM operation: read no further request */
	bool subscriber; /* events --follow */
	char filter[VMDEF_NAME_MAX + 1];
	bool closing;	 /* close once the output is written */
	long long drain_until_ms; /* refused caller or broken framing: its input is drained until
				   * then (or its end), so that closing does not reset the connection
				   * before the caller reads why */
};

struct daemon {
	struct paths paths;
	const char *vmm;
	int listen_fd, lock_fd;
	char group[64];
	bool have_group;
	gid_t group_gid;
	bool jail;
	uid_t jail_uid;
	gid_t jail_gid;
	struct vm vms[DAEMON_MAX_VMS];
	struct client *clients[DAEMON_MAX_CLIENTS];
	unsigned long long event_seq;
};

long long daemon_now_ms(void);
double daemon_wall(void);
const char *vm_state_name(enum vm_state s);

/* vm.c: lifecycle */
struct vm *vm_find(struct daemon *d, const char *name, bool add);
int vm_load_definition(struct daemon *d, const char *name, struct vmdef *def, enum proto_code *code,
		       struct err *e);
int vm_start(struct daemon *d, struct vm *vm, struct client *c, enum proto_code *code, struct err *e);
int vm_stop(struct daemon *d, struct vm *vm, struct client *c, int timeout_s, enum proto_code *code,
	    struct err *e);
int vm_kill(struct daemon *d, struct vm *vm, struct client *c, enum proto_code *code, struct err *e);
int vm_pause(struct daemon *d, struct vm *vm, bool pause, enum proto_code *code, struct err *e);
/* The keeper's pidfd became readable: the monitor has ended. */
void vm_on_keeper_exit(struct daemon *d, struct vm *vm);
/* Deadlines: start progress, stop escalation. */
void vm_tick(struct daemon *d);
/* At daemon start: find running VMs from their state files and adopt them. */
void vm_adopt_all(struct daemon *d);
/* Calls fn for each VM with a definition file, in name order. */
void vm_each_defined(struct daemon *d, void (*fn)(struct daemon *, const char *, void *), void *arg);
void vm_save(struct daemon *d, struct vm *vm);
/* A control-socket call to the VM's monitor. */
int vm_control(struct daemon *d, const struct vm *vm, const char *cmd, struct json_object **reply,
	       struct err *e);
/* The same with a whole request object (consumed) and a descriptor to pass (-1: none). */
int vm_control_req(struct daemon *d, const struct vm *vm, struct json_object *req, int send_fd,
		   struct json_object **reply, struct err *e);
/* Removes a stopped VM: definition, state, logs, snapshot overlays, sockets. */
void vm_remove(struct daemon *d, const char *name);
/* Starts a disposable VM from a definition whose root disk is on a template; its name is
 * picked here (disp1, disp2, ...). */
int vm_run_disposable(struct daemon *d, const char *definition, struct client *c, enum proto_code *code,
		      struct err *e);
bool vm_active(const struct vm *vm);

/* keeper.c: starting a monitor under its keeper, and the keeper's exit record */
struct keeper_start {
	char *const *argv;
	const char *monitor_log, *exit_file;
	int lock_fd;
};
int keeper_spawn(const struct keeper_start *ks, pid_t *keeper, pid_t *monitor, struct err *e);
/* Reads the exit record into a one-line description; returns -1 when there is none. sets
 * *signal_out (0 for a normal exit) and *status_out. */
int keeper_read_exit(const char *exit_file, int *status_out, int *signal_out);

/* templates.c: the template store (STATE/templates) */
int template_begin(struct daemon *d, const char *name, bool replace, int *version, int *fd,
		   enum proto_code *code, struct err *e);
int template_commit(struct daemon *d, const char *name, int version, const char *source,
		    struct json_object *reply, enum proto_code *code, struct err *e);
struct json_object *template_list(struct daemon *d);
struct json_object *template_info(struct daemon *d, const char *name, enum proto_code *code, struct err *e);
int template_delete(struct daemon *d, const char *name, enum proto_code *code, struct err *e);
/* The current version's image of a template. */
int template_current(struct daemon *d, const char *name, char *path, size_t size, enum proto_code *code,
		     struct err *e);
/* At a start: each template disk of def becomes a fresh overlay on the template's current
 * version (a disposable VM's: the image itself, opened volatile); vm->uses records them. */
int template_apply(struct daemon *d, struct vm *vm, struct vmdef *def, enum proto_code *code, struct err *e);
bool template_file_in_use(struct daemon *d, const char *file);
/* Removes versions that are not current and that no active VM uses. */
void template_gc(struct daemon *d);
/* At daemon start: unfinished imports removed, then template_gc. */
void template_startup(struct daemon *d);

/* snapshots.c: external snapshots of a VM's qcow2 disks */
struct json_object *snapshot_create(struct daemon *d, const char *name, const char *snap, enum proto_code *code,
				    struct err *e);
struct json_object *snapshot_list(struct daemon *d, const char *name, enum proto_code *code, struct err *e);
struct json_object *snapshot_revert(struct daemon *d, const char *name, const char *snap, enum proto_code *code,
				    struct err *e);
struct json_object *snapshot_delete(struct daemon *d, const char *name, const char *snap, enum proto_code *code,
				    struct err *e);
/* At a start: each disk with snapshots runs on the top of its chain. */
int snapshot_apply(struct daemon *d, const char *name, struct vmdef *def, struct err *e);
/* A new empty qcow2 overlay on backing (an absolute path), given to the jail user. */
int overlay_create(struct daemon *d, const char *path, const char *backing, struct err *e);
void snapshot_remove_all(struct daemon *d, const char *name);
bool snapshot_any(struct daemon *d, const char *name);

/* events.c */
void events_init(struct daemon *d);
void events_add(struct daemon *d, const char *vm, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The last max events (of one VM when vm is not NULL), oldest first. */
struct json_object *events_recent(struct daemon *d, const char *vm, int max);

/* client.c */
void client_accept(struct daemon *d);
void client_io(struct daemon *d, struct client *c, short revents);
void client_send(struct client *c, struct json_object *reply); /* consumes reply */
void client_send_error(struct client *c, enum proto_code code, const char *msg);
void client_send_line(struct client *c, const char *line, size_t len);
int client_send_fd(struct client *c, struct json_object *reply, int fd); /* consumes reply */
void client_close(struct daemon *d, struct client *c);
/* Closes drained callers whose time is up. */
void client_tick(struct daemon *d);
/* A parked request completed: answer it and read the client's next request. */
void client_resume(struct daemon *d, struct client *c, struct json_object *reply);

/* api.c */
void api_handle(struct daemon *d, struct client *c, const char *line, size_t len);

#endif

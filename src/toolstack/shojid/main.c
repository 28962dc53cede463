/* shojid: the shoji daemon. Parses its options, takes the state directory's lock, listens on
 * its API socket, adopts VMs still running from an earlier daemon, starts autostart VMs once per
 * boot, then serves requests and supervises monitors in one poll() loop. SIGTERM/SIGINT end the
 * daemon but never the VMs. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../common/identity.h"
#include "../../common/version.h"
#include "daemon.h"

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

long long daemon_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double daemon_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shojid [options]\n"
		"The shoji daemon: keeps VM definitions, starts one shoji-vmm per running VM and\n"
		"supervises it; serves the 'shoji' command on a Unix socket.\n"
		"\n"
		"  --state-dir DIR    definitions, state, logs, events (default $SHOJI_STATE_DIR or\n"
		"                     /var/lib/shoji)\n"
		"  --runtime-dir DIR  sockets (default $SHOJI_RUNTIME_DIR or /run/shoji)\n"
		"  --vmm PATH         the monitor (default: shoji-vmm next to shojid)\n"
		"  --group NAME       who may use the API besides root (default shoji); a member acts\n"
		"                     on the VMs it created\n"
		"  --seat-user USER   the desktop user whose seat may take the VMs' displays (a name\n"
		"                     or a uid; default: root's seat only)\n"
		"  --jail-uids FIRST-LAST  the uids monitors run as, one per VM (default 65536-99999;\n"
		"                     uids of passwd entries and /etc/subuid ranges are skipped), with\n"
		"                     the group of /dev/kvm\n"
		"  --no-jail          run monitors without --jail-uid/--jail-gid\n"
		"  --passt PATH       the passt that serves NICs of type passt (default " PASST_DEFAULT ")\n"
		"  --slirp PATH       the shoji-slirp that serves a NIC of type slirp again once the\n"
		"                     monitor's own ended (default: shoji-slirp next to the monitor)\n"
		"  --usb-policy FILE  the host's default USB policy, a [usb] section of usb-allow,\n"
		"                     usb-deny, usb-storage, usb-auto (default " USBHOST_DEFAULT ")\n"
		"  -h, --help         this text\n"
		"  --version          the version\n"
		"\n"
		"Stopping shojid (SIGTERM, or kill -9) leaves running VMs running; the next shojid\n"
		"adopts them.\n");
}

struct options {
	const char *state_dir, *runtime_dir, *vmm, *group, *seat_user, *passt, *slirp, *usb_policy;
	uid_t jail_first, jail_last;
	bool no_jail;
};

static int parse_options(int argc, char **argv, struct options *o, struct err *e)
{
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, 's'},
		{"runtime-dir", required_argument, NULL, 'r'},
		{"vmm", required_argument, NULL, 'v'},
		{"group", required_argument, NULL, 'g'},
		{"jail-uids", required_argument, NULL, 'j'},
		{"no-jail", no_argument, NULL, 'J'},
		{"seat-user", required_argument, NULL, 'S'},
		{"passt", required_argument, NULL, 'P'},
		{"slirp", required_argument, NULL, 'L'},
		{"usb-policy", required_argument, NULL, 'U'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.group = "shoji", .jail_first = JAILUID_DEFAULT_FIRST, .jail_last = JAILUID_DEFAULT_LAST};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->state_dir = optarg; break;
		case 'r': o->runtime_dir = optarg; break;
		case 'v': o->vmm = optarg; break;
		case 'g': o->group = optarg; break;
		case 'j':
			if (jailuid_parse_range(optarg, &o->jail_first, &o->jail_last, e) < 0)
				return -1;
			break;
		case 'J': o->no_jail = true; break;
		case 'S': o->seat_user = optarg; break;
		case 'P': o->passt = optarg; break;
		case 'L': o->slirp = optarg; break;
		case 'U': o->usb_policy = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': version_print("shojid"); exit(0);
		case ':': return err_set(e, "%s needs a value (see --help)", argv[optind - 1]);
		default: return err_set(e, "unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return err_set(e, "unexpected argument '%s' (see --help)", argv[optind]);
	return 0;
}

static char vmm_default[4096];

static const char *default_vmm(void)
{
	ssize_t n = readlink("/proc/self/exe", vmm_default, sizeof(vmm_default) - 16);
	if (n <= 0)
		return "shoji-vmm";
	vmm_default[n] = '\0';
	char *slash = strrchr(vmm_default, '/');
	strcpy(slash ? slash + 1 : vmm_default, "shoji-vmm");
	/* In the build tree shojid is in src/, beside shoji-vmm: the same rule holds. */
	return vmm_default;
}

static int mkdirs(const char *dir, mode_t mode, struct err *e)
{
	char p[PATHS_MAX];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(p, 0755);
			*s = '/';
		}
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return err_errno(e, errno, "cannot create %s", p);
	return 0;
}

/* The jailed monitors' gid: the group of /dev/kvm, which a monitor with no supplementary groups
 * needs to open it (else nogroup). Their uids: one per VM, from the range (jailuid.c). */
static void jail_identity(struct daemon *d, const struct options *o)
{
	d->jail_first = o->jail_first;
	d->jail_last = o->jail_last;
	d->jail_gid = IDENTITY_NOBODY;
	struct stat st;
	if (stat("/dev/kvm", &st) == 0 && (st.st_mode & 0060) == 0060 && st.st_gid != 0)
		d->jail_gid = st.st_gid;
	else if (stat("/dev/kvm", &st) == 0 && (st.st_mode & 0006) != 0006)
		fprintf(stderr,
			"shojid: /dev/kvm is not open to a group; jailed monitors (gid %u) may not "
			"reach it\n",
			(unsigned)d->jail_gid);
	jailuid_init(d);
}

/* --seat-user: a user name, or a uid. */
static int seat_user(struct daemon *d, const char *who, struct err *e)
{
	struct passwd *pw = getpwnam(who);
	char *end;
	unsigned long uid = strtoul(who, &end, 10);
	if (!pw && (!*who || *end || uid == 0 || uid >= 0x7fffffff))
		return err_set(e, "--seat-user '%s' is neither a user nor a uid", who);
	d->seat_uid = pw ? pw->pw_uid : (uid_t)uid;
	d->have_seat_user = true;
	return 0;
}

/* shoji-slirp comes with the monitor: beside the program it is (as the monitor finds it), unless
 * --slirp says where. */
static void slirp_path(struct daemon *d, const struct options *o)
{
	char real[PATHS_MAX];
	const char *vmm = realpath(d->vmm, real) ? real : d->vmm, *slash = strrchr(vmm, '/');
	if (o->slirp)
		snprintf(d->slirp, sizeof(d->slirp), "%s", o->slirp);
	else
		snprintf(d->slirp, sizeof(d->slirp), "%.*sshoji-slirp", slash ? (int)(slash - vmm + 1) : 0, vmm);
	if (access(d->slirp, X_OK) < 0)
		fprintf(stderr,
			"shojid: %s cannot run (%s): a slirp NIC whose user-mode NAT ends will not get another; "
			"install it beside the monitor or give its path with --slirp\n",
			d->slirp, strerror(errno));
}

static int setup(struct daemon *d, const struct options *o, struct err *e)
{
	char p[512];
	if (paths_init(&d->paths, o->state_dir, o->runtime_dir, e) < 0)
		return -1;
	d->vmm = o->vmm ? o->vmm : default_vmm();
	d->passt = o->passt ? o->passt : PASST_DEFAULT; /* checked at each start of a VM that needs it */
	slirp_path(d, o);
	d->usb_policy = o->usb_policy ? o->usb_policy : USBHOST_DEFAULT; /* read at each decision */
	if (access(d->vmm, X_OK) < 0)
		return err_errno(e, errno, "cannot run the monitor %s; give its path with --vmm", d->vmm);
	if (mkdirs(d->paths.state, 0755, e) < 0 || mkdirs(d->paths.runtime, 0755, e) < 0)
		return -1;
	paths_get(&d->paths, PATHS_VMS, NULL, p, sizeof(p), NULL);
	if (mkdirs(p, 0750, e) < 0)
		return -1;
	paths_get(&d->paths, PATHS_DAEMON_LOCK, NULL, p, sizeof(p), NULL);
	d->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0)
		return err_errno(e, errno, "cannot open %s", p);
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return err_set(e, "another shojid already serves %s; stop it first", d->paths.state);

	if (o->seat_user && seat_user(d, o->seat_user, e) < 0)
		return -1;
	snprintf(d->group, sizeof(d->group), "%s", o->group);
	struct group *g = getgrnam(o->group);
	d->have_group = g != NULL;
	d->group_gid = g ? g->gr_gid : (gid_t)-1;
	if (!g)
		fprintf(stderr,
			"shojid: group '%s' does not exist: only root may use shoji (create it "
			"with 'groupadd --system %s')\n",
			o->group, o->group);

	/* The seat may run as a user of the group (a desktop session): its directory is the one
	 * place under the runtime directory where the group may create anything. */
	paths_get(&d->paths, PATHS_SEAT_DIR, NULL, p, sizeof(p), NULL);
	if (mkdirs(p, 0700, e) < 0)
		return -1;
	if (g && geteuid() == 0 && (chown(p, 0, g->gr_gid) < 0 || chmod(p, 02770) < 0))
		return err_errno(e, errno, "cannot give %s to group '%s'", p, o->group);

	d->jail = !o->no_jail && geteuid() == 0;
	if (!o->no_jail && geteuid() != 0)
		fprintf(stderr, "shojid: not running as root: monitors run without a jail, as uid %u\n",
			(unsigned)geteuid());
	else if (d->jail)
		jail_identity(d, o);

	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (paths_get(&d->paths, PATHS_DAEMON_SOCKET, NULL, sa.sun_path, sizeof(sa.sun_path), e) < 0)
		return -1;
	unlink(sa.sun_path); /* we hold the lock: any socket there is stale */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		err_errno(e, errno, "cannot listen on %s", sa.sun_path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Anyone may connect; the daemon itself checks who the caller is (SO_PEERCRED) and answers
	 * "permission denied" to everyone but root and the group. */
	chmod(sa.sun_path, 0666);
	return client_serve(d, fd, e);
}

static void autostart_one(struct daemon *d, const char *name, void *arg)
{
	(void)arg;
	struct vmdef *def = malloc(sizeof(*def));
	enum proto_code code;
	struct err e;
	struct vm_entry *vm;
	if (def && vm_load_definition(d, name, def, &code, &e) == 0 && def->autostart &&
	    (vm = vm_find(d, name, true)) && !vm_active(vm) && vm_start(d, vm, NULL, &code, &e) < 0)
		fprintf(stderr, "shojid: autostart %s: %s\n", name, e.msg);
	free(def);
}

/* Starts the autostart VMs, once per boot of the host (the runtime directory is a tmpfs). */
static void autostart(struct daemon *d)
{
	char marker[PATHS_MAX + 32];
	snprintf(marker, sizeof(marker), "%s/autostart.done", d->paths.runtime);
	int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	close(fd);
	vm_each_defined(d, autostart_one, NULL);
}

enum source { FROM_KEEPER, FROM_JOB, FROM_USB, FROM_HOTPLUG };

static void loop(struct daemon *d, int hotplug)
{
	enum { API = 1 + DAEMON_MAX_CLIENTS, ROOM = API + DAEMON_MAX_VMS + DAEMON_MAX_JOBS + DAEMON_MAX_USB + 1 };
	struct pollfd fds[ROOM];
	void *who[ROOM];
	enum source from[ROOM];
	while (!quit) {
		client_serve_resumed(d);
		int api = (int)jsonl_server_poll_fds(&d->api, fds, NULL), n = api;
		bool busy = false;
		for (int i = 0; i < DAEMON_MAX_VMS; i++) {
			struct vm_entry *vm = &d->vms[i];
			if (!vm->used || !vm_active(vm))
				continue;
			busy |= vm->state == VM_STOPPING;
			if (vm->keeper_pidfd < 0)
				continue;
			fds[n] = (struct pollfd){.fd = vm->keeper_pidfd, .events = POLLIN};
			who[n] = vm;
			from[n++] = FROM_KEEPER;
		}
		for (int k = image_job_pollfds(d, fds + n, who + n, ROOM - n); k > 0; k--)
			from[n++] = FROM_JOB;
		for (int k = usbassign_pollfds(d, fds + n, who + n, ROOM - n); k > 0; k--)
			from[n++] = FROM_USB;
		busy |= usbassign_busy(d); /* an attach's step ends by time too */
		if (hotplug >= 0) {
			fds[n] = (struct pollfd){.fd = hotplug, .events = POLLIN};
			from[n++] = FROM_HOTPLUG;
		}
		int starting = vm_start_poll_ms(d);
		int r = poll(fds, (nfds_t)n, starting > 0 ? starting : busy ? 50 : 500);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0)
			jsonl_server_serve(&d->api, fds, (unsigned)api);
		for (int i = api; r > 0 && i < n; i++) {
			if (!fds[i].revents)
				continue;
			if (from[i] == FROM_KEEPER)
				vm_on_keeper_exit(d, who[i]);
			else if (from[i] == FROM_JOB)
				image_job_io(d, who[i]); /* a job ends only here: who[i] is still it */
			else if (from[i] == FROM_USB)
				usbassign_io(d, who[i]); /* a hold that ended since the poll is let be */
			else
				usbhotplug_io(d);
		}
		vm_tick(d);
		image_job_tick(d);
		usbassign_tick(d);
	}
}

int main(int argc, char **argv)
{
	struct options o;
	struct err e;
	static struct daemon d;
	if (parse_options(argc, argv, &o, &e) < 0) {
		fprintf(stderr, "shojid: %s\n", e.msg);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	umask(022);
	if (setup(&d, &o, &e) < 0) {
		fprintf(stderr, "shojid: %s\n", e.msg);
		return 1;
	}
	events_init(&d);
	cgroup_init(&d);
	vm_adopt_all(&d);
	jailuid_startup(&d);
	template_startup(&d);
	usbassign_recover(&d);
	autostart(&d);
	fprintf(stderr, "shojid: serving %s (state in %s)\n", d.paths.runtime, d.paths.state);
	loop(&d, usbhotplug_open());
	usbassign_release_all(&d, "shojid stopped"); /* its exporters end with it */
	jsonl_server_close(&d.api);
	fprintf(stderr, "shojid: exiting; running VMs keep running\n");
	return 0;
}

/* shoji-vmm: the per-VM monitor. Parses the command line, reads the kernel and initrd, then
 * creates, runs and tears down the VM, again after each guest reboot unless told to exit. The
 * exit status says how the guest ended (see usage()). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/log.h"
#include "../common/version.h"
#include "boot/acpi.h"
#include "boot/layout.h"
#include "console.h"
#include "control_server.h"
#include "disks.h"
#include "memstat.h"
#include "runloop.h"
#include "sandbox/jail.h"
#include "sandbox/syscall_filter.h"
#include "virtio/virtio_pci.h"
#include "vm.h"

enum exit_status {
	EXIT_POWEROFF = 0,
	EXIT_SETUP_ERROR = 1,
	EXIT_REBOOT = 2,
	EXIT_PANIC = 3,
	EXIT_TRIPLE_FAULT = 4,
	EXIT_KVM_ERROR = 5,
	EXIT_STOPPED = 6,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoji-vmm --kernel KERNEL [options]\n"
		"       shoji-vmm --firmware CODE,vars=FILE [options]\n"
		"Boots a Linux kernel, or a UEFI firmware that boots the disks, in a KVM virtual\n"
		"machine; the serial console is on stdin/stdout.\n"
		"\n"
		"  --kernel PATH        the guest kernel: an x86-64 bzImage (boot protocol 2.12+), or\n"
		"                       its ELF vmlinux, entered at startup_64 with no decompression\n"
		"                       in the guest (and so no KASLR)\n"
		"  --initrd PATH        an initial RAM disk\n"
		"  --cmdline STR        kernel command line (default \"console=ttyS0\")\n"
		"  --firmware CODE,vars=FILE\n"
		"                       boot through UEFI firmware instead of a kernel: CODE (such as\n"
		"                       /usr/share/OVMF/OVMF_CODE_4M.fd) is mapped read-only, FILE is\n"
		"                       the VM's own variable store (a copy of OVMF_VARS_4M.fd), kept\n"
		"                       across power-off\n"
		"  --memory MiB         guest RAM (default 512, at least %u)\n"
		"  --cpus N             vCPUs (default 1)\n"
		"  --on-reboot ACTION   'restart' the guest (default) or 'exit' when it reboots\n"
		"  --serial WHERE       'stdio' (default), 'none', 'file:PATH' (appended) or\n"
		"                       'socket:PATH' (a Unix socket, one client at a time)\n"
		"  --serial-log PATH    also append everything the guest writes to COM1 to PATH\n"
		"  --control-socket PATH\n"
		"                       serve the JSON control protocol (status, pause, resume,\n"
		"                       shutdown, stop, disk-snapshot) on this Unix socket\n"
		"  --jail-uid UID, --jail-gid GID\n"
		"                       run the VM as UID/GID in a mount namespace that shows only\n"
		"                       its own files (needs root to start)\n"
		"  --net-uid UID        run each slirp NIC's NAT (shoji-slirp) as UID (group UID),\n"
		"                       not as the jail's uid (needs root to start)\n"
		"  --no-seccomp         do not install the system call allow-list\n"
		"  --log-level LEVEL    error, warn (default), info or debug\n"
		"  --rng                add a virtio-rng device (entropy from the host's getrandom)\n"
		"  --disk PATH[,ro][,serial=ID][,format=raw|qcow2][,volatile=DIR]\n"
		"                       add a virtio-blk disk (up to %d); without format= the image\n"
		"                       is raw, and a file that looks like qcow2 is refused;\n"
		"                       volatile=DIR: PATH is only read, the guest's writes go to an\n"
		"                       unnamed overlay in DIR and vanish when the monitor ends\n"
		"  --console-socket PATH\n"
		"                       add a virtio-console (hvc0) served on this Unix socket\n"
		"  --net slirp[,mac=MAC][,fwd=tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT]...\n"
		"                       add a virtio-net NIC on the user-mode NAT: the guest is\n"
		"                       10.0.2.15/24, the host 10.0.2.2 (its loopback too), DNS 10.0.2.3\n"
		"  --net tap=IFNAME[,mac=MAC][,vhost=auto|on|off][,queues=N]\n"
		"                       add a virtio-net NIC on a TAP interface (up to %d NICs); its\n"
		"                       rings served by the kernel's vhost-net where /dev/vhost-net\n"
		"                       opens (auto, the default), or only so (on), or never (off);\n"
		"                       N queue pairs (default: one a vCPU) on a multiqueue TAP\n"
		"                       ('ip tuntap add IFNAME mode tap multi_queue'), else one\n"
		"  --vsock CID          add a virtio-vsock device (vhost-vsock); the guest's CID\n"
		"  --param KEY=VALUE    a guest parameter (up to %d): the kernel command line's\n"
		"                       shoji.KEY=VALUE, or with --firmware the fw_cfg file\n"
		"                       opt/org.shoji/KEY\n"
		"  --display socket:PATH[,size=WxH]\n"
		"                       add a virtio-gpu (2D, one scanout, preferred mode WxH,\n"
		"                       default 1024x768) and virtio-input keyboard, tablet and\n"
		"                       mouse, served to one seat at a time on this Unix socket\n"
		"  --stats              print exit counts and memory overhead when the VM ends\n"
		"  -h, --help           this text\n"
		"  --version            the version\n"
		"\n"
		"On a terminal, Ctrl-A x stops the VM and Ctrl-A Ctrl-A sends Ctrl-A.\n"
		"\n"
		"Exit status: 0 the guest powered off; 1 the VM could not be started; 2 the guest\n"
		"rebooted with --on-reboot exit; 3 the guest panicked; 4 triple fault; 5 KVM error;\n"
		"6 stopped from the host (signal, Ctrl-A x or the control socket).\n",
		LAYOUT_MIN_MEM_MIB, VM_MAX_DISKS, VM_MAX_NICS, GUEST_PARAM_MAX);
}

struct options {
	const char *kernel, *initrd, *cmdline, *serial;
	const char *firmware, *firmware_vars; /* firmware boot when set */
	uint64_t mem_mib;
	unsigned ncpus;
	int reboot_exits;
	int stats;
	int rng;
	const char *console_socket;
	struct vm_disk_config disks[VM_MAX_DISKS];
	unsigned ndisks;
	struct net_config nics[VM_MAX_NICS];
	unsigned nnics;
	uint64_t vsock_cid;
	struct guest_param params[GUEST_PARAM_MAX];
	unsigned nparams;
	const char *display;
	uint32_t display_w, display_h;
	const char *control_socket, *serial_log;
	uint64_t jail_uid, jail_gid; /* 0: no jail */
	uint64_t net_uid;            /* shoji-slirp's uid; 0: the jail's */
	int no_seccomp;
};

/* PATH[,ro][,serial=ID][,format=raw|qcow2]: the options are cut off the string in place. */
static int parse_disk(char *arg, struct options *o, struct err *e)
{
	if (o->ndisks == VM_MAX_DISKS)
		return err_set(e, "at most %d --disk options", VM_MAX_DISKS);
	struct vm_disk_config *d = &o->disks[o->ndisks];
	*d = (struct vm_disk_config){.path = arg};
	char *opt = strchr(arg, ',');
	if (opt)
		*opt++ = '\0';
	while (opt && *opt) {
		char *next = strchr(opt, ',');
		if (next)
			*next++ = '\0';
		if (strcmp(opt, "ro") == 0)
			d->read_only = true;
		else if (strncmp(opt, "serial=", 7) == 0 && strlen(opt + 7) <= VIRTIO_BLK_SERIAL_LEN)
			d->serial = opt + 7;
		else if (strncmp(opt, "format=", 7) == 0 && block_format_parse(opt + 7, &d->format) == 0)
			;
		else if (strncmp(opt, "volatile=", 9) == 0 && opt[9])
			d->volatile_dir = opt + 9;
		else
			return err_set(e,
				       "--disk %s: unknown or bad option '%s' (use ro, serial=ID with ID "
				       "up to %d characters, format=raw|qcow2 or volatile=DIR)",
				       arg, opt, VIRTIO_BLK_SERIAL_LEN);
		opt = next;
	}
	if (!*arg)
		return err_set(e, "--disk needs a path to a disk image");
	if (d->read_only && d->volatile_dir)
		return err_set(e,
			       "--disk %s: ro and volatile= do not go together (a volatile disk is written, "
			       "its image never)",
			       arg);
	o->ndisks++;
	return 0;
}

static int parse_uint(const char *opt, const char *s, uint64_t max, uint64_t *out, struct err *e)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v > max)
		return err_set(e, "%s needs a whole number from 1 to %" PRIu64 ", not '%s'", opt, max, s);
	*out = v;
	return 0;
}

static uint64_t host_memory_mib(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[256];
	uint64_t total = 0, kib;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %" SCNu64 " kB", &kib) == 1 ||
		    sscanf(line, "SwapTotal: %" SCNu64 " kB", &kib) == 1)
			total += kib;
	}
	fclose(f);
	return total / 1024;
}

/* CODE,vars=FILE (cut in place). */
static int parse_firmware(char *arg, struct options *o, struct err *e)
{
	char *opt = strchr(arg, ',');
	if (!*arg || !opt || strncmp(opt + 1, "vars=", 5) || !opt[6] || strchr(opt + 1, ','))
		return err_set(e,
			       "--firmware takes CODE,vars=FILE (the firmware's code image and the VM's own "
			       "copy of its variable store), not '%s'",
			       arg);
	*opt = '\0';
	o->firmware = arg;
	o->firmware_vars = opt + 6;
	return 0;
}

/* shoji-vmm's options: each has its letter for getopt_long. */
static const struct option longopts[] = {
	{"kernel", required_argument, NULL, 'k'},
	{"initrd", required_argument, NULL, 'i'},
	{"cmdline", required_argument, NULL, 'c'},
	{"memory", required_argument, NULL, 'm'},
	{"cpus", required_argument, NULL, 'n'},
	{"on-reboot", required_argument, NULL, 'r'},
	{"serial", required_argument, NULL, 's'},
	{"log-level", required_argument, NULL, 'l'},
	{"stats", no_argument, NULL, 'S'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'v'},
	{"rng", no_argument, NULL, 'R'},
	{"disk", required_argument, NULL, 'd'},
	{"console-socket", required_argument, NULL, 'C'},
	{"net", required_argument, NULL, 'N'},
	{"vsock", required_argument, NULL, 'V'},
	{"param", required_argument, NULL, 'P'},
	{"control-socket", required_argument, NULL, 'Q'},
	{"serial-log", required_argument, NULL, 'L'},
	{"jail-uid", required_argument, NULL, 'U'},
	{"jail-gid", required_argument, NULL, 'G'},
	{"net-uid", required_argument, NULL, 'W'},
	{"no-seccomp", no_argument, NULL, 'X'},
	{"display", required_argument, NULL, 'D'},
	{"firmware", required_argument, NULL, 'F'},
	{NULL, 0, NULL, 0},
};

/* The options whose value is a number: --jail-uid, --jail-gid, --net-uid, --vsock, --memory,
 * --cpus. */
static int parse_number_option(int c, const char *arg, struct options *o, struct err *e)
{
	uint64_t v = 0;
	switch (c) {
	case 'U':
		if (parse_uint("--jail-uid", arg, UINT32_MAX - 1, &o->jail_uid, e) < 0 || !o->jail_uid)
			return err_set(e, "--jail-uid needs a user id other than 0, not '%s'", arg);
		return 0;
	case 'G':
		if (parse_uint("--jail-gid", arg, UINT32_MAX - 1, &o->jail_gid, e) < 0 || !o->jail_gid)
			return err_set(e, "--jail-gid needs a group id other than 0, not '%s'", arg);
		return 0;
	case 'W':
		if (parse_uint("--net-uid", arg, UINT32_MAX - 1, &o->net_uid, e) < 0 || !o->net_uid)
			return err_set(e, "--net-uid needs a user id other than 0, not '%s'", arg);
		return 0;
	case 'V':
		if (parse_uint("--vsock", arg, 0xfffffffeull, &v, e) < 0 || v < 3)
			return err_set(e, "--vsock needs a guest CID from 3 to 4294967294 (0-2 are reserved), not '%s'",
				       arg);
		o->vsock_cid = v;
		return 0;
	case 'm':
		if (parse_uint("--memory", arg, SHOJI_MAX_MEMORY_MIB, &v, e) < 0)
			return -1;
		o->mem_mib = v;
		return 0;
	case 'n':
		if (parse_uint("--cpus", arg, ACPI_MAX_CPUS, &v, e) < 0 || v == 0)
			return err_set(e, "--cpus needs a whole number from 1 to %d, not '%s'", ACPI_MAX_CPUS, arg);
		o->ncpus = (unsigned)v;
		return 0;
	default: abort(); /* parse_options routes only the letters above here */
	}
}

/* The options that add a device or describe one: --firmware, --display, --disk, --net, --param
 * (their values are cut in place). */
static int parse_device_option(int c, char *arg, struct options *o, struct err *e)
{
	struct err why; /* --param's, said after the option's name */
	switch (c) {
	case 'F': return parse_firmware(arg, o, e);
	case 'D': return display_parse_option(arg, &o->display, &o->display_w, &o->display_h, e);
	case 'd': return parse_disk(arg, o, e);
	case 'N':
		if (o->nnics == VM_MAX_NICS)
			return err_set(e, "at most %d --net options", VM_MAX_NICS);
		if (net_config_parse(&o->nics[o->nnics], arg, o->nnics, e) < 0)
			return -1;
		o->nnics++;
		return 0;
	case 'P':
		if (o->nparams == GUEST_PARAM_MAX)
			return err_set(e, "at most %d --param options", GUEST_PARAM_MAX);
		if (guest_param_parse(arg, &o->params[o->nparams], &why) < 0)
			return err_set(e, "--param %.*s", (int)(sizeof(why.msg) - 16), why.msg);
		o->nparams++;
		return 0;
	default: abort(); /* parse_options routes only the letters above here */
	}
}

/* --on-reboot and --log-level. */
static int parse_choice_option(int c, const char *arg, struct options *o, struct err *e)
{
	if (c != 'r' && c != 'l')
		abort(); /* parse_options routes only these here */
	if (c == 'r') {
		if (strcmp(arg, "restart") && strcmp(arg, "exit"))
			return err_set(e, "--on-reboot takes 'restart' or 'exit', not '%s'", arg);
		o->reboot_exits = strcmp(arg, "exit") == 0;
		return 0;
	}
	enum log_level level;
	if (log_level_parse(arg, &level) < 0)
		return err_set(e, "--log-level takes error, warn, info or debug, not '%s'", arg);
	log_set_level(level);
	return 0;
}

/* What the options say together: a kernel or a firmware, memory the host has, a serial output
 * it knows, a whole jail. */
static int check_options(const struct options *o, struct err *e)
{
	if (!o->kernel && !o->firmware)
		return err_set(e,
			       "no kernel given: use --kernel PATH to a bzImage or vmlinux, or --firmware (see --help)");
	if (o->kernel && o->firmware)
		return err_set(e, "--kernel and --firmware exclude each other: the firmware boots from the disks");
	if (o->mem_mib < LAYOUT_MIN_MEM_MIB)
		return err_set(e, "--memory %" PRIu64 " MiB is too small; a guest needs at least %u MiB", o->mem_mib,
			       LAYOUT_MIN_MEM_MIB);
	uint64_t host = host_memory_mib();
	if (host && o->mem_mib > host)
		return err_set(e,
			       "--memory %" PRIu64 " MiB is more than this host has (%" PRIu64
			       " MiB of RAM and swap); use a smaller --memory",
			       o->mem_mib, host);
	if (strcmp(o->serial, "stdio") && strcmp(o->serial, "none") && strncmp(o->serial, "file:", 5) &&
	    strncmp(o->serial, "socket:", 7))
		return err_set(e, "--serial takes 'stdio', 'none', 'file:PATH' or 'socket:PATH', not '%s'", o->serial);
	if (!o->jail_uid != !o->jail_gid)
		return err_set(e, "--jail-uid and --jail-gid go together; give both");
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o, struct err *e)
{
	*o = (struct options){.cmdline = "console=ttyS0", .serial = "stdio", .mem_mib = 512, .ncpus = 1};
	int c, r = 0;
	opterr = 0;
	while (r == 0 && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'c': o->cmdline = optarg; break;
		case 's': o->serial = optarg; break;
		case 'S': o->stats = 1; break;
		case 'R': o->rng = 1; break;
		case 'C': o->console_socket = optarg; break;
		case 'Q': o->control_socket = optarg; break;
		case 'L': o->serial_log = optarg; break;
		case 'X': o->no_seccomp = 1; break;
		case 'U':
		case 'G':
		case 'W':
		case 'V':
		case 'm':
		case 'n': r = parse_number_option(c, optarg, o, e); break;
		case 'F':
		case 'D':
		case 'd':
		case 'N':
		case 'P': r = parse_device_option(c, optarg, o, e); break;
		case 'r':
		case 'l': r = parse_choice_option(c, optarg, o, e); break;
		case 'h': usage(stdout); exit(0);
		case 'v': version_print("shoji-vmm"); exit(0);
		case ':': return err_set(e, "%s needs a value (see --help)", argv[optind - 1]);
		default: return err_set(e, "unknown option '%s' (see --help)", argv[optind - 1]);
		}
	}
	if (r < 0)
		return -1;
	if (optind < argc)
		return err_set(e, "unexpected argument '%s' (see --help)", argv[optind]);
	return check_options(o, e);
}

/* Where the UART's output goes: *fd is stdout, -1 (discarded) or the opened file. */
static int open_serial_out(const struct options *o, int *fd, struct err *e)
{
	*fd = -1;
	if (strcmp(o->serial, "stdio") == 0)
		*fd = STDOUT_FILENO;
	else if (strncmp(o->serial, "file:", 5) == 0 &&
		 (*fd = open(o->serial + 5, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		return err_errno(e, errno, "cannot open serial output file '%s'", o->serial + 5);
	return 0;
}

static void print_stats(const struct vm *vm)
{
	struct vcpu_stats sum = {0};
	for (unsigned i = 0; i < vm->nvcpus_created; i++) {
		sum.exits += vm->vcpus[i].stats.exits;
		sum.io += vm->vcpus[i].stats.io;
		sum.mmio += vm->vcpus[i].stats.mmio;
	}
	uint64_t rss, guest;
	uint64_t overhead = vm_overhead_bytes(vm, &rss, &guest);
	fprintf(stderr,
		"shoji-vmm: stats: user-space exits %" PRIu64 " (port I/O %" PRIu64 ", MMIO %" PRIu64
		"), unclaimed accesses %" PRIu64 ", RSS %" PRIu64 " KiB, guest RAM touched %" PRIu64
		" KiB, monitor overhead %" PRIu64 " KiB\n",
		sum.exits, sum.io, sum.mmio, vm->pio.unknown_count + vm->mmio.unknown_count, rss >> 10, guest >> 10,
		overhead >> 10);
	struct memstat ms;
	struct err e;
	char line[512];
	if (memstat_self((uintptr_t)vm->mem.host, vm->mem.size, &ms, &e) == 0) {
		memstat_format(&ms, line, sizeof(line));
		fprintf(stderr, "shoji-vmm: stats: overhead by kind: %s\n", line);
	} else {
		fprintf(stderr, "shoji-vmm: stats: no overhead by kind: %s\n", e.msg);
	}
	if (vm->cfg.display) {
		display_server_stats(vm->cfg.display, line, sizeof(line));
		fprintf(stderr, "shoji-vmm: stats: %s\n", line);
	}
	for (unsigned i = 0; i < vm->ndevices; i++) {
		const struct vm_device *d = &vm->devices[i];
		if (!d->transport || !d->transport->vdev)
			continue;
		virtio_queue_stats(d->transport->vdev, line, sizeof(line));
		if (line[0])
			fprintf(stderr, "shoji-vmm: stats: %s %u: %s\n", d->kind, i, line);
	}
}

/* Whether a NIC reaches the host's network from the monitor itself (a TAP); links to other
 * VMs, passt and slirp NICs reach it through other processes' sockets, so a VM with none of
 * those gets an empty network namespace. */
static bool needs_host_net(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nnics; i++)
		if (net_kind_needs_host_net(cfg->nics[i].kind))
			return true;
	return false;
}

/* Each slirp NIC's shoji-slirp, started before the monitor confines itself (net/slirp.c), as
 * --net-uid, else the identity the monitor will take; never as root (nobody instead, so its
 * forwards cannot take ports below 1024). */
static int start_helpers(const struct options *o, struct vm_config *cfg, struct err *e)
{
	struct net_identity as = o->net_uid
		? (struct net_identity){.uid = (uid_t)o->net_uid, .gid = (gid_t)o->net_uid}
		: (struct net_identity){.uid = (uid_t)o->jail_uid, .gid = (gid_t)o->jail_gid};
	if (!as.uid && geteuid() == 0) /* never root, whatever the monitor runs as */
		as = (struct net_identity){.uid = NET_NOBODY, .gid = NET_NOBODY};
	char helper[PATH_MAX];
	bool found = false;
	for (unsigned i = 0; i < cfg->nnics; i++) {
		struct net_config *c = &cfg->nics[i];
		if (c->kind != NET_SLIRP)
			continue;
		if (!found && net_slirp_helper(helper, sizeof(helper), e) < 0)
			return -1;
		found = true;
		if (net_slirp_spawn(c, helper, as.uid ? &as : NULL, e) < 0)
			return -1;
		log_info("net: NIC %u's user-mode NAT is shoji-slirp, pid %d", i, (int)c->helper_pid);
	}
	return 0;
}

/* Shows the VM's files in the jail and points the configuration, and the paths of the sockets
 * made already (removed at exit), at their real paths, the ones the jail shows. */
static int enter_jail(const struct options *o, struct vm_config *cfg, struct jail *j, const char **ctl,
		      const char **ser, struct err *e)
{
	*j = (struct jail){.uid = (uid_t)o->jail_uid, .gid = (gid_t)o->jail_gid, .own_net = !needs_host_net(cfg)};
	const char *kvm = getenv("SHOJI_KVM_DEVICE");
	if (kvm && *kvm && (jail_add_file(j, &kvm, true, false, e) < 0 || setenv("SHOJI_KVM_DEVICE", kvm, 1) < 0))
		return -1;
	if ((cfg->kernel_path && jail_add_file(j, &cfg->kernel_path, false, false, e) < 0) ||
	    (cfg->initrd_path && jail_add_file(j, &cfg->initrd_path, false, false, e) < 0) ||
	    (cfg->firmware_code && jail_add_file(j, &cfg->firmware_code, false, false, e) < 0) ||
	    (cfg->firmware_vars && jail_add_file(j, &cfg->firmware_vars, true, false, e) < 0) ||
	    (cfg->console_socket && jail_add_file(j, &cfg->console_socket, true, true, e) < 0))
		return -1;
	if (disks_jail(j, cfg->disks, cfg->ndisks, e) < 0)
		return -1;
	if ((*ctl && jail_add_file(j, ctl, true, true, e) < 0) || (*ser && jail_add_file(j, ser, true, true, e) < 0) ||
	    (cfg->display && jail_add_file(j, &cfg->display->path, true, true, e) < 0))
		return -1;
	return jail_enter(j, e);
}

/* The display channel's socket, made before the jail so that it can be where the jail user
 * could not create it; the VM's devices serve it. */
static int open_display(struct display_server *ds, const struct options *o, struct vm_config *cfg, struct err *e)
{
	if (display_server_open(ds, o->display, o->display_w, o->display_h, e) < 0)
		return -1;
	cfg->display = ds;
	return 0;
}

static void ignore_signal(int sig)
{
	(void)sig;
}

/* The system-call allow-list, its arguments fitted to this VM's devices. */
static int install_filter(const struct vm_config *cfg, struct err *e)
{
	struct syscall_needs needs = {.vsock = cfg->vsock_cid != 0, .vhost = cfg->vsock_cid != 0};
	for (unsigned i = 0; i < cfg->nnics; i++) {
		needs.tap |= cfg->nics[i].kind == NET_TAP;
		needs.vhost |= cfg->nics[i].kind == NET_TAP && cfg->nics[i].vhost != VHOST_OFF;
	}
	return syscall_filter_install(&needs, e);
}

static int status_of(enum machine_exit reason)
{
	switch (reason) {
	case MACHINE_POWEROFF: return EXIT_POWEROFF;
	case MACHINE_REBOOT: return EXIT_REBOOT;
	case MACHINE_PANIC: return EXIT_PANIC;
	case MACHINE_TRIPLE_FAULT: return EXIT_TRIPLE_FAULT;
	case MACHINE_INTERNAL_ERROR: return EXIT_KVM_ERROR;
	default: return EXIT_STOPPED;
	}
}

/* The machine's configuration from the command line's options (its disks are o's, opened later). */
static void config_of(struct options *o, struct vm_config *cfg)
{
	*cfg = (struct vm_config){
		.kernel_path = o->kernel,
		.firmware_code = o->firmware,
		.firmware_vars = o->firmware_vars,
		.initrd_path = o->initrd,
		.cmdline = o->cmdline,
		.mem_size = o->mem_mib << 20,
		.ncpus = o->ncpus,
		.rng = o->rng,
		.disks = o->disks,
		.ndisks = o->ndisks,
		.console_socket = o->console_socket,
	};
	memcpy(cfg->nics, o->nics, sizeof(cfg->nics));
	cfg->nnics = o->nnics;
	cfg->vsock_cid = o->vsock_cid;
	cfg->params = o->params;
	cfg->nparams = o->nparams;
}

/* SIGINT, SIGTERM and SIGHUP blocked, to be read from the signalfd returned (the run loop's
 * stop), and SIGCHLD (a shoji-slirp ended: the run loop says how); vCPU kicks blocked here,
 * taken only by vCPU threads. */
static int stop_signals_open(void)
{
	signal(SIGPIPE, SIG_IGN);
	vcpu_install_kick_handler();
	sigset_t stop_signals;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGHUP);
	sigaddset(&stop_signals, SIGCHLD);
	sigaddset(&stop_signals, VCPU_KICK_SIGNAL); /* only vCPU threads take kicks */
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
	sigdelset(&stop_signals, VCPU_KICK_SIGNAL);
	/* As the first process of a PID namespace (shojid's keeper makes one) the monitor is sent
	 * only the signals it has a handler for: a handler that does nothing, since they are
	 * blocked and read from the signalfd. */
	struct sigaction stop_act = {.sa_handler = ignore_signal};
	sigaction(SIGINT, &stop_act, NULL);
	sigaction(SIGTERM, &stop_act, NULL);
	sigaction(SIGHUP, &stop_act, NULL);
	return signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* What a boot changed that outlives it: a slirp NIC's shoji-slirp, replaced by shojid's
 * (net-link; the old socket closed then) or reaped. The next boot's NIC takes a duplicate of
 * the socket kept here. */
static void keep_nats(struct vm_config *cfg, const struct vm *vm)
{
	for (unsigned i = 0; i < cfg->nnics; i++) {
		cfg->nics[i].helper_fd = vm->cfg.nics[i].helper_fd;
		cfg->nics[i].helper_pid = vm->cfg.nics[i].helper_pid;
	}
}

/* Boots the machine, again after each guest reboot unless --reboot-exits, until it ends; the
 * monitor's exit status. */
static int run_machine(const struct options *o, struct vm_config *cfg, struct console *con, int signal_fd,
		       struct control_server *ctl)
{
	static struct vm vm;
	struct err e = {{0}};
	for (unsigned boots = 1;; boots++) {
		if (vm_create(&vm, cfg, &e) < 0 || vm_start(&vm, &e) < 0) {
			console_close(con);
			fprintf(stderr, "shoji-vmm: %s\n", e.msg);
			vm_destroy(&vm);
			return EXIT_SETUP_ERROR;
		}
		enum machine_exit reason = runloop_run(&vm, con, signal_fd, ctl);
		keep_nats(cfg, &vm);
		if (o->stats)
			print_stats(&vm);
		int status = status_of(reason);
		if (reason == MACHINE_REBOOT && !o->reboot_exits) {
			log_info("%s; restarting it (boot %u)", vm.exit_why, boots + 1);
			vm_destroy(&vm);
			continue;
		}
		console_close(con);
		if (reason == MACHINE_POWEROFF)
			log_info("%s", vm.exit_why);
		else
			fprintf(stderr, "shoji-vmm: %s\n", vm.exit_why);
		vm_destroy(&vm);
		return status;
	}
}

int main(int argc, char **argv)
{
	log_set_prefix("shoji-vmm");
	struct err e = {{0}};
	struct options o;
	if (parse_options(argc, argv, &o, &e) < 0) {
		fprintf(stderr, "shoji-vmm: %s\n", e.msg);
		return EXIT_SETUP_ERROR;
	}
	struct vm_config cfg;
	config_of(&o, &cfg);
	struct console con;
	console_open(&con, strcmp(o.serial, "stdio") == 0 ? STDIN_FILENO : -1);
	static struct control_server ctl; /* path NULL until opened */
	static struct display_server display = {.listen_fd = -1, .client_fd = -1, .memfd = -1};
	struct jail jail = {0};
	int status = EXIT_SETUP_ERROR;
	/* Before any thread (the disks' workers): every thread blocks the signals the run loop reads,
	 * or one that does not would take, and lose, a stop or a shoji-slirp's end. */
	int signal_fd = stop_signals_open();
	if (open_serial_out(&o, &cfg.serial_out_fd, &e) < 0 ||
	    console_open_output(&con, cfg.serial_out_fd, o.serial_log,
				strncmp(o.serial, "socket:", 7) ? NULL : o.serial + 7, &e) < 0 ||
	    control_server_open(&ctl, o.control_socket, &e) < 0 ||
	    (o.display && open_display(&display, &o, &cfg, &e) < 0) || start_helpers(&o, &cfg, &e) < 0 ||
	    (o.jail_uid && enter_jail(&o, &cfg, &jail, &ctl.js.path, &con.socket_path, &e) < 0) ||
	    disks_open(cfg.disks, cfg.ndisks, &e) < 0 || (!o.no_seccomp && install_filter(&cfg, &e) < 0)) {
		console_close(&con);
		fprintf(stderr, "shoji-vmm: %s\n", e.msg);
	} else {
		if (!o.no_seccomp)
			log_info("seccomp: %u system calls allowed, any other kills the monitor",
				 syscall_filter_count());
		cfg.serial_output = console_output;
		cfg.serial_output_opaque = &con;
		status = run_machine(&o, &cfg, &con, signal_fd, &ctl);
	}
	if (signal_fd >= 0)
		close(signal_fd);
	console_close_output(&con);
	control_server_close(&ctl);
	disks_close(cfg.disks, cfg.ndisks);
	display_server_close(&display);
	jail_free(&jail);
	if (cfg.serial_out_fd > STDOUT_FILENO)
		close(cfg.serial_out_fd);
	return status;
}

/* cgroup: a cgroup v2 per running VM, holding its keeper and monitor, with memory.max (the
 * guest's RAM and an overhead budget) and pids.max. The VMs' cgroups are children of one
 * parent: under shojid's own cgroup when that is a delegated systemd service (the cgroup has
 * the trusted.delegate attribute; shojid then moves itself into its leaf "daemon" first, since a
 * cgroup that passes controllers to children may hold no processes), else /sys/fs/cgroup/shoji.
 * The keeper joins the VM's cgroup before it forks the monitor (keeper.c, through the
 * cgroup.procs descriptor made here), so the monitor is never outside it. The cgroup is removed
 * when the VM ends (anything left in it is killed through cgroup.kill first). Without cgroup2
 * at /sys/fs/cgroup, or where shojid may not write there, VMs run without one and the daemon
 * says so once, at its start. All of it runs on shojid's one thread. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "daemon.h"

#define CGROUP_FS "/sys/fs/cgroup"

/* A sanitizer build's monitor needs far more than a release one (ASan's shadow memory of what
 * it touches, its quarantine of freed blocks). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

uint64_t cgroup_memory_max_mib(const struct vmdef *def)
{
	uint64_t mib = (uint64_t)def->memory_mib + CGROUP_OVERHEAD_MIB + (def->display ? CGROUP_DISPLAY_MIB : 0) +
		(uint64_t)CGROUP_DISK_MIB * def->ndisks;
#ifdef SANITIZED
	mib += 1024 + def->memory_mib / 2;
#endif
	return mib;
}

/* A NIC's threads: its I/O thread and one more (its shoji-slirp or passt, a process in the VM's
 * cgroup), or for a TAP a vhost-net worker a
 * queue pair (counted in the cgroup's pids from Linux 6.4). */
static unsigned nic_threads(const struct vmdef *def, const struct vmdef_nic *n)
{
	if (n->type != VMDEF_NIC_TAP)
		return 2;
	unsigned pairs = n->queues ? n->queues : def->cpus < SHOJI_MAX_NIC_QUEUES ? def->cpus : SHOJI_MAX_NIC_QUEUES;
	return 1 + pairs;
}

unsigned cgroup_pids_max(const struct vmdef *def)
{
	unsigned n = CGROUP_PIDS_BASE + def->cpus + (2 + SHOJI_DISK_WORKERS) * def->ndisks;
	for (unsigned i = 0; i < def->nnics; i++)
		n += nic_threads(def, &def->nics[i]);
	return n;
}

static int write_file(int dir, const char *name, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int write_file(int dir, const char *name, struct err *e, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	int fd = openat(dir, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "cannot open %s", name);
	int r = write(fd, buf, (size_t)n) == n ? 0 : err_errno(e, errno, "cannot write '%s' to %s", buf, name);
	close(fd);
	return r;
}

/* Enables the memory and pids controllers for dir's children. */
static int enable_controllers(const char *dir, struct err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "cannot open %s", dir);
	struct err sub;
	int r = write_file(fd, "cgroup.subtree_control", &sub, "+memory +pids");
	close(fd);
	return r < 0 ? err_set(e, "%s: %s", dir, sub.msg) : 0;
}

/* shojid's own cgroup, relative to CGROUP_FS ("" for the root). */
static int own_cgroup(char *out, size_t size, struct err *e)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	int r = err_set(e, "/proc/self/cgroup names no cgroup2 group");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::/", 4) == 0) {
			line[strcspn(line, "\n")] = '\0';
			int n = snprintf(out, size, "%s", strcmp(line + 4, "") ? line + 3 : "");
			r = n >= 0 && (size_t)n < size ? 0 : err_set(e, "shojid's cgroup path is too long");
		}
	}
	if (f)
		fclose(f);
	return r;
}

static bool delegated(const char *dir)
{
	char v[8] = "";
	ssize_t n = getxattr(dir, "trusted.delegate", v, sizeof(v) - 1);
	return n > 0 && v[0] == '1';
}

/* Under a delegated service: shojid into BASE/daemon, controllers on for BASE's children. */
static int setup_delegated(struct daemon *d, const char *own, struct err *e)
{
	char leaf[sizeof(d->cgroup_base) + 16];
	snprintf(leaf, sizeof(leaf), "%s/daemon", d->cgroup_base);
	if (strcmp(own, leaf + strlen(CGROUP_FS)) != 0) {
		if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
			return err_errno(e, errno, "cannot create %s", leaf);
		int fd = open(leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int r = fd < 0 ? err_errno(e, errno, "cannot open %s", leaf)
			       : write_file(fd, "cgroup.procs", e, "%d", (int)getpid());
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return -1;
	}
	return enable_controllers(d->cgroup_base, e);
}

static int setup(struct daemon *d, struct err *e)
{
	struct statfs sf;
	char own[PATHS_MAX * 2];
	if (statfs(CGROUP_FS, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)
		return err_set(e, "%s is not a cgroup2 file system (a cgroup v1 or hybrid host)", CGROUP_FS);
	if (own_cgroup(own, sizeof(own), e) < 0)
		return -1;
	char mine[sizeof(own) + 32], parent[sizeof(mine)];
	snprintf(mine, sizeof(mine), "%s%s", CGROUP_FS, own);
	snprintf(parent, sizeof(parent), "%s", mine);
	*strrchr(parent, '/') = '\0';
	const char *base = own[0] && delegated(mine)                                       ? mine
		: own[0] && strcmp(strrchr(own, '/'), "/daemon") == 0 && delegated(parent) ? parent
											   : NULL;
	if (base && strlen(base) >= sizeof(d->cgroup_base))
		return err_set(e, "shojid's cgroup path %.60s... is too long", base);
	if (base) {
		snprintf(d->cgroup_base, sizeof(d->cgroup_base), "%s", base);
		return setup_delegated(d, own, e);
	}
	snprintf(d->cgroup_base, sizeof(d->cgroup_base), "%s/shoji", CGROUP_FS);
	if (enable_controllers(CGROUP_FS, e) < 0)
		return -1;
	if (mkdir(d->cgroup_base, 0755) < 0 && errno != EEXIST)
		return err_errno(e, errno, "cannot create %s", d->cgroup_base);
	return enable_controllers(d->cgroup_base, e);
}

void cgroup_init(struct daemon *d)
{
	struct err e;
	d->cgroups = setup(d, &e) == 0;
	if (!d->cgroups)
		fprintf(stderr, "shojid: VMs run without a cgroup of their own (no memory or pids limit): %s\n", e.msg);
	else
		fprintf(stderr, "shojid: each running VM gets the cgroup %s/vm-NAME\n", d->cgroup_base);
}

/* True while processes are in the cgroup dir (its cgroup.events says populated 1). */
static bool populated(int dir)
{
	int fd = openat(dir, "cgroup.events", O_RDONLY | O_CLOEXEC);
	char buf[256];
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "populated 1") != NULL;
}

static int limit(int dir, const char *path, const struct vmdef *def, struct err *e)
{
	struct err sub;
	if (populated(dir))
		return err_set(e, "the cgroup %s still holds processes (see its cgroup.procs); end them", path);
	if (write_file(dir, "memory.max", &sub, "%" PRIu64, cgroup_memory_max_mib(def) << 20) < 0 ||
	    write_file(dir, "pids.max", &sub, "%u", cgroup_pids_max(def)) < 0)
		return err_set(e, "cgroup %s: %s", path, sub.msg);
	return 0;
}

int cgroup_vm_create(struct daemon *d, struct vm_entry *vm, const struct vmdef *def, int *procs, struct err *e)
{
	char path[sizeof(vm->cgroup)];
	*procs = -1;
	vm->cgroup[0] = '\0';
	if (!d->cgroups)
		return 0;
	snprintf(path, sizeof(path), "%s/vm-%s", d->cgroup_base, vm->name);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) /* one left by a VM that ended unwatched: reused */
		return err_errno(e, errno, "VM '%s': cannot create its cgroup %s", vm->name, path);
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return err_errno(e, errno, "VM '%s': cannot open its cgroup %s", vm->name, path);
	int r = limit(dir, path, def, e);
	if (r == 0 && (*procs = openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0)
		r = err_errno(e, errno, "cannot open %s/cgroup.procs", path);
	close(dir);
	if (r < 0)
		rmdir(path);
	else
		snprintf(vm->cgroup, sizeof(vm->cgroup), "%s", path);
	return r;
}

void cgroup_vm_adopt(struct vm_entry *vm, pid_t keeper)
{
	char p[64], line[4096], want[VMDEF_NAME_MAX + 8];
	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)keeper);
	snprintf(want, sizeof(want), "/vm-%s", vm->name);
	FILE *f = fopen(p, "re");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		size_t n = strlen(line), w = strlen(want);
		if (strncmp(line, "0::/", 4) == 0 && n > w && strcmp(line + n - w, want) == 0 &&
		    snprintf(vm->cgroup, sizeof(vm->cgroup), "%s%s", CGROUP_FS, line + 3) >= (int)sizeof(vm->cgroup))
			vm->cgroup[0] = '\0'; /* too long to be one of ours */
	}
	if (f)
		fclose(f);
}

void cgroup_vm_remove(struct daemon *d, struct vm_entry *vm)
{
	if (!vm->cgroup[0] && d->cgroups) /* ended before this daemon knew it: its usual place */
		snprintf(vm->cgroup, sizeof(vm->cgroup), "%s/vm-%s", d->cgroup_base, vm->name);
	if (!vm->cgroup[0] || vm_active(vm))
		return;
	if (rmdir(vm->cgroup) == 0 || errno == ENOENT) {
		vm->cgroup[0] = '\0';
		return;
	}
	if (errno != EBUSY) {
		fprintf(stderr, "shojid: cannot remove the cgroup %s: %s\n", vm->cgroup, strerror(errno));
		vm->cgroup[0] = '\0';
		return;
	}
	int dir = open(vm->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* stragglers: the tick retries */
	if (dir >= 0) {
		write_file(dir, "cgroup.kill", NULL, "1");
		close(dir);
	}
}

void cgroup_tick(struct daemon *d)
{
	for (int i = 0; d->cgroups && i < DAEMON_MAX_VMS; i++)
		if (d->vms[i].used && d->vms[i].cgroup[0] && !vm_active(&d->vms[i]))
			cgroup_vm_remove(d, &d->vms[i]);
}

/* The first line of dir/name (cgroup files say their size is 0: read, do not stat). */
static void read_line(const char *dir, const char *name, char *out, size_t size)
{
	char p[PATHS_MAX * 3];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, out, size - 1);
	if (fd >= 0)
		close(fd);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

void cgroup_describe(const struct vm_entry *vm, struct json_object *o)
{
	char v[64];
	if (!vm->cgroup[0] || !vm_active(vm))
		return;
	json_object_object_add(o, "cgroup", json_object_new_string(vm->cgroup));
	read_line(vm->cgroup, "memory.max", v, sizeof(v));
	json_object_object_add(o, "cgroup_memory_max", json_object_new_string(v));
	read_line(vm->cgroup, "pids.max", v, sizeof(v));
	json_object_object_add(o, "cgroup_pids_max", json_object_new_string(v));
}

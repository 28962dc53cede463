/* imagejob: image work on files a VM, its jail uid or a group member controls (snapshot
 * overlays, merges and commits, the definition's own image, a template import) is never done by
 * root. It runs in a child process that holds only a pipe back to shojid, has become the VM's
 * own jail uid and the jail gid with no other group (a template check: nobody; a start's path
 * check: the VM's owner with its groups) and no capability, no_new_privs, dies with
 * shojid, and runs under a system-call allow-list (file I/O by path and descriptor, memory; no
 * socket, exec, ptrace, kill or namespace). What it can reach is what that uid can: the VM's
 * own files, never root's.
 *
 * The request that started it is parked: shojid's loop polls the job's pipe with the clients
 * and keepers and answers other callers meanwhile. The child reports each step it completed
 * ('+'), then its result ('=' and text) or its error ('!' and text); shojid applies each step
 * to its record as it is reported, and answers the parked caller when the child has gone. A
 * job past IMAGE_JOB_TIMEOUT_MS is killed and answered with a clear error. Main thread. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/file.h"
#include "daemon.h"

#define IMAGE_JOB_TIMEOUT_MS (10 * 60 * 1000)

struct image_job {
	pid_t pid;
	int fd; /* the pipe's reading end */
	long long deadline_ms;
	struct image_job_spec spec;
	char key[VMDEF_NAME_MAX + 16];
	char who[VMDEF_NAME_MAX + 16];
	struct client *waiter; /* NULL once the caller has gone */
	unsigned steps_done;
	bool in_msg;  /* past the step marks: what comes is the result or the error */
	bool failed;  /* the child said '!', or shojid stopped it */
	bool stopped; /* shojid stopped it: msg says why, nothing more the child says counts */
	char msg[sizeof(((struct err *)0)->msg)];
	size_t len;
};

#ifdef SHOJI_TEST_HOOKS
/* Test builds: a job waits, before its work, for a byte on the FIFO SHOJI_TEST_JOB_HOLD names
 * where it exists, so that a test can see shojid while a job is under way. */
static void hold_for_test(void)
{
	const char *p = getenv("SHOJI_TEST_JOB_HOLD");
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
	char b;
	if (fd >= 0 && read(fd, &b, 1) >= 0)
		close(fd);
}
#else
static void hold_for_test(void) {}
#endif

static void child(int out, const struct image_job_spec *s, bool drop)
{
	if (dup2(out, 3) < 0)
		_exit(1);
	file_close_from(4);
	struct err e = {""};
	int r = confine_child("image job", drop ? &s->id : NULL, s->groups, s->ngroups, NULL, 0, &e);
	if (r == 0)
		hold_for_test();
	for (unsigned i = 0; r == 0 && i < s->nsteps; i++) {
		e.msg[0] = '\0';
		r = s->op->work(s->ctx, i, &e); /* the last step may leave its result in e.msg */
		if (r == 0 && write(3, "+", 1) != 1)
			_exit(1);
	}
	char mark = r < 0 ? '!' : '=';
	(void)!write(3, &mark, 1);
	(void)!write(3, e.msg, strnlen(e.msg, sizeof(e.msg)));
	_exit(r < 0 ? 1 : 0);
}

/* The job's way to the VM's files, which shojid reaches by the names it recorded (and the
 * images' headers hold): STATE/vms, STATE/vms/NAME and its disks/ are root's, searchable (not
 * listable, not writable) by the jail gid that every jail uid has; what is in them is either
 * root's (0640, 0600) or the VM's own uid's (0600). */
static int open_the_way(struct daemon *d, const char *vm, struct err *e)
{
	static const enum paths_file dirs[] = {PATHS_VMS, PATHS_VM_DIR, PATHS_VM_DISKS};
	char p[512];
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (paths_get(&d->paths, dirs[i], vm, p, sizeof(p), NULL) < 0)
			return err_set(e, "VM '%s': a path too long", vm);
		mkdir(p, 0710);
		if (fchownat(AT_FDCWD, p, 0, d->jail_gid, AT_SYMLINK_NOFOLLOW) < 0 || chmod(p, 0710) < 0)
			return err_errno(e, errno, "cannot open %s to the jail gid", p);
	}
	return 0;
}

static int free_slot(const struct daemon *d)
{
	for (int i = 0; i < DAEMON_MAX_JOBS; i++)
		if (!d->jobs[i])
			return i;
	return -1;
}

int image_job_start(struct daemon *d, struct client *c, const struct image_job_spec *spec, struct err *e)
{
	int slot = free_slot(d);
	if (slot < 0)
		return err_set(e,
			       "%d image jobs are running, the most shoji runs at once; try again when "
			       "one has ended",
			       DAEMON_MAX_JOBS);
	struct image_job *j = calloc(1, sizeof(*j));
	if (!j)
		return err_set(e, "out of memory");
	j->spec = *spec;
	snprintf(j->key, sizeof(j->key), "%s", spec->key);
	snprintf(j->who, sizeof(j->who), spec->vm ? "VM '%s'" : "%s", spec->vm ? spec->vm : spec->key);
	if (spec->vm && d->jail &&
	    (vm_jail_identity(d, spec->vm, &j->spec.id, e) < 0 || open_the_way(d, spec->vm, e) < 0)) {
		free(j);
		return -1;
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(j);
		return err_errno(e, errno, "image job: pipe");
	}
	j->pid = fork();
	if (j->pid == 0)
		child(p[1], &j->spec, (d->jail || geteuid() == 0) && !spec->stay);
	close(p[1]);
	if (j->pid < 0) {
		close(p[0]);
		free(j);
		return err_errno(e, errno, "image job: cannot fork");
	}
	j->fd = p[0];
	j->deadline_ms = daemon_now_ms() + IMAGE_JOB_TIMEOUT_MS;
	j->waiter = c;
	d->jobs[slot] = j;
	return 0;
}

const struct image_op *image_job_busy(const struct daemon *d, const char *key)
{
	for (int i = 0; i < DAEMON_MAX_JOBS; i++)
		if (d->jobs[i] && strcmp(d->jobs[i]->key, key) == 0)
			return d->jobs[i]->spec.op;
	return NULL;
}

int image_job_pollfds(struct daemon *d, struct pollfd *fds, void **who, int room)
{
	int n = 0;
	for (int i = 0; i < DAEMON_MAX_JOBS && n < room; i++)
		if (d->jobs[i]) {
			fds[n] = (struct pollfd){.fd = d->jobs[i]->fd, .events = POLLIN};
			who[n++] = d->jobs[i];
		}
	return n;
}

/* The job is over: the child reaped, the record's last word and the parked caller answered. */
static void end(struct daemon *d, struct image_job *j)
{
	close(j->fd);
	kill(j->pid, SIGKILL); /* it closed its pipe: whatever it does now is not work */
	int status;
	while (waitpid(j->pid, &status, 0) < 0 && errno == EINTR)
		;
	/* Done only when it said so, exited so, and reported every step (a job that skips steps
	 * and claims success is not believed). */
	bool ok = !j->failed && WIFEXITED(status) && WEXITSTATUS(status) == 0 && j->in_msg &&
		j->steps_done == j->spec.nsteps;
	if (!ok && !j->failed && j->in_msg && j->steps_done != j->spec.nsteps)
		snprintf(j->msg, sizeof(j->msg), "%s: %s reported %u of its %u steps done", j->who, j->spec.op->what,
			 j->steps_done, j->spec.nsteps);
	else if (!ok && !j->stopped && (!j->len || !j->failed))
		snprintf(j->msg, sizeof(j->msg), "%s: %s ended by %s", j->who, j->spec.op->what,
			 WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "an error");
	for (int i = 0; i < DAEMON_MAX_JOBS; i++)
		if (d->jobs[i] == j)
			d->jobs[i] = NULL;
	enum proto_code code = PROTO_ERROR;
	struct err e = {""};
	struct json_object *reply = NULL;
	enum image_end how = j->spec.op->finish(d, j->spec.ctx, j->waiter, ok, j->msg, &reply, &code, &e);
	if (how == IMAGE_FAILED) {
		char *line = proto_error_reply(code, e.msg[0] ? e.msg : j->msg);
		reply = line && j->waiter ? json_tokener_parse(line) : NULL;
		if (!j->waiter) /* nobody to tell (an autostart, a caller gone): the log says it */
			fprintf(stderr, "shojid: %s\n", e.msg[0] ? e.msg : j->msg);
		free(line);
	}
	if (how != IMAGE_PASSED_ON && j->waiter)
		client_resume(d, j->waiter, reply);
	else if (reply)
		json_object_put(reply);
	free(j);
}

/* shojid stops the job (its record could not follow, or its time is up) with msg as the answer. */
static void stop_job(struct image_job *j, const char *msg)
{
	kill(j->pid, SIGKILL);
	j->failed = j->stopped = true;
	snprintf(j->msg, sizeof(j->msg), "%s", msg);
	j->len = strlen(j->msg);
}

/* One byte from the child: a step completed, or the start of its last word. */
static void take(struct daemon *d, struct image_job *j, char ch)
{
	if (j->in_msg) {
		if (j->len + 1 < sizeof(j->msg))
			j->msg[j->len++] = ch;
		return;
	}
	if (ch == '=' || ch == '!') {
		j->in_msg = true;
		j->failed = ch == '!';
		return;
	}
	struct err e = {""};
	if (ch != '+' || j->steps_done >= j->spec.nsteps)
		stop_job(j, "image job: its report was not understood");
	else if (j->spec.op->step_done && j->spec.op->step_done(d, j->spec.ctx, j->steps_done, &e) < 0)
		stop_job(j, e.msg);
	j->steps_done++;
}

void image_job_io(struct daemon *d, void *job)
{
	struct image_job *j = job;
	char buf[256];
	ssize_t n = read(j->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	for (ssize_t i = 0; i < n && !j->stopped; i++)
		take(d, j, buf[i]);
	if (n <= 0) {
		j->msg[j->len] = '\0';
		end(d, j);
	}
}

void image_job_tick(struct daemon *d)
{
	long long now = daemon_now_ms();
	for (int i = 0; i < DAEMON_MAX_JOBS; i++) {
		struct image_job *j = d->jobs[i];
		if (j && now > j->deadline_ms && !j->stopped) {
			char msg[sizeof(j->msg)];
			snprintf(msg, sizeof(msg), "%s: %s took longer than %d s and was stopped", j->who,
				 j->spec.op->what, IMAGE_JOB_TIMEOUT_MS / 1000);
			stop_job(j, msg);
		}
	}
}

void image_job_forget(struct daemon *d, const struct client *c)
{
	for (int i = 0; i < DAEMON_MAX_JOBS; i++)
		if (d->jobs[i] && d->jobs[i]->waiter == c)
			d->jobs[i]->waiter = NULL;
}

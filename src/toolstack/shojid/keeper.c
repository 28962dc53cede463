/* keeper: each running VM's monitor has a keeper, a small process forked from shojid in a
 * session of its own. The keeper holds the VM's lock, starts shoji-vmm as its child, waits for
 * it and writes how it ended (exit status or signal) to the VM's exit record, then exits. So the
 * monitor outlives shojid (restarts, kill -9), its end is known exactly even when the daemon
 * that watches it is not its parent, and the lock (held by both) is free exactly when the VM
 * is gone, even if the keeper alone were killed. The lock file holds "KEEPER_PID MONITOR_PID". */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/log.h"
#include "../../common/logfile.h"
#include "../statefile.h"
#include "daemon.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#include <sys/syscall.h>

static void write_exit(const char *exit_file, pid_t monitor, int status)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "monitor_pid", json_object_new_int(monitor));
	if (WIFSIGNALED(status))
		json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(status)));
	else
		json_object_object_add(o, "status", json_object_new_int(WEXITSTATUS(status)));
	json_object_object_add(o, "ended", json_object_new_double((double)time(NULL)));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	statefile_write(exit_file, s, strlen(s), false, NULL);
	json_object_put(o);
}

/* In the keeper: fds 3 lock, 4 pid pipe, 5 monitor log. Never returns. */
static void keeper_main(const struct keeper_start *ks)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	signal(SIGHUP, SIG_IGN);            /* the session has no terminal; be sure anyway */
	prctl(PR_SET_NAME, "shoji-keeper"); /* not "shojid": it is not the daemon */
	/* A jailed monitor sees no process but itself (its jail mounts the new namespace's /proc)
	 * and can signal none; the keeper sees it by its pid here. */
	pid_t mon = ks->pid_ns ? (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL) : fork();
	if (mon == 0) {
		int null = open("/dev/null", O_RDONLY);
		dup2(null, 0);
		dup2(5, 1);
		dup2(5, 2);
		file_close_from(4); /* fd 3, the lock, stays: it is free only once keeper and monitor are gone */
		signal(SIGHUP, SIG_DFL);
		execv(ks->argv[0], ks->argv);
		fprintf(stderr, "shojid: cannot run %s: %s\n", ks->argv[0], strerror(errno));
		_exit(1);
	}
	int report = mon;
	if (write(4, &report, sizeof(report)) != sizeof(report))
		report = -1;
	/* The lock file names keeper and monitor: the truth for a daemon that adopts the VM. */
	char pids[32];
	int n = snprintf(pids, sizeof(pids), "%d %d\n", (int)getpid(), mon);
	if (mon > 0 && (ftruncate(3, 0) < 0 || pwrite(3, pids, (size_t)n, 0) != n))
		fprintf(stderr, "shoji-keeper: cannot record the pids in the lock file\n");
	close(4);
	close(5);
	if (mon < 0)
		_exit(1);
	int status;
	while (waitpid(mon, &status, 0) < 0) {
		if (errno != EINTR)
			_exit(1);
	}
	write_exit(ks->exit_file, mon, status);
	_exit(0);
}

int keeper_spawn(const struct keeper_start *ks, pid_t *keeper, pid_t *monitor, struct err *e)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_errno(e, errno, "pipe");
	logfile_rotate_by_name(ks->monitor_log, LOG_FILE_CAP); /* earlier runs' diagnostics */
	int log = open(ks->monitor_log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (log < 0) {
		int saved = errno;
		close(p[0]);
		close(p[1]);
		return err_errno(e, saved, "cannot open %s", ks->monitor_log);
	}
	pid_t k = fork();
	if (k == 0) {
		/* Into the VM's cgroup first: the monitor it forks starts there. */
		if (ks->cgroup_procs_fd >= 0 && write(ks->cgroup_procs_fd, "0", 1) != 1) {
			dprintf(log, "shoji-keeper: cannot join the VM's cgroup: %s\n", strerror(errno));
			_exit(1);
		}
		/* Move the three descriptors to 3, 4, 5 (through high numbers: they may overlap). */
		int a = fcntl(ks->lock_fd, F_DUPFD, 100), b = fcntl(p[1], F_DUPFD, 100), c = fcntl(log, F_DUPFD, 100);
		if (a < 0 || b < 0 || c < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0 || dup2(c, 5) < 0)
			_exit(1);
		file_close_from(6);
		setsid();
		keeper_main(ks);
	}
	int saved = errno;
	close(p[1]);
	close(log);
	if (k < 0) {
		close(p[0]);
		return err_errno(e, saved, "cannot fork the keeper");
	}
	int mon = -1;
	ssize_t n;
	do
		n = read(p[0], &mon, sizeof(mon));
	while (n < 0 && errno == EINTR);
	close(p[0]);
	*keeper = k;
	if (n != sizeof(mon) || mon <= 0)
		return err_set(e, "the keeper could not start the monitor");
	*monitor = mon;
	return 0;
}

int keeper_read_exit(const char *exit_file, int *status_out, int *signal_out)
{
	char *text;
	size_t len;
	int en;
	if (statefile_read(exit_file, 4096, &text, &len, &en, NULL) < 0)
		return -1;
	struct json_object *o = json_tokener_parse(text), *v;
	free(text);
	int r = -1;
	*status_out = *signal_out = 0;
	if (o && json_object_object_get_ex(o, "signal", &v)) {
		*signal_out = json_object_get_int(v);
		r = 0;
	} else if (o && json_object_object_get_ex(o, "status", &v)) {
		*status_out = json_object_get_int(v);
		r = 0;
	}
	json_object_put(o);
	return r;
}

/* The system-call filters' arguments, and shoji-slirp's file rule. In a child process that
 * installs the monitor's filter, what a monitor needs still works (threads, Unix sockets) and
 * what it must never do kills it with SIGSYS: a namespace-making clone, an internet socket
 * (whatever its NICs: a user-mode NIC's sockets are shoji-slirp's), an ioctl outside the list
 * (FIONREAD, TIOCSTI). Under shoji-slirp's filter, internet sockets and reading the resolver's
 * file work; a Unix or netlink socket, a file opened for writing and an ioctl outside its list
 * fail with EPERM (a library's surprise must not end the guest's network); bind, a namespace,
 * fork and exec kill it; and (Landlock) a host file anyone may read elsewhere cannot be
 * opened. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sanitizers.h"
#include "slirp/slirp_filter.h"
#include "vmm/sandbox/syscall_filter.h"

static void *thread_fn(void *arg)
{
	return arg;
}

/* Runs fn in a child under the filter; returns the child's wait status. */
static int under_filter(const struct syscall_needs *needs, int (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct err e;
		if (syscall_filter_install(needs, &e) < 0)
			_exit(100);
		_exit(fn());
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static bool killed_by_filter(int status)
{
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

static int allowed_things(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, thread_fn, NULL) != 0 || pthread_join(t, NULL) != 0)
		return 1; /* clone3 answered ENOSYS, clone with thread flags allowed */
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), sv[2];
	if (s < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return 2;
	return 0;
}

static int fionread(void)
{
	int n;
	return ioctl(0, FIONREAD, &n) >= 0 || errno ? 0 : 7;
}

static int new_user_namespace(void)
{
	return (int)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
}
static int inet_socket(void)
{
	return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 7;
}
/* Allowed or not by the filter: a host without vsock answers EAFNOSUPPORT (not killed). */
static int vsock_socket(void)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	return s >= 0 || errno == EAFNOSUPPORT ? 0 : 7;
}
static int netlink_socket(void)
{
	return socket(AF_NETLINK, SOCK_RAW, 0) >= 0 ? 0 : 7;
}
static int tiocsti(void)
{
	char c = 'x';
	return ioctl(0, TIOCSTI, &c) == 0 ? 0 : 7;
}
static int fork_process(void)
{
	return (int)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0) >= 0 ? 0 : 7;
}

static bool exited_0(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_what_the_monitor_needs_works(void **state)
{
	(void)state;
	struct syscall_needs none = {0};
	assert_true(exited_0(under_filter(&none, allowed_things)));
	struct syscall_needs vsock = {.vsock = true}; /* the agent link */
	assert_true(exited_0(under_filter(&vsock, vsock_socket)));
}

static void test_forbidden_arguments_kill(void **state)
{
	(void)state;
	struct syscall_needs none = {0}, all = {.tap = true, .vsock = true, .vhost = true};
	assert_true(killed_by_filter(under_filter(&all, new_user_namespace)));
	assert_true(killed_by_filter(under_filter(&all, inet_socket)));
	assert_true(killed_by_filter(under_filter(&none, vsock_socket)));
	assert_true(killed_by_filter(under_filter(&all, netlink_socket)));
	assert_true(killed_by_filter(under_filter(&all, tiocsti)));
	assert_true(killed_by_filter(under_filter(&all, fionread)));
	if (!SHOJI_SANITIZED) /* the sanitizer's run-time clones a tracer process at exit */
		assert_true(killed_by_filter(under_filter(&all, fork_process)));
}

/* Runs fn in a child under shoji-slirp's filter; returns the child's wait status. */
static int under_slirp_filter(int (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct err e;
		if (slirp_filter_enter(&e) < 0)
			_exit(100);
		_exit(fn());
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static int what_slirp_does(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), u = socket(AF_INET6, SOCK_DGRAM, 0), n;
	if (s < 0 || u < 0)
		return 1;
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(0x7f000001)};
	if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS && errno != ECONNREFUSED)
		return 2;
	if (ioctl(s, FIONREAD, &n) < 0 && errno != EINVAL)
		return 3;
	int f = open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC);
	if (f < 0 && errno != ENOENT)
		return 4;
	return 0;
}

static char host_file[] = "/tmp/shoji-slirp-landlock-XXXXXX";
/* A host file anyone may read, outside the resolver's directory: Landlock refuses it. */
static int read_host_file(void)
{
	return open(host_file, O_RDONLY | O_CLOEXEC) < 0 && errno == EACCES ? 0 : 7;
}
/* Refused without harm to the process: EPERM, the exit status 0; 7 when it was let through. */
static int unix_socket_refused(void)
{
	return socket(AF_UNIX, SOCK_STREAM, 0) < 0 && errno == EPERM ? 0 : 7;
}
static int netlink_socket_refused(void)
{
	return socket(AF_NETLINK, SOCK_RAW, 0) < 0 && errno == EPERM ? 0 : 7;
}
static int open_for_writing_refused(void)
{
	return open("/tmp/shoji-slirp-filter-test", O_WRONLY | O_CREAT, 0600) < 0 && errno == EPERM ? 0 : 7;
}
static int tiocsti_refused(void)
{
	char c = 'x';
	return ioctl(0, TIOCSTI, &c) < 0 && errno == EPERM ? 0 : 7;
}
/* What glib asks of its standard error before it writes there: refused, not fatal. */
static int isatty_answered(void)
{
	return isatty(2) == 0 && errno == EPERM ? 0 : 7;
}
static int bind_a_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	return s >= 0 && bind(s, (struct sockaddr *)&at, sizeof(at)) == 0 ? 0 : 7;
}
static int exec_a_shell(void)
{
	char *argv[] = {"/bin/sh", "-c", "true", NULL};
	execv(argv[0], argv);
	return 7;
}

static void test_slirp_filter(void **state)
{
	(void)state;
	assert_true(exited_0(under_slirp_filter(what_slirp_does)));
	assert_true(exited_0(under_slirp_filter(unix_socket_refused)));
	assert_true(exited_0(under_slirp_filter(netlink_socket_refused)));
	assert_true(exited_0(under_slirp_filter(open_for_writing_refused)));
	assert_true(exited_0(under_slirp_filter(tiocsti_refused)));
	assert_true(exited_0(under_slirp_filter(isatty_answered)));
	assert_true(killed_by_filter(under_slirp_filter(bind_a_port)));
	assert_true(killed_by_filter(under_slirp_filter(exec_a_shell)));
	if (!SHOJI_SANITIZED) { /* the sanitizer's run-time clones a tracer at exit: clone is allowed there */
		assert_true(killed_by_filter(under_slirp_filter(new_user_namespace)));
		assert_true(killed_by_filter(under_slirp_filter(fork_process)));
	}
}

static void test_slirp_landlock(void **state)
{
	(void)state;
	if (syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* LANDLOCK_CREATE_RULESET_VERSION */) < 0) {
		printf("SKIP: this kernel has no Landlock: shoji-slirp's file rule is not in force here\n");
		skip();
	}
	int fd = mkstemp(host_file);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	assert_true(exited_0(under_slirp_filter(read_host_file)));
	assert_true(exited_0(under_slirp_filter(what_slirp_does))); /* the resolver's file, still */
	unlink(host_file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_what_the_monitor_needs_works),
		cmocka_unit_test(test_forbidden_arguments_kill),
		cmocka_unit_test(test_slirp_filter),
		cmocka_unit_test(test_slirp_landlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

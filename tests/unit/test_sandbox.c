/* The system-call filter's arguments: in a child process that installs the monitor's filter,
 * what a monitor needs still works (threads, Unix sockets, a KVM-style ioctl answered by the
 * kernel) and what it must never do kills it with SIGSYS: a namespace-making clone, an IPv4
 * socket in a VM without a user-mode NIC, an ioctl outside the list (TIOCSTI). */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sanitizers.h"
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
	int n;
	if (ioctl(s, FIONREAD, &n) < 0 && errno != EINVAL && errno != ENOTTY)
		return 3; /* not killed: the request is allowed with a user-mode NIC */
	return 0;
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

static void test_what_the_monitor_needs_works(void **state)
{
	(void)state;
	struct syscall_needs slirp = {.inet = true};
	int st = under_filter(&slirp, allowed_things);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	st = under_filter(&slirp, inet_socket);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	struct syscall_needs vsock = {.vsock = true}; /* the agent link */
	st = under_filter(&vsock, vsock_socket);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_forbidden_arguments_kill(void **state)
{
	(void)state;
	struct syscall_needs none = {0}, slirp = {.inet = true};
	assert_true(killed_by_filter(under_filter(&slirp, new_user_namespace)));
	assert_true(killed_by_filter(under_filter(&none, inet_socket)));
	assert_true(killed_by_filter(under_filter(&slirp, vsock_socket)));
	assert_true(killed_by_filter(under_filter(&slirp, netlink_socket)));
	assert_true(killed_by_filter(under_filter(&slirp, tiocsti)));
	if (!SHOJI_SANITIZED) /* the sanitizer's run-time clones a tracer process at exit */
		assert_true(killed_by_filter(under_filter(&slirp, fork_process)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_what_the_monitor_needs_works),
		cmocka_unit_test(test_forbidden_arguments_kill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

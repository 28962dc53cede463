/* test_slirp: a slirp NIC against shoji-slirp, the real program (its path in SHOJI_SLIRP),
 * started as the monitor starts it (net_slirp_spawn): it is confined (seccomp, no_new_privs)
 * before it reads a frame; the guest's DHCP discover brings its offer into the guest's receive
 * buffer; when it ends, the NIC's link goes down; a forward on a port already taken is a
 * start-up error that names the port and the fix; a guest's hostile frames (an IPv6 ping out,
 * which once killed it, and frames cut short) leave it alive and serving. */
#include "unit.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usernet_fixture.h"

static const char *helper(void)
{
	const char *h = getenv("SHOJI_SLIRP");
	assert_non_null(h);
	return h;
}

/* /proc/PID/status's line that starts with key, its value. */
static int status_field(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	int v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atoi(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

/* The helper's end, reaped by net_slirp_reap (as the monitor's run loop does on SIGCHLD): what it
 * logs, read from stderr (a file meanwhile), holds want. */
static void reaped_says(struct net_config *c, const char *want)
{
	char said[512] = "";
	FILE *f = tmpfile();
	int fd = f ? fileno(f) : -1, saved = dup(STDERR_FILENO);
	assert_true(fd >= 0 && saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	for (int i = 0; i < 500 && c->helper_pid > 0; i++) {
		net_slirp_reap(c, 0);
		if (c->helper_pid > 0)
			usleep(10000);
	}
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_true(pread(fd, said, sizeof(said) - 1, 0) > 0);
	fclose(f);
	assert_int_equal(c->helper_pid, 0);
	assert_contains(said, "NIC 0's user-mode NAT (shoji-slirp, pid ");
	assert_contains(said, want);
}

static void dhcp_through_shoji_slirp(void **state)
{
	(void)state;
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	assert_int_equal(net_config_parse(&c, "slirp,mac=52:54:00:aa:bb:cc", 0, &e), 0);
	assert_int_equal(net_slirp_spawn(&c, helper(), NULL, &e), 0);
	assert_true(c.helper_pid > 0);
	/* confined before it read a frame: seccomp's filter mode, no_new_privs */
	assert_int_equal(status_field(c.helper_pid, "Seccomp:"), 2);
	assert_int_equal(status_field(c.helper_pid, "NoNewPrivs:"), 1);
	usernet_nic_up(&v, &n, &c);
	assert_true(n.link_up);
	assert_true(usernet_dhcp_offered(&v, &n));

	kill(c.helper_pid, SIGKILL); /* the helper ends: the link goes down, and the log says how */
	reaped_says(&c, ") was killed by signal 9 (Killed)");
	bool up = true;
	uint64_t rx, tx;
	for (int i = 0; i < 50 && up; i++) {
		struct pollfd p = {.fd = n.backend.fd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0) {
			pthread_mutex_lock(&n.vdev.lock);
			n.vdev.ops->fd_ready(&n.vdev, 0);
			pthread_mutex_unlock(&n.vdev.lock);
		}
		virtio_net_state(&n, &up, &rx, &tx);
	}
	assert_false(up);
	virtio_net_destroy(&n);
	close(c.helper_fd);
	vfx_destroy(&v);
}

/* The one's-complement sum of n bytes (n even), folded. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* An ICMPv6 echo request from the guest (fec0::5054:ff:feaa:bbcc) to 2001:db8::1, through
 * slirp's router MAC: libslirp 4.7 answers it with a g_critical ("external icmpv6 not
 * supported yet"), which glib's own writer printed after asking isatty(2): a call the
 * helper's first filter killed it for, a guest's ping taking its network down. */
static size_t icmp6_echo_out(uint8_t *f)
{
	static const uint8_t router[6] = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};
	static const uint8_t src[16] = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0x00, 0xff, 0xfe, 0xaa, 0xbb, 0xcc};
	static const uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const uint8_t echo[16] = {128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g', 'd', 'a', 't', 'a'};
	memset(f, 0, 14 + 40 + sizeof(echo));
	memcpy(f, router, 6);
	memcpy(f + 6, usernet_mac, 6);
	f[12] = 0x86, f[13] = 0xdd;
	uint8_t *ip = f + 14, *icmp = ip + 40;
	ip[0] = 0x60, ip[5] = sizeof(echo), ip[6] = 58, ip[7] = 64;
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	memcpy(icmp, echo, sizeof(echo));
	uint32_t sum = sum16(ip + 8, 32, sizeof(echo) + 58); /* pseudo-header: addresses, length, next header */
	sum = ~sum16(icmp, sizeof(echo), sum) & 0xffff;
	icmp[2] = (uint8_t)(sum >> 8), icmp[3] = (uint8_t)sum;
	return 14 + 40 + sizeof(echo);
}

static void hostile_frames_leave_it_serving(void **state)
{
	(void)state;
	struct vfx v;
	struct virtio_net n;
	struct net_config c;
	struct err e;
	uint8_t f[128] = {0};
	assert_int_equal(net_config_parse(&c, "slirp,mac=52:54:00:aa:bb:cc", 0, &e), 0);
	assert_int_equal(net_slirp_spawn(&c, helper(), NULL, &e), 0);
	size_t len = icmp6_echo_out(f);
	assert_int_equal(send(c.helper_fd, f, len, 0), (ssize_t)len);
	assert_int_equal(send(c.helper_fd, f, 10, 0), 10); /* shorter than an Ethernet header */
	assert_int_equal(send(c.helper_fd, f, 14, 0), 14); /* a header and nothing after it */
	usleep(300 * 1000);
	assert_int_equal(waitpid(c.helper_pid, NULL, WNOHANG), 0); /* alive */
	usernet_nic_up(&v, &n, &c);
	assert_true(usernet_dhcp_offered(&v, &n)); /* and serving */
	virtio_net_destroy(&n);
	kill(c.helper_pid, SIGKILL);
	waitpid(c.helper_pid, NULL, 0);
	close(c.helper_fd);
	vfx_destroy(&v);
}

static void slirp_forward_taken(void **state)
{
	(void)state;
	struct net_config c;
	struct err e;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in at = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(at);
	assert_int_equal(bind(s, (struct sockaddr *)&at, sizeof(at)), 0);
	assert_int_equal(listen(s, 1), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&at, &len), 0);
	char spec[96];
	snprintf(spec, sizeof(spec), "slirp,fwd=tcp:%u:22", ntohs(at.sin_port));
	assert_int_equal(net_config_parse(&c, spec, 0, &e), 0);
	assert_int_equal(net_slirp_spawn(&c, helper(), NULL, &e), -1);
	assert_contains(e.msg, "did not start");
	char port[16];
	snprintf(port, sizeof(port), ":%u", ntohs(at.sin_port));
	assert_contains(e.msg, port);
	assert_contains(e.msg, "pick another host port");
	assert_int_equal(c.helper_fd, -1);
	close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dhcp_through_shoji_slirp),
		cmocka_unit_test(slirp_forward_taken),
		cmocka_unit_test(hostile_frames_leave_it_serving),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* agent_ops: what each checked host message makes the agent do, and the guest info it reports
 * (see agent.h). Values the host sends are bounded again here: a wall clock between 2020 and
 * 2200, a display from 1x1 to 16384x16384, a clipboard of at most clip_max bytes of text
 * (agent_text_ok). What the clipboard command prints is held to the same rule before it goes
 * to the host, which would drop an agent that sends anything else. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../common/control_proto.h"
#include "agent.h"

#define TIME_MIN_NS    (1577836800ull * 1000000000ull) /* 2020-01-01 */
#define TIME_MAX_NS    (7258118400ull * 1000000000ull) /* 2200-01-01 */
#define RESIZE_MAX     16384u
#define CMD_TIMEOUT_MS 3000
/* A clipboard command's time: within the host's patience, so that a slow one is answered with
 * a failure rather than not in time. */
#define CLIP_TIMEOUT_MS (CONTROL_CLIPBOARD_MS - 500)

enum { ACK_DONE = 0, ACK_FAILED = 1, ACK_UNSUPPORTED = 2 };

uint32_t agent_caps(const struct agent_config *c)
{
	uint32_t caps = AGENT_CAP_INFO | AGENT_CAP_POWER | AGENT_CAP_TIME;
	if (c->resize)
		caps |= AGENT_CAP_RESIZE;
	if (c->clip_get && c->clip_set)
		caps |= AGENT_CAP_CLIPBOARD;
	return caps;
}

/* Appends "key=value\n" with value made printable ASCII and cut to the protocol's limit. */
static void put(char *buf, uint32_t size, uint32_t *at, const char *key, const char *value)
{
	char clean[AGENT_INFO_VALUE_MAX + 1];
	size_t n = 0;
	for (; value[n] && n < AGENT_INFO_VALUE_MAX; n++)
		clean[n] = value[n] >= 0x20 && value[n] <= 0x7e ? value[n] : '?';
	clean[n] = 0;
	int w = snprintf(buf + *at, size - *at, "%s=%s\n", key, clean);
	if (w > 0 && (uint32_t)w < size - *at)
		*at += (uint32_t)w;
	else
		buf[*at] = 0; /* no room: the line is left out whole */
}

/* PRETTY_NAME from os-release, or "unknown". */
static void os_name(char *out, size_t size)
{
	snprintf(out, size, "unknown");
	FILE *f = fopen("/etc/os-release", "r");
	if (!f)
		f = fopen("/usr/lib/os-release", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "PRETTY_NAME=", 12))
			continue;
		char *v = line + 12;
		v[strcspn(v, "\n")] = 0;
		size_t n = strlen(v);
		if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
			v[n - 1] = 0;
			v++;
		}
		snprintf(out, size, "%.*s", AGENT_INFO_VALUE_MAX, v);
		break;
	}
	fclose(f);
}

/* "eth0 10.0.2.15/24 fe80::.../64,..." for every interface but loopback. */
static void addresses(char *out, size_t size)
{
	struct ifaddrs *list, *a;
	size_t at = 0;
	out[0] = 0;
	if (getifaddrs(&list) < 0)
		return;
	for (a = list; a; a = a->ifa_next) {
		if (!a->ifa_addr || (a->ifa_flags & IFF_LOOPBACK))
			continue;
		int fam = a->ifa_addr->sa_family;
		if (fam != AF_INET && fam != AF_INET6)
			continue;
		char ip[INET6_ADDRSTRLEN];
		const void *src = fam == AF_INET ? (const void *)&((struct sockaddr_in *)a->ifa_addr)->sin_addr
						 : (const void *)&((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
		if (!inet_ntop(fam, src, ip, sizeof(ip)))
			continue;
		int w = snprintf(out + at, size - at, "%s%s=%s", at ? " " : "", a->ifa_name, ip);
		if (w < 0 || (size_t)w >= size - at) {
			out[at] = 0;
			break;
		}
		at += (size_t)w;
	}
	freeifaddrs(list);
}

uint32_t agent_info_text(char *buf, uint32_t size)
{
	char v[AGENT_INFO_VALUE_MAX + 1];
	uint32_t at = 0;
	struct utsname u;
	buf[0] = 0;
	os_name(v, sizeof(v));
	put(buf, size, &at, "os", v);
	if (uname(&u) == 0) {
		put(buf, size, &at, "kernel", u.release);
		put(buf, size, &at, "hostname", u.nodename);
	}
	struct timespec t;
	clock_gettime(CLOCK_BOOTTIME, &t);
	snprintf(v, sizeof(v), "%lld", (long long)t.tv_sec);
	put(buf, size, &at, "uptime-s", v);
	clock_gettime(CLOCK_REALTIME, &t);
	snprintf(v, sizeof(v), "%lld", (long long)t.tv_sec);
	put(buf, size, &at, "time", v);
	addresses(v, sizeof(v));
	put(buf, size, &at, "addresses", v[0] ? v : "none");
	put(buf, size, &at, "agent-version", "1");
	return at;
}

static void ack(struct agent_out *out, uint8_t type, uint8_t status)
{
	static uint8_t body[2];
	body[0] = type;
	body[1] = status;
	*out = (struct agent_out){.type = AGENT_ACK, .payload = body, .len = 2};
}

static uint8_t set_time(const uint8_t *p)
{
	uint64_t ns = agent_le64(p);
	if (ns < TIME_MIN_NS || ns > TIME_MAX_NS)
		return ACK_FAILED;
	struct timespec t = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
	return clock_settime(CLOCK_REALTIME, &t) == 0 ? ACK_DONE : ACK_FAILED;
}

static uint8_t resize(const struct agent_config *c, const uint8_t *p)
{
	uint32_t w = agent_le32(p), h = agent_le32(p + 4);
	if (!c->resize)
		return ACK_UNSUPPORTED;
	if (w == 0 || h == 0 || w > RESIZE_MAX || h > RESIZE_MAX)
		return ACK_FAILED;
	char ew[32], eh[32];
	snprintf(ew, sizeof(ew), "SHOJI_WIDTH=%u", w);
	snprintf(eh, sizeof(eh), "SHOJI_HEIGHT=%u", h);
	char *const env[] = {ew, eh, NULL};
	return agent_run(c->resize, NULL, 0, NULL, NULL, 0, CMD_TIMEOUT_MS, env) == 0 ? ACK_DONE : ACK_FAILED;
}

/* CLIP_GET: the clipboard's text as CLIP_DATA (kind 0), or an ACK saying why not. */
static void clip_get(const struct agent_config *c, struct agent_out *out)
{
	uint8_t *text;
	uint32_t len;
	if (!c->clip_get) {
		ack(out, AGENT_CLIP_GET, ACK_UNSUPPORTED);
		return;
	}
	if (agent_run(c->clip_get, NULL, 0, &text, &len, c->clip_max, CLIP_TIMEOUT_MS, NULL) != 0) {
		ack(out, AGENT_CLIP_GET, ACK_FAILED);
		return;
	}
	if (!agent_text_ok(text, len)) { /* not UTF-8 text, or a NUL in it: not for the host */
		free(text);
		ack(out, AGENT_CLIP_GET, ACK_FAILED);
		return;
	}
	uint8_t *body = malloc((size_t)len + 1);
	if (!body) {
		free(text);
		ack(out, AGENT_CLIP_GET, ACK_FAILED);
		return;
	}
	body[0] = AGENT_CLIP_TEXT;
	memcpy(body + 1, text, len);
	free(text);
	*out = (struct agent_out){.type = AGENT_CLIP_DATA, .payload = body, .len = len + 1, .owned = 1};
}

static uint8_t clip_set(const struct agent_config *c, const struct agent_msg *m)
{
	if (!c->clip_set)
		return ACK_UNSUPPORTED;
	if (m->payload[0] != AGENT_CLIP_TEXT || m->len - 1 > c->clip_max || !agent_text_ok(m->payload + 1, m->len - 1))
		return ACK_FAILED; /* only text, and no more than configured */
	return agent_run(c->clip_set, m->payload + 1, m->len - 1, NULL, NULL, 0, CLIP_TIMEOUT_MS, NULL) == 0
		? ACK_DONE
		: ACK_FAILED;
}

static void info(struct agent_out *out)
{
	static char text[AGENT_INFO_MAX_ENTRIES * (AGENT_INFO_KEY_MAX + AGENT_INFO_VALUE_MAX + 2)];
	uint32_t n = agent_info_text(text, sizeof(text));
	*out = (struct agent_out){.type = AGENT_INFO, .payload = (uint8_t *)text, .len = n};
}

void agent_handle(const struct agent_config *c, const struct agent_msg *m, struct agent_out *out)
{
	*out = (struct agent_out){0};
	switch (m->type) {
	case AGENT_INFO_REQ: info(out); break;
	case AGENT_SHUTDOWN:
	case AGENT_REBOOT:
		ack(out, m->type, ACK_DONE);
		out->then = m->type;
		break;
	case AGENT_TIME_SET: ack(out, m->type, set_time(m->payload)); break;
	case AGENT_RESIZE: ack(out, m->type, resize(c, m->payload)); break;
	case AGENT_CLIP_GET: clip_get(c, out); break;
	case AGENT_CLIP_DATA: ack(out, m->type, clip_set(c, m)); break;
	default: break; /* HELLO is the connection's; INFO and ACK are the agent's own words */
	}
}

void agent_power(const struct agent_config *c, uint8_t what)
{
	const char *cmd = what == AGENT_REBOOT ? c->reboot : c->poweroff;
	if (!cmd && access("/run/systemd/system", F_OK) == 0)
		cmd = what == AGENT_REBOOT ? "systemctl reboot" : "systemctl poweroff";
	if (cmd) {
		agent_run(cmd, NULL, 0, NULL, NULL, 0, 30000, NULL);
		return;
	}
	sync();
	reboot(what == AGENT_REBOOT ? RB_AUTOBOOT : RB_POWER_OFF);
}

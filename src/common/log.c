/* log: leveled diagnostics on stderr and the rate limiter (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level current_level = LOG_WARN;
static const char *current_prefix = "shoji";

void log_set_level(enum log_level level) { current_level = level; }
void log_set_prefix(const char *prefix) { current_prefix = prefix; }
bool log_enabled(enum log_level level) { return level <= current_level; }

int log_level_parse(const char *name, enum log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	static const char *const tags[] = {"error", "warning", "info", "debug"};
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s: %s: ", current_prefix, tags[level]);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One write per message so that lines from several threads do not interleave. */
	fprintf(stderr, "%s\n", line);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool ratelimit_allow(struct ratelimit *rl, uint64_t *suppressed_out)
{
	while (__atomic_exchange_n(&rl->lock, 1, __ATOMIC_ACQUIRE))
		;
	uint64_t now = now_ns();
	if (rl->last_ns)
		rl->tokens += (double)(now - rl->last_ns) * rl->per_sec / 1e9;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
	rl->last_ns = now;
	bool ok = rl->tokens >= 1.0;
	if (ok) {
		rl->tokens -= 1.0;
		if (suppressed_out)
			*suppressed_out = rl->suppressed;
		rl->suppressed = 0;
	} else {
		rl->suppressed++;
	}
	__atomic_store_n(&rl->lock, 0, __ATOMIC_RELEASE);
	return ok;
}

/* log: leveled diagnostics on stderr and the rate limiter (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_WARN;
static const char *current_prefix = "shoji";

void log_set_level(enum log_level level)
{
	current_level = level;
}
void log_set_prefix(const char *prefix)
{
	current_prefix = prefix;
}
bool log_enabled(enum log_level level)
{
	return level <= current_level;
}

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

/* Bytes written to stderr when it is a regular file; -1 until looked at, -2 when it is not one. */
static long long file_bytes = -1;

/* Writes one line to stderr within LOG_FILE_CAP when it is a file. One write per message, so
 * that lines from several threads do not interleave. */
static void emit(const char *line)
{
	char out[1100];
	int n = snprintf(out, sizeof(out), "%s\n", line);
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(out))
		n = sizeof(out) - 1;
	long long seen = __atomic_load_n(&file_bytes, __ATOMIC_RELAXED);
	if (seen == -1) {
		struct stat st;
		seen = fstat(STDERR_FILENO, &st) == 0 && S_ISREG(st.st_mode) ? 0 : -2;
		__atomic_store_n(&file_bytes, seen, __ATOMIC_RELAXED);
	}
	if (seen >= 0) {
		long long before = __atomic_fetch_add(&file_bytes, n, __ATOMIC_RELAXED);
		if (before >= LOG_FILE_CAP)
			return;
		if (before + n > LOG_FILE_CAP) {
			n = snprintf(out, sizeof(out),
				     "%s: warning: this log reached %u bytes; further "
				     "diagnostics are dropped\n",
				     current_prefix, LOG_FILE_CAP);
		}
	}
	(void)!write(STDERR_FILENO, out, (size_t)n);
}

static void vlog(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	static const char *const tags[] = {"error", "warning", "info", "debug"};
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s: %s: ", current_prefix, tags[level]);
	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (suffix && m >= 0 && (size_t)(n + m) < sizeof(line))
		snprintf(line + n + m, sizeof(line) - (size_t)(n + m), "%s", suffix);
	emit(line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

static struct ratelimit guest_limit = RATELIMIT_INIT(LOG_GUEST_BURST, LOG_GUEST_PER_SEC);

void log_guest(enum log_level level, const char *fmt, ...)
{
	uint64_t suppressed = 0;
	if (!log_enabled(level) || !ratelimit_allow(&guest_limit, &suppressed))
		return;
	char note[96] = "";
	if (suppressed)
		snprintf(note, sizeof(note), " (%llu earlier messages the guest caused were suppressed)",
			 (unsigned long long)suppressed);
	va_list ap;
	va_start(ap, fmt);
	vlog(level, note, fmt, ap);
	va_end(ap);
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

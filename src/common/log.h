/* log: leveled diagnostics on stderr, bounded by the host, never by a guest: messages a guest
 * can provoke go through log_guest (one shared token bucket: LOG_GUEST_BURST at once,
 * LOG_GUEST_PER_SEC a second, then one line saying how many were suppressed), and when stderr
 * is a regular file (a monitor's monitor.log) at most LOG_FILE_CAP bytes are written to it,
 * the last line saying that the rest was dropped. Any thread. */
#ifndef SHOJI_COMMON_LOG_H
#define SHOJI_COMMON_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
void log_set_prefix(const char *prefix);
bool log_enabled(enum log_level level);
/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *name, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a message a guest can cause (a bad descriptor chain, a bad frame, an I/O error
 * on its request): rate-limited across the whole process. */
void log_guest(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOG_GUEST_BURST   20
#define LOG_GUEST_PER_SEC 2
#define LOG_FILE_CAP      (1u << 20)

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A token bucket: at most `burst` messages at once, refilled at `per_sec` a second. */
struct ratelimit {
	uint32_t burst, per_sec;
	double tokens;
	uint64_t last_ns;
	uint64_t suppressed;
	int lock; /* spin lock word: callers may be several vCPU threads */
};

#define RATELIMIT_INIT(burst_, per_sec_)                                                                               \
	{                                                                                                              \
		.burst = (burst_), .per_sec = (per_sec_), .tokens = (burst_)                                           \
	}

/* True when a message may be printed now. *suppressed_out receives how many were dropped
 * since the last allowed one (to be mentioned in that message). */
bool ratelimit_allow(struct ratelimit *rl, uint64_t *suppressed_out);

#endif

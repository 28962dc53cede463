/* log: leveled diagnostics on stderr, and a rate limiter for messages a guest can provoke. */
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

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A token bucket: at most `burst` messages at once, refilled at `per_sec` a second. */
struct ratelimit {
	uint32_t burst, per_sec;
	double tokens;
	uint64_t last_ns;
	uint64_t suppressed;
	int lock; /* spin lock word: callers may be several vCPU threads */
};

#define RATELIMIT_INIT(burst_, per_sec_) { .burst = (burst_), .per_sec = (per_sec_), .tokens = (burst_) }

/* True when a message may be printed now. *suppressed_out receives how many were dropped
 * since the last allowed one (to be mentioned in that message). */
bool ratelimit_allow(struct ratelimit *rl, uint64_t *suppressed_out);

#endif

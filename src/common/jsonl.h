/* jsonl: the request side of shoji's JSON-lines protocols (shojid's API, a monitor's control
 * socket, the seat's control socket): one request line parsed strictly into a JSON object, its
 * "cmd" looked up in the caller's table, and its other fields checked against what that command
 * takes. The three servers' parsers all go through here, so none accepts what another refuses:
 * no NUL byte, exactly one JSON object (json-c's strict mode, nesting bounded), nothing after it
 * but blanks, "cmd" a string naming a known command, no unknown field. Errors are one line,
 * printable ASCII, naming what is wrong. Pure; any thread. */
#ifndef SHOJI_COMMON_JSONL_H
#define SHOJI_COMMON_JSONL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* The deepest nesting a request may have. */
#define JSONL_MAX_DEPTH 16

/* Parses line (len bytes, no newline; any bytes) as one JSON object of at most max_len bytes.
 * Returns 0 with *out (the caller puts it), or -1 with e set. */
int jsonl_parse_object(const char *line, size_t len, size_t max_len, struct json_object **out, struct err *e);

/* The index in names[0..n) of req's "cmd"; -1 with e set when it is missing, not a string or
 * names no command (the message lists the commands). */
int jsonl_command(struct json_object *req, const char *const *names, size_t n, struct err *e);

/* Checks that req has no field but "cmd" and those in allowed (NULL-terminated; NULL: none);
 * cmd names the command in the message. */
int jsonl_check_fields(struct json_object *req, const char *cmd, const char *const *allowed, struct err *e);

/* req's field key as a string of 1 to max_len bytes without NUL: 0 with *out (owned by req),
 * -1 with e set when it is missing (required) or is anything else. Absent and not required:
 * 0 with *out NULL. */
int jsonl_string(struct json_object *req, const char *cmd, const char *key, size_t max_len, bool required,
		 const char **out, struct err *e);

/* o as one line ending in '\n' (and a NUL), malloc'd, its length in *len; NULL when out of
 * memory. */
char *jsonl_line(struct json_object *o, size_t *len);
/* {"ok":false,"error":msg} as one line ending in '\n', malloc'd (NULL: out of memory). */
char *jsonl_error_line(const char *msg, size_t *len);

#endif

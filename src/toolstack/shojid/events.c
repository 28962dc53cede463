/* events: shojid's event log (state/events.log, one JSON object a line: seq, time, vm, event,
 * detail), its queries, and the clients that follow it live ("shoji events --follow"). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/jsonl.h"
#include "../statefile.h"
#include "daemon.h"

#define EVENTS_MAX_READ (8u << 20) /* the log is read whole; older events beyond this are skipped */

/* The end of the log (at most EVENTS_MAX_READ bytes), from its first whole line. */
static char *read_log(struct daemon *d, size_t *len)
{
	char p[512];
	if (paths_get(&d->paths, PATHS_EVENTS, NULL, p, sizeof(p), NULL) < 0)
		return NULL;
	char *text = statefile_tail(p, EVENTS_MAX_READ, len);
	if (text && *len == EVENTS_MAX_READ) { /* maybe cut: drop the partial first line */
		char *nl = strchr(text, '\n');
		size_t skip = nl ? (size_t)(nl + 1 - text) : *len;
		memmove(text, text + skip, *len - skip + 1);
		*len -= skip;
	}
	return text;
}

void events_init(struct daemon *d)
{
	size_t len;
	char *text = read_log(d, &len);
	d->event_seq = 0;
	if (!text)
		return;
	/* The last complete line's seq. */
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		struct json_object *o = json_tokener_parse(line), *v;
		if (o && json_object_object_get_ex(o, "seq", &v))
			d->event_seq = (unsigned long long)json_object_get_int64(v);
		json_object_put(o);
	}
	free(text);
}

void events_add(struct daemon *d, const char *vm, const char *event, const char *fmt, ...)
{
	char detail[400], p[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "seq", json_object_new_int64((int64_t)++d->event_seq));
	json_object_object_add(o, "time", json_object_new_double(daemon_wall()));
	json_object_object_add(o, "vm", json_object_new_string(vm ? vm : "-"));
	json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "detail", json_object_new_string(detail));
	size_t n;
	char *line = jsonl_line(o, &n);
	if (line) {
		if (paths_get(&d->paths, PATHS_EVENTS, NULL, p, sizeof(p), NULL) == 0) {
			int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
			if (fd >= 0) {
				if (write(fd, line, n) != (ssize_t)n)
					fprintf(stderr, "shojid: cannot append to %s\n", p);
				close(fd);
			}
		}
		for (int i = 0; i < DAEMON_MAX_CLIENTS; i++) {
			struct client *c = d->clients[i];
			if (c && c->subscriber && (!c->filter[0] || (vm && strcmp(c->filter, vm) == 0)) &&
			    (authz_privileged(d, c->uid) || (vm && authz_may_see(d, c->uid, vm))))
				client_send_line(c, line, n);
		}
		free(line);
	}
	fprintf(stderr, "shojid: %s %s%s%s\n", vm ? vm : "-", event, detail[0] ? ": " : "", detail);
	json_object_put(o);
}

struct json_object *events_recent(struct daemon *d, const char *vm, int max, uid_t viewer)
{
	struct json_object *arr = json_object_new_array();
	size_t len;
	char *text = read_log(d, &len);
	if (!text)
		return arr;
	/* Walk backwards collecting up to max matching lines, then reverse. */
	struct json_object *rev[512];
	int n = 0;
	if (max > 512)
		max = 512;
	char *end = text + len;
	while (end > text && n < max) {
		while (end > text && end[-1] == '\n')
			*--end = '\0';
		char *start = end;
		while (start > text && start[-1] != '\n')
			start--;
		struct json_object *o = json_tokener_parse(start), *v;
		bool named = o && json_object_object_get_ex(o, "vm", &v) && json_object_is_type(v, json_type_string);
		if (o && (!vm || (named && strcmp(json_object_get_string(v), vm) == 0)) &&
		    (authz_privileged(d, viewer) || (named && authz_may_see(d, viewer, json_object_get_string(v)))))
			rev[n++] = o;
		else
			json_object_put(o);
		end = start;
	}
	while (n > 0)
		json_object_array_add(arr, rev[--n]);
	free(text);
	return arr;
}

/* jsonl: strict parsing of one JSON-lines request (see jsonl.h). */
#include "jsonl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/* s cut to size bytes with every byte outside printable ASCII shown as '?', so that a message
 * quoting a peer's words stays one printable line. */
static void printable(char *out, size_t size, const char *s)
{
	snprintf(out, size, "%s", s);
	for (char *p = out; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
}

int jsonl_parse_object(const char *line, size_t len, size_t max_len, struct json_object **out, struct err *e)
{
	*out = NULL;
	if (len > max_len)
		return err_set(e, "request longer than %zu bytes", max_len);
	if (memchr(line, '\0', len))
		return err_set(e, "request is not valid JSON: it holds a NUL byte");
	struct json_tokener *tok = json_tokener_new_ex(JSONL_MAX_DEPTH);
	if (!tok)
		return err_set(e, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	struct json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) { /* a bare number is only complete at a delimiter */
		obj = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		used = len;
	}
	json_tokener_free(tok);
	int r = 0;
	if (jerr != json_tokener_success)
		r = err_set(e, "request is not valid JSON: %s",
			    jerr == json_tokener_continue ? "it ends too early" : json_tokener_error_desc(jerr));
	else if (!blank(line + used, len - used))
		r = err_set(e, "request has more after its JSON object; send one object a line");
	else if (!obj || !json_object_is_type(obj, json_type_object))
		r = err_set(e, "a request is a JSON object such as {\"cmd\":\"status\"}");
	if (r < 0) {
		json_object_put(obj);
		return -1;
	}
	*out = obj;
	return 0;
}

int jsonl_command(struct json_object *req, const char *const *names, size_t n, struct err *e)
{
	struct json_object *c;
	if (!json_object_object_get_ex(req, "cmd", &c) || !json_object_is_type(c, json_type_string))
		return err_set(e, "a request needs \"cmd\": a command name string");
	const char *name = json_object_get_string(c);
	for (size_t i = 0; i < n && strlen(name) == (size_t)json_object_get_string_len(c); i++)
		if (names[i] && strcmp(names[i], name) == 0)
			return (int)i;
	char shown[40], list[512] = "";
	printable(shown, sizeof(shown), name);
	for (size_t i = 0, at = 0; i < n && at < sizeof(list); i++)
		if (names[i])
			at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", at ? ", " : "", names[i]);
	return err_set(e, "unknown command '%s' (one of: %s)", shown, list);
}

int jsonl_check_fields(struct json_object *req, const char *cmd, const char *const *allowed, struct err *e)
{
	json_object_object_foreach(req, key, val)
	{
		(void)val;
		bool known = strcmp(key, "cmd") == 0;
		for (size_t i = 0; allowed && allowed[i] && !known; i++)
			known = strcmp(allowed[i], key) == 0;
		if (!known) {
			char shown[40];
			printable(shown, sizeof(shown), key);
			return err_set(e, "'%s' takes no field '%s'", cmd, shown);
		}
	}
	return 0;
}

int jsonl_string(struct json_object *req, const char *cmd, const char *key, size_t max_len, bool required,
		 const char **out, struct err *e)
{
	struct json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(req, key, &v))
		return required ? err_set(e, "'%s' needs the field '%s' (a string)", cmd, key) : 0;
	if (!json_object_is_type(v, json_type_string))
		return err_set(e, "'%s': the field '%s' must be a string", cmd, key);
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n > max_len || strlen(s) != n)
		return err_set(e, "'%s': the field '%s' is empty, over %zu bytes or holds a NUL byte", cmd, key,
			       max_len);
	*out = s;
	return 0;
}

char *jsonl_error_line(const char *msg, size_t *len)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	char *line = jsonl_line(o, len);
	json_object_put(o);
	return line;
}

char *jsonl_line(struct json_object *o, size_t *len)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);
	char *line = malloc(n + 2);
	if (!line)
		return NULL;
	memcpy(line, s, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

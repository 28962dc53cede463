/* vmdef_ini: reads a definition's INI text with libinih. A line reader of our own feeds inih
 * so that every error knows its line: it counts lines, refuses lines inih would cut, reads
 * section headers (unknown or repeated ones are errors, empty ones still count) and marks
 * indented continuation lines; inih splits "key = value" and strips comments. */
#include "vmdef.h"

#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef_keys.h"

#define MAX_SEEN 64 /* keys given in one section, for duplicate detection */

struct ini_ctx {
	struct vmdef *d;
	const char *text, *file;
	size_t pos;
	int line;
	bool indented, have_key; /* this line is indented; a key came since the last header */
	enum vmdef_section sec;
	void *dev; /* the current section's disk or NIC */
	bool seen_vm, seen_policy;
	char seen[MAX_SEEN][24];
	int nseen;
	bool failed;
	struct err err;
};

__attribute__((format(printf, 2, 3))) static void fail(struct ini_ctx *c, const char *fmt, ...)
{
	if (c->failed)
		return;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_set(&c->err, "%s:%d: %s", c->file, c->line, msg);
	c->failed = true;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

static void section_header(struct ini_ctx *c, char *line)
{
	char *close = strchr(line, ']');
	if (!close)
		return; /* inih reports the syntax error */
	*close = '\0';
	char *name = trim(line + 1), *id = name + strcspn(name, " \t");
	if (*id)
		*id++ = '\0';
	id = trim(id);
	struct err e;
	c->nseen = 0;
	c->have_key = false;
	c->dev = NULL;
	if (strcmp(name, "vm") == 0 && !*id) {
		if (c->seen_vm)
			return fail(c, "[vm] appears twice; merge the two sections");
		c->seen_vm = true;
		c->d->vm_line = c->line;
		c->sec = VMDEF_SEC_VM;
	} else if (strcmp(name, "policy") == 0 && !*id) {
		if (c->seen_policy)
			return fail(c, "[policy] appears twice; merge the two sections");
		c->seen_policy = true;
		c->sec = VMDEF_SEC_POLICY;
	} else if (strcmp(name, "disk") == 0 && *id) {
		struct vmdef_disk *k = vmdef_new_disk(c->d, id, &e);
		if (!k)
			return fail(c, "[disk %s]: %s", id, e.msg);
		k->line = c->line;
		c->dev = k;
		c->sec = VMDEF_SEC_DISK;
	} else if (strcmp(name, "nic") == 0 && *id) {
		struct vmdef_nic *n = vmdef_new_nic(c->d, id, &e);
		if (!n)
			return fail(c, "[nic %s]: %s", id, e.msg);
		n->line = c->line;
		c->dev = n;
		c->sec = VMDEF_SEC_NIC;
	} else {
		fail(c, "unknown section [%s%s%s]; use [vm], [disk ID], [nic ID] or [policy]", name, *id ? " " : "",
		     id);
	}
}

/* fgets for inih over the text, one line a call. */
static char *ini_read_line(char *str, int num, void *stream)
{
	struct ini_ctx *c = stream;
	if (c->failed || !c->text[c->pos])
		return NULL;
	const char *start = c->text + c->pos;
	size_t len = strcspn(start, "\n");
	c->pos += len + (start[len] == '\n');
	c->line++;
	if (memchr(start, '\0', len) || len + 2 > (size_t)num) {
		fail(c,
		     "the line is longer than %d characters; shorten it (cmdline may continue on "
		     "indented lines)",
		     num - 2);
		return NULL;
	}
	memcpy(str, start, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	char copy[len + 1];
	memcpy(copy, start, len);
	copy[len] = '\0';
	char *t = trim(copy);
	c->indented = t != copy && *t && *t != '#' && *t != ';' && c->have_key;
	if (*t == '[') {
		if (t != copy)
			fail(c, "the section header is indented; remove the indentation");
		else
			section_header(c, t);
		if (c->failed)
			return NULL;
	}
	return str;
}

static bool seen_before(struct ini_ctx *c, const char *key)
{
	for (int i = 0; i < c->nseen; i++) {
		if (strcmp(c->seen[i], key) == 0)
			return true;
	}
	if (c->nseen < MAX_SEEN)
		snprintf(c->seen[c->nseen++], sizeof(c->seen[0]), "%s", key);
	return false;
}

static int ini_key(void *user, const char *section, const char *key, const char *value)
{
	(void)section; /* the reader tracks sections itself */
	struct ini_ctx *c = user;
	struct err e;
	if (c->failed)
		return 0;
	int idx = vmdef_key_index(c->sec, key, &e);
	if (idx < 0)
		return fail(c, "%s", e.msg), 0;
	bool append = c->indented;
	if (!append && !vmdef_key_repeats(c->sec, idx) && seen_before(c, key))
		return fail(c, "'%s' is given twice in this section; keep one", key), 0;
	c->have_key = true;
	int r;
	switch (c->sec) {
	case VMDEF_SEC_VM: r = vmdef_apply_vm(c->d, key, value, append, &e); break;
	case VMDEF_SEC_DISK:
		r = append ? err_set(&e, "this indented line continues '%s'; remove the indentation", key)
			   : vmdef_apply_disk(c->dev, key, value, &e);
		break;
	case VMDEF_SEC_POLICY:
		r = append ? err_set(&e, "this indented line continues '%s'; remove the indentation", key)
			   : vmdef_apply_policy(&c->d->policy, key, value, &e);
		break;
	default:
		r = append ? err_set(&e, "this indented line continues '%s'; remove the indentation", key)
			   : vmdef_apply_nic(c->dev, key, value, &e);
		break;
	}
	if (r < 0)
		fail(c, "%s", e.msg);
	return r == 0;
}

int vmdef_parse(const char *text, const char *file, struct vmdef *out, struct err *e)
{
	struct ini_ctx *c = calloc(1, sizeof(*c));
	struct vmdef *d = malloc(sizeof(*d));
	if (!c || !d) {
		free(c);
		free(d);
		return err_set(e, "out of memory");
	}
	vmdef_init(d, NULL);
	c->d = d;
	c->text = text;
	c->file = file ? file : "definition";
	int r = ini_parse_stream(ini_read_line, c, ini_key, c);
	if (c->failed) {
		*e = c->err;
		r = -1;
	} else if (r > 0) {
		c->line = r;
		fail(c, "this is neither 'key = value' nor '[section]'; fix or remove the line");
		*e = c->err;
		r = -1;
	} else if (r < 0) {
		r = err_set(e, "%s: cannot parse (out of memory)", c->file);
	} else if (!c->seen_vm) {
		r = err_set(e, "%s: there is no [vm] section; start the file with [vm] and 'name = NAME'", c->file);
	} else {
		r = vmdef_check(d, c->file, e);
	}
	if (r == 0)
		*out = *d;
	free(c);
	free(d);
	return r;
}

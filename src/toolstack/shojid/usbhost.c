/* usbhost: the host's default USB policy, an INI file the administrator writes (--usb-policy,
 * default /etc/shoji/usb.conf) with a [usb] section of the keys a definition's [policy] takes
 * (usb-allow, usb-deny, usb-storage, usb-auto); they hold for every VM that does not set them.
 * Read at each decision, so an edit counts at once. Only a file root (or shojid's own uid) owns
 * and nobody else may write is believed: anything else is refused with the fix, and so is every
 * bad line, naming the file and the line. No file: no host policy. Main thread. */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"

#define USBHOST_MAX_BYTES (16 * 1024)

static const char *const keys[] = {"usb-allow", "usb-deny", "usb-storage", "usb-auto"};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parse {
	struct usb_policy *p;
	struct err why; /* the first bad line's fault; inih gives its number */
	bool failed;
	bool seen[NKEYS];
};

static int fail(struct parse *c, const char *fmt, const char *a)
{
	c->failed = true;
	snprintf(c->why.msg, sizeof(c->why.msg), fmt, a);
	return 0;
}

static int key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *c = user;
	unsigned k = 0;
	bool known;
	while (k < NKEYS && strcmp(name, keys[k]) != 0)
		k++;
	if (c->failed)
		return 0;
	if (strcmp(section, "usb") != 0)
		return fail(c, "'%s' is outside [usb]; put the keys under a [usb] line", name);
	if (k == NKEYS)
		return fail(c, "unknown key '%s'; known keys: usb-allow, usb-deny, usb-storage, usb-auto", name);
	if (c->seen[k])
		return fail(c, "%s is given twice; keep one", name);
	struct err e;
	if (usb_policy_apply(c->p, name, value, &known, &e) < 0)
		return fail(c, "%s", e.msg);
	c->seen[k] = true;
	return 1;
}

/* The file's bytes, if root (or shojid's uid) owns it and only its owner may write it. */
static int read_trusted(const char *file, char *buf, size_t cap, bool *absent, struct err *e)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	*absent = fd < 0 && errno == ENOENT;
	if (*absent)
		return 0;
	if (fd < 0)
		return err_errno(e, errno, "cannot read the host's USB policy %s", file);
	struct stat st;
	ssize_t n = -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		err_set(e, "the host's USB policy %s is not a regular file; make it one", file);
	else if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))
		err_set(e, "the host's USB policy %s may be written by others than root; chown root and chmod go-w it",
			file);
	else if ((n = read(fd, buf, cap - 1)) < 0 || (size_t)n == cap - 1)
		err_set(e, "cannot read the host's USB policy %s (at most %d bytes)", file, USBHOST_MAX_BYTES - 2);
	close(fd);
	if (n < 0 || (size_t)n == cap - 1)
		return -1;
	buf[n] = '\0';
	return 0;
}

int usbhost_policy(const struct daemon *d, struct usb_policy *out, bool *have, struct err *e)
{
	static char text[USBHOST_MAX_BYTES];
	bool absent;
	*out = (struct usb_policy){0};
	*have = false;
	if (read_trusted(d->usb_policy, text, sizeof(text), &absent, e) < 0)
		return -1;
	if (absent)
		return 0;
	struct parse c = {.p = out};
	int line = ini_parse_string(text, key, &c);
	if (c.failed || line != 0) {
		err_set(e, "%s:%d: %s", d->usb_policy, line,
			c.failed ? c.why.msg : "not a KEY = VALUE line nor a [usb] line; fix it");
		*out = (struct usb_policy){0};
		return -1;
	}
	*have = true;
	return 0;
}

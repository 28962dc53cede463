/* vmdef_values: the value syntaxes of a VM definition (sizes, colours, booleans, MAC addresses,
 * port forwards, paths), each with an error that says what is accepted. */
#include "vmdef.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/portfwd.h"

int vmdef_parse_size_mib(const char *s, uint32_t *mib, struct err *e)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || errno)
		goto bad;
	unsigned long long kib;
	switch (toupper((unsigned char)*end)) {
	case '\0': kib = v * 1024; break; /* MiB */
	case 'K':
		kib = v;
		end++;
		break;
	case 'M':
		kib = v * 1024;
		end++;
		break;
	case 'G':
		kib = v * 1024 * 1024;
		end++;
		break;
	case 'T':
		kib = v * 1024 * 1024 * 1024;
		end++;
		break;
	default: goto bad;
	}
	if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
		goto bad;
	if (v > (1ull << 40) || kib / 1024 > VMDEF_MAX_MEMORY_MIB)
		return err_set(e, "memory '%s' is more than %u GiB; give a smaller size", s,
			       VMDEF_MAX_MEMORY_MIB / 1024);
	if (kib % 1024)
		return err_set(e, "memory '%s' is not a whole number of MiB; round it, e.g. to %lluM", s,
			       kib / 1024 + 1);
	if (kib / 1024 < VMDEF_MIN_MEMORY_MIB)
		return err_set(e, "memory '%s' is less than the %u MiB a guest needs; give at least %uM", s,
			       VMDEF_MIN_MEMORY_MIB, VMDEF_MIN_MEMORY_MIB);
	*mib = (uint32_t)(kib / 1024);
	return 0;
bad:
	return err_set(e, "memory '%s' is not a size; write a number with M or G, e.g. 512M or 2G", s);
}

static const char *const colours[] = {"red",    "orange", "yellow", "green", "blue",
				      "purple", "pink",   "grey",   "white", "black"};
/* What the seat paints for each name: strong, distinct colours. */
static const uint32_t colour_rgb[] = {0xd32f2f, 0xef6c00, 0xf9d71c, 0x2ea043, 0x1e66f5,
				      0x8e44ad, 0xe84393, 0x808080, 0xffffff, 0x000000};

int vmdef_label_rgb(const char *label, uint32_t *rgb)
{
	if (label[0] == '#' && strlen(label) == 7) {
		char *end;
		unsigned long v = strtoul(label + 1, &end, 16);
		if (*end == '\0') {
			*rgb = (uint32_t)v;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(colours) / sizeof(colours[0]); i++) {
		if (strcasecmp(label, colours[i]) == 0) {
			*rgb = colour_rgb[i];
			return 0;
		}
	}
	return -1;
}

int vmdef_parse_label(const char *s, char out[8], struct err *e)
{
	if (s[0] == '#') {
		bool ok = strlen(s) == 7;
		for (int i = 1; ok && i < 7; i++)
			ok = isxdigit((unsigned char)s[i]);
		if (ok) {
			for (int i = 0; i < 8; i++)
				out[i] = (char)tolower((unsigned char)s[i]);
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(colours) / sizeof(colours[0]); i++) {
		if (strcasecmp(s, colours[i]) == 0) {
			snprintf(out, 8, "%s", colours[i]);
			return 0;
		}
	}
	return err_set(e,
		       "label '%s' is not a colour; use red, orange, yellow, green, blue, purple, "
		       "pink, grey, white, black or #rrggbb",
		       s);
}

int vmdef_parse_bool(const char *s, bool *out, struct err *e)
{
	static const char *const yes[] = {"yes", "on", "true", "1"}, *const no[] = {"no", "off", "false", "0"};
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(s, no[i]) == 0)
			return *out = false, 0;
	}
	return err_set(e, "'%s' is not yes or no; write yes, no, on, off, true or false", s);
}

int vmdef_parse_mac(const char *s, char out[18], struct err *e)
{
	unsigned b[6];
	char tail;
	if (strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return err_set(e, "mac '%s' is not a MAC address; write six hex bytes, e.g. 52:54:00:12:34:56", s);
	for (int i = 0; i < 17; i++) {
		if ((i % 3 == 2) != (s[i] == ':') || (i % 3 != 2 && !isxdigit((unsigned char)s[i])))
			return err_set(e, "mac '%s' is not a MAC address; write six hex bytes, e.g. 52:54:00:12:34:56",
				       s);
	}
	if (b[0] & 1)
		return err_set(e, "mac '%s' is a multicast address; the first byte must be even, e.g. 52:...", s);
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0] & 0xffu, b[1] & 0xffu, b[2] & 0xffu, b[3] & 0xffu,
		 b[4] & 0xffu, b[5] & 0xffu);
	return 0;
}

int vmdef_parse_fwd(const char *s, struct vmdef_fwd *out, struct err *e)
{
	struct portfwd f;
	if (portfwd_parse(s, &f, e) < 0)
		return -1;
	struct vmdef_fwd r = {.host_port = f.host_port, .guest_port = f.guest_port};
	strcpy(r.proto, f.udp ? "udp" : "tcp");
	if (f.has_addr)
		inet_ntop(AF_INET, &f.addr, r.host_addr, sizeof(r.host_addr));
	*out = r;
	return 0;
}

int vmdef_parse_path(const char *s, char out[VMDEF_PATH_MAX], struct err *e)
{
	if (s[0] != '/')
		return err_set(e, "path '%s' is relative; give an absolute path (starting with /)", s);
	if (strlen(s) >= VMDEF_PATH_MAX)
		return err_set(e,
			       "path '%.40s...' is longer than %d characters; move or link the file to "
			       "a shorter path",
			       s, VMDEF_PATH_MAX - 1);
	for (const char *p = s; *p; p++) {
		if (*p == ',' || iscntrl((unsigned char)*p))
			return err_set(e,
				       "path '%s' contains a comma or control character, which the monitor's "
				       "options cannot carry; rename the file",
				       s);
	}
	strcpy(out, s);
	return 0;
}

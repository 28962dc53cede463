/* portfwd: see portfwd.h. */
#include "portfwd.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int portfwd_number(const char *s, uint16_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!isdigit((unsigned char)*s) || errno || *end || v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int portfwd_parse(const char *s, struct portfwd *out, struct err *e)
{
	char buf[96], *f[5];
	int n = 0;
	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	for (char *p = buf, *tok; n < 5 && (tok = strsep(&p, ":")) != NULL;)
		f[n++] = tok;
	if (n < 3 || n > 4 || (strcmp(f[0], "tcp") && strcmp(f[0], "udp")))
		goto bad;
	struct portfwd r = {.udp = strcmp(f[0], "udp") == 0, .has_addr = n == 4};
	if (n == 4 && inet_pton(AF_INET, f[1], &r.addr) != 1)
		return err_set(e, "forward '%s': '%s' is not an IPv4 address; write e.g. 127.0.0.1", s, f[1]);
	if (portfwd_number(f[n - 2], &r.host_port) < 0 || portfwd_number(f[n - 1], &r.guest_port) < 0)
		return err_set(e, "forward '%s': ports are whole numbers from 1 to 65535", s);
	*out = r;
	return 0;
bad:
	return err_set(e, "forward '%s' is not tcp|udp:[HOSTADDR:]HOSTPORT:GUESTPORT, e.g. tcp:2222:22", s);
}

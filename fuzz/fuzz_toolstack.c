/* fuzz_toolstack: libFuzzer target for the toolstack's parsers of untrusted text: the first byte
 * picks a VM definition (vmdef_parse; whatever parses must be written back by vmdef_format and
 * read again to the same text) or an API request line (proto_parse_request), or a "shoji set"
 * edit on a good definition. Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_TOOLSTACK_SEED

#include "toolstack/proto.h"
#include "toolstack/vmdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static void definition(const char *text)
{
	static struct vmdef d, back;
	static char out[65536], again[65536];
	struct err e;
	if (vmdef_parse(text, "f.ini", &d, &e) < 0)
		return;
	int n = vmdef_format(&d, out, sizeof(out));
	check(n > 0);
	check(vmdef_parse(out, "g.ini", &back, &e) == 0);
	check(vmdef_format(&back, again, sizeof(again)) == n && memcmp(out, again, (size_t)n) == 0);
}

static void request(const char *line, size_t len)
{
	struct proto_request r;
	enum proto_code code;
	struct err e;
	if (proto_parse_request(line, len, &r, &code, &e) == 0) {
		check(r.cmd < PROTO_NCMDS);
		check(!r.name[0] || vmdef_name_ok(r.name));
		proto_request_free(&r);
	}
}

static void edit(const char *assignment)
{
	static struct vmdef d;
	struct err e;
	vmdef_init(&d, "f");
	strcpy(d.kernel, "/k");
	struct vmdef before = d;
	if (vmdef_set(&d, assignment, &e) < 0)
		check(memcmp(&before, &d, sizeof(d)) == 0);
	else
		check(vmdef_check(&d, NULL, &e) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 70000)
		return 0;
	char *text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0: definition(text); break;
	case 1: request(text, size - 1); break;
	default: edit(text); break;
	}
	free(text);
	return 0;
}

#else /* the seed writer: a definition, two requests and an edit, byte for byte (a shell                               \
       * command in meson.build would see its backslashes turned into slashes) */

static int put(const char *dir, const char *name, char kind, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	fputc(kind, f);
	fputs(text, f);
	return fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	const char *def = "[vm]\nname = a\nmemory = 1G\nkernel = /k\ncmdline = x\n\ty\n[disk r]\npath = /i\n"
			  "serial = s\n[nic n]\ntype = slirp\nforward = tcp:1:2\nmac = 52:54:00:00:00:01\n[policy]\n";
	int r = put(argv[1], "def", 0, def) |
		put(argv[1], "req", 1, "{\"cmd\":\"set\",\"name\":\"a\",\"assign\":[\"memory=1G\"]}") |
		put(argv[1], "req2", 1, "{\"cmd\":\"stop\",\"name\":\"a\",\"timeout\":3}") |
		put(argv[1], "set", 2, "disk.x.path=/y") |
		put(argv[1], "usb", 0,
		    "[vm]\nname = u\nkernel = /k\n[policy]\nusb-allow = class:audio id:046d:* port:1-2.3\n"
		    "usb-deny = class:08\nusb-storage = deny\nusb-auto = focused\n");
	return r ? 1 : 0;
}

#endif

/* fuzz_toolstack: libFuzzer target for the toolstack's parsers of untrusted text: the first byte
 * picks a VM definition (vmdef_parse; whatever parses must be written back by vmdef_format and
 * read again to the same text) or an API request line (proto_parse_request), or a "shoji set"
 * edit on a good definition. Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
		check(r.cmd <= PROTO_EVENTS);
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

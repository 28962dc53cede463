/* fuzz_control: libFuzzer target for the control protocol's request parser: the input is one
 * request line, of any bytes. Checks what control.h promises: an accepted line names a known
 * command, a clipboard-set's data is text within the limit, a refused line gets one line of
 * JSON that says ok=false with a printable error, and a reply always fits; and a clipboard-get's
 * reply for the input's bytes is one line of JSON whose data decodes back to them. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/agent_proto.h"
#include "common/base64.h"
#include "vmm/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_clipboard_reply(const uint8_t *data, size_t size)
{
	size_t n;
	char *line = control_reply_clipboard(data, (uint32_t)size, &n);
	if (!line || n < 2 || line[n - 1] != '\n' || memchr(line, '\n', n - 1) || n > CONTROL_CLIPBOARD_REPLY_MAX)
		abort();
	json_object *o = json_tokener_parse(line), *b64, *bytes;
	if (!o || !json_object_object_get_ex(o, CONTROL_R_DATA, &b64) ||
	    !json_object_object_get_ex(o, CONTROL_R_BYTES, &bytes) || json_object_get_int64(bytes) != (int64_t)size)
		abort();
	uint8_t *back = malloc(size + 1);
	const char *s = json_object_get_string(b64);
	long got = base64_decode(s, strlen(s), back, size);
	if (got != (long)size || (size && memcmp(back, data, size)))
		abort();
	free(back);
	json_object_put(o);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char reply[CONTROL_REPLY_MAX];
	memset(reply, 0x55, sizeof(reply));
	struct control_request req;
	if (control_parse((const char *)data, size, &req, reply) == 0) {
		enum control_cmd cmd = req.cmd;
		if (cmd == CONTROL_DISK_SNAPSHOT && (!req.disk[0] || !req.backing[0]))
			abort();
		if ((unsigned)cmd > CONTROL_TEST_FORBIDDEN_SYSCALL)
			abort();
		if (cmd == CONTROL_CLIPBOARD_SET &&
		    (req.data_len > SHOJI_CLIPBOARD_MAX || !agent_text_ok(req.data, req.data_len)))
			abort();
		if (cmd != CONTROL_CLIPBOARD_SET && req.data)
			abort();
		control_request_free(&req);
		struct control_status st = {.paused = size & 1,
					    .pid = (long)size,
					    .cpus = 1,
					    .memory_mib = size,
					    .uptime_s = (double)size * 1e6,
					    .paused_ms = (double)size / 7};
		control_reply(cmd, &st, reply);
	}
	size_t n = strnlen(reply, sizeof(reply));
	if (n == sizeof(reply) || n == 0 || reply[n - 1] != '\n' || memchr(reply, '\n', n - 1))
		abort();
	json_object *o = json_tokener_parse(reply);
	json_object *ok;
	if (!o || !json_object_object_get_ex(o, "ok", &ok))
		abort();
	json_object *err;
	if (!json_object_get_boolean(ok)) {
		if (!json_object_object_get_ex(o, "error", &err))
			abort();
		for (const char *p = json_object_get_string(err); *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				abort();
	}
	json_object_put(o);
	if (size <= SHOJI_CLIPBOARD_MAX)
		check_clipboard_reply(data, size);
	return 0;
}

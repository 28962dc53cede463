/* fuzz_control: libFuzzer target for the control protocol's request parser: the input is one
 * request line, of any bytes. Checks what control.h promises: an accepted line names a known
 * command, a refused one gets one line of JSON that says ok=false with a printable error, and
 * a reply always fits. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
	return 0;
}

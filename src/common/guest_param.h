/* guest_param: a guest parameter, KEY=VALUE, that the host hands a guest at boot (a browser VM's
 * start page: url=https://...): on a direct kernel boot as the kernel command line's word
 * shoji.KEY=VALUE, on a firmware boot as the fw_cfg file opt/org.shoji/KEY holding VALUE (read
 * in the guest through /sys/firmware/qemu_fw_cfg; the images' shoji-param script reads both).
 * The one rule for what a parameter may be, shared by the definitions (shojid) and the
 * monitor's --param: a key of 1 to 32 of [a-z0-9-] starting with a letter, not the agent's
 * token; a value of printable ASCII without space, quote, backslash or comma (a kernel
 * command line word, the monitor's option syntax), at most GUEST_PARAM_VALUE_MAX bytes. Pure. */
#ifndef SHOJI_COMMON_GUEST_PARAM_H
#define SHOJI_COMMON_GUEST_PARAM_H

#include "err.h"

#define GUEST_PARAM_MAX       8
#define GUEST_PARAM_KEY_MAX   32
#define GUEST_PARAM_VALUE_MAX 150              /* "param = KEY=VALUE" fits a definition line */
#define GUEST_PARAM_CMDLINE   "shoji."         /* the kernel command line word's prefix */
#define GUEST_PARAM_FW_CFG    "opt/org.shoji/" /* the fw_cfg file's prefix */

struct guest_param {
	char key[GUEST_PARAM_KEY_MAX + 1];
	char value[GUEST_PARAM_VALUE_MAX + 1];
};

/* Parses "KEY=VALUE" into out; -1 with e naming what is wrong and what is accepted. */
int guest_param_parse(const char *kv, struct guest_param *out, struct err *e);

#endif

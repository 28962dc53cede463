/* agent_token: where the agent finds the token that the VM's monitor gave this boot (see
 * common/agent_proto.h): the kernel command line of a direct boot, or fw_cfg's file of a
 * firmware boot, which Linux shows under /sys/firmware/qemu_fw_cfg (module qemu_fw_cfg). */
#include <stdio.h>
#include <string.h>

#include "agent.h"

#define FW_CFG_PATH "/sys/firmware/qemu_fw_cfg/by_name/" AGENT_TOKEN_FW_CFG "/raw"

static int is_token(const char *s, size_t n)
{
	if (n != AGENT_TOKEN_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int from_file(const char *path, const char *prefix, char token[AGENT_TOKEN_LEN])
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *at = buf;
	if (prefix) { /* a word of the command line */
		for (at = strstr(buf, prefix); at && at != buf && at[-1] != ' '; at = strstr(at + 1, prefix))
			;
		if (!at)
			return -1;
		at += strlen(prefix);
	}
	size_t len = strcspn(at, " \n");
	if (!is_token(at, len))
		return -1;
	memcpy(token, at, AGENT_TOKEN_LEN);
	return 0;
}

int agent_token_load(char token[AGENT_TOKEN_LEN])
{
	if (from_file("/proc/cmdline", AGENT_TOKEN_ARG, token) == 0)
		return 0;
	return from_file(FW_CFG_PATH, NULL, token);
}

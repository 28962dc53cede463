/* guest_param: see guest_param.h. */
#include "guest_param.h"

#include <stdbool.h>
#include <string.h>

static bool key_ok(const char *k, size_t n)
{
	if (n == 0 || n > GUEST_PARAM_KEY_MAX || k[0] < 'a' || k[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-'))
			return false;
	/* the agent's own words (shoji.agent-token=, its fw_cfg file) are the monitor's alone */
	return !(n == strlen("agent-token") && memcmp(k, "agent-token", n) == 0);
}

static bool value_ok(const char *v)
{
	for (; *v; v++)
		if (*v <= ' ' || *v > '~' || strchr("\"'\\,", *v))
			return false;
	return true;
}

int guest_param_parse(const char *kv, struct guest_param *out, struct err *e)
{
	const char *eq = strchr(kv, '=');
	if (!eq || !key_ok(kv, (size_t)(eq - kv)))
		return err_set(e,
			       "'%.40s' is not KEY=VALUE with a KEY of 1 to %d of a-z 0-9 '-', starting with a "
			       "letter (not agent-token)",
			       kv, GUEST_PARAM_KEY_MAX);
	if (strlen(eq + 1) > GUEST_PARAM_VALUE_MAX || !value_ok(eq + 1))
		return err_set(e,
			       "the value of '%.*s' must be at most %d printable characters without space, "
			       "quote, backslash or comma (percent-encode them in a URL)",
			       (int)(eq - kv), kv, GUEST_PARAM_VALUE_MAX);
	memcpy(out->key, kv, (size_t)(eq - kv));
	out->key[eq - kv] = 0;
	strcpy(out->value, eq + 1);
	return 0;
}

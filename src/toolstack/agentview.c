/* agentview: the guest agent's state as shojid shows it (shoji info), rebuilt from what the
 * VM's monitor reports in its status. The monitor is jailed and holds the guest's words, so
 * its report is not trusted either: only known fields of the right types are copied, strings
 * must be printable ASCII within the protocol's limits (common/agent_proto.h), and anything
 * else is left out. */
#include "agentview.h"

#include <stdbool.h>
#include <string.h>

#include "../common/agent_proto.h"

#define ERROR_MAX 160

static bool printable(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n == max || s[n] < 0x20 || s[n] > 0x7e)
			return false;
	return true;
}

static void copy_int(struct json_object *from, struct json_object *to, const char *key)
{
	struct json_object *v;
	if (json_object_object_get_ex(from, key, &v) && json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 0)
		json_object_object_add(to, key, json_object_new_int64(json_object_get_int64(v)));
}

/* The info entries that pass the protocol's rules, at most AGENT_INFO_MAX_ENTRIES. */
static struct json_object *info_copy(struct json_object *info)
{
	struct json_object *out = json_object_new_object();
	int n = 0;
	json_object_object_foreach(info, k, v)
	{
		if (n == AGENT_INFO_MAX_ENTRIES)
			break;
		if (json_object_is_type(v, json_type_string) && agent_info_entry_ok(k, json_object_get_string(v))) {
			json_object_object_add(out, k, json_object_new_string(json_object_get_string(v)));
			n++;
		}
	}
	return out;
}

static struct json_object *caps_copy(struct json_object *caps)
{
	static const char *const known[] = {"info", "power", "time", "resize", "clipboard"};
	struct json_object *out = json_object_new_array();
	size_t n = json_object_array_length(caps);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		for (size_t j = 0; j < n && j < 16; j++) {
			struct json_object *c = json_object_array_get_idx(caps, j);
			if (json_object_is_type(c, json_type_string) &&
			    strcmp(json_object_get_string(c), known[i]) == 0) {
				json_object_array_add(out, json_object_new_string(known[i]));
				break;
			}
		}
	return out;
}

struct json_object *agent_view(struct json_object *status)
{
	static const char *const states[] = {"none", "connecting", "ready", "unresponsive"};
	struct json_object *a, *v;
	if (!status || !json_object_object_get_ex(status, "agent", &a) || !json_object_is_type(a, json_type_object) ||
	    !json_object_object_get_ex(a, "state", &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	const char *state = NULL;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strcmp(json_object_get_string(v), states[i]) == 0)
			state = states[i];
	if (!state)
		return NULL;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(state));
	if (json_object_object_get_ex(a, "caps", &v) && json_object_is_type(v, json_type_array))
		json_object_object_add(o, "caps", caps_copy(v));
	if (json_object_object_get_ex(a, "info", &v) && json_object_is_type(v, json_type_object))
		json_object_object_add(o, "info", info_copy(v));
	copy_int(a, o, "seen_s_ago");
	copy_int(a, o, "info_s_ago");
	copy_int(a, o, "faults");
	copy_int(a, o, "time_syncs");
	if (json_object_object_get_ex(a, "error", &v) && json_object_is_type(v, json_type_string) &&
	    printable(json_object_get_string(v), ERROR_MAX))
		json_object_object_add(o, "error", json_object_new_string(json_object_get_string(v)));
	return o;
}

/* agentview: what shojid copies from a monitor's report of the guest agent. A compromised
 * monitor's report loses every control character, unknown cap, bad key, wrong type and
 * over-long string; a well-formed one comes through whole. */
#include "unit.h"

#include "toolstack/agentview.h"

static json_object *view_of(const char *status_text)
{
	json_object *st = json_tokener_parse(status_text);
	assert_non_null(st);
	json_object *v = agent_view(st);
	json_object_put(st);
	return v;
}

static const char *str(json_object *o, const char *path1, const char *path2)
{
	json_object *v;
	if (!json_object_object_get_ex(o, path1, &v))
		return NULL;
	if (path2 && !json_object_object_get_ex(v, path2, &v))
		return NULL;
	return json_object_get_string(v);
}

static void well_formed_report_kept(void **state)
{
	(void)state;
	json_object *v = view_of("{\"ok\":true,\"agent\":{\"state\":\"ready\",\"caps\":[\"info\",\"power\",\"time\"],"
				 "\"seen_s_ago\":1,\"info\":{\"os\":\"Debian GNU/Linux 12\",\"uptime-s\":\"12\"},"
				 "\"faults\":0,\"time_syncs\":2}}");
	assert_non_null(v);
	assert_string_equal(str(v, "state", NULL), "ready");
	assert_string_equal(str(v, "info", "os"), "Debian GNU/Linux 12");
	assert_string_equal(str(v, "info", "uptime-s"), "12");
	assert_string_equal(str(v, "time_syncs", NULL), "2");
	json_object *caps;
	assert_true(json_object_object_get_ex(v, "caps", &caps));
	assert_int_equal(json_object_array_length(caps), 3);
	json_object_put(v);
}

static void hostile_report_filtered(void **state)
{
	(void)state;
	char long_error[400];
	memset(long_error, 'x', sizeof(long_error) - 1);
	long_error[sizeof(long_error) - 1] = 0;
	char text[2048];
	snprintf(text, sizeof(text),
		 "{\"agent\":{\"state\":\"ready\",\"caps\":[\"info\",\"\\u001b[31m\",7],"
		 "\"info\":{\"os\":\"ok\",\"kernel\":\"\\u001b]0;owned\\u0007\",\"Bad Key\":\"x\",\"n\":12,"
		 "\"x-\":\"\\u00e9\"},\"faults\":-3,\"seen_s_ago\":\"soon\",\"error\":\"%s\"}}",
		 long_error);
	json_object *v = view_of(text);
	assert_non_null(v);
	json_object *info, *caps, *x;
	assert_true(json_object_object_get_ex(v, "info", &info));
	assert_int_equal(json_object_object_length(info), 1); /* only os */
	assert_string_equal(str(v, "info", "os"), "ok");
	assert_true(json_object_object_get_ex(v, "caps", &caps));
	assert_int_equal(json_object_array_length(caps), 1);
	assert_false(json_object_object_get_ex(v, "faults", &x));
	assert_false(json_object_object_get_ex(v, "seen_s_ago", &x));
	assert_false(json_object_object_get_ex(v, "error", &x));
	json_object_put(v);
}

static void no_or_unknown_state(void **state)
{
	(void)state;
	assert_null(view_of("{\"ok\":true}"));
	assert_null(view_of("{\"agent\":{\"state\":\"\\u001b[2J\"}}"));
	assert_null(view_of("{\"agent\":[1]}"));
	assert_null(view_of("{\"agent\":{\"info\":{}}}"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(well_formed_report_kept),
		cmocka_unit_test(hostile_report_filtered),
		cmocka_unit_test(no_or_unknown_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

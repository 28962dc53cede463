/* shoji-agent's handlers (src/agent/agent_ops.c, agent_cmd.c) without a VM: the info text it
 * sends passes the host's parser; host values out of range are refused (the clock before 2020
 * or after 2200, a display of 0 or over 16384, a clipboard that is not text or too big); the
 * clipboard and resize commands get their input and give their output; a command that hangs is
 * killed at its deadline with its children; messages only the agent sends are not answered. */
#include "unit.h"

#include <time.h>
#include <unistd.h>

#include "agent/agent.h"

static void info_text_parses(void **state)
{
	(void)state;
	char text[AGENT_INFO_MAX_ENTRIES * (AGENT_INFO_KEY_MAX + AGENT_INFO_VALUE_MAX + 2)];
	uint32_t n = agent_info_text(text, sizeof(text));
	struct agent_info_entry e[AGENT_INFO_MAX_ENTRIES];
	struct err err;
	int k = agent_info_parse((const uint8_t *)text, n, e, &err);
	assert_true(k >= 6);
	assert_string_equal(e[0].key, "os");
}

static uint8_t ack_status(const struct agent_config *c, uint8_t type, const void *payload, uint32_t len)
{
	struct agent_msg m = {.type = type, .len = len, .payload = payload};
	struct agent_out out;
	agent_handle(c, &m, &out);
	assert_int_equal(out.type, AGENT_ACK);
	assert_int_equal(out.payload[0], type);
	return out.payload[1];
}

static void host_values_bounded(void **state)
{
	(void)state;
	struct agent_config c = {.resize = "exit 0", .clip_set = "cat >/dev/null", .clip_max = 4};
	uint64_t t1999 = 946684799ull * 1000000000ull, t2300 = 10413792000ull * 1000000000ull;
	assert_int_equal(ack_status(&c, AGENT_TIME_SET, &t1999, 8), 1);
	assert_int_equal(ack_status(&c, AGENT_TIME_SET, &t2300, 8), 1);
	uint32_t zero[2] = {0, 600}, huge[2] = {16385, 600}, ok[2] = {800, 600};
	assert_int_equal(ack_status(&c, AGENT_RESIZE, zero, 8), 1);
	assert_int_equal(ack_status(&c, AGENT_RESIZE, huge, 8), 1);
	assert_int_equal(ack_status(&c, AGENT_RESIZE, ok, 8), 0);
	assert_int_equal(ack_status(&c, AGENT_CLIP_DATA, "\x01png", 4), 1); /* not text */
	assert_int_equal(ack_status(&c, AGENT_CLIP_DATA, "\0hello", 6), 1); /* over clip_max */
	assert_int_equal(ack_status(&c, AGENT_CLIP_DATA, "\0hey", 4), 0);
	assert_int_equal(ack_status(&c, AGENT_CLIP_DATA, "\0h\xffy", 4), 1); /* not UTF-8 */
	assert_int_equal(ack_status(&c, AGENT_CLIP_DATA, "\0h\0y", 4), 1);   /* a NUL */
	struct agent_config none = {0};
	assert_int_equal(ack_status(&none, AGENT_RESIZE, ok, 8), 2); /* not offered */
}

static void clipboard_round_trip(void **state)
{
	(void)state;
	char path[128], set[256], get[256];
	unit_tmp_path(path, sizeof(path), "shoji-agent-clip");
	snprintf(set, sizeof(set), "cat >%s", path);
	snprintf(get, sizeof(get), "cat %s", path);
	struct agent_config c = {.clip_get = get, .clip_set = set, .clip_max = 1024};
	assert_int_equal(ack_status(&c, AGENT_CLIP_DATA, "\0copied text", 12), 0);
	struct agent_msg m = {.type = AGENT_CLIP_GET, .len = 0, .payload = (const uint8_t *)""};
	struct agent_out out;
	agent_handle(&c, &m, &out);
	assert_int_equal(out.type, AGENT_CLIP_DATA);
	assert_int_equal(out.len, 12);
	assert_memory_equal(out.payload, "\0copied text", 12);
	assert_true(out.owned);
	free(out.payload);
	/* what the command prints must be text within clip_max, else the host is told it failed */
	static const char *const bad[] = {"printf 'a\\377b'", "printf 'a\\000b'",
					  "head -c 2000 /dev/zero | tr '\\0' x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_config b = {.clip_get = bad[i], .clip_set = set, .clip_max = 1024};
		assert_int_equal(ack_status(&b, AGENT_CLIP_GET, "", 0), 1);
	}
	unlink(path);
}

static void hanging_command_killed(void **state)
{
	(void)state;
	char path[128], cmd[256];
	unit_tmp_path(path, sizeof(path), "shoji-agent-child");
	unlink(path);
	/* a child of the command that would write the file after the deadline */
	snprintf(cmd, sizeof(cmd), "(sleep 2; touch %s) & sleep 30", path);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(agent_run(cmd, NULL, 0, NULL, NULL, 0, 300, NULL), -1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec < 2);
	sleep(3);
	assert_int_not_equal(access(path, F_OK), 0); /* the child died with it */
	uint8_t *out;
	uint32_t len;
	assert_int_equal(agent_run("head -c 100 /dev/zero", NULL, 0, &out, &len, 10, 3000, NULL), -1); /* too much */
}

static void agent_words_not_answered(void **state)
{
	(void)state;
	struct agent_config c = {0};
	uint8_t ack[2] = {AGENT_SHUTDOWN, 0};
	struct agent_msg m = {.type = AGENT_ACK, .len = 2, .payload = ack};
	struct agent_out out;
	agent_handle(&c, &m, &out);
	assert_int_equal(out.type, 0);
	assert_int_equal(out.then, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(info_text_parses),         cmocka_unit_test(host_values_bounded),
		cmocka_unit_test(clipboard_round_trip),     cmocka_unit_test(hanging_command_killed),
		cmocka_unit_test(agent_words_not_answered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

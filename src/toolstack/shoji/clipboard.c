/* clipboard: `shoji clipboard [status] | copy VM | paste VM | clear`: what the seat's chords do
 * (shojid's clipboard-copy, clipboard-paste, clipboard-clear and clipboard), for the seat's
 * user or root, under the VMs' [policy]. The content never comes here: shojid holds it. */
#include <stdio.h>
#include <string.h>

#include "../vmdef.h"
#include "commands.h"

static int bad_usage(const char *what)
{
	fprintf(stderr, "shoji clipboard: %s\n", what);
	command_usage(stderr, "clipboard");
	return CLI_USAGE;
}

static void print(const char *verb, struct json_object *rep)
{
	if (strcmp(verb, "paste") == 0)
		printf("pasted %lld bytes from %s into %s\n", cli_int(rep, "bytes", 0), cli_str(rep, "from", "?"),
		       cli_str(rep, "to", "?"));
	else if (json_object_get_boolean(json_object_object_get(rep, "held")))
		printf("holding %lld bytes from %s (copied %llds ago)\n", cli_int(rep, "bytes", 0),
		       cli_str(rep, "from", "?"), cli_int(rep, "age_s", 0));
	else
		printf("nothing held\n");
}

int cmd_clipboard(struct cli *c, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "status";
	bool named = strcmp(verb, "copy") == 0 || strcmp(verb, "paste") == 0;
	if (!named && strcmp(verb, "status") && strcmp(verb, "clear"))
		return bad_usage("unknown action; use status, copy VM, paste VM or clear");
	if (argc != (named ? 3 : argc > 1 ? 2 : 1))
		return bad_usage(named ? "copy and paste take one VM name" : "too many arguments");
	if (named && !vmdef_name_ok(argv[2]))
		return bad_usage("that is not a VM name (1 to 32 of A-Z a-z 0-9 . _ -)");
	char cmd[32];
	snprintf(cmd, sizeof(cmd), strcmp(verb, "status") ? "clipboard-%s" : "clipboard", verb);
	struct json_object *rep;
	int r = cli_call(c, cli_request(cmd, named ? argv[2] : NULL), &rep, NULL);
	if (r != CLI_OK)
		return r;
	if (c->json)
		cli_print_json(rep);
	else
		print(verb, rep);
	json_object_put(rep);
	return CLI_OK;
}

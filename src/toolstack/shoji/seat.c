/* seat: `shoji seat` (runs shoji-seat, found beside shoji, on this runtime directory) and
 * `shoji switch NAME` (asks the running seat, through its control socket, to show NAME). */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/rpc.h"
#include "../vmdef.h"
#include "commands.h"

#define SWITCH_TIMEOUT_MS 3000

int cmd_seat(struct cli *c, int argc, char **argv)
{
	char self[4096], seat[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return cli_fail(CLI_ERROR, "cannot find where shoji is installed: %s", strerror(errno));
	self[n] = '\0';
	snprintf(seat, sizeof(seat), "%s/shoji-seat", dirname(self));
	char **args = calloc((size_t)argc + 4, sizeof(char *));
	if (!args)
		return cli_fail(CLI_ERROR, "out of memory");
	args[0] = seat;
	args[1] = "--runtime-dir";
	args[2] = c->paths.runtime;
	for (int i = 1; i < argc; i++)
		args[i + 2] = argv[i];
	execv(seat, args);
	int en = errno;
	free(args);
	return cli_fail(CLI_ERROR, "cannot run %s: %s; install shoji-seat beside shoji", seat, strerror(en));
}

int cmd_switch(struct cli *c, int argc, char **argv)
{
	if (argc != 2 || !vmdef_name_ok(argv[1])) {
		fprintf(stderr, "shoji switch: %s\n", argc != 2 ? "one VM name is needed" : "that is not a VM name");
		command_usage(stderr, "switch");
		return CLI_USAGE;
	}
	return seat_switch(c, argv[1], false);
}

int seat_switch(struct cli *c, const char *name, bool quiet)
{
	char sock[512];
	struct err e;
	int fd, en;
	if (paths_get(&c->paths, PATHS_SEAT_CONTROL, NULL, sock, sizeof(sock), &e) < 0)
		return quiet ? CLI_USAGE : cli_fail(CLI_USAGE, "%s", e.msg);
	if (rpc_connect(sock, &fd, &en, &e) < 0) {
		int st = en == ENOENT || en == ECONNREFUSED ? CLI_NO_DAEMON : en == EACCES ? CLI_PERMISSION : CLI_ERROR;
		if (quiet)
			return st;
		if (st == CLI_NO_DAEMON)
			return cli_fail(st, "the seat is not running (nothing at %s); start it with shoji seat", sock);
		return cli_fail(st, "%s", e.msg);
	}
	struct json_object *req = json_object_new_object(), *rep = NULL, *ok;
	json_object_object_add(req, "cmd", json_object_new_string("switch"));
	json_object_object_add(req, "name", json_object_new_string(name));
	int r = rpc_call(fd, NULL, req, SWITCH_TIMEOUT_MS, "shoji-seat", &rep, NULL, &e);
	json_object_put(req);
	close(fd);
	if (r < 0)
		return quiet ? CLI_ERROR : cli_fail(CLI_ERROR, "%s", e.msg);
	int status = CLI_OK;
	if (c->json && !quiet)
		cli_print_json(rep);
	if (!json_object_object_get_ex(rep, "ok", &ok) || !json_object_get_boolean(ok)) {
		status = CLI_NOT_FOUND;
		if (!c->json && !quiet)
			cli_fail(status, "%s", cli_str(rep, "error", "the seat gave no reason"));
	}
	json_object_put(rep);
	return status;
}

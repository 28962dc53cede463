/* cli: what the shoji command's parts share: exit statuses, the connection to shojid, output
 * helpers. */
#ifndef SHOJI_CLI_H
#define SHOJI_CLI_H

#include <json-c/json.h>
#include <stdbool.h>

#include "../../common/err.h"
#include "../../common/rpc.h"
#include "../paths.h"

/* Exit statuses (docs/shoji.1). */
enum cli_exit {
	CLI_OK = 0,
	CLI_ERROR = 1,
	CLI_USAGE = 2,
	CLI_NOT_FOUND = 3,
	CLI_STATE = 4,
	CLI_PERMISSION = 5,
	CLI_NO_DAEMON = 6,
	CLI_EXISTS = 7,
	CLI_REFUSED = 8,
};

struct cli {
	struct paths paths;
	bool json;
	int fd;               /* connection to shojid, -1 until cli_connect */
	struct rpc_reader rd; /* its input */
};

/* Connects to shojid; prints the error and returns its exit status on failure. */
int cli_connect(struct cli *c);
/* Sends req (consumed) and waits for the reply. Returns CLI_OK with *reply (owned), or prints
 * the error (as JSON with --json) and returns the exit status its code maps to. fd_out may be
 * NULL. */
int cli_call(struct cli *c, struct json_object *req, struct json_object **reply, int *fd_out);
/* A request object {"cmd":cmd[,"name":name]}. */
struct json_object *cli_request(const char *cmd, const char *name);
/* Prints a one-line error "shoji: ..." and returns status. */
int cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* With --json: prints obj; returns CLI_OK. */
int cli_print_json(struct json_object *obj);

const char *cli_str(struct json_object *o, const char *key, const char *def);
long long cli_int(struct json_object *o, const char *key, long long def);

/* console.c: relays the terminal to the VM's serial console until Ctrl-] or the end. */
int cli_console(const char *name, int fd);

#endif

/* commands: the shoji subcommands; each gets argv from its own name on and returns the exit
 * status (cli.h). */
#ifndef SHOJI_COMMANDS_H
#define SHOJI_COMMANDS_H

#include <stdbool.h>
#include <stdio.h>

#include "cli.h"

int cmd_create(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_net(struct cli *c, int argc, char **argv);
int cmd_usb(struct cli *c, int argc, char **argv);
int cmd_info(struct cli *c, int argc, char **argv);
int cmd_start(struct cli *c, int argc, char **argv);
int cmd_stop(struct cli *c, int argc, char **argv);
int cmd_kill(struct cli *c, int argc, char **argv);
int cmd_pause(struct cli *c, int argc, char **argv);
int cmd_resume(struct cli *c, int argc, char **argv);
int cmd_console(struct cli *c, int argc, char **argv);
int cmd_edit(struct cli *c, int argc, char **argv);
int cmd_set(struct cli *c, int argc, char **argv);
int cmd_delete(struct cli *c, int argc, char **argv);
int cmd_logs(struct cli *c, int argc, char **argv);
int cmd_events(struct cli *c, int argc, char **argv);
/* images.c */
int cmd_template(struct cli *c, int argc, char **argv);
int cmd_snapshot(struct cli *c, int argc, char **argv);
int cmd_run(struct cli *c, int argc, char **argv);
/* Starts d as a disposable VM (shojid's run; its first disk on a template): CLI_OK with *rep
 * (name, pid; printed with --json), or the error printed and its status. */
struct vmdef;
int run_disposable(struct cli *c, const struct vmdef *d, struct json_object **rep);
/* browse.c */
int cmd_browse(struct cli *c, int argc, char **argv);
/* seat.c */
int cmd_seat(struct cli *c, int argc, char **argv);
int cmd_clipboard(struct cli *c, int argc, char **argv);
int cmd_switch(struct cli *c, int argc, char **argv);
/* Asks the running seat to show name: CLI_OK, CLI_NO_DAEMON (no seat runs), or another status;
 * the error is printed unless quiet. */
int seat_switch(struct cli *c, const char *name, bool quiet);

/* create and run: --firmware uefi or CODE,vars=TEMPLATE set in d (CODE made absolute;
 * TEMPLATE must be). */
struct vmdef;
int firmware_option(struct vmdef *d, const char *cmd, const char *spec);

/* Prints the usage of one command. */
void command_usage(FILE *f, const char *name);

#endif

/* commands: the shoji subcommands; each gets argv from its own name on and returns the exit
 * status (cli.h). */
#ifndef SHOJI_COMMANDS_H
#define SHOJI_COMMANDS_H

#include <stdio.h>

#include "cli.h"

int cmd_create(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
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
/* seat.c */
int cmd_seat(struct cli *c, int argc, char **argv);
int cmd_clipboard(struct cli *c, int argc, char **argv);
int cmd_switch(struct cli *c, int argc, char **argv);

/* create and run: --firmware uefi or CODE,vars=TEMPLATE set in d (CODE made absolute;
 * TEMPLATE must be). */
struct vmdef;
int firmware_option(struct vmdef *d, const char *cmd, const char *spec);

/* Prints the usage of one command. */
void command_usage(FILE *f, const char *name);

#endif

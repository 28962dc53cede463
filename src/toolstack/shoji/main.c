/* shoji: the command line of the shoji toolstack. Global options, the command table with each
 * command's help, and dispatch; the commands are in commands.c and talk to shojid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/version.h"
#include "cli.h"
#include "commands.h"

static const struct command {
	const char *name, *args, *help;
	int (*run)(struct cli *c, int argc, char **argv);
} commands[] = {
	{"create",
	 "NAME [--memory SIZE] [--cpus N] [--kernel PATH] [--initrd PATH] [--cmdline STR]\n"
	 "       [--firmware uefi|CODE,vars=TEMPLATE] (a UEFI boot from the disks instead of a kernel)\n"
	 "       [--disk PATH[,ro][,serial=ID][,format=raw|qcow2]]... [--net SPEC]... [--vsock CID|auto]\n"
	 "       [--label COLOUR] [--display on|off] [--autostart yes|no]\n"
	 "       | create [NAME] --from FILE",
	 "define a new VM, from options or from a definition file", cmd_create},
	{"list", "", "list the VMs and their state", cmd_list},
	{"info", "NAME", "show a VM's definition summary, state and recent events", cmd_info},
	{"start", "NAME", "start a VM (waits until its monitor answers)", cmd_start},
	{"stop", "NAME [--timeout S]", "power a VM off: ACPI shutdown, then after S seconds (default 30) a hard stop",
	 cmd_stop},
	{"kill", "NAME", "end a VM's monitor at once (SIGKILL)", cmd_kill},
	{"pause", "NAME", "pause a VM's vCPUs", cmd_pause},
	{"resume", "NAME", "resume a paused VM", cmd_resume},
	{"console", "NAME", "attach the terminal to a VM's serial console (Ctrl-] detaches)", cmd_console},
	{"edit", "NAME", "edit a VM's definition in $EDITOR (checked before it is saved)", cmd_edit},
	{"set", "NAME KEY=VALUE...",
	 "change definition keys (applied at the next start)\n"
	 "       e.g. memory=2G cpus=2 label=blue disk.ID.path=/img nic.ID.type=slirp, disk.ID= removes a disk;\n"
	 "       the edits are checked together: firmware=uefi kernel= initrd= cmdline= boots the disks",
	 cmd_set},
	{"delete", "NAME", "delete a stopped VM's definition, state and logs (not its disk images)", cmd_delete},
	{"logs", "NAME [--bytes N]", "show the end of a VM's serial log and its events", cmd_logs},
	{"events", "[NAME] [--follow]", "show the event log (started, stopped, crashed, ...)", cmd_events},
	{"template", "import NAME IMAGE [--replace] | list | info NAME | delete NAME",
	 "manage templates: root images VMs start on (import copies a raw or qcow2 image;\n"
	 "       --replace makes a new version, which each VM gets at its next start)",
	 cmd_template},
	{"snapshot", "create VM [NAME] | list VM | revert VM NAME | delete VM NAME",
	 "snapshots of a VM's qcow2 disks (create works while it runs; revert and delete need it stopped;\n"
	 "       revert drops the snapshots taken after NAME)",
	 cmd_snapshot},
	{"run",
	 "--disposable TEMPLATE --kernel PATH|--firmware uefi [--initrd PATH] [--cmdline STR]\n"
	 "       [--memory SIZE] [--cpus N] [--label COLOUR]",
	 "start a disposable VM (disp1, disp2, ...) on a template: its writes vanish and the VM is\n"
	 "       removed when it stops (label red unless given)",
	 cmd_run},
	{"browse",
	 "[URL] [--template NAME] [--memory SIZE] [--cpus N] [--net slirp|passt] [--kernel PATH [--initrd PATH] "
	 "[--cmdline STR]]",
	 "open URL in a new secure browser VM: disposable, on the browser template (default), label\n"
	 "       green, NAT networking only (libslirp in the monitor; --net passt: outside it); shown in the\n"
	 "       seat; closing the browser removes it",
	 cmd_browse},
	{"seat", "[SEAT OPTIONS]",
	 "run shoji-seat: the window that shows the VMs with a display (see shoji-seat --help)", cmd_seat},
	{"switch", "NAME", "make the running seat show NAME", cmd_switch},
	{"net", "", "show the links between VMs' NICs (type = vm) and whether each is up", cmd_net},
	{"usb", "list [VM] | attach VM DEVICE | detach DEVICE",
	 "list the host's USB devices (port, vendor:product, every interface class, who holds it);\n"
	 "       with VM, whether VM's [policy] lets it have each and why not; attach gives the device\n"
	 "       at port DEVICE (1-2) to running VM under its policy, detach gives it back to the host",
	 cmd_usb},
	{"clipboard", "[status] | copy VM | paste VM | clear",
	 "move the clipboard between VMs as the seat's chords do (the seat's user or root only):\n"
	 "       copy holds VM's clipboard, paste hands what is held to VM once, both under the VMs' [policy]",
	 cmd_clipboard},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shoji [--json] [--runtime-dir DIR] COMMAND [ARGS]\n       shoji --version\n"
		"Manages shoji VMs through shojid.\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %.*s\n", commands[i].name, (int)strcspn(commands[i].help, "\n"), commands[i].help);
	fprintf(f,
		"\n'shoji COMMAND --help' explains one command. --json prints each result as one JSON\n"
		"object. Exit status: 0 ok, 1 error, 2 usage, 3 no such VM, 4 wrong state (e.g. already\n"
		"running), 5 permission denied, 6 shojid not running, 7 the VM already exists, 8 refused\n"
		"by a VM's policy.\n"
		"See shoji(1) and docs/vm-definition.md.\n");
}

void command_usage(FILE *f, const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			fprintf(f, "usage: shoji %s %s\n%s.\n", name, commands[i].args, commands[i].help);
	}
}

int main(int argc, char **argv)
{
	struct cli c = {.fd = -1};
	const char *runtime_dir = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			c.json = true;
		} else if (strcmp(argv[i], "--runtime-dir") == 0 && i + 1 < argc) {
			runtime_dir = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CLI_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			version_print("shoji");
			return CLI_OK;
		} else {
			return cli_fail(CLI_USAGE, "unknown option '%s' (see shoji --help)", argv[i]);
		}
	}
	if (i == argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	struct err e;
	if (paths_init(&c.paths, NULL, runtime_dir, &e) < 0)
		return cli_fail(CLI_USAGE, "%s", e.msg);
	for (size_t k = 0; k < NCOMMANDS; k++) {
		if (strcmp(commands[k].name, argv[i]) == 0) {
			for (int a = i + 1; a < argc; a++) {
				if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
					command_usage(stdout, argv[i]);
					return CLI_OK;
				}
				if (strcmp(argv[a], "--json") == 0) { /* accepted after the command too */
					c.json = true;
					memmove(&argv[a], &argv[a + 1], (size_t)(argc - a) * sizeof(char *));
					argc--;
					a--;
				}
			}
			int status = commands[k].run(&c, argc - i, argv + i);
			rpc_reader_free(&c.rd);
			return status;
		}
	}
	return cli_fail(CLI_USAGE, "unknown command '%s' (see shoji --help)", argv[i]);
}

/* browse: `shoji browse [URL]`: the secure browser. A disposable VM on the browser template (the
 * image builder's `browser` recipe: a kiosk running Firefox ESR full screen), label green, with
 * a display and one user-mode NIC (NAT only: the host's loopback and other VMs are out of its
 * reach; libslirp in the monitor by default, --net passt for passt outside it, where the monitor
 * holds no host socket and runs in an empty network namespace),
 * the URL handed to the guest as the parameter url (guest_param.h), vsock-cid = auto for the
 * image's guest agent; shown and switched to in the seat when one runs. Closing the browser
 * powers the guest off, and a disposable VM is removed with its writes when it stops. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../vmdef.h"
#include "commands.h"

#define SEAT_WAIT_MS 10000 /* for the seat to list the new VM after its start */

static int browse_usage(const char *what)
{
	fprintf(stderr, "shoji browse: %s\n", what);
	command_usage(stderr, "browse");
	return CLI_USAGE;
}

static int set(struct vmdef *d, const char *fmt, const char *value)
{
	char assignment[512];
	struct err e;
	snprintf(assignment, sizeof(assignment), fmt, value);
	if (vmdef_set(d, assignment, &e) < 0)
		return browse_usage(e.msg);
	return CLI_OK;
}

/* The browser VM's definition from the options (the template's root, UEFI unless --kernel). */
static int definition(struct vmdef *d, int argc, char **argv, const struct option *opts, const char **tmpl)
{
	const char *kernel = NULL, *initrd = NULL, *cmdline = NULL, *memory = "2G", *cpus = "2", *net = "slirp";
	int o;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 't': *tmpl = optarg; break;
		case 'm': memory = optarg; break;
		case 'c': cpus = optarg; break;
		case 'k': kernel = optarg; break;
		case 'i': initrd = optarg; break;
		case 'l': cmdline = optarg; break;
		case 'n': net = optarg; break;
		default: return browse_usage("unknown option or missing value");
		}
	}
	if (argc - optind > 1)
		return browse_usage("one URL at most");
	if (strcmp(net, "passt") != 0 && strcmp(net, "slirp") != 0)
		return browse_usage("--net is slirp (the default: NAT inside the monitor) or passt (NAT outside it)");
	vmdef_init(d, "disp");
	int r = kernel ? set(d, "kernel=%s", kernel) : firmware_option(d, "browse", "uefi");
	r = r ? r : set(d, "disk.root.template=%s", *tmpl);
	r = r ? r : set(d, "memory=%s", memory);
	r = r ? r : set(d, "cpus=%s", cpus);
	r = r ? r : set(d, "label=%s", "green");
	r = r ? r : set(d, "display=%s", "on");
	r = r ? r : set(d, "nic.net.type=%s", net); /* NAT; host-loopback stays off */
	r = r ? r : set(d, "vsock-cid=%s", "auto"); /* the image's guest agent, where the host has vsock */
	r = r || !initrd ? r : set(d, "initrd=%s", initrd);
	r = r || !cmdline ? r : set(d, "cmdline=%s", cmdline);
	return r || optind == argc ? r : set(d, "param=url=%s", argv[optind]);
}

/* Shows the new VM in the seat, once the seat lists it; says so when no seat runs. */
static void show(struct cli *c, const char *name)
{
	struct timespec pause = {0, 200 * 1000000};
	int st = CLI_ERROR;
	for (int waited = 0; waited < SEAT_WAIT_MS && st != CLI_OK && st != CLI_NO_DAEMON; waited += 200) {
		st = seat_switch(c, name, true);
		if (st != CLI_OK)
			nanosleep(&pause, NULL);
	}
	if (c->json)
		return;
	if (st == CLI_OK)
		printf("the seat shows '%s'\n", name);
	else if (st == CLI_NO_DAEMON)
		printf("no seat is running: start one with 'shoji seat' to see '%s'\n", name);
	else
		printf("the seat did not show '%s' within %d s; switch to it with the hot key\n", name,
		       SEAT_WAIT_MS / 1000);
}

int cmd_browse(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"template", required_argument, NULL, 't'}, {"memory", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},     {"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},   {"cmdline", required_argument, NULL, 'l'},
		{"net", required_argument, NULL, 'n'},      {NULL, 0, NULL, 0},
	};
	const char *tmpl = "browser";
	struct vmdef *d = malloc(sizeof(*d));
	if (!d)
		return cli_fail(CLI_ERROR, "out of memory");
	struct json_object *rep = NULL;
	int r = definition(d, argc, argv, opts, &tmpl);
	if (r == CLI_OK)
		r = run_disposable(c, d, &rep);
	free(d);
	if (r != CLI_OK)
		return r;
	const char *name = cli_str(rep, "name", "?");
	if (!c->json)
		printf("browser VM '%s' started on template '%s'; closing the browser removes it\n", name, tmpl);
	show(c, name);
	json_object_put(rep);
	return CLI_OK;
}

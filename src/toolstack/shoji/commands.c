/* commands: the shoji subcommands (see main.c for the table and their help). Each checks its
 * arguments, makes one request to shojid (two for edit) and prints the result as text or, with
 * --json, as the daemon's reply object. */
#include "commands.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/file.h"
#include "../../common/rpc.h"
#include "../statefile.h"
#include "../vmdef.h"

static int usage_error(const char *cmd, const char *what)
{
	fprintf(stderr, "shoji %s: %s\n", cmd, what);
	command_usage(stderr, cmd);
	return CLI_USAGE;
}

/* For commands taking exactly one NAME. */
static int one_name(int argc, char **argv, const char **name)
{
	if (argc != 2)
		return usage_error(argv[0], argc < 2 ? "a VM name is needed" : "too many arguments");
	if (!vmdef_name_ok(argv[1]))
		return usage_error(argv[0], "that is not a VM name (1 to 32 of A-Z a-z 0-9 . _ -)");
	*name = argv[1];
	return CLI_OK;
}

static void print_time(double t)
{
	time_t s = (time_t)t;
	struct tm tm;
	char buf[32];
	localtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	fputs(buf, stdout);
}

static void print_events(struct json_object *arr)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
		struct json_object *ev = json_object_array_get_idx(arr, i), *t;
		print_time(json_object_object_get_ex(ev, "time", &t) ? json_object_get_double(t) : 0);
		const char *detail = cli_str(ev, "detail", "");
		printf("  %-12s %-9s %s\n", cli_str(ev, "vm", "?"), cli_str(ev, "event", "?"), detail);
	}
}

/* Calls and, on success, prints the reply as JSON or by the printer. */
static int simple(struct cli *c, struct json_object *req, void (*print)(struct json_object *))
{
	struct json_object *rep;
	int r = cli_call(c, req, &rep, NULL);
	if (r != CLI_OK)
		return r;
	if (c->json)
		cli_print_json(rep);
	else if (print)
		print(rep);
	json_object_put(rep);
	return CLI_OK;
}

/* ---- create ---- */

/* A path made absolute against the current directory (cut to size: a path that long is
 * refused later by the definition's own checks). */
static void make_absolute(const char *in, char *out, size_t size)
{
	char cwd[4096];
	int n;
	if (in[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		n = snprintf(out, size, "%s", in);
	else
		n = snprintf(out, size, "%s/%s", cwd, in);
	if (n < 0)
		out[0] = '\0';
}

static int set_key(struct vmdef *d, const char *key, const char *value, bool path)
{
	char abs[4096], assignment[4200];
	struct err e;
	if (path && *value)
		make_absolute(value, abs, sizeof(abs));
	snprintf(assignment, sizeof(assignment), "%s=%s", key, path && *value ? abs : value);
	if (vmdef_set(d, assignment, &e) < 0)
		return cli_fail(CLI_USAGE, "create: --%s", e.msg);
	return CLI_OK;
}

int firmware_option(struct vmdef *d, const char *cmd, const char *spec)
{
	char abs[4096];
	struct err e;
	if (strcmp(spec, VMDEF_FIRMWARE_UEFI) && spec[0] != '/')
		make_absolute(spec, abs, sizeof(abs));
	else
		snprintf(abs, sizeof(abs), "%s", spec);
	if (vmdef_set_firmware_spec(d, abs, &e) < 0)
		return cli_fail(CLI_USAGE, "%s: %s", cmd, e.msg);
	return CLI_OK;
}

static int create_from_file(struct cli *c, const char *name, const char *file)
{
	char *text;
	size_t len;
	int en;
	struct err e;
	struct vmdef *d = malloc(sizeof(*d));
	if (!d)
		return cli_fail(CLI_ERROR, "out of memory");
	if (statefile_read(file, 64 * 1024, &text, &len, &en, &e) < 0) {
		free(d);
		return cli_fail(CLI_USAGE, "create: %s", e.msg);
	}
	int r = CLI_OK;
	if (vmdef_parse(text, file, d, &e) < 0)
		r = cli_fail(CLI_USAGE, "%s", e.msg);
	else if (name && strcmp(name, d->name))
		r = cli_fail(CLI_USAGE,
			     "create: %s defines '%s', not '%s'; fix its name key or the "
			     "command",
			     file, d->name, name);
	if (r == CLI_OK) {
		struct json_object *req = cli_request("create", d->name);
		json_object_object_add(req, "definition", json_object_new_string(text));
		r = simple(c, req, NULL);
		if (r == CLI_OK && !c->json)
			printf("created VM '%s'\n", d->name);
	}
	free(text);
	free(d);
	return r;
}

/* create's options into d: the kernel or firmware first, since every edit is checked against a
 * whole definition, then the rest in their order. */
static int create_options(struct vmdef *d, int argc, char **argv, const struct option *opts)
{
	int o, r = CLI_OK, ndisks = 0, nnics = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1 && r == CLI_OK) {
		if (o == 'k')
			r = set_key(d, "kernel", optarg, true);
		else if (o == 'F')
			r = firmware_option(d, "create", optarg);
	}
	if (r == CLI_OK && !d->kernel[0] && !d->firmware[0])
		r = cli_fail(CLI_USAGE,
			     "create: --kernel PATH is needed, or --firmware uefi to boot from the disks (or "
			     "--from FILE)");
	optind = 1;
	struct err e;
	char spec[4200], id[16];
	while (r == CLI_OK && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'm': r = set_key(d, "memory", optarg, false); break;
		case 'c': r = set_key(d, "cpus", optarg, false); break;
		case 'i': r = set_key(d, "initrd", optarg, true); break;
		case 'l': r = set_key(d, "cmdline", optarg, false); break;
		case 'v': r = set_key(d, "vsock-cid", optarg, false); break;
		case 'L': r = set_key(d, "label", optarg, false); break;
		case 'D': r = set_key(d, "display", optarg, false); break;
		case 'a': r = set_key(d, "autostart", optarg, false); break;
		case 'd':
			make_absolute(optarg, spec, sizeof(spec));
			snprintf(id, sizeof(id), "vd%c", 'a' + ndisks++);
			if (vmdef_add_disk_spec(d, id, spec, &e) < 0)
				r = cli_fail(CLI_USAGE, "create: %s", e.msg);
			break;
		case 'n':
			snprintf(id, sizeof(id), "net%d", nnics++);
			if (vmdef_add_nic_spec(d, id, optarg, &e) < 0)
				r = cli_fail(CLI_USAGE, "create: %s", e.msg);
			break;
		default: break;
		}
	}
	return r;
}

int cmd_create(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"memory", required_argument, NULL, 'm'},    {"cpus", required_argument, NULL, 'c'},
		{"kernel", required_argument, NULL, 'k'},    {"initrd", required_argument, NULL, 'i'},
		{"cmdline", required_argument, NULL, 'l'},   {"disk", required_argument, NULL, 'd'},
		{"net", required_argument, NULL, 'n'},       {"vsock", required_argument, NULL, 'v'},
		{"label", required_argument, NULL, 'L'},     {"display", required_argument, NULL, 'D'},
		{"autostart", required_argument, NULL, 'a'}, {"from", required_argument, NULL, 'f'},
		{"firmware", required_argument, NULL, 'F'},  {NULL, 0, NULL, 0},
	};
	const char *from = NULL;
	int o;
	/* First pass: find --from and check the options are known. */
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'f')
			from = optarg;
		else if (o == '?' || o == ':')
			return usage_error("create", "unknown option or missing value");
	}
	const char *name = optind < argc ? argv[optind] : NULL;
	if (optind + 1 < argc)
		return usage_error("create", "too many arguments");
	if (name && !vmdef_name_ok(name))
		return usage_error("create", "that is not a VM name (1 to 32 of A-Z a-z 0-9 . _ -)");
	if (from)
		return create_from_file(c, name, from);
	if (!name)
		return usage_error("create", "a VM name is needed");
	struct vmdef *d = malloc(sizeof(*d));
	char *text = malloc(65536);
	if (!d || !text) {
		free(d);
		free(text);
		return cli_fail(CLI_ERROR, "out of memory");
	}
	vmdef_init(d, name);
	int r = create_options(d, argc, argv, opts);
	if (r == CLI_OK && vmdef_format(d, text, 65536) < 0)
		r = cli_fail(CLI_ERROR, "create: the definition is too large");
	if (r == CLI_OK) {
		struct json_object *req = cli_request("create", name);
		json_object_object_add(req, "definition", json_object_new_string(text));
		r = simple(c, req, NULL);
		if (r == CLI_OK && !c->json)
			printf("created VM '%s'\n", name);
	}
	free(d);
	free(text);
	return r;
}

/* ---- list, info ---- */

static void print_list(struct json_object *rep)
{
	struct json_object *vms;
	if (!json_object_object_get_ex(rep, "vms", &vms))
		return;
	printf("%-20s %-9s %8s %8s %4s  %s\n", "NAME", "STATE", "PID", "MEMORY", "CPUS", "LABEL");
	for (size_t i = 0; i < json_object_array_length(vms); i++) {
		struct json_object *v = json_object_array_get_idx(vms, i);
		char pid[16] = "-", mem[16] = "?";
		if (cli_int(v, "pid", 0))
			snprintf(pid, sizeof(pid), "%lld", cli_int(v, "pid", 0));
		if (cli_int(v, "memory_mib", 0))
			snprintf(mem, sizeof(mem), "%lldM", cli_int(v, "memory_mib", 0));
		printf("%-20s %-9s %8s %8s %4lld  %s%s%s\n", cli_str(v, "name", "?"), cli_str(v, "state", "?"), pid,
		       mem, cli_int(v, "cpus", 0), cli_str(v, "label", ""),
		       cli_str(v, "error", NULL) ? "  definition error: " : "", cli_str(v, "error", ""));
	}
}

int cmd_list(struct cli *c, int argc, char **argv)
{
	if (argc != 1)
		return usage_error(argv[0], "list takes no arguments");
	return simple(c, cli_request("list", NULL), print_list);
}

static void print_links(struct json_object *rep)
{
	struct json_object *links;
	if (!json_object_object_get_ex(rep, "links", &links))
		return;
	printf("%-20s %-12s %-33s %-5s %s\n", "VM", "NIC", "PEER", "LINK", "");
	for (size_t i = 0; i < json_object_array_length(links); i++) {
		struct json_object *l = json_object_array_get_idx(links, i);
		char peer[80];
		const char *pn = cli_str(l, "peer_nic", NULL);
		if (strcmp(cli_str(l, "type", "vm"), "passt") == 0)
			snprintf(peer, sizeof(peer), "(passt: user networking)");
		else
			snprintf(peer, sizeof(peer), "%s%s%s", cli_str(l, "peer", "?"), pn ? ":" : "", pn ? pn : "");
		printf("%-20s %-12s %-33s %-5s %s\n", cli_str(l, "vm", "?"), cli_str(l, "nic", "?"), peer,
		       cli_str(l, "state", "?"), cli_str(l, "why", ""));
	}
}

int cmd_net(struct cli *c, int argc, char **argv)
{
	if (argc != 1)
		return usage_error(argv[0], "net takes no arguments");
	return simple(c, cli_request("net", NULL), print_links);
}

/* One line a device: port, id, classes, holder, names; with a VM named, whether it may have it. */
static void print_devices(struct json_object *rep)
{
	struct json_object *devs, *v;
	if (!json_object_object_get_ex(rep, "devices", &devs))
		return;
	printf("%-12s %-9s %-22s %-8s %s\n", "PORT", "ID", "CLASSES", "HOLDER", "NAME");
	for (size_t i = 0; i < json_object_array_length(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		char classes[64] = "";
		if (json_object_object_get_ex(d, "classes", &v))
			for (size_t k = 0; k < json_object_array_length(v); k++)
				snprintf(classes + strlen(classes), sizeof(classes) - strlen(classes), "%s%s",
					 k ? "," : "", json_object_get_string(json_object_array_get_idx(v, k)));
		bool whole = !json_object_object_get_ex(d, "complete", &v) || json_object_get_boolean(v);
		printf("%-12s %-9s %-22s %-8s %s%s%s%s\n", cli_str(d, "port", "?"), cli_str(d, "id", "?"), classes,
		       cli_str(d, "holder", "?"), cli_str(d, "manufacturer", ""),
		       *cli_str(d, "manufacturer", "") ? " " : "", cli_str(d, "product", ""),
		       whole ? "" : " (descriptors incomplete)");
		if (json_object_object_get_ex(d, "allowed", &v))
			printf("%-12s %s%s\n", "",
			       json_object_get_boolean(v) ? "allowed" : "refused: ", cli_str(d, "why", ""));
	}
	if (json_object_object_get_ex(rep, "seat_focus", &v)) /* only the seat's user and root see it */
		printf("the seat shows %s: devices plugged in go there where its usb-auto = focused\n",
		       v ? json_object_get_string(v) : "no VM");
}

int cmd_usb(struct cli *c, int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	int want = !strcmp(what, "list")  ? (argc == 3 ? 3 : 2)
		: !strcmp(what, "attach") ? 4
		: !strcmp(what, "detach") ? 3
					  : 0;
	if (!want || argc != want)
		return usage_error(argv[0],
				   "say list [VM], attach VM DEVICE or detach DEVICE (DEVICE: a port as "
				   "shoji usb list shows it, such as 1-2)");
	const char *vm = !strcmp(what, "detach") ? NULL : argc > 2 ? argv[2] : NULL;
	const char *port = !strcmp(what, "list") ? NULL : argv[argc - 1];
	if (vm && !vmdef_name_ok(vm))
		return usage_error(argv[0], "names are 1 to 32 of A-Z a-z 0-9 . _ -");
	if (port && !usb_port_ok(port))
		return usage_error(argv[0], "a device is named by its port as shoji usb list shows it (1-2, 3-1.4)");
	struct json_object *req = cli_request(port ? (vm ? "usb-attach" : "usb-detach") : "usb-list", vm);
	if (port)
		json_object_object_add(req, "device", json_object_new_string(port));
	return simple(c, req, port ? NULL : print_devices);
}

/* The guest agent's part of shoji info: its state, then what the guest reported. */
static void print_agent(struct json_object *vm)
{
	struct json_object *a, *v, *info;
	if (!json_object_object_get_ex(vm, "agent", &a))
		return;
	printf("%-17s %s", "agent", json_object_object_get_ex(a, "state", &v) ? json_object_get_string(v) : "?");
	if (json_object_object_get_ex(a, "caps", &v) && json_object_array_length(v)) {
		printf(" (");
		for (size_t i = 0; i < json_object_array_length(v); i++)
			printf("%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(v, i)));
		printf(")");
	}
	if (json_object_object_get_ex(a, "seen_s_ago", &v))
		printf(", heard %s s ago", json_object_get_string(v));
	if (json_object_object_get_ex(a, "faults", &v) && json_object_get_int64(v))
		printf(", %s faults", json_object_get_string(v));
	if (json_object_object_get_ex(a, "error", &v))
		printf(": %s", json_object_get_string(v));
	printf("\n");
	if (json_object_object_get_ex(a, "info", &info)) {
		json_object_object_foreach(info, k, val)
		{
			printf("  %-15s %s\n", k, json_object_get_string(val));
		}
	}
}

static void print_info(struct json_object *rep)
{
	struct json_object *vm, *ev;
	if (!json_object_object_get_ex(rep, "vm", &vm))
		return;
	static const char *const keys[] = {"name",
					   "state",
					   "pid",
					   "uptime_s",
					   "memory_mib",
					   "cpus",
					   "firmware",
					   "firmware_vars",
					   "boot",
					   "disks",
					   "nics",
					   "label",
					   "display",
					   "autostart",
					   "vsock_cid",
					   "vsock_auto",
					   "last_exit",
					   "error",
					   "jail_uid",
					   "definition",
					   "serial_log",
					   "serial_socket",
					   "control_socket",
					   "display_socket",
					   "cgroup",
					   "cgroup_memory_max",
					   "cgroup_pids_max"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		struct json_object *v;
		if (json_object_object_get_ex(vm, keys[i], &v) &&
		    (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 0))
			printf("%-17s %s\n", keys[i], json_object_get_string(v));
	}
	print_agent(vm);
	if (json_object_object_get_ex(rep, "events", &ev) && json_object_array_length(ev)) {
		printf("recent events:\n");
		print_events(ev);
	}
}

int cmd_info(struct cli *c, int argc, char **argv)
{
	const char *name;
	int r = one_name(argc, argv, &name);
	return r ? r : simple(c, cli_request("info", name), print_info);
}

/* ---- lifecycle ---- */

static int lifecycle(struct cli *c, int argc, char **argv, const char *cmd, const char *done)
{
	const char *name;
	int r = one_name(argc, argv, &name);
	if (r)
		return r;
	struct json_object *rep;
	r = cli_call(c, cli_request(cmd, name), &rep, NULL);
	if (r != CLI_OK)
		return r;
	if (c->json)
		cli_print_json(rep);
	else if (cli_int(rep, "pid", 0) && strcmp(cmd, "start") == 0)
		printf("%s '%s' (monitor pid %lld)\n", done, name, cli_int(rep, "pid", 0));
	else
		printf("%s '%s'\n", done, name);
	json_object_put(rep);
	return CLI_OK;
}

int cmd_start(struct cli *c, int argc, char **argv)
{
	return lifecycle(c, argc, argv, "start", "started");
}
int cmd_kill(struct cli *c, int argc, char **argv)
{
	return lifecycle(c, argc, argv, "kill", "killed");
}
int cmd_pause(struct cli *c, int argc, char **argv)
{
	return lifecycle(c, argc, argv, "pause", "paused");
}
int cmd_resume(struct cli *c, int argc, char **argv)
{
	return lifecycle(c, argc, argv, "resume", "resumed");
}
int cmd_delete(struct cli *c, int argc, char **argv)
{
	return lifecycle(c, argc, argv, "delete", "deleted");
}

static int parse_number(const char *cmd, const char *opt, const char *s, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0 || v > max) {
		char msg[200];
		snprintf(msg, sizeof(msg), "%s needs a whole number from 0 to %ld, not '%s'", opt, max, s);
		return usage_error(cmd, msg);
	}
	*out = v;
	return CLI_OK;
}

/* Takes "--OPT VALUE" out of argv (for commands with one numeric option). */
static int take_option(int *argc, char **argv, const char *opt, long max, long *value, bool *given)
{
	*given = false;
	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], opt))
			continue;
		if (i + 1 >= *argc)
			return usage_error(argv[0], "an option needs a value");
		int r = parse_number(argv[0], opt, argv[i + 1], max, value);
		if (r)
			return r;
		*given = true;
		memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 1) * sizeof(char *));
		*argc -= 2;
		i--;
	}
	return CLI_OK;
}

int cmd_stop(struct cli *c, int argc, char **argv)
{
	long timeout = 30;
	bool given;
	int r = take_option(&argc, argv, "--timeout", 3600, &timeout, &given);
	const char *name;
	if (r || (r = one_name(argc, argv, &name)))
		return r;
	struct json_object *req = cli_request("stop", name), *rep;
	json_object_object_add(req, "timeout", json_object_new_int((int)timeout));
	r = cli_call(c, req, &rep, NULL);
	if (r != CLI_OK)
		return r;
	if (c->json)
		cli_print_json(rep);
	else
		printf("stopped '%s'\n", name);
	json_object_put(rep);
	return CLI_OK;
}

int cmd_console(struct cli *c, int argc, char **argv)
{
	const char *name;
	int r = one_name(argc, argv, &name), fd = -1;
	if (r)
		return r;
	struct json_object *rep;
	r = cli_call(c, cli_request("console", name), &rep, &fd);
	if (r != CLI_OK)
		return r;
	json_object_put(rep);
	if (fd < 0)
		return cli_fail(CLI_ERROR, "shojid did not pass the console");
	return cli_console(name, fd);
}

/* ---- definitions ---- */

int cmd_set(struct cli *c, int argc, char **argv)
{
	if (argc < 3)
		return usage_error(argv[0], "a VM name and at least one KEY=VALUE are needed");
	if (!vmdef_name_ok(argv[1]))
		return usage_error(argv[0], "that is not a VM name");
	struct json_object *req = cli_request("set", argv[1]), *arr = json_object_new_array();
	for (int i = 2; i < argc; i++) {
		char abs[4200];
		const char *eq = strchr(argv[i], '=');
		/* Relative paths are relative to here, not to the daemon. */
		if (eq && eq[1] && eq[1] != '/' &&
		    (strncmp(argv[i], "kernel=", 7) == 0 || strncmp(argv[i], "initrd=", 7) == 0 ||
		     strncmp(argv[i], "firmware-vars=", 14) == 0 ||
		     (strncmp(argv[i], "firmware=", 9) == 0 && strcmp(eq + 1, VMDEF_FIRMWARE_UEFI)) ||
		     (strncmp(argv[i], "disk.", 5) == 0 && eq - argv[i] > 5 && strncmp(eq - 5, ".path", 5) == 0))) {
			char p[4096];
			make_absolute(eq + 1, p, sizeof(p));
			snprintf(abs, sizeof(abs), "%.*s=%s", (int)(eq - argv[i]), argv[i], p);
			json_object_array_add(arr, json_object_new_string(abs));
		} else {
			json_object_array_add(arr, json_object_new_string(argv[i]));
		}
	}
	json_object_object_add(req, "assign", arr);
	int r = simple(c, req, NULL);
	if (r == CLI_OK && !c->json)
		printf("changed '%s' (takes effect at its next start)\n", argv[1]);
	return r;
}

static int run_editor(const char *file)
{
	const char *editor = getenv("VISUAL");
	if (!editor || !*editor)
		editor = getenv("EDITOR");
	if (!editor || !*editor)
		editor = "vi";
	pid_t pid = fork();
	if (pid == 0) {
		execlp("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, file, (char *)NULL);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	return 0;
}

/* The definition into a new temporary file (its path in file[size]); false when it cannot be. */
static bool edit_temp_file(const char *name, const char *orig, char *file, size_t size)
{
	const char *tmpdir = getenv("TMPDIR");
	int n = snprintf(file, size, "%s/shoji-%s-XXXXXX.ini", tmpdir && *tmpdir ? tmpdir : "/tmp", name);
	int fd = n > 0 && (size_t)n < size ? mkstemps(file, 4) : -1; /* a TMPDIR too long: no file */
	if (fd < 0)
		return false;
	bool ok = file_write_all(fd, orig, strlen(orig)) == 0;
	close(fd);
	if (!ok)
		unlink(file);
	return ok;
}

/* The edited text sent as name's definition; a CLI_* status. */
static int edit_save(struct cli *c, const char *name, const char *text)
{
	struct json_object *req = cli_request("replace", name), *rep;
	json_object_object_add(req, "definition", json_object_new_string(text));
	int r = cli_call(c, req, &rep, NULL);
	if (r == CLI_OK) {
		if (c->json)
			cli_print_json(rep);
		else
			printf("saved '%s' (takes effect at its next start)\n", name);
		json_object_put(rep);
	}
	return r;
}

/* Whether the user, at a terminal, wants to edit again after an error. */
static bool edit_again(void)
{
	if (!isatty(STDIN_FILENO))
		return false;
	fprintf(stderr, "Edit again? [Y/n] ");
	int ch = getchar(), rest = ch;
	while (rest != '\n' && rest != EOF)
		rest = getchar();
	return !(ch == 'n' || ch == 'N' || ch == EOF);
}

/* One round of the editor on file. True when the edit is over, its CLI_* status in *status
 * (nothing changed, the change saved, or a failure); false when the text is not a valid
 * definition of name and the user edits again. */
static bool edit_round(struct cli *c, const char *name, const char *file, const char *orig, struct vmdef *d,
		       int *status)
{
	char *text = NULL;
	size_t len;
	int en;
	struct err e;
	bool over = true;
	if (run_editor(file) < 0) {
		*status = cli_fail(CLI_ERROR, "edit: the editor failed; nothing changed");
		return true;
	}
	if (statefile_read(file, 64 * 1024, &text, &len, &en, &e) < 0) {
		*status = cli_fail(CLI_ERROR, "edit: %s", e.msg);
		return true;
	}
	if (strcmp(text, orig) == 0) {
		printf("no change to '%s'\n", name);
		*status = CLI_OK;
	} else {
		bool valid = vmdef_parse(text, file, d, &e) == 0;
		if (valid && strcmp(d->name, name) == 0) {
			*status = edit_save(c, name, text);
		} else {
			if (valid)
				err_set(&e, "%s: the name must stay '%s' (to rename, create a new VM)", file, name);
			fprintf(stderr, "shoji: %s\n", e.msg);
			over = !edit_again();
			*status = CLI_USAGE;
		}
	}
	free(text);
	return over;
}

int cmd_edit(struct cli *c, int argc, char **argv)
{
	const char *name;
	int r = one_name(argc, argv, &name);
	if (r)
		return r;
	struct json_object *rep;
	if ((r = cli_call(c, cli_request("definition", name), &rep, NULL)) != CLI_OK)
		return r;
	char file[4096];
	const char *orig = cli_str(rep, "definition", "");
	struct vmdef *d = malloc(sizeof(*d));
	if (!d)
		r = cli_fail(CLI_ERROR, "edit: out of memory");
	else if (!edit_temp_file(name, orig, file, sizeof(file)))
		r = cli_fail(CLI_ERROR, "edit: cannot write a temporary file in %s", file);
	else {
		while (!edit_round(c, name, file, orig, d, &r))
			;
		unlink(file);
	}
	free(d);
	json_object_put(rep);
	return r;
}

/* ---- logs, events ---- */

static void print_logs(struct json_object *rep)
{
	struct json_object *s, *ev;
	if (json_object_object_get_ex(rep, "serial", &s))
		fwrite(json_object_get_string(s), 1, (size_t)json_object_get_string_len(s), stdout);
	const char *mon = cli_str(rep, "monitor", "");
	if (*mon)
		printf("\n--- monitor ---\n%s", mon);
	if (json_object_object_get_ex(rep, "events", &ev) && json_object_array_length(ev)) {
		printf("\n--- events ---\n");
		print_events(ev);
	}
}

int cmd_logs(struct cli *c, int argc, char **argv)
{
	long bytes = 16384;
	bool given;
	int r = take_option(&argc, argv, "--bytes", 256 * 1024, &bytes, &given);
	const char *name;
	if (r || (r = one_name(argc, argv, &name)))
		return r;
	struct json_object *req = cli_request("logs", name);
	json_object_object_add(req, "bytes", json_object_new_int((int)bytes));
	return simple(c, req, print_logs);
}

static void print_event_list(struct json_object *rep)
{
	struct json_object *ev;
	if (json_object_object_get_ex(rep, "events", &ev))
		print_events(ev);
}

int cmd_events(struct cli *c, int argc, char **argv)
{
	bool follow = false;
	const char *name = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 || strcmp(argv[i], "-f") == 0)
			follow = true;
		else if (!name && vmdef_name_ok(argv[i]))
			name = argv[i];
		else
			return usage_error(argv[0], "unexpected argument");
	}
	struct json_object *req = cli_request("events", name);
	if (follow)
		json_object_object_add(req, "follow", json_object_new_boolean(1));
	int r = simple(c, req, print_event_list);
	if (r != CLI_OK || !follow)
		return r;
	fflush(stdout);
	char *line;
	struct err e;
	while (rpc_read_line(&c->rd, -1, &line, NULL, &e) > 0) {
		if (c->json) {
			puts(line);
		} else {
			struct json_object *ev = json_tokener_parse(line), *arr = json_object_new_array();
			if (ev)
				json_object_array_add(arr, ev);
			print_events(arr);
			json_object_put(arr);
		}
		free(line);
		fflush(stdout);
	}
	return CLI_OK;
}

/* images: the shoji commands for disk images: templates (import, list, info, delete),
 * snapshots (create, list, revert, delete) and disposable VMs (run --disposable). A template
 * import copies the image here, as the caller (who can read it), through the block layer into
 * the file shojid creates for the new version and passes over the socket; the daemon checks
 * and publishes it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../block/block.h"
#include "../../block/qcow2.h"
#include "../vmdef.h"
#include "commands.h"

static int usage_error(const char *cmd, const char *what)
{
	fprintf(stderr, "shoji %s: %s\n", cmd, what);
	command_usage(stderr, cmd);
	return CLI_USAGE;
}

static int call_print(struct cli *c, struct json_object *req, struct json_object **rep)
{
	int r = cli_call(c, req, rep, NULL);
	if (r == CLI_OK && c->json)
		cli_print_json(*rep);
	return r;
}

/* ---- template import: the copy ---- */

static void progress(uint64_t done, uint64_t total, int *last, bool tty)
{
	int pct = total ? (int)(done * 100 / total) : 100;
	if (pct == *last || (!tty && pct / 10 == *last / 10))
		return;
	*last = pct;
	fprintf(stderr, tty ? "\rimporting: %3d%% (%llu of %llu MiB)" : "importing: %3d%% (%llu of %llu MiB)\n", pct,
		(unsigned long long)(done >> 20), (unsigned long long)(total >> 20));
	if (tty && pct == 100)
		fputc('\n', stderr);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Copies the guest-visible content of src (raw, or qcow2 with its chain) into a new standalone
 * qcow2 image at dst, leaving zero clusters unallocated. */
static int copy_image(const char *src, const char *dst, bool show, struct err *e)
{
	enum block_format fmt = BLOCK_FORMAT_RAW;
	char magic[4] = {0};
	FILE *f = fopen(src, "rb");
	if (!f)
		return err_errno(e, errno, "cannot open '%s'", src);
	if (fread(magic, 1, 4, f) == 4 && memcmp(magic, QCOW2_MAGIC_BYTES, 4) == 0)
		fmt = BLOCK_FORMAT_QCOW2;
	fclose(f);
	struct block_dev *in, *out;
	if (block_open(&in, src, fmt, BLOCK_OPEN_RDONLY, e) < 0)
		return -1;
	struct qcow2_create_opts o = {.size = in->size};
	if (in->size == 0 || qcow2_create(dst, &o, e) < 0 || block_open(&out, dst, BLOCK_FORMAT_QCOW2, 0, e) < 0) {
		if (in->size == 0)
			err_set(e, "'%s' is empty", src);
		block_close(in);
		return -1;
	}
	const size_t chunk = 1u << 20, cl = 64u << 10;
	uint8_t *buf = malloc(chunk);
	int r = buf ? 0 : err_set(e, "out of memory"), last = -1;
	bool tty = isatty(STDERR_FILENO);
	for (uint64_t off = 0; off < in->size && r == 0; off += chunk) {
		size_t n = in->size - off < chunk ? (size_t)(in->size - off) : chunk;
		if ((r = block_pread(in, buf, n, off, e)) < 0)
			break;
		for (size_t k = 0; k < n && r == 0; k += cl) {
			size_t m = n - k < cl ? n - k : cl;
			if (!is_zero(buf + k, m))
				r = block_pwrite(out, buf + k, m, off + k, e);
		}
		if (show && r == 0)
			progress(off + n, in->size, &last, tty);
	}
	free(buf);
	if (r == 0)
		r = block_flush(out, e);
	block_close(out);
	block_close(in);
	return r;
}

static int template_import(struct cli *c, int argc, char **argv)
{
	bool replace = false;
	const char *name = NULL, *image = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--replace") == 0)
			replace = true;
		else if (!name)
			name = argv[i];
		else if (!image)
			image = argv[i];
		else
			return usage_error("template", "too many arguments");
	}
	if (!name || !image)
		return usage_error("template", "import needs a NAME and an IMAGE");
	if (!vmdef_name_ok(name))
		return usage_error("template", "that is not a template name (1 to 32 of A-Z a-z 0-9 . _ -)");
	char abs[4096];
	if (!realpath(image, abs))
		return cli_fail(CLI_USAGE, "template import: cannot open '%s': %s", image, strerror(errno));
	struct json_object *req = cli_request("template-begin", name), *rep;
	if (replace)
		json_object_object_add(req, "replace", json_object_new_boolean(1));
	int fd = -1, r = cli_call(c, req, &rep, &fd);
	if (r != CLI_OK)
		return r;
	int version = (int)cli_int(rep, "version", 0);
	json_object_put(rep);
	if (fd < 0)
		return cli_fail(CLI_ERROR, "template import: shojid did not pass the new template file");
	char dst[64];
	snprintf(dst, sizeof(dst), "/proc/self/fd/%d", fd);
	struct err e;
	if (copy_image(abs, dst, !c->json, &e) < 0) {
		close(fd);
		return cli_fail(CLI_ERROR, "template import: %s; nothing was imported", e.msg);
	}
	close(fd);
	req = cli_request("template-commit", name);
	json_object_object_add(req, "version", json_object_new_int(version));
	json_object_object_add(req, "source", json_object_new_string(abs));
	if ((r = call_print(c, req, &rep)) != CLI_OK)
		return r;
	if (!c->json) {
		if (cli_int(rep, "replaced", 0))
			printf("template '%s' version %d imported from %s (%lld MiB); VMs get it at their next "
			       "start\n",
			       name, version, abs, cli_int(rep, "size", 0) >> 20);
		else
			printf("template '%s' imported from %s (%lld MiB)\n", name, abs, cli_int(rep, "size", 0) >> 20);
	}
	json_object_put(rep);
	return CLI_OK;
}

/* ---- template list, info, delete ---- */

static void print_template(struct json_object *t, bool full)
{
	struct json_object *vers, *vms;
	json_object_object_get_ex(t, "versions", &vers);
	json_object_object_get_ex(t, "vms", &vms);
	if (!full) {
		printf("%-20s %7lld %8lldM %8zu  ", cli_str(t, "name", "?"), cli_int(t, "current", 0),
		       cli_int(t, "size", 0) >> 20, vers ? json_object_array_length(vers) : 0);
		for (size_t i = 0; vms && i < json_object_array_length(vms); i++)
			printf("%s%s", i ? "," : "", json_object_get_string(json_object_array_get_idx(vms, i)));
		printf("\n");
		return;
	}
	printf("name            %s\ncurrent         version %lld\nsize            %lld MiB\nsource          %s\n",
	       cli_str(t, "name", "?"), cli_int(t, "current", 0), cli_int(t, "size", 0) >> 20,
	       cli_str(t, "source", "?"));
	printf("used by         ");
	for (size_t i = 0; vms && i < json_object_array_length(vms); i++)
		printf("%s%s", i ? ", " : "", json_object_get_string(json_object_array_get_idx(vms, i)));
	printf("%s\nversions:\n", vms && json_object_array_length(vms) ? "" : "(no VM)");
	for (size_t i = 0; vers && i < json_object_array_length(vers); i++) {
		struct json_object *v = json_object_array_get_idx(vers, i), *u;
		bool in_use = json_object_object_get_ex(v, "in_use", &u) && json_object_get_boolean(u);
		printf("  %-4lld %8lld MiB on disk  %s%s\n", cli_int(v, "version", 0),
		       cli_int(v, "file_bytes", 0) >> 20, cli_str(v, "path", ""),
		       in_use ? "  (in use by a running VM)" : "");
	}
}

int cmd_template(struct cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	struct json_object *rep, *arr;
	int r;
	if (strcmp(sub, "import") == 0)
		return template_import(c, argc, argv);
	if (strcmp(sub, "list") == 0) {
		if (argc != 2)
			return usage_error("template", "list takes no arguments");
		if ((r = call_print(c, cli_request("template-list", NULL), &rep)) != CLI_OK)
			return r;
		if (!c->json && json_object_object_get_ex(rep, "templates", &arr)) {
			printf("%-20s %7s %9s %8s  %s\n", "NAME", "CURRENT", "SIZE", "VERSIONS", "VMS");
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				print_template(json_object_array_get_idx(arr, i), false);
		}
		json_object_put(rep);
		return CLI_OK;
	}
	if (strcmp(sub, "info") && strcmp(sub, "delete"))
		return usage_error("template", "say import, list, info or delete");
	if (argc != 3 || !vmdef_name_ok(argv[2]))
		return usage_error("template", "a template name is needed");
	bool info = strcmp(sub, "info") == 0;
	if ((r = call_print(c, cli_request(info ? "template-info" : "template-delete", argv[2]), &rep)) != CLI_OK)
		return r;
	if (!c->json && info && json_object_object_get_ex(rep, "template", &arr))
		print_template(arr, true);
	else if (!c->json)
		printf("deleted template '%s'\n", argv[2]);
	json_object_put(rep);
	return CLI_OK;
}

/* ---- snapshots ---- */

int cmd_snapshot(struct cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";
	bool create = strcmp(sub, "create") == 0, list = strcmp(sub, "list") == 0;
	bool revert = strcmp(sub, "revert") == 0, del = strcmp(sub, "delete") == 0;
	if (!create && !list && !revert && !del)
		return usage_error("snapshot", "say create, list, revert or delete");
	int want = list ? 3 : create ? -1 : 4;
	if ((want > 0 && argc != want) || (create && (argc < 3 || argc > 4)))
		return usage_error("snapshot",
				   list             ? "list needs a VM name"
					   : create ? "create needs a VM name "
						      "and may take a snapshot name"
						    : "a VM name and a snapshot name are needed");
	if (!vmdef_name_ok(argv[2]) || (argc > 3 && !vmdef_name_ok(argv[3])))
		return usage_error("snapshot", "names are 1 to 32 of A-Z a-z 0-9 . _ -");
	static const char *const cmds[] = {"snapshot-create", "snapshot-list", "snapshot-revert", "snapshot-delete"};
	struct json_object *req = cli_request(cmds[create ? 0 : list ? 1 : revert ? 2 : 3], argv[2]), *rep, *arr;
	if (argc > 3)
		json_object_object_add(req, "snapshot", json_object_new_string(argv[3]));
	int r = call_print(c, req, &rep);
	if (r != CLI_OK || c->json) {
		if (r == CLI_OK)
			json_object_put(rep);
		return r;
	}
	if (create && cli_str(rep, "paused_ms", NULL))
		printf("snapshot '%s' of running VM '%s' taken (disk requests held %s ms)\n",
		       cli_str(rep, "snapshot", "?"), argv[2], cli_str(rep, "paused_ms", "?"));
	else if (create)
		printf("snapshot '%s' of '%s' taken\n", cli_str(rep, "snapshot", "?"), argv[2]);
	else if (revert)
		printf("'%s' reverted to snapshot '%s'%s\n", argv[2], argv[3],
		       cli_int(rep, "dropped_snapshots", 0) ? " (the later snapshots were dropped)" : "");
	else if (del)
		printf("snapshot '%s' of '%s' deleted\n", argv[3], argv[2]);
	else if (json_object_object_get_ex(rep, "snapshots", &arr)) {
		printf("%-20s %-19s  %s\n", "NAME", "TAKEN", "DISKS");
		for (size_t i = 0; i < json_object_array_length(arr); i++) {
			struct json_object *s = json_object_array_get_idx(arr, i), *t, *disks;
			char when[32] = "?";
			if (json_object_object_get_ex(s, "time", &t)) {
				time_t sec = (time_t)json_object_get_double(t);
				struct tm tm;
				localtime_r(&sec, &tm);
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			}
			printf("%-20s %-19s  ", cli_str(s, "name", "?"), when);
			if (json_object_object_get_ex(s, "disks", &disks))
				for (size_t k = 0; k < json_object_array_length(disks); k++)
					printf("%s%s", k ? "," : "",
					       json_object_get_string(json_object_array_get_idx(disks, k)));
			printf("\n");
		}
	}
	json_object_put(rep);
	return CLI_OK;
}

/* ---- run --disposable ---- */

static int set_value(struct vmdef *d, const char *key, const char *value, bool path)
{
	char abs[4096], assignment[4200];
	struct err e;
	if (path && value[0] != '/' && realpath(value, abs))
		value = abs;
	snprintf(assignment, sizeof(assignment), "%s=%s", key, value);
	if (vmdef_set(d, assignment, &e) < 0)
		return cli_fail(CLI_USAGE, "run: --%s", e.msg);
	return CLI_OK;
}

/* run's definition: a red label, its root on the template, then the options in their order. */
static int disposable_options(struct vmdef *d, const char *tmpl, const char *kernel, const char *firmware, int argc,
			      char **argv, const struct option *opts)
{
	int o, r = CLI_OK;
	vmdef_init(d, "disp");
	if (kernel)
		r = set_value(d, "kernel", kernel, true);
	if (r == CLI_OK && firmware)
		r = firmware_option(d, "run", firmware);
	if (r == CLI_OK)
		r = set_value(d, "label", "red", false); /* disposables are untrusted by default */
	if (r == CLI_OK)
		r = set_value(d, "disk.root.template", tmpl, false);
	optind = 1;
	while (r == CLI_OK && (o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'm': r = set_value(d, "memory", optarg, false); break;
		case 'c': r = set_value(d, "cpus", optarg, false); break;
		case 'i': r = set_value(d, "initrd", optarg, true); break;
		case 'l': r = set_value(d, "cmdline", optarg, false); break;
		case 'L': r = set_value(d, "label", optarg, false); break;
		default: break;
		}
	}
	return r;
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"disposable", required_argument, NULL, 't'},
		{"memory", required_argument, NULL, 'm'},
		{"cpus", required_argument, NULL, 'c'},
		{"kernel", required_argument, NULL, 'k'},
		{"initrd", required_argument, NULL, 'i'},
		{"cmdline", required_argument, NULL, 'l'},
		{"label", required_argument, NULL, 'L'},
		{"firmware", required_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	const char *tmpl = NULL, *kernel = NULL, *firmware = NULL;
	int o;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == '?' || o == ':')
			return usage_error("run", "unknown option or missing value");
		if (o == 't')
			tmpl = optarg;
		if (o == 'k')
			kernel = optarg;
		if (o == 'F')
			firmware = optarg;
	}
	if (optind != argc)
		return usage_error("run", "unexpected argument");
	if (!tmpl)
		return usage_error("run", "--disposable TEMPLATE is needed (only disposable VMs run this way)");
	if (!kernel && !firmware)
		return usage_error("run", "--kernel PATH is needed, or --firmware uefi to boot the template's disk");
	struct vmdef *d = malloc(sizeof(*d));
	if (!d)
		return cli_fail(CLI_ERROR, "out of memory");
	int r = disposable_options(d, tmpl, kernel, firmware, argc, argv, opts);
	struct json_object *rep;
	if (r == CLI_OK)
		r = run_disposable(c, d, &rep);
	if (r == CLI_OK && !c->json)
		printf("started disposable VM '%s' (monitor pid %lld) on template '%s'; it is removed when it "
		       "stops\n",
		       cli_str(rep, "name", "?"), cli_int(rep, "pid", 0), tmpl);
	if (r == CLI_OK)
		json_object_put(rep);
	free(d);
	return r;
}

int run_disposable(struct cli *c, const struct vmdef *d, struct json_object **rep)
{
	char *text = malloc(65536);
	if (!text)
		return cli_fail(CLI_ERROR, "out of memory");
	int r = vmdef_format(d, text, 65536) < 0 ? cli_fail(CLI_ERROR, "the definition is too large") : CLI_OK;
	if (r == CLI_OK) {
		struct json_object *req = cli_request("run", NULL);
		json_object_object_add(req, "definition", json_object_new_string(text));
		r = call_print(c, req, rep);
	}
	free(text);
	return r;
}

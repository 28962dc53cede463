/* Unit tests for VM definitions: the INI layout, every error (each naming the file, the line
 * and a fix), single-key edits, the --disk/--net shorthands, the text written back, and the
 * monitor command line built from a definition. */
#include <stdio.h>
#include <stdlib.h>

#include "toolstack/vmdef.h"
#include "toolstack/vmm_args.h"
#include "unit.h"

static struct vmdef def;
static struct err e;

static const char *const good = "# a work VM\n"
				"[vm]\n"
				"name = work\n"
				"memory = 2G\n"
				"cpus = 2\n"
				"kernel = /boot/vmlinuz\n"
				"initrd = /boot/initrd.img\n"
				"cmdline = console=ttyS0 quiet\n"
				"\troot=/dev/vda\n"
				"vsock-cid = 42\n"
				"display = on\n"
				"label = Blue\n"
				"autostart = yes\n"
				"param = url=https://intranet.example/a%20b?x=1\n"
				"param = mode=kiosk\n"
				"\n"
				"[disk root]\n"
				"path = /var/lib/shoji/images/work.img\n"
				"serial = ROOT1\n"
				"\n"
				"[disk data]\n"
				"path = /srv/data.qcow2\n"
				"format = qcow2\n"
				"readonly = yes\n"
				"\n"
				"[nic net0]\n"
				"type = slirp\n"
				"mac = 52:54:00:AB:cd:01\n"
				"forward = tcp:2222:22\n"
				"forward = udp:127.0.0.1:5353:53\n"
				"host-loopback = yes\n"
				"\n"
				"[nic lan]\n"
				"type = tap\n"
				"ifname = tap0\n"
				"vhost = off\n"
				"queues = 4\n"
				"\n"
				"[policy]\n"
				"clipboard-out = allow label:blue work-2\n"
				"clipboard-in = deny personal\n"
				"clipboard-max = 64K\n"
				"usb-allow = class:smartcard id:046d:*\n"
				"usb-storage = deny\n";

static void test_good_definition(void **state)
{
	(void)state;
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	assert_string_equal(def.name, "work");
	assert_int_equal(def.memory_mib, 2048);
	assert_int_equal(def.cpus, 2);
	assert_string_equal(def.kernel, "/boot/vmlinuz");
	assert_string_equal(def.initrd, "/boot/initrd.img");
	assert_string_equal(def.cmdline, "console=ttyS0 quiet root=/dev/vda");
	assert_int_equal(def.vsock_cid, 42);
	assert_true(def.display);
	assert_true(def.autostart);
	assert_string_equal(def.label, "blue");
	assert_int_equal(def.ndisks, 2);
	assert_string_equal(def.disks[0].id, "root");
	assert_string_equal(def.disks[0].serial, "ROOT1");
	assert_int_equal(def.disks[0].format, VMDEF_DISK_RAW);
	assert_false(def.disks[0].readonly);
	assert_int_equal(def.disks[1].format, VMDEF_DISK_QCOW2);
	assert_true(def.disks[1].readonly);
	assert_int_equal(def.nnics, 2);
	assert_int_equal(def.nics[0].type, VMDEF_NIC_SLIRP);
	assert_string_equal(def.nics[0].mac, "52:54:00:ab:cd:01");
	assert_int_equal(def.nics[0].nfwds, 2);
	assert_string_equal(def.nics[0].fwds[1].proto, "udp");
	assert_string_equal(def.nics[0].fwds[1].host_addr, "127.0.0.1");
	assert_int_equal(def.nics[0].fwds[1].host_port, 5353);
	assert_int_equal(def.nics[0].fwds[1].guest_port, 53);
	assert_int_equal(def.nics[1].type, VMDEF_NIC_TAP);
	assert_string_equal(def.nics[1].ifname, "tap0");
}

static void test_minimal_defaults(void **state)
{
	(void)state;
	assert_int_equal(vmdef_parse("[vm]\nname=a\nkernel=/k\n", "a.ini", &def, &e), 0);
	assert_int_equal(def.memory_mib, 512);
	assert_int_equal(def.cpus, 1);
	assert_string_equal(def.cmdline, "console=ttyS0");
	assert_int_equal(def.ndisks, 0);
	assert_false(def.display);
}

/* Each bad definition fails with a message containing all the given words. */
static void expect(const char *text, const char *w1, const char *w2)
{
	struct vmdef d;
	struct err err = {""};
	if (vmdef_parse(text, "t.ini", &d, &err) == 0)
		fail_msg("accepted:\n%s", text);
	assert_contains(err.msg, w1);
	if (w2)
		assert_contains(err.msg, w2);
}

#define VM "[vm]\nname=a\nkernel=/k\n"

static void test_errors_name_the_line(void **state)
{
	(void)state;
	expect("", "t.ini", "no [vm] section");
	expect("[vm]\nkernel=/k\n", "t.ini:1:", "no name; add 'name = NAME'");
	expect("[vm]\nname=a\n", "t.ini:1:", "no kernel; add 'kernel = ");
	expect("[vm]\nname=a\n", "t.ini:1:", "or 'firmware = uefi'");
	expect(VM "bogus = 1\n", "t.ini:4:", "unknown key 'bogus'; known keys here: name, memory");
	expect(VM "[bogus]\n", "t.ini:4:", "unknown section [bogus]; use [vm]");
	expect(VM "[disk]\npath=/x\n", "t.ini:4:", "unknown section [disk]");
	expect(VM "[vm]\n", "t.ini:4:", "[vm] appears twice");
	expect(VM "[policy]\n[policy]\n", "t.ini:5:", "[policy] appears twice");
	expect(VM "[policy]\nsandbox = strict\n", "t.ini:5:", "known keys here: clipboard-out");
	expect("name = a\n[vm]\n", "t.ini:1:", "outside any section; put it under [vm]");
	expect(VM "memory = 1G\nmemory = 2G\n", "t.ini:5:", "'memory' is given twice");
	expect(VM "this is not a key\n", "t.ini:4:", "neither 'key = value' nor '[section]'");
	expect(VM "[vm\n", "t.ini:4:", "neither");
	expect(VM "  [disk x]\n", "t.ini:4:", "section header is indented");
	expect(VM "cpus = 2\n  memory = 1G\n", "t.ini:5:", "continues 'cpus', which only cmdline may");
	expect(VM "[disk a]\npath=/x\n  more\n", "t.ini:6:", "remove the indentation");
	expect(VM "[nic a]\ntype=slirp\n  more\n", "t.ini:6:", "remove the indentation");
}

static void test_value_errors(void **state)
{
	(void)state;
	expect("[vm]\nname = ../etc\nkernel=/k\n", "t.ini:2:", "not allowed; use 1 to 32 letters");
	expect("[vm]\nname = -a\nkernel=/k\n", "t.ini:2:", "starting with a letter or digit");
	expect("[vm]\nname = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nkernel=/k\n", "t.ini:2:", "not allowed");
	expect("[vm]\nname = a b\nkernel=/k\n", "t.ini:2:", "not allowed");
	expect(VM "memory = lots\n", "t.ini:4:", "not a size; write a number with M or G");
	expect(VM "memory = 0\n", "t.ini:4:", "less than the 32 MiB");
	expect(VM "memory = 16M\n", "t.ini:4:", "give at least 32M");
	expect(VM "memory = 2T\n", "t.ini:4:", "more than 1024 GiB");
	expect(VM "memory = 99999999999999999999G\n", "t.ini:4:", "not a size");
	expect(VM "memory = 18446744073709551615K\n", "t.ini:4:", "more than");
	expect(VM "memory = 1500K\n", "t.ini:4:", "not a whole number of MiB");
	expect(VM "memory = 1Q\n", "t.ini:4:", "not a size");
	expect(VM "memory = -1G\n", "t.ini:4:", "not a size");
	expect(VM "cpus = 0\n", "t.ini:4:", "from 1 to 254");
	expect(VM "cpus = 255\n", "t.ini:4:", "from 1 to 254");
	expect(VM "cpus = two\n", "t.ini:4:", "from 1 to 254");
	expect("[vm]\nname=a\nkernel=vmlinuz\n", "t.ini:3:", "relative; give an absolute path");
	expect("[vm]\nname=a\nkernel=/a,b\n", "t.ini:3:", "comma");
	expect(VM "initrd = rel\n", "t.ini:4:", "absolute");
	expect(VM "vsock-cid = 2\n", "t.ini:4:", "0-2 are reserved");
	expect(VM "vsock-cid = 4294967295\n", "t.ini:4:", "vsock-cid");
	expect(VM "display = maybe\n", "t.ini:4:", "not yes or no");
	expect(VM "autostart = 2\n", "t.ini:4:", "not yes or no");
	expect(VM "label = mauve\n", "t.ini:4:", "not a colour; use red");
	expect(VM "label = #12345\n", "t.ini:4:", "not a colour");
	expect(VM "label = #12345g\n", "t.ini:4:", "not a colour");
}

static void test_device_errors(void **state)
{
	(void)state;
	expect(VM "[disk a]\n", "t.ini:4:", "[disk a] has no path; add 'path = ");
	expect(VM "[disk a]\npath=/x\nformat=vmdk\n", "t.ini:6:", "not raw or qcow2");
	expect(VM "[disk a]\npath=/x\nreadonly=perhaps\n", "t.ini:6:", "not yes or no");
	expect(VM "[disk a]\npath=/x\nserial=has space\n", "t.ini:6:", "serial");
	expect(VM "[disk a]\npath=/x\nserial=123456789012345678901\n", "t.ini:6:", "up to 20");
	expect(VM "[disk a]\npath=/x\n[disk a]\npath=/y\n", "t.ini:6:", "defined twice");
	expect(VM "[disk a/b]\npath=/x\n", "t.ini:4:", "disk ID 'a/b' is not allowed");
	expect(VM "[disk a]\nsize=1G\n", "t.ini:5:", "known keys here: path, template, format, readonly, serial");
	expect(VM "[disk a]\npath=/x\ntemplate=base\n", "t.ini:4:", "has both path and template");
	expect(VM "[disk a]\ntemplate=base\nreadonly=yes\n", "t.ini:4:", "takes no format or readonly");
	expect(VM "[disk a]\ntemplate=base\nformat=qcow2\n", "t.ini:4:", "takes no format or readonly");
	expect(VM "[disk a]\ntemplate=no/slash\n", "t.ini:5:", "not a template name");
	expect(VM "[nic n]\n", "t.ini:4:", "[nic n] has no type; add 'type = passt', 'type = slirp'");
	expect(VM "[nic n]\ntype=bridge\n", "t.ini:5:", "not passt, slirp, tap or vm");
	expect(VM "[nic n]\ntype=vm\n", "t.ini:4:", "without a peer; add 'peer = VM'");
	expect(VM "[nic n]\ntype=vm\npeer=a\n", "t.ini:4:", "cannot link to itself");
	expect(VM "[nic n]\ntype=vm\npeer=b:\n", "t.ini:6:", "not VM or VM:NIC");
	expect(VM "[nic n]\ntype=vm\npeer=b/c\n", "t.ini:6:", "not VM or VM:NIC");
	expect(VM "[nic n]\ntype=vm\npeer=b:c:d\n", "t.ini:6:", "not VM or VM:NIC");
	expect(VM "[nic n]\ntype=slirp\npeer=b\n", "t.ini:4:", "peer is for NICs of type = vm");
	expect(VM "[nic n]\ntype=vm\npeer=b\nforward=tcp:1:2\n", "t.ini:4:", "only with type = passt or slirp");
	expect(VM "[nic n]\ntype=vm\npeer=b\nvhost=on\n", "t.ini:4:", "ifname, vhost and queues are for tap");
	expect(VM "[nic n]\ntype=vm\npeer=b\n[nic m]\ntype=vm\npeer=b\n", "t.ini:7:", "both link to VM 'b'");
	expect(VM "[nic n]\ntype=vm\npeer=b:x\n[nic m]\ntype=vm\npeer=b:x\n", "t.ini:7:", "'peer = b:NIC'");
	expect(VM "[nic n]\ntype=tap\n", "t.ini:4:", "without ifname; add 'ifname = tap0'");
	expect(VM "[nic n]\ntype=tap\nifname=tap0\nforward=tcp:1:2\n", "t.ini:4:", "only with type = passt or slirp");
	expect(VM "[nic n]\ntype=tap\nifname=tap0\nhost-loopback=yes\n", "t.ini:4:", "only with type = passt or slirp");
	expect(VM "[nic n]\ntype=slirp\nhost-loopback=maybe\n", "t.ini:6:", "yes");
	expect(VM "[nic n]\ntype=passt\nifname=tap0\n", "t.ini:4:", "ifname, vhost and queues are for tap");
	expect(VM "[nic n]\ntype=passt\npeer=b\n", "t.ini:4:", "peer is for NICs of type = vm");
	expect(VM "[nic n]\ntype=slirp\nvhost=on\n", "t.ini:4:", "ifname, vhost and queues are for tap NICs");
	expect(VM "[nic n]\ntype=tap\nifname=t0\nvhost=sometimes\n", "t.ini:7:", "not auto, on or off");
	expect(VM "[nic n]\ntype=tap\nifname=t0\nqueues=9\n", "t.ini:7:", "queue pairs from 1 to 8");
	expect(VM "[nic n]\ntype=tap\nifname=t0\nqueues=0\n", "t.ini:7:", "queue pairs from 1 to 8");
	expect(VM "[nic n]\ntype=tap\nifname=t0\nqueues=2x\n", "t.ini:7:", "queue pairs from 1 to 8");
	expect(VM "[nic n]\ntype=slirp\nqueues=2\n", "t.ini:4:", "ifname, vhost and queues are for tap NICs");
	expect(VM "[nic n]\ntype=slirp\nifname=tap0\n", "t.ini:4:", "ifname, vhost and queues are for tap");
	expect(VM "[nic n]\ntype=tap\nifname=waytoolonginterface\n", "t.ini:6:", "not an interface name");
	expect(VM "[nic n]\ntype=slirp\nmac=01:00:00:00:00:01\n", "t.ini:6:", "multicast");
	expect(VM "[nic n]\ntype=slirp\nmac=52:54:00:00:00\n", "t.ini:6:", "not a MAC address");
	expect(VM "[nic n]\ntype=slirp\nmac=52:54:00:00:00:0g\n", "t.ini:6:", "not a MAC address");
	expect(VM "[nic n]\ntype=slirp\nmac=52-54-00-00-00-01\n", "t.ini:6:", "not a MAC address");
	expect(VM "[nic n]\ntype=slirp\nforward=tcp:22\n", "t.ini:6:", "tcp:2222:22");
	expect(VM "[nic n]\ntype=slirp\nforward=sctp:1:2\n", "t.ini:6:", "tcp|udp");
	expect(VM "[nic n]\ntype=slirp\nforward=tcp:0:22\n", "t.ini:6:", "1 to 65535");
	expect(VM "[nic n]\ntype=slirp\nforward=tcp:70000:22\n", "t.ini:6:", "1 to 65535");
	expect(VM "[nic n]\ntype=slirp\nforward=tcp:host:1:22\n", "t.ini:6:", "not an IPv4 address");
	expect(VM "[nic n]\ntype=slirp\nforward=tcp:1:2:3:4:5\n", "t.ini:6:", "tcp|udp");
	expect(VM "[nic n]\ntype=slirp\ntype=tap\n", "t.ini:6:", "given twice");
	char many[4096] = VM;
	for (int i = 0; i < 9; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "[disk d%d]\npath=/x\n", i);
	expect(many, "t.ini:20:", "more than 8 disks");
	strcpy(many, VM "[nic n]\ntype=slirp\n");
	for (int i = 0; i < 9; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "forward=tcp:%d:22\n", 1000 + i);
	expect(many, "t.ini:14:", "more than 8 forwards");
	strcpy(many, VM);
	for (int i = 0; i < 5; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "[nic n%d]\ntype=slirp\n", i);
	expect(many, "t.ini:12:", "more than 4 NICs");
}

static void test_hostile_text(void **state)
{
	(void)state;
	char line[400];
	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	char text[600];
	snprintf(text, sizeof(text), VM "cmdline = %s\n", line);
	expect(text, "t.ini:4:", "longer than 198 characters");
	snprintf(text, sizeof(text), "[vm]\nname=a\nkernel=/%s\n", line + 209);
	expect(text, "t.ini:3:", "longer than 180 characters");
	expect(VM "cmdline = a\x01"
		  "b\n",
	       "t.ini:4:", "control character");
	/* A cmdline can grow over lines up to its limit, not beyond. */
	char big[8192] = VM "cmdline = a\n";
	for (int i = 0; i < 30; i++) {
		size_t n = strlen(big);
		big[n++] = '\t';
		memset(big + n, 'y', 100);
		big[n + 100] = '\n';
		big[n + 101] = '\0';
	}
	expect(big, "t.ini:", "cmdline is longer than 2047");
	/* Binary junk is an error, not a crash. */
	unsigned char junk[512];
	unsigned x = 12345;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(junk) - 1; i++) {
			x = x * 1103515245 + 12345;
			junk[i] = (unsigned char)((x >> 16) % 255 + 1);
		}
		junk[sizeof(junk) - 1] = '\0';
		struct vmdef d;
		struct err err;
		if (vmdef_parse((char *)junk, "j.ini", &d, &err) < 0)
			assert_contains(err.msg, "j.ini");
	}
	/* Comments, a BOM, CRLF endings and blank lines are fine. */
	assert_int_equal(vmdef_parse("\xEF\xBB\xBF; c\r\n[vm]\r\n# c\r\nname = a ; inline\r\n\r\nkernel=/k\r\n",
				     "t.ini", &def, &e),
			 0);
	assert_string_equal(def.name, "a");
}

#define FW "[vm]\nname=a\n"

/* firmware, firmware-vars and boot: each wrong combination names the line and the fix. */
static void test_firmware_errors(void **state)
{
	(void)state;
	expect(FW "firmware = bios\n", "t.ini:3:", "not uefi or a path");
	expect(FW "firmware = OVMF_CODE.fd\n", "t.ini:3:", "absolute path");
	expect(FW "firmware = /fw/a,b\n", "t.ini:3:", "comma");
	expect(FW "boot = floppy\n", "t.ini:3:", "not kernel or disk");
	expect(FW "boot = disk\n", "t.ini:1:", "boot = disk needs firmware to boot the disks; add 'firmware = uefi'");
	expect(FW "boot = disk\n", "t.ini:1:", "apt install ovmf");
	expect(FW "firmware = /fw/CODE.fd\n", "t.ini:1:", "needs firmware-vars = PATH");
	expect(FW "firmware-vars = /fw/VARS.fd\nkernel=/k\n", "t.ini:1:", "add 'firmware = /path/to/CODE.fd'");
	expect(FW "firmware = uefi\nfirmware-vars = /fw/VARS.fd\n", "t.ini:1:", "remove firmware-vars");
	expect(FW "firmware = uefi\nboot = disk\nkernel = /k\n", "t.ini:1:", "remove kernel, initrd and cmdline");
	expect(FW "firmware = uefi\ninitrd = /i\n", "t.ini:1:", "remove kernel, initrd and cmdline");
	expect(FW "firmware = uefi\ncmdline = quiet\n", "t.ini:1:", "boot = disk boots the disks");
	expect(FW "firmware = uefi\ncmdline = console=ttyS0\n", "t.ini:1:", "remove kernel, initrd and cmdline");
	expect(FW "firmware = uefi\nkernel = /k\n", "t.ini:1:", "not supported yet");
	expect(FW "firmware = uefi\nboot = kernel\nkernel = /k\n", "t.ini:1:", "not supported yet");
	expect(FW "firmware = uefi\nboot = kernel\n", "t.ini:1:", "has no kernel");
	expect(FW "firmware = uefi\nboot = disk\nboot = disk\n", "t.ini:5:", "given twice");
}

static void test_firmware_definitions(void **state)
{
	(void)state;
	const char *code, *vars;
	char text[4096];
	struct vmdef back;
	/* uefi: Debian's OVMF; without a kernel the firmware boots the disks. */
	assert_int_equal(vmdef_parse(FW "firmware = uefi\n[disk root]\npath=/r.img\n", "t.ini", &def, &e), 0);
	assert_int_equal(vmdef_boot_of(&def), VMDEF_BOOT_DISK);
	assert_true(vmdef_firmware_files(&def, &code, &vars));
	assert_string_equal(code, VMDEF_UEFI_CODE);
	assert_string_equal(vars, "/usr/share/OVMF/OVMF_VARS_4M.fd");
	/* Written back with boot = disk and no cmdline; read back the same. */
	assert_true(vmdef_format(&def, text, sizeof(text)) > 0);
	assert_contains(text, "firmware = uefi\nboot = disk\n");
	assert_null(strstr(text, "cmdline"));
	assert_null(strstr(text, "firmware-vars"));
	assert_int_equal(vmdef_parse(text, "back.ini", &back, &e), 0);
	assert_int_equal(vmdef_boot_of(&back), VMDEF_BOOT_DISK);
	/* A code image of one's own with its variable store template. */
	assert_int_equal(vmdef_parse(FW "firmware = /fw/CODE.fd\nfirmware-vars = /fw/VARS.fd\nboot = disk\n", "t.ini",
				     &def, &e),
			 0);
	assert_true(vmdef_firmware_files(&def, &code, &vars));
	assert_string_equal(code, "/fw/CODE.fd");
	assert_string_equal(vars, "/fw/VARS.fd");
	assert_true(vmdef_format(&def, text, sizeof(text)) > 0);
	assert_contains(text, "firmware = /fw/CODE.fd\nfirmware-vars = /fw/VARS.fd\nboot = disk\n");
	/* A kernel VM: boot = kernel by default, nothing new written back. */
	assert_int_equal(vmdef_parse(VM, "t.ini", &def, &e), 0);
	assert_int_equal(vmdef_boot_of(&def), VMDEF_BOOT_KERNEL);
	assert_false(vmdef_firmware_files(&def, &code, &vars));
	assert_true(vmdef_format(&def, text, sizeof(text)) > 0);
	assert_null(strstr(text, "boot"));
	assert_null(strstr(text, "firmware"));
	assert_int_equal(vmdef_parse(VM "boot = kernel\n", "t.ini", &def, &e), 0);
	assert_true(vmdef_format(&def, text, sizeof(text)) > 0);
	assert_contains(text, "boot = kernel\n");
}

/* vsock-cid = auto (shoji browse): no CID in the definition, written back as auto; a number or
 * none replaces it; anything else is refused with the forms named. */
static void test_vsock_auto(void **state)
{
	(void)state;
	char text[8192];
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	assert_false(def.vsock_auto);
	assert_int_equal(vmdef_set(&def, "vsock-cid=auto", &e), 0);
	assert_true(def.vsock_auto);
	assert_int_equal(def.vsock_cid, 0);
	assert_true(vmdef_format(&def, text, sizeof(text)) > 0);
	assert_contains(text, "vsock-cid = auto\n");
	struct vmdef back;
	assert_int_equal(vmdef_parse(text, "back.ini", &back, &e), 0);
	assert_true(back.vsock_auto);
	assert_int_equal(vmdef_set(&def, "vsock-cid=77", &e), 0);
	assert_false(def.vsock_auto);
	assert_int_equal(def.vsock_cid, 77);
	assert_int_equal(vmdef_set(&def, "vsock-cid=auto", &e), 0);
	assert_int_equal(vmdef_set(&def, "vsock-cid=none", &e), 0);
	assert_false(def.vsock_auto);
	assert_true(vmdef_format(&def, text, sizeof(text)) > 0);
	assert_null(strstr(text, "vsock"));
	assert_int_equal(vmdef_set(&def, "vsock-cid=automatic", &e), -1);
	assert_contains(e.msg, "is not auto, none or a number from 3 to 4294967294");
}

/* shoji set: a kernel VM switched to firmware in one call; each edit alone would not check. */
static void test_firmware_set(void **state)
{
	(void)state;
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	struct vmdef before = def;
	assert_int_equal(vmdef_set(&def, "firmware=uefi", &e), -1);
	assert_contains(e.msg, "firmware: a kernel booted through firmware");
	char *partial[] = {"firmware=uefi", "kernel=", "initrd="};
	assert_int_equal(vmdef_set_all(&def, partial, 3, &e), -1);
	assert_contains(e.msg, "remove kernel, initrd and cmdline");
	assert_memory_equal(&before, &def, sizeof(def));
	char *bad[] = {"firmware=uefi", "boot=sideways"};
	assert_int_equal(vmdef_set_all(&def, bad, 2, &e), -1);
	assert_contains(e.msg, "boot: boot 'sideways' is not kernel or disk");
	char *all[] = {"firmware=uefi", "kernel=", "initrd=", "cmdline="};
	assert_int_equal(vmdef_set_all(&def, all, 4, &e), 0);
	assert_int_equal(vmdef_boot_of(&def), VMDEF_BOOT_DISK);
	assert_int_equal(vmdef_set(&def, "firmware=/fw/CODE.fd", &e), -1);
	assert_contains(e.msg, "needs firmware-vars");
	char *own[] = {"firmware=/fw/CODE.fd", "firmware-vars=/fw/VARS.fd"};
	assert_int_equal(vmdef_set_all(&def, own, 2, &e), 0);
	assert_string_equal(def.firmware_vars, "/fw/VARS.fd");
	/* And back to a kernel. */
	char *back[] = {"firmware=", "firmware-vars=", "kernel=/k"};
	assert_int_equal(vmdef_set_all(&def, back, 3, &e), 0);
	assert_int_equal(vmdef_boot_of(&def), VMDEF_BOOT_KERNEL);
	/* shoji create --firmware: uefi, or CODE,vars=TEMPLATE. */
	vmdef_init(&def, "c");
	assert_int_equal(vmdef_set_firmware_spec(&def, "uefi", &e), 0);
	assert_string_equal(def.firmware, "uefi");
	vmdef_init(&def, "c");
	assert_int_equal(vmdef_set_firmware_spec(&def, "/fw/CODE.fd,vars=/fw/VARS.fd", &e), 0);
	assert_string_equal(def.firmware_vars, "/fw/VARS.fd");
	assert_int_equal(vmdef_set_firmware_spec(&def, "/fw/CODE.fd", &e), -1);
	assert_contains(e.msg, "--firmware /fw/CODE.fd: firmware = PATH needs firmware-vars");
	assert_int_equal(vmdef_set_firmware_spec(&def, "uefi,vars=/v", &e), -1);
	assert_contains(e.msg, "write uefi");
	assert_int_equal(vmdef_set_firmware_spec(&def, "/c,ro", &e), -1);
	assert_contains(e.msg, "CODE,vars=TEMPLATE");
	assert_int_equal(vmdef_set_firmware_spec(&def, "/c,vars=rel.fd", &e), -1);
	assert_contains(e.msg, "relative");
}

static void test_format_round_trip(void **state)
{
	(void)state;
	char text[8192], again[8192];
	struct vmdef back;
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	/* A long command line is written back over indented lines. */
	assert_int_equal(
		vmdef_set(&def,
			  "cmdline=console=ttyS0 "
			  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
			  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb "
			  "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
			  &e),
		0);
	int n = vmdef_format(&def, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal(vmdef_parse(text, "back.ini", &back, &e), 0);
	assert_string_equal(back.cmdline, def.cmdline);
	assert_int_equal(vmdef_format(&back, again, sizeof(again)), n);
	assert_string_equal(text, again);
	assert_int_equal(back.nics[0].nfwds, 2);
	assert_true(back.nics[0].host_loopback);
	assert_false(back.nics[1].host_loopback);
	assert_int_equal(back.nics[0].vhost, VHOST_AUTO);
	assert_int_equal(back.nics[1].vhost, VHOST_OFF);
	assert_int_equal(back.nics[0].queues, 0);
	assert_int_equal(back.nics[1].queues, 4);
	assert_string_equal(back.disks[1].path, "/srv/data.qcow2");
	/* A link NIC's peer, with and without the peer's NIC. */
	char *links[] = {"nic.up.type=vm", "nic.up.peer=netvm:down", "nic.net0=", "nic.side.type=vm",
			 "nic.side.peer=printer"};
	assert_int_equal(vmdef_set_all(&def, links, 5, &e), 0);
	n = vmdef_format(&def, text, sizeof(text));
	assert_true(n > 0);
	assert_contains(text, "[nic up]\ntype = vm\npeer = netvm:down\n");
	assert_int_equal(vmdef_parse(text, "back.ini", &back, &e), 0);
	assert_int_equal(vmdef_format(&back, again, sizeof(again)), n);
	assert_string_equal(text, again);
	assert_string_equal(back.nics[back.nnics - 1].peer, "printer");
	assert_string_equal(back.nics[back.nnics - 1].peer_nic, "");
	assert_int_equal(back.policy.clip_out.mode, VMDEF_PEERS_ONLY);
	assert_int_equal(back.policy.clip_out.n, 2);
	assert_string_equal(back.policy.clip_out.peer[0], "label:blue");
	assert_int_equal(back.policy.clip_in.mode, VMDEF_PEERS_EXCEPT);
	assert_int_equal(back.policy.clip_max, 65536);
	assert_int_equal(back.policy.usb.allow.n, 2);
	assert_int_equal(back.policy.usb.storage, USB_DENY);
	assert_contains(text, "usb-allow = class:smartcard id:046d:*\nusb-storage = deny\n");
	assert_int_equal(vmdef_format(&def, text, 100), -1);
	/* A template disk is written back as one. */
	assert_int_equal(vmdef_set(&def, "disk.root.template=debian", &e), 0);
	assert_string_equal(def.disks[0].path, "");
	n = vmdef_format(&def, text, sizeof(text));
	assert_true(n > 0);
	assert_contains(text, "[disk root]\ntemplate = debian\n");
	assert_int_equal(vmdef_parse(text, "back.ini", &back, &e), 0);
	assert_string_equal(back.disks[0].template_name, "debian");
	assert_int_equal(vmdef_set(&back, "disk.root.path=/img", &e), 0);
	assert_string_equal(back.disks[0].template_name, "");
}

static void test_set(void **state)
{
	(void)state;
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	assert_int_equal(vmdef_set(&def, "memory=768M", &e), 0);
	assert_int_equal(def.memory_mib, 768);
	assert_int_equal(vmdef_set(&def, "label=#00FF00", &e), 0);
	assert_string_equal(def.label, "#00ff00");
	assert_int_equal(vmdef_set(&def, "label=", &e), 0);
	assert_string_equal(def.label, "");
	assert_int_equal(vmdef_set(&def, "disk.new.path=/new.img", &e), 0);
	assert_int_equal(def.ndisks, 3);
	assert_int_equal(vmdef_set(&def, "disk.new.readonly=yes", &e), 0);
	assert_true(def.disks[2].readonly);
	assert_int_equal(vmdef_set(&def, "disk.root=", &e), 0);
	assert_int_equal(def.ndisks, 2);
	assert_string_equal(def.disks[0].id, "data");
	assert_int_equal(vmdef_set(&def, "nic.net0.forward=", &e), 0);
	assert_int_equal(def.nics[0].nfwds, 0);
	assert_int_equal(vmdef_set(&def, "nic.net0.forward=tcp:8080:80", &e), 0);
	assert_int_equal(def.nics[0].nfwds, 1);

	struct vmdef before = def;
	assert_int_equal(vmdef_set(&def, "memory=1K", &e), -1);
	assert_contains(e.msg, "memory: memory '1K' is not a whole number");
	assert_int_equal(vmdef_set(&def, "name=other", &e), -1);
	assert_contains(e.msg, "cannot be renamed");
	assert_int_equal(vmdef_set(&def, "kernel=", &e), -1);
	assert_contains(e.msg, "has no kernel");
	assert_int_equal(vmdef_set(&def, "nosuchkey=1", &e), -1);
	assert_contains(e.msg, "unknown key 'nosuchkey'");
	assert_int_equal(vmdef_set(&def, "memory", &e), -1);
	assert_contains(e.msg, "is not KEY=VALUE");
	assert_int_equal(vmdef_set(&def, "=1", &e), -1);
	assert_int_equal(vmdef_set(&def, "cpu.0.x=1", &e), -1);
	assert_contains(e.msg, "disk.ID.KEY, nic.ID.KEY or policy.KEY");
	assert_int_equal(vmdef_set(&def, "disk.gone=", &e), -1);
	assert_contains(e.msg, "no disk 'gone'");
	assert_int_equal(vmdef_set(&def, "disk.x=/y", &e), -1);
	assert_contains(e.msg, "disk.x.KEY=VALUE");
	assert_int_equal(vmdef_set(&def, "disk.fresh.serial=abc", &e), -1);
	assert_contains(e.msg, "has no path");
	assert_int_equal(vmdef_set(&def, "nic.fresh.mac=52:54:00:00:00:01", &e), -1);
	assert_contains(e.msg, "has no type");
	assert_int_equal(vmdef_set(&def, "disk.bad/id.path=/x", &e), -1);
	assert_memory_equal(&before, &def, sizeof(def));
}

static void test_specs(void **state)
{
	(void)state;
	vmdef_init(&def, "s");
	assert_int_equal(vmdef_add_disk_spec(&def, "vda", "/a.img,ro,serial=S1,format=qcow2", &e), 0);
	assert_true(def.disks[0].readonly);
	assert_string_equal(def.disks[0].serial, "S1");
	assert_int_equal(def.disks[0].format, VMDEF_DISK_QCOW2);
	assert_int_equal(vmdef_add_disk_spec(&def, "vdb", "/b.img", &e), 0);
	assert_int_equal(vmdef_add_disk_spec(&def, "vdc", "/c.img,cache=none", &e), -1);
	assert_contains(e.msg, "unknown option 'cache=none'");
	assert_int_equal(vmdef_add_disk_spec(&def, "vdc", "c.img", &e), -1);
	assert_contains(e.msg, "relative");
	assert_int_equal(vmdef_add_disk_spec(&def, "vda", "/d.img", &e), -1);
	assert_contains(e.msg, "defined twice");
	assert_int_equal(vmdef_add_nic_spec(&def, "net0", "slirp,mac=52:54:00:00:00:02,fwd=tcp:2222:22,fwd=udp:1:2",
					    &e),
			 0);
	assert_int_equal(def.nics[0].nfwds, 2);
	assert_int_equal(vmdef_add_nic_spec(&def, "net1", "tap=tap3,mac=52:54:00:00:00:03", &e), 0);
	assert_string_equal(def.nics[1].ifname, "tap3");
	assert_int_equal(vmdef_add_nic_spec(&def, "net2", "tap=tap3,fwd=tcp:1:2", &e), -1);
	assert_contains(e.msg, "unknown option");
	assert_int_equal(vmdef_add_nic_spec(&def, "net2", "vde", &e), -1);
	assert_contains(e.msg, "write passt or slirp");
	assert_int_equal(def.nnics, 2);
	assert_int_equal(vmdef_add_nic_spec(&def, "up", "vm=netvm:down,mac=52:54:00:00:00:04", &e), 0);
	assert_int_equal(def.nics[2].type, VMDEF_NIC_VM);
	assert_string_equal(def.nics[2].peer, "netvm");
	assert_string_equal(def.nics[2].peer_nic, "down");
	assert_int_equal(vmdef_add_nic_spec(&def, "x", "vm=a/b", &e), -1);
	assert_contains(e.msg, "not VM or VM:NIC");
	/* passt: user-mode like slirp, with its forwards and host loopback */
	assert_int_equal(vmdef_add_nic_spec(&def, "pa", "passt,fwd=tcp:127.0.0.1:2222:22,host-loopback=yes", &e), 0);
	assert_int_equal(def.nics[3].type, VMDEF_NIC_PASST);
	assert_int_equal(def.nics[3].nfwds, 1);
	assert_true(def.nics[3].host_loopback);
	assert_int_equal(vmdef_add_nic_spec(&def, "pb", "passt,vhost=on", &e), -1);
	assert_contains(e.msg, "unknown option");
	assert_int_equal(vmdef_add_nic_spec(&def, "pb", "passt,queues=2", &e), -1);
	assert_contains(e.msg, "unknown option");
}

static void test_vmm_args(void **state)
{
	(void)state;
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	struct vmm_args *a = malloc(sizeof(*a));
	struct vmm_args_in in = {.vmm = "/usr/bin/shoji-vmm",
				 .control = "/run/shoji/work/control.sock",
				 .serial_socket = "/run/shoji/work/serial.sock",
				 .serial_log = "/log",
				 .display = "/run/shoji/work/display.sock",
				 .jail = true,
				 .jail_uid = 999,
				 .jail_gid = 998,
				 .net_uid = 997};
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	char joined[4096] = "";
	for (int i = 0; i < a->argc; i++)
		snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s|", a->argv[i]);
	assert_null(a->argv[a->argc]);
	assert_string_equal(
		joined,
		"/usr/bin/shoji-vmm|--kernel|/boot/vmlinuz|--initrd|/boot/initrd.img|"
		"--cmdline|console=ttyS0 quiet root=/dev/vda|--memory|2048|--cpus|2|"
		"--control-socket|/run/shoji/work/control.sock|"
		"--serial|socket:/run/shoji/work/serial.sock|--serial-log|/log|--rng|"
		"--display|socket:/run/shoji/work/display.sock|"
		"--disk|/var/lib/shoji/images/work.img,serial=ROOT1|"
		"--disk|/srv/data.qcow2,ro,format=qcow2|"
		"--net|slirp,mac=52:54:00:ab:cd:01,host-loopback=on,fwd=tcp:2222:22,fwd=udp:127.0.0.1:5353:53|"
		"--net|tap=tap0,mac=52:54:00:20:d6:18,vhost=off,queues=4|--vsock|42|--param|url=https://intranet.example/a%20b?x=1|"
		"--param|mode=kiosk|--jail-uid|999|--jail-gid|998|--net-uid|997|");
	/* A link NIC, and default MACs: the same for one VM and NIC, different between VMs. */
	vmdef_init(&def, "fw");
	strcpy(def.kernel, "/k");
	char *edits[] = {"nic.down.type=vm", "nic.down.peer=app"};
	assert_int_equal(vmdef_set_all(&def, edits, 2, &e), 0);
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	const char *link = NULL;
	for (int i = 1; i < a->argc; i++)
		if (strcmp(a->argv[i - 1], "--net") == 0)
			link = a->argv[i];
	assert_non_null(link);
	assert_true(strncmp(link, "link,mac=52:54:00:", 18) == 0);
	char first[64];
	snprintf(first, sizeof(first), "%s", link);
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	for (int i = 1; i < a->argc; i++)
		if (strcmp(a->argv[i - 1], "--net") == 0)
			assert_string_equal(a->argv[i], first);
	strcpy(def.name, "fx");
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	for (int i = 1; i < a->argc; i++)
		if (strcmp(a->argv[i - 1], "--net") == 0)
			assert_string_not_equal(a->argv[i], first);
	/* A passt NIC: the monitor gets its MAC alone; forwards and host loopback are passt's. */
	char *pedits[] = {"nic.down=", "nic.up.type=passt", "nic.up.forward=tcp:2222:22", "nic.up.host-loopback=yes"};
	assert_int_equal(vmdef_set_all(&def, pedits, 4, &e), 0);
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	link = NULL;
	for (int i = 1; i < a->argc; i++)
		if (strcmp(a->argv[i - 1], "--net") == 0)
			link = a->argv[i];
	assert_non_null(link);
	assert_true(strncmp(link, "passt,mac=52:54:00:", 19) == 0);
	assert_int_equal(strlen(link), strlen("passt,mac=52:54:00:00:00:00"));
	assert_string_not_equal(a->argv[a->argc - 2], "--net-uid"); /* no slirp NIC: passt runs as the net uid */
	in.jail = false;
	vmdef_init(&def, "m");
	strcpy(def.kernel, "/k");
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	assert_int_equal(a->argc, 16);
	/* A disposable's root: the template image with its writes in an unnamed overlay. */
	assert_int_equal(vmdef_set(&def, "disk.root.template=deb", &e), 0);
	strcpy(def.disks[0].path, "/t/v1.qcow2");
	in.volatile_dir = "/s/vol";
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	assert_string_equal(a->argv[a->argc - 1], "/t/v1.qcow2,format=qcow2,volatile=/s/vol");
	/* Firmware: --firmware CODE,vars=the VM's own store, and no kernel, initrd or cmdline. */
	assert_int_equal(vmdef_parse(FW "firmware = uefi\n", "t.ini", &def, &e), 0);
	in.volatile_dir = NULL;
	assert_int_equal(vmm_args_build(&def, &in, a, &e), -1);
	assert_contains(e.msg, "no variable store");
	in.firmware_vars = "/s/vms/a/uefi-vars.fd";
	assert_int_equal(vmm_args_build(&def, &in, a, &e), 0);
	assert_string_equal(a->argv[1], "--firmware");
	assert_string_equal(a->argv[2], "/usr/share/OVMF/OVMF_CODE_4M.fd,vars=/s/vms/a/uefi-vars.fd");
	assert_string_equal(a->argv[3], "--memory");
	for (int i = 0; i < a->argc; i++) {
		assert_null(strstr(a->argv[i], "--kernel"));
		assert_null(strstr(a->argv[i], "--cmdline"));
		assert_null(strstr(a->argv[i], "--initrd"));
	}
	free(a);
}

/* Guest parameters: KEY=VALUE words for the guest, by the one rule the monitor applies too. */
static void test_guest_params(void **state)
{
	(void)state;
	expect(VM "param = URL=x\n", "t.ini:4:", "not KEY=VALUE");
	expect(VM "param = agent-token=0123\n", "t.ini:4:", "not agent-token");
	expect(VM "param = url=a b\n", "t.ini:4:", "without space");
	expect(VM "param = url=a,b\n", "t.ini:4:", "comma");
	expect(VM "param = url=\"x\"\n", "t.ini:4:", "quote");
	char big[400] = VM "param = url=";
	memset(big + strlen(big), 'x', GUEST_PARAM_VALUE_MAX + 1);
	strcat(big, "\n");
	expect(big, "t.ini:4:", "at most 150");
	assert_int_equal(vmdef_parse(good, "work.ini", &def, &e), 0);
	assert_int_equal(def.nparams, 2);
	assert_string_equal(def.params[0].value, "https://intranet.example/a%20b?x=1");
	assert_int_equal(vmdef_set(&def, "param=url=https://other/", &e), 0); /* replaces */
	assert_int_equal(def.nparams, 2);
	assert_string_equal(def.params[0].value, "https://other/");
	for (int i = 0; i < GUEST_PARAM_MAX - 2; i++) {
		char kv[32];
		snprintf(kv, sizeof(kv), "p%d=v", i);
		assert_int_equal(vmdef_set(&def, kv, &e) == 0 ? 0 : -1, -1); /* not a [vm] key by itself */
		snprintf(kv, sizeof(kv), "param=p%d=v", i);
		assert_int_equal(vmdef_set(&def, kv, &e), 0);
	}
	assert_int_equal(vmdef_set(&def, "param=one-more=v", &e), -1);
	assert_contains(e.msg, "more than 8 guest parameters");
	assert_int_equal(vmdef_set(&def, "param=", &e), 0);
	assert_int_equal(def.nparams, 0);
}

static struct vmdef vm_labelled(const char *name, const char *label)
{
	struct vmdef d;
	vmdef_init(&d, name);
	snprintf(d.label, sizeof(d.label), "%s", label);
	strcpy(d.kernel, "/k");
	return d;
}

/* [policy]: the clipboard's rules parse, refuse what is not a rule, and decide as documented. */
static void test_clipboard_policy(void **state)
{
	(void)state;
	expect(VM "[policy]\nclipboard-out = maybe\n", "t.ini:5:", "allow, deny, allow PEER");
	expect(VM "[policy]\nclipboard-in = allow label:mauve\n", "t.ini:5:", "mauve");
	expect(VM "[policy]\nclipboard-in = allow ../etc\n", "t.ini:5:", "neither a VM name nor label:COLOUR");
	expect(VM "[policy]\nclipboard-in = deny a b c d e f g h i\n", "t.ini:5:", "more than 8 peers");
	expect(VM "[policy]\nclipboard-max = 0\n", "t.ini:5:", "not a size");
	expect(VM "[policy]\nclipboard-max = 257K\n", "t.ini:5:", "not a size");
	expect(VM "[policy]\nclipboard-max = 12Q\n", "t.ini:5:", "not a size");
	expect(VM "[policy]\nclipboard-out = deny\nclipboard-out = allow\n", "t.ini:6:", "given twice");

	struct vmdef work = vm_labelled("work", "blue"), personal = vm_labelled("personal", "green");
	struct vmdef work2 = vm_labelled("work-2", "blue");
	char why[256];
	assert_true(vmdef_clipboard_may_paste(&work, &personal, 10, why, sizeof(why))); /* defaults */
	assert_int_equal(vmdef_set(&work, "policy.clipboard-out=allow label:blue", &e), 0);
	assert_false(vmdef_clipboard_may_paste(&work, &personal, 10, why, sizeof(why)));
	assert_contains(why, "work's clipboard-out does not let its clipboard into personal");
	assert_true(vmdef_clipboard_may_paste(&work, &work2, 10, why, sizeof(why)));
	assert_true(vmdef_clipboard_may_copy(&work, 10, why, sizeof(why)));
	assert_int_equal(vmdef_set(&work2, "policy.clipboard-in=deny work", &e), 0);
	assert_false(vmdef_clipboard_may_paste(&work, &work2, 10, why, sizeof(why)));
	assert_contains(why, "work-2's clipboard-in does not take work's clipboard");
	assert_true(vmdef_clipboard_may_paste(&personal, &work2, 10, why, sizeof(why)));
	assert_int_equal(vmdef_set(&work2, "policy.clipboard-max=1K", &e), 0);
	assert_false(vmdef_clipboard_may_paste(&personal, &work2, 1025, why, sizeof(why)));
	assert_contains(why, "more than work-2's clipboard-max (1024)");
	assert_int_equal(vmdef_set(&personal, "policy.clipboard-out=deny", &e), 0);
	assert_false(vmdef_clipboard_may_copy(&personal, 1, why, sizeof(why)));
	assert_contains(why, "clipboard-out = deny");
	assert_int_equal(vmdef_set(&personal, "policy.clipboard-out=deny work", &e), 0);
	assert_true(vmdef_clipboard_may_copy(&personal, 1, why, sizeof(why)));
	assert_false(vmdef_clipboard_may_paste(&personal, &work, 1, why, sizeof(why)));
	assert_int_equal(vmdef_set(&personal, "policy.nosuch=1", &e), -1);
	assert_contains(e.msg, "known keys here: clipboard-out");
	assert_contains(e.msg, "usb-storage, usb-auto");
	/* The USB keys (usb_policy.c decides; test_usb.c tests the decisions). */
	expect(VM "[policy]\nusb-deny = class:floppy\n", "t.ini:5:", "names no USB class");
	expect(VM "[policy]\nusb-storage = no\n", "t.ini:5:", "write allow or deny");
	expect(VM "[policy]\nusb-auto = no\nusb-auto = focused\n", "t.ini:6:", "given twice");
	assert_int_equal(vmdef_set(&work, "policy.usb-deny=class:storage port:1-2", &e), 0);
	assert_int_equal(work.policy.usb.deny.n, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_definition),
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_errors_name_the_line),
		cmocka_unit_test(test_value_errors),
		cmocka_unit_test(test_device_errors),
		cmocka_unit_test(test_hostile_text),
		cmocka_unit_test(test_firmware_errors),
		cmocka_unit_test(test_firmware_definitions),
		cmocka_unit_test(test_vsock_auto),
		cmocka_unit_test(test_firmware_set),
		cmocka_unit_test(test_format_round_trip),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_clipboard_policy),
		cmocka_unit_test(test_guest_params),
		cmocka_unit_test(test_specs),
		cmocka_unit_test(test_vmm_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

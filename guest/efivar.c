/* efivar: makes and reads a UEFI boot entry through efivarfs, as efibootmgr does, for the test
 * guest (busybox has no efibootmgr). efivarfs must be mounted at /sys/firmware/efi/efivars.
 *   efivar show   one line: "BootCurrent=NNNN BootOrder=NNNN,NNNN,... Boot0100=present|absent"
 *                 (NNNN: a boot option number, four hex digits)
 *   efivar add    makes Boot0100 "shoji test entry" with the device path of the first entry in
 *                 BootOrder that starts at a PCI root (the firmware's entry for the boot disk),
 *                 and puts it first in BootOrder
 * Built statically into the guest's initramfs by guest/build.sh. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define DIR    "/sys/firmware/efi/efivars/"
#define GLOBAL "-8be4df61-93ca-11d2-aa0d-00e098032b8c"
#define ENTRY  0x0100
#define ATTRS  7u /* non-volatile, boot service and runtime access */

/* The variable's data (after efivarfs's 4 attribute bytes) into buf; its length or -1. */
static ssize_t get(const char *name, uint8_t *buf, size_t cap)
{
	char path[128];
	uint8_t raw[4096];
	snprintf(path, sizeof(path), DIR "%s" GLOBAL, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, raw, sizeof(raw));
	close(fd);
	if (n < 4 || (size_t)(n - 4) > cap) {
		errno = EOVERFLOW;
		return -1;
	}
	memcpy(buf, raw + 4, (size_t)n - 4);
	return n - 4;
}

/* Writes the variable in one write, as efivarfs requires, after lifting the immutable flag
 * efivarfs puts on existing variables. */
static int put(const char *name, const uint8_t *data, size_t len)
{
	char path[128];
	uint8_t raw[4096];
	uint32_t attrs = ATTRS;
	if (len + 4 > sizeof(raw))
		return -1;
	snprintf(path, sizeof(path), DIR "%s" GLOBAL, name);
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		int flags;
		if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_IMMUTABLE_FL)) {
			flags &= ~FS_IMMUTABLE_FL;
			ioctl(fd, FS_IOC_SETFLAGS, &flags);
		}
		close(fd);
	}
	memcpy(raw, &attrs, 4);
	memcpy(raw + 4, data, len);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, raw, len + 4);
	int saved = errno;
	close(fd);
	errno = saved;
	return w == (ssize_t)(len + 4) ? 0 : -1;
}

/* The offset of a load option's device path (after attributes, path length and the
 * NUL-terminated UCS-2 description), or 0 when the option is malformed. */
static size_t path_offset(const uint8_t *opt, size_t len)
{
	for (size_t i = 6; i + 1 < len; i += 2)
		if (!opt[i] && !opt[i + 1])
			return i + 2;
	return 0;
}

static int show(void)
{
	uint8_t cur[2], order[512], entry[2048];
	ssize_t nc = get("BootCurrent", cur, sizeof(cur)), no = get("BootOrder", order, sizeof(order));
	if (nc == 2)
		printf("BootCurrent=%04X", cur[0] | cur[1] << 8);
	else
		printf("BootCurrent=none");
	printf(" BootOrder=");
	for (ssize_t i = 0; i + 1 < no; i += 2)
		printf("%s%04X", i ? "," : "", order[i] | order[i + 1] << 8);
	printf(" Boot0100=%s\n", get("Boot0100", entry, sizeof(entry)) > 0 ? "present" : "absent");
	return 0;
}

/* The device path (and its length, at most cap) of the first entry in BootOrder that starts at
 * an ACPI PciRoot node (type 2, subtype 1, _HID PNP0A03); 0 or -1. */
static int disk_path(uint8_t *path, size_t cap, uint16_t *plen)
{
	uint8_t order[512], opt[2048];
	ssize_t no = get("BootOrder", order, sizeof(order));
	for (ssize_t i = 0; i + 1 < no; i += 2) {
		char name[16];
		snprintf(name, sizeof(name), "Boot%04X", order[i] | order[i + 1] << 8);
		ssize_t n = get(name, opt, sizeof(opt));
		size_t at = n > 6 ? path_offset(opt, (size_t)n) : 0;
		uint16_t len = n > 6 ? (uint16_t)(opt[4] | opt[5] << 8) : 0;
		if (!at || at + len > (size_t)n || len < 8 || len > cap || opt[at] != 2 || opt[at + 1] != 1 ||
		    memcmp(opt + at + 4, "\xd0\x41\x03\x0a", 4) != 0)
			continue;
		memcpy(path, opt + at, len);
		*plen = len;
		return 0;
	}
	return -1;
}

static int add(void)
{
	static const char desc[] = "shoji test entry";
	uint8_t opt[2048], order[512], neworder[514], path[1024];
	uint16_t plen;
	if (disk_path(path, sizeof(path), &plen) < 0) {
		fprintf(stderr, "efivar: no boot entry for a PCI device in BootOrder\n");
		return 1;
	}
	uint32_t attrs = 1; /* LOAD_OPTION_ACTIVE */
	size_t n = 0;
	memcpy(opt, &attrs, 4);
	memcpy(opt + 4, &plen, 2);
	n = 6;
	for (size_t i = 0; i < sizeof(desc); i++, n += 2) {
		opt[n] = (uint8_t)desc[i];
		opt[n + 1] = 0;
	}
	memcpy(opt + n, path, plen);
	n += plen;
	ssize_t no = get("BootOrder", order, sizeof(order));
	if (no < 0 && errno != ENOENT) { /* never write a BootOrder that lost the others */
		fprintf(stderr, "efivar: cannot read BootOrder\n");
		return 1;
	}
	size_t k = 0;
	neworder[k++] = ENTRY & 0xff;
	neworder[k++] = ENTRY >> 8;
	for (ssize_t i = 0; i + 1 < no; i += 2)
		if ((order[i] | order[i + 1] << 8) != ENTRY) {
			neworder[k++] = order[i];
			neworder[k++] = order[i + 1];
		}
	if (put("Boot0100", opt, n) < 0 || put("BootOrder", neworder, k) < 0) {
		fprintf(stderr, "efivar: cannot write the boot entry: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "show"))
		return show();
	if (argc == 2 && !strcmp(argv[1], "add"))
		return add();
	fprintf(stderr, "usage: efivar show|add\n");
	return 2;
}

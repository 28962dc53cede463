/* usb_sysfs: the scan of sysfs's USB devices (usb_sysfs.h). Files are opened relative to the
 * device's directory, read with a bound, and never written. */
#include "usb_sysfs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usb_desc.h"

/* Up to cap bytes of dirfd/name; -1 when it cannot be opened or read. */
static ssize_t read_at(int dirfd, const char *name, uint8_t *buf, size_t cap)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	size_t got = 0;
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0)
				got = (size_t)-1;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	return (ssize_t)got;
}

/* A name the device gave (sysfs ends it with a newline), printable ASCII only: anything else
 * becomes '?', so that no device writes escapes onto the user's terminal. "" when absent. */
static void read_name(int dirfd, const char *file, char out[USB_NAME_MAX])
{
	uint8_t buf[USB_NAME_MAX];
	ssize_t n = read_at(dirfd, file, buf, sizeof(buf) - 1);
	size_t k = 0;
	for (ssize_t i = 0; i < n && buf[i] != '\n'; i++)
		out[k++] = buf[i] >= 0x20 && buf[i] < 0x7f ? (char)buf[i] : '?';
	out[k] = '\0';
}

static unsigned read_number(int dirfd, const char *file)
{
	uint8_t buf[16];
	ssize_t n = read_at(dirfd, file, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long v = strtoul((const char *)buf, NULL, 10);
	return v > 0xffff ? 0 : (unsigned)v;
}

/* The speed sysfs gives in Mbit/s ("1.5", "12", "480", "5000", "10000", "20000") as the
 * kernel's enum usb_device_speed; 0 for anything else. */
static uint8_t read_speed(int dirfd)
{
	static const struct {
		const char *text;
		uint8_t speed;
	} speeds[] = {{"1.5", 1}, {"12", 2}, {"480", 3}, {"5000", 5}, {"10000", 6}, {"20000", 6}};
	uint8_t buf[16];
	ssize_t n = read_at(dirfd, "speed", buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		if (strcmp((const char *)buf, speeds[i].text) == 0)
			return speeds[i].speed;
	return 0;
}

/* One device's directory: -1 when its descriptors cannot be read (it left). */
static int read_device(int dirfd, const char *port, struct usb_device_info *d)
{
	static uint8_t desc[USB_DESCRIPTORS_MAX];
	int fd = openat(dirfd, port, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	*d = (struct usb_device_info){0};
	snprintf(d->port, sizeof(d->port), "%s", port);
	ssize_t n = read_at(fd, "descriptors", desc, sizeof(desc));
	struct err e;
	if (n < 0) {
		close(fd);
		return -1;
	}
	if (usb_desc_parse(desc, (size_t)n, d, &e) < 0)
		d->ifaces_truncated = true;
	d->busnum = read_number(fd, "busnum");
	d->devnum = read_number(fd, "devnum");
	d->speed = read_speed(fd);
	read_name(fd, "manufacturer", d->manufacturer);
	read_name(fd, "product", d->product);
	close(fd);
	return 0;
}

/* Port order: bus, then each port number in turn ("1-2" before "1-2.1" before "1-10"). */
static int port_cmp(const void *a, const void *b)
{
	const char *p = ((const struct usb_device_info *)a)->port, *q = ((const struct usb_device_info *)b)->port;
	while (*p && *q) {
		char *pe, *qe;
		unsigned long x = strtoul(p, &pe, 10), y = strtoul(q, &qe, 10);
		if (x != y)
			return x < y ? -1 : 1;
		p = *pe ? pe + 1 : pe;
		q = *qe ? qe + 1 : qe;
	}
	return (*p != '\0') - (*q != '\0');
}

int usb_sysfs_scan(const char *dir, struct usb_device_info *out, unsigned cap, unsigned *n, struct err *e)
{
	*n = 0;
	DIR *dp = opendir(dir);
	if (!dp && errno == ENOENT) /* no USB bus on this host: no devices */
		return 0;
	if (!dp)
		return err_errno(e, errno, "cannot read the host's USB devices in %s", dir);
	struct dirent *de;
	while ((de = readdir(dp)) != NULL && *n < cap)
		if (usb_port_ok(de->d_name) && read_device(dirfd(dp), de->d_name, &out[*n]) == 0)
			(*n)++;
	closedir(dp);
	qsort(out, *n, sizeof(out[0]), port_cmp);
	return 0;
}

long usb_sysfs_number(const char *port, const char *file)
{
	char p[128], buf[24];
	snprintf(p, sizeof(p), USB_SYSFS_DEVICES "/%s/%s", port, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	long v = strtol(buf, &end, 10);
	return end == buf ? -1 : v;
}

/* gputest: the test guest's display and keyboard tool (busybox has neither).
 *   gputest info                  print the framebuffer's geometry
 *   gputest fill RRGGBB           fill /dev/fb0 with one colour
 *   gputest pattern               pixel (x, y) gets red x & 255, green y & 255, blue 0x5a
 *   gputest text NAME RRGGBB      the colour, with NAME in big white letters in the middle
 *   gputest frames N              N full frames, alternating two colours, one every 20 ms
 *   gputest keys                  print "shoji-key: CODE" for each key press on any
 *                                 /dev/input/event*, and "shoji-mouse: CODE VALUE" for each
 *                                 relative motion (REL_X 0, REL_Y 1), forever
 * The console is switched to graphics mode first, so the kernel's text console does not draw
 * over the picture. Built statically into the guest's initramfs by guest/build.sh. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <linux/kd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct fb {
	int fd;
	uint32_t w, h, stride, bpp;
	uint8_t *frame; /* stride * h bytes, written to the device in one go */
};

static int fb_open(struct fb *f)
{
	struct fb_var_screeninfo var;
	struct fb_fix_screeninfo fix;
	int tty = open("/dev/tty0", O_RDWR);
	if (tty >= 0) {
		ioctl(tty, KDSETMODE, KD_GRAPHICS); /* kept: the descriptor is never closed */
	}
	f->fd = open("/dev/fb0", O_RDWR);
	if (f->fd < 0 || ioctl(f->fd, FBIOGET_VSCREENINFO, &var) < 0 || ioctl(f->fd, FBIOGET_FSCREENINFO, &fix) < 0) {
		fprintf(stderr, "gputest: no usable /dev/fb0: %s\n", strerror(errno));
		return -1;
	}
	f->w = var.xres, f->h = var.yres, f->stride = fix.line_length, f->bpp = var.bits_per_pixel;
	if (f->bpp != 32) {
		fprintf(stderr, "gputest: /dev/fb0 has %u bits a pixel, not 32\n", f->bpp);
		return -1;
	}
	f->frame = calloc(f->h, f->stride);
	return f->frame ? 0 : -1;
}

static void fb_put(struct fb *f, uint32_t x, uint32_t y, uint32_t rgb)
{
	if (x < f->w && y < f->h)
		memcpy(f->frame + (size_t)y * f->stride + (size_t)x * 4, &rgb, 4);
}

static int fb_show(struct fb *f)
{
	size_t n = (size_t)f->stride * f->h, off = 0;
	while (off < n) {
		ssize_t w = pwrite(f->fd, f->frame + off, n - off, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "gputest: cannot write /dev/fb0: %s\n", strerror(errno));
			return -1;
		}
		off += (size_t)w;
	}
	return 0;
}

static void fill(struct fb *f, uint32_t rgb)
{
	for (uint32_t y = 0; y < f->h; y++)
		for (uint32_t x = 0; x < f->w; x++)
			fb_put(f, x, y, rgb);
}

/* A 5x7 font: each glyph is seven rows of five bits, the top row first. */
static const char glyph_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._";
static const uint8_t glyphs[][7] = {
	{14, 17, 17, 31, 17, 17, 17}, {30, 17, 17, 30, 17, 17, 30}, {14, 17, 16, 16, 16, 17, 14},
	{30, 17, 17, 17, 17, 17, 30}, {31, 16, 16, 30, 16, 16, 31}, {31, 16, 16, 30, 16, 16, 16},
	{14, 17, 16, 23, 17, 17, 15}, {17, 17, 17, 31, 17, 17, 17}, {14, 4, 4, 4, 4, 4, 14},
	{7, 2, 2, 2, 2, 18, 12},      {17, 18, 20, 24, 20, 18, 17}, {16, 16, 16, 16, 16, 16, 31},
	{17, 27, 21, 21, 17, 17, 17}, {17, 17, 25, 21, 19, 17, 17}, {14, 17, 17, 17, 17, 17, 14},
	{30, 17, 17, 30, 16, 16, 16}, {14, 17, 17, 17, 21, 18, 13}, {30, 17, 17, 30, 20, 18, 17},
	{15, 16, 16, 14, 1, 1, 30},   {31, 4, 4, 4, 4, 4, 4},       {17, 17, 17, 17, 17, 17, 14},
	{17, 17, 17, 17, 17, 10, 4},  {17, 17, 17, 21, 21, 21, 10}, {17, 17, 10, 4, 10, 17, 17},
	{17, 17, 10, 4, 4, 4, 4},     {31, 1, 2, 4, 8, 16, 31},     {14, 17, 19, 21, 25, 17, 14},
	{4, 12, 4, 4, 4, 4, 14},      {14, 17, 1, 2, 4, 8, 31},     {31, 2, 4, 2, 1, 17, 14},
	{2, 6, 10, 18, 31, 2, 2},     {31, 16, 30, 1, 1, 17, 14},   {6, 8, 16, 30, 17, 17, 14},
	{31, 1, 2, 4, 8, 8, 8},       {14, 17, 17, 14, 17, 17, 14}, {14, 17, 17, 15, 1, 2, 12},
	{0, 0, 0, 31, 0, 0, 0},       {0, 0, 0, 0, 0, 12, 12},      {0, 0, 0, 0, 0, 0, 31},
};

static void text(struct fb *f, const char *s, uint32_t rgb)
{
	size_t n = strlen(s);
	uint32_t scale = f->w / (n * 6 + 2);
	if (scale > f->h / 12)
		scale = f->h / 12;
	if (scale == 0)
		scale = 1;
	uint32_t x0 = (f->w - (uint32_t)n * 6 * scale) / 2, y0 = (f->h - 7 * scale) / 2;
	for (size_t i = 0; i < n; i++) {
		char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
		const char *at = strchr(glyph_chars, c);
		if (!at || !c)
			continue;
		const uint8_t *g = glyphs[at - glyph_chars];
		for (uint32_t row = 0; row < 7 * scale; row++)
			for (uint32_t col = 0; col < 5 * scale; col++)
				if (g[row / scale] & (16 >> (col / scale)))
					fb_put(f, x0 + (uint32_t)i * 6 * scale + col, y0 + row, rgb);
	}
}

static int keys(void)
{
	struct pollfd p[16];
	int n = 0;
	DIR *d = opendir("/dev/input");
	struct dirent *de;
	while (d && (de = readdir(d)) && n < 16) {
		if (strncmp(de->d_name, "event", 5))
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/dev/input/%s", de->d_name);
		p[n].fd = open(path, O_RDONLY);
		p[n].events = POLLIN;
		if (p[n].fd >= 0)
			n++;
	}
	if (d)
		closedir(d);
	printf("shoji-keys: listening on %d devices\n", n);
	fflush(stdout);
	for (;;) {
		if (poll(p, (nfds_t)n, -1) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct input_event ev;
			if (!(p[i].revents & POLLIN) || read(p[i].fd, &ev, sizeof(ev)) != sizeof(ev))
				continue;
			if (ev.type == EV_KEY && ev.value == 1) {
				printf("shoji-key: %u\n", ev.code);
				fflush(stdout);
			} else if (ev.type == EV_REL && (ev.code == REL_X || ev.code == REL_Y)) {
				printf("shoji-mouse: %u %d\n", ev.code, ev.value); /* the relative mouse */
				fflush(stdout);
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "keys") == 0)
		return keys();
	struct fb f;
	if (argc < 2 || fb_open(&f) < 0)
		return 1;
	if (strcmp(argv[1], "info") == 0) {
		printf("shoji-fb: %ux%u stride %u bpp %u\n", f.w, f.h, f.stride, f.bpp);
		return 0;
	}
	if (strcmp(argv[1], "fill") == 0 && argc == 3) {
		fill(&f, (uint32_t)strtoul(argv[2], NULL, 16));
		return fb_show(&f) < 0;
	}
	if (strcmp(argv[1], "pattern") == 0) {
		for (uint32_t y = 0; y < f.h; y++)
			for (uint32_t x = 0; x < f.w; x++)
				fb_put(&f, x, y, (x & 255) << 16 | (y & 255) << 8 | 0x5a);
		return fb_show(&f) < 0;
	}
	if (strcmp(argv[1], "text") == 0 && argc == 4) {
		fill(&f, (uint32_t)strtoul(argv[3], NULL, 16));
		text(&f, argv[2], 0xffffff);
		return fb_show(&f) < 0;
	}
	if (strcmp(argv[1], "frames") == 0 && argc == 3) {
		long n = strtol(argv[2], NULL, 10);
		for (long i = 0; i < n; i++) {
			fill(&f, i % 2 ? 0x102030 : 0x405060);
			if (fb_show(&f) < 0)
				return 1;
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		return 0;
	}
	fprintf(stderr, "usage: gputest info|fill RRGGBB|pattern|text NAME RRGGBB|frames N|keys\n");
	return 2;
}

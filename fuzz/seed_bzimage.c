/* seed_bzimage: writes the fuzzer's seed corpus: the synthetic bzImage and a few variants, and
 * the synthetic vmlinux, into DIR/seed, and makes DIR/found for what the fuzzer discovers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../tests/unit/synth_bzimage.h"
#include "vmm/boot/bzimage.h"

static int seed_mkdir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "seed_bzimage: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int seed_write(const char *dir, const char *name, const uint8_t *data, size_t size)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/seed/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		fprintf(stderr, "seed_bzimage: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t image[SYNTH_SIZE];
	char path[4096];
	if (argc != 2) {
		fprintf(stderr, "usage: seed_bzimage DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	if (seed_mkdir(dir) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/seed", dir);
	if (seed_mkdir(path) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/found", dir);
	if (seed_mkdir(path) < 0)
		return 1;

	synth_bzimage(image);
	if (seed_write(dir, "valid", image, SYNTH_SIZE) < 0)
		return 1;
	/* Protocol 2.12, no RSDP field; setup_sects 0 meaning 4; loaded at 1 MiB. */
	synth_put(image, BZ_VERSION, 0x020c, 2);
	image[BZ_SETUP_SECTS] = 0;
	synth_put(image, BZ_PREF_ADDRESS, 0, 8);
	if (seed_write(dir, "old", image, SYNTH_SIZE) < 0)
		return 1;
	/* The smallest setup area and the farthest header end. */
	synth_bzimage(image);
	image[BZ_SETUP_SECTS] = 1;
	image[BZ_JUMP + 1] = 0xff;
	synth_put(image, BZ_SYSSIZE, (SYNTH_SIZE - 1024) / 16, 4);
	if (seed_write(dir, "short-setup", image, SYNTH_SIZE) < 0)
		return 1;
	/* An ELF vmlinux: two segments, one with zeroes past its file bytes, and a note. */
	static uint8_t elf[SYNTH_ELF_SIZE];
	synth_vmlinux(elf);
	if (seed_write(dir, "vmlinux", elf, SYNTH_ELF_SIZE) < 0)
		return 1;
	return 0;
}

/* pflash: the firmware flash (see pflash.h). Our own model of an Intel/Sharp command-set CFI
 * flash, written from the behaviour OVMF expects (QemuFlash.c) and QEMU's pflash_cfi01 offers;
 * no Debian library emulates one.
 *
 * The store is an anonymous copy of the file, which the guest reads through a read-only slot,
 * and every program or erase goes to the file with pwrite before the copy changes: the copy
 * never shows what the file does not hold, a write error leaves both as they were (and sets the
 * status error bit), and a file truncated or rewritten behind the monitor's back cannot fault it
 * (a MAP_SHARED mapping would take SIGBUS; it would also leave the moment of writing to the
 * kernel's writeback, and its errors to msync).
 *
 * When a write is durable. The guest sees a program or erase done when it returns to read-array
 * mode, reads the status or goes on to another command (OVMF reads no status: it considers an
 * erase done once the confirm is written, a buffer of programs once it has written 0xFF after
 * the last byte). Those are the points where fdatasync runs, so nothing acknowledged is lost to
 * a power cut: an erase syncs before its confirm returns (erases are rare: one per 4 KiB block
 * reclaimed); programs only mark the store dirty and are synced when their sequence ends, not
 * one by one, since OVMF programs byte by byte, two exits per byte, and a variable update is
 * hundreds of bytes. Measured on ext4 on a virtio disk (test_pflash.c, sync_cost, sanitizer
 * build, device calls only, no VM exits): 1000 byte programs and the read-array command took
 * 2.5-5 ms with its one fdatasync, 100-180 ms (3.6 s on a loaded host) with an fdatasync after
 * each program. A monitor that dies loses nothing either way: pwrite has put the data in the
 * page cache; only a host crash can take what was not yet synced, and that is never more than
 * the sequence the guest has not yet seen end. */
#include "pflash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../block/block.h"
#include "../../common/log.h"
#include "../boot/layout.h"

#define CODE_EXAMPLE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define VARS_EXAMPLE "/usr/share/OVMF/OVMF_VARS_4M.fd"

enum {
	CMD_PROGRAM = 0x10,
	CMD_PROGRAM_ALT = 0x40,
	CMD_ERASE = 0x20,
	CMD_CLEAR_STATUS = 0x50,
	CMD_READ_STATUS = 0x70,
	CMD_READ_ID = 0x90,
	CMD_CFI_QUERY = 0x98,
	CMD_CONFIRM = 0xd0,
	CMD_AMD_RESET = 0xf0,
	CMD_READ_ARRAY = 0xff,
};

enum {
	SR_READY = 0x80,
	SR_ERASE_ERROR = 0x20,
	SR_PROGRAM_ERROR = 0x10,
	SR_LOCKED = 0x02, /* the address lies outside the store */
};

/* ---- opening ---- */

struct part {
	const char *what, *example;
	bool writable;
};

static int open_error(const char *path, const struct part *p, int err, struct err *e)
{
	if (err == ENOENT && p->writable)
		return err_set(e,
			       "%s '%s' does not exist: give each VM its own copy of the firmware's empty "
			       "store (cp %s '%s'), writable by the VM's user",
			       p->what, path, p->example, path);
	if (err == ENOENT)
		return err_set(e, "%s '%s' does not exist: give the firmware's code image, such as %s (package ovmf)",
			       p->what, path, p->example);
	if (err == EISDIR)
		return err_set(e, "%s '%s' is a directory: give the image file itself, such as %s", p->what, path,
			       p->example);
	if (p->writable && (err == EACCES || err == EPERM || err == EROFS || err == ETXTBSY))
		return err_set(e,
			       "%s '%s' is not writable (%s): the firmware keeps the VM's boot entries there; "
			       "make it writable by the user the VM runs as (chown, chmod u+w) or give a "
			       "writable copy of %s",
			       p->what, path, strerror(err), p->example);
	return err_errno(e, err, "cannot open %s '%s'", p->what, path);
}

/* Opens path (never blocking on a FIFO) and checks that it is a regular file of whole blocks. */
static int open_part(const char *path, const struct part *p, uint64_t *size, struct err *e)
{
	int fd = open(path, (p->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return open_error(path, p, errno, e);
	struct stat st;
	int r = -1;
	if (fstat(fd, &st) < 0)
		err_errno(e, errno, "cannot stat %s '%s'", p->what, path);
	else if (S_ISDIR(st.st_mode))
		open_error(path, p, EISDIR, e);
	else if (!S_ISREG(st.st_mode))
		err_set(e, "%s '%s' is not a regular file (a FIFO, socket or device): give the image file, such as %s",
			p->what, path, p->example);
	else if (st.st_size == 0)
		err_set(e, "%s '%s' is empty: give the image file, such as %s", p->what, path, p->example);
	else if (st.st_size % PFLASH_BLOCK_SIZE)
		err_set(e,
			"%s '%s' is %lld bytes, not a whole number of 4 KiB flash blocks: not a firmware "
			"image (a truncated copy?); use one such as %s",
			p->what, path, (long long)st.st_size, p->example);
	else
		r = 0;
	if (r < 0) {
		close(fd);
		return -1;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* The two parts must fit below 4 GiB and, as every OVMF build's do, fill a power of two. */
static int check_sizes(const struct pflash *f, const char *code_path, struct err *e)
{
	uint64_t total = f->code_size + f->vars_size;
	if (total > LAYOUT_FIRMWARE_MAX)
		return err_set(e,
			       "firmware code '%s' (%" PRIu64 " bytes) and variable store '%s' (%" PRIu64
			       " bytes) together are more than the %llu MiB below 4 GiB kept for the "
			       "firmware: use an image such as %s",
			       code_path, f->code_size, f->vars_path, f->vars_size, LAYOUT_FIRMWARE_MAX >> 20,
			       CODE_EXAMPLE);
	if (total & (total - 1))
		return err_set(e,
			       "firmware code '%s' (%" PRIu64 " bytes) and variable store '%s' (%" PRIu64
			       " bytes) do not belong together: an OVMF build's two files fill 1, 2 or 4 MiB; "
			       "copy the store of the same build (%s for %s)",
			       code_path, f->code_size, f->vars_path, f->vars_size, VARS_EXAMPLE, CODE_EXAMPLE);
	return 0;
}

static uint8_t *anon(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Reads the code into read-only anonymous memory and the store into its copy. */
static int load(struct pflash *f, int code_fd, const char *code_path, struct err *e)
{
	f->code = anon(f->code_size);
	f->vars = anon(f->vars_size);
	if (!f->code || !f->vars)
		return err_errno(e, errno, "cannot allocate %" PRIu64 " KiB for the firmware",
				 (f->code_size + f->vars_size) >> 10);
	if (block_fd_pread(code_fd, f->code, f->code_size, 0, code_path, e) < 0 ||
	    block_fd_pread(f->vars_fd, f->vars, f->vars_size, 0, f->vars_path, e) < 0)
		return -1;
	if (mprotect(f->code, f->code_size, PROT_READ) < 0)
		return err_errno(e, errno, "cannot protect the firmware code");
	return 0;
}

/* The CFI query table of an x8 part with uniform 4 KiB blocks, byte program and block erase
 * only (no buffered write, no suspend, no protection registers). */
static void build_cfi(struct pflash *f)
{
	uint8_t *c = f->cfi;
	uint64_t blocks = f->vars_size / PFLASH_BLOCK_SIZE;
	unsigned log2size = 0;
	while ((1ull << log2size) < f->vars_size)
		log2size++;
	memcpy(c + 0x10, "QRY", 3);
	c[0x13] = 0x01; /* primary command set: Intel/Sharp extended */
	c[0x15] = 0x31; /* its extended table at 0x31 */
	c[0x1b] = 0x45; /* Vcc 4.5 - 5.5 V; no Vpp */
	c[0x1c] = 0x55;
	c[0x1f] = 4; /* typical byte program 2^4 us */
	c[0x21] = 9; /* typical block erase 2^9 ms */
	c[0x23] = 4; /* maximum: 2^4 times typical */
	c[0x25] = 4;
	c[0x27] = (uint8_t)log2size; /* 2^n bytes */
	c[0x2c] = 1;                 /* one region of uniform blocks: count - 1, size / 256 */
	c[0x2d] = (uint8_t)(blocks - 1);
	c[0x2e] = (uint8_t)((blocks - 1) >> 8);
	c[0x2f] = (uint8_t)(PFLASH_BLOCK_SIZE >> 8);
	c[0x30] = (uint8_t)(PFLASH_BLOCK_SIZE >> 16);
	memcpy(c + 0x31, "PRI10", 5); /* extended table version 1.0, no optional features */
}

static int lock_vars(struct pflash *f, struct err *e)
{
	struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(f->vars_fd, F_OFD_SETLK, &lk) == 0)
		return 0;
	if (errno == EAGAIN || errno == EACCES)
		return err_set(e,
			       "firmware variable store '%s' is in use by another VM (locked): give each VM its own copy",
			       f->vars_path);
	return err_errno(e, errno, "cannot lock firmware variable store '%s'", f->vars_path);
}

int pflash_open(struct pflash *f, const char *code_path, const char *vars_path, struct err *e)
{
	static const struct part code_part = {"firmware code", CODE_EXAMPLE, false};
	static const struct part vars_part = {"firmware variable store", VARS_EXAMPLE, true};
	memset(f, 0, sizeof(*f));
	f->vars_fd = -1;
	pthread_mutex_init(&f->lock, NULL);
	int code_fd = open_part(code_path, &code_part, &f->code_size, e);
	if (code_fd < 0)
		return -1;
	f->vars_path = strdup(vars_path);
	int r = -1;
	if (!f->vars_path)
		err_set(e, "out of memory");
	else if ((f->vars_fd = open_part(vars_path, &vars_part, &f->vars_size, e)) >= 0 &&
		 check_sizes(f, code_path, e) == 0 && lock_vars(f, e) == 0)
		r = load(f, code_fd, code_path, e);
	close(code_fd);
	if (r < 0) {
		pflash_close(f);
		return -1;
	}
	f->base = LAYOUT_FIRMWARE_TOP - f->code_size - f->vars_size;
	build_cfi(f);
	f->status = SR_READY;
	return 0;
}

struct pflash_layout pflash_layout(const struct pflash *f)
{
	return (struct pflash_layout){.vars_gpa = f->base,
				      .vars_size = f->vars_size,
				      .code_gpa = f->base + f->vars_size,
				      .code_size = f->code_size};
}

int pflash_attach(struct pflash *f, struct machine *m, struct io_bus *mmio, struct err *e)
{
	if (!m->map_rom)
		return err_set(e, "this machine cannot map the firmware flash (no map_rom)");
	if (io_bus_register(mmio, f->base, f->vars_size + f->code_size, pflash_mmio, f, "firmware flash", e) < 0)
		return -1;
	if (m->map_rom(m, PFLASH_SLOT_CODE, f->base + f->vars_size, f->code_size, f->code, true) < 0 ||
	    m->map_rom(m, PFLASH_SLOT_VARS, f->base, f->vars_size, f->vars, true) < 0)
		return err_set(e, "cannot map the firmware flash at 0x%" PRIx64 " into the guest", f->base);
	f->m = m;
	f->mapped = true;
	return 0;
}

/* ---- the device (lock held) ---- */

static void set_mode(struct pflash *f, enum pflash_mode mode)
{
	f->mode = mode;
	bool want = mode == PFLASH_READ_ARRAY;
	if (want == f->mapped || !f->m)
		return;
	if (f->m->map_rom(f->m, PFLASH_SLOT_VARS, f->base, f->vars_size, f->vars, want) == 0)
		f->mapped = want;
	else
		log_guest(LOG_ERROR, "cannot %s the firmware variable store", want ? "map" : "unmap");
}

/* Makes the programs written so far durable. */
static void settle(struct pflash *f)
{
	if (!f->dirty)
		return;
	f->dirty = false;
	f->syncs++;
	if (fdatasync(f->vars_fd) < 0) {
		f->status |= SR_PROGRAM_ERROR;
		f->errors++;
		log_guest(LOG_ERROR, "cannot sync firmware variable store '%s': %s", f->vars_path, strerror(errno));
	}
}

/* Stores data at [off, off+len) of the file, then of the copy. */
static bool store(struct pflash *f, uint64_t off, const void *data, uint64_t len)
{
	struct err e;
	if (block_fd_pwrite(f->vars_fd, data, len, off, f->vars_path, &e) < 0) {
		f->errors++;
		log_guest(LOG_ERROR, "%s", e.msg);
		return false;
	}
	memcpy(f->vars + off, data, len);
	return true;
}

static void program(struct pflash *f, uint64_t off, const uint8_t *data, uint32_t len)
{
	if (len > f->vars_size - off)
		f->status |= SR_PROGRAM_ERROR | SR_LOCKED;
	else if (memcmp(f->vars + off, data, len) == 0)
		f->programs++; /* nothing to write */
	else if (store(f, off, data, len)) {
		f->dirty = true;
		f->programs++;
	} else
		f->status |= SR_PROGRAM_ERROR;
	f->status |= SR_READY;
	set_mode(f, PFLASH_READ_STATUS);
}

static void erase(struct pflash *f, uint64_t off, uint8_t cmd)
{
	static const uint8_t blank[PFLASH_BLOCK_SIZE] = {[0 ... PFLASH_BLOCK_SIZE - 1] = 0xff};
	if (cmd == CMD_READ_ARRAY) {
		set_mode(f, PFLASH_READ_ARRAY);
		return;
	}
	if (cmd != CMD_CONFIRM) /* an improper sequence, as a real part reports it */
		f->status |= SR_ERASE_ERROR | SR_PROGRAM_ERROR;
	else if (store(f, off & ~(uint64_t)(PFLASH_BLOCK_SIZE - 1), blank, PFLASH_BLOCK_SIZE)) {
		f->erases++;
		f->dirty = true;
		settle(f);
	} else
		f->status |= SR_ERASE_ERROR;
	f->status |= SR_READY;
	set_mode(f, PFLASH_READ_STATUS);
}

static void command(struct pflash *f, uint64_t off, uint8_t cmd)
{
	if (cmd != CMD_PROGRAM && cmd != CMD_PROGRAM_ALT)
		settle(f);
	switch (cmd) {
	case CMD_PROGRAM:
	case CMD_PROGRAM_ALT: set_mode(f, PFLASH_PROGRAM); break;
	case CMD_ERASE: set_mode(f, PFLASH_ERASE); break;
	case CMD_READ_STATUS: set_mode(f, PFLASH_READ_STATUS); break;
	case CMD_READ_ID: set_mode(f, PFLASH_READ_ID); break;
	case CMD_CFI_QUERY: set_mode(f, PFLASH_READ_CFI); break;
	case CMD_CLEAR_STATUS:
		f->status = 0;
		set_mode(f, PFLASH_READ_ARRAY);
		break;
	case CMD_READ_ARRAY:
	case CMD_AMD_RESET:
	case 0x00: set_mode(f, PFLASH_READ_ARRAY); break;
	default:
		log_guest(LOG_WARN, "firmware flash: unknown command 0x%02x at 0x%" PRIx64 ", back to read-array mode",
			  cmd, f->base + off);
		set_mode(f, PFLASH_READ_ARRAY);
	}
}

/* A write to the code: refused; a program or erase waiting for it fails. */
static void code_write(struct pflash *f, uint64_t off, const uint8_t *data)
{
	log_guest(LOG_WARN, "firmware flash: write of 0x%02x to the read-only code at 0x%" PRIx64 " ignored", data[0],
		  f->base + off);
	if (f->mode == PFLASH_PROGRAM || f->mode == PFLASH_ERASE) {
		f->status |= SR_READY | SR_LOCKED | (f->mode == PFLASH_ERASE ? SR_ERASE_ERROR : SR_PROGRAM_ERROR);
		set_mode(f, PFLASH_READ_STATUS);
	}
}

static uint8_t read_byte(struct pflash *f, uint64_t off)
{
	if (off >= f->vars_size)
		return off - f->vars_size < f->code_size ? f->code[off - f->vars_size] : 0xff;
	switch (f->mode) {
	case PFLASH_READ_ARRAY: return f->vars[off];
	case PFLASH_READ_ID: return 0; /* manufacturer, device and lock bytes: all 0 */
	case PFLASH_READ_CFI: return (off & 0xff) < PFLASH_CFI_LEN ? f->cfi[off & 0xff] : 0;
	default: settle(f); return f->status; /* the guest looks at the outcome */
	}
}

void pflash_mmio(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pflash *f = opaque;
	pthread_mutex_lock(&f->lock);
	if (!is_write)
		for (uint32_t i = 0; i < len; i++)
			data[i] = read_byte(f, offset + i);
	else if (offset >= f->vars_size)
		code_write(f, offset, data);
	else if (f->mode == PFLASH_PROGRAM)
		program(f, offset, data, len);
	else if (f->mode == PFLASH_ERASE)
		erase(f, offset, data[0]);
	else
		command(f, offset, data[0]);
	pthread_mutex_unlock(&f->lock);
}

void pflash_close(struct pflash *f)
{
	if (!f->vars_path)
		return;
	if (f->vars_fd >= 0) {
		settle(f);
		close(f->vars_fd);
	}
	if (f->m) {
		f->m->map_rom(f->m, PFLASH_SLOT_VARS, f->base, f->vars_size, f->vars, false);
		f->m->map_rom(f->m, PFLASH_SLOT_CODE, f->base + f->vars_size, f->code_size, f->code, false);
	}
	pthread_mutex_destroy(&f->lock);
	if (f->code)
		munmap(f->code, f->code_size);
	if (f->vars)
		munmap(f->vars, f->vars_size);
	free(f->vars_path);
	memset(f, 0, sizeof(*f));
	f->vars_fd = -1;
}

/* test_serial: the 16550A model's registers, loopback, interrupts, receive FIFO and output. */
#include "unit.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_machine.h"
#include "vmm/devices/serial.h"

#define IRQ 4

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct fixture {
	struct fake_machine fm;
	struct serial s;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	fake_machine_init(&f->fm);
	serial_init(&f->s, &f->fm.m, IRQ, -1);
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	serial_destroy(&f->s);
	free(f);
	return 0;
}

static uint8_t rd(struct fixture *f, unsigned reg)
{
	uint8_t v = 0xee;
	serial_io(&f->s, reg, &v, 1, false);
	return v;
}

static void wr(struct fixture *f, unsigned reg, uint8_t v)
{
	serial_io(&f->s, reg, &v, 1, true);
}

static void serial_scratch(void **state)
{
	struct fixture *f = *state;
	wr(f, SCR, 0xa5);
	assert_int_equal(rd(f, SCR), 0xa5);
	wr(f, SCR, 0x5a);
	assert_int_equal(rd(f, SCR), 0x5a);
	assert_int_equal(f->fm.irq_calls, 0);
}

static void serial_lsr_idle(void **state)
{
	struct fixture *f = *state;
	/* Transmitter always empty, no data ready. */
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, IIR), 0x01); /* no interrupt pending */
	assert_int_equal(rd(f, RBR), 0);    /* empty receiver reads zero */
}

static void serial_loopback(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x10 | 0x0a); /* LOOP, RTS, OUT2 */
	/* RTS shows as CTS, OUT2 as DCD. */
	assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
	wr(f, MCR, 0x10 | 0x05); /* LOOP, DTR, OUT1 */
	assert_int_equal(rd(f, MSR) & 0xf0, 0x60);
	wr(f, THR, 'Z');
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);
	assert_int_equal(rd(f, RBR), 'Z');
	assert_int_equal(rd(f, LSR) & 0x01, 0x00);
	/* Out of loopback the modem lines read as connected. */
	wr(f, MCR, 0x0b);
	assert_int_equal(rd(f, MSR), 0xb0);
}

static void serial_dlab(void **state)
{
	struct fixture *f = *state;
	wr(f, IER, 0x00);
	wr(f, LCR, 0x83); /* DLAB, 8N1 */
	wr(f, DLL, 0x01); /* 115200 baud */
	wr(f, DLM, 0x00);
	assert_int_equal(rd(f, DLL), 0x01);
	assert_int_equal(rd(f, DLM), 0x00);
	assert_int_equal(rd(f, LCR), 0x83);
	wr(f, LCR, 0x03);
	/* The same offsets are THR/RBR and IER again: the divisor did not land there. */
	assert_int_equal(rd(f, IER), 0x00);
	wr(f, LCR, 0x83);
	assert_int_equal(rd(f, DLL), 0x01);
	wr(f, LCR, 0x03);
	assert_int_equal(f->fm.irq_calls, 0);
}

static void serial_thri(void **state)
{
	struct fixture *f = *state;
	wr(f, IER, 0x02); /* THRI */
	assert_int_equal(f->fm.irq_calls, 1);
	assert_int_equal(f->fm.last_gsi, IRQ);
	assert_int_equal(f->fm.last_level, 1);
	/* Reading IIR reports THR empty once, and the line goes down. */
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(f->fm.irq_calls, 2);
	assert_int_equal(f->fm.last_level, 0);
	assert_int_equal(rd(f, IIR), 0x01);
	/* Each byte sent raises it again. */
	wr(f, THR, 'a');
	assert_int_equal(f->fm.last_level, 1);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(f->fm.last_level, 0);
	/* Disabling THRI with one pending lowers the line. */
	wr(f, THR, 'b');
	assert_int_equal(f->fm.last_level, 1);
	wr(f, IER, 0x00);
	assert_int_equal(f->fm.last_level, 0);
	assert_int_equal(f->fm.irq_calls, 6);
}

static void serial_rx(void **state)
{
	struct fixture *f = *state;
	static const uint8_t in[] = {'h', 'i'};
	wr(f, IER, 0x01); /* RDI */
	assert_int_equal(f->fm.irq_calls, 0);
	assert_int_equal(serial_receive(&f->s, in, sizeof(in)), 2);
	assert_int_equal(serial_rx_space(&f->s), SERIAL_RX_SIZE - 2);
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(f->fm.irq_calls, 1);
	assert_int_equal(f->fm.last_level, 1);
	assert_int_equal(rd(f, IIR), 0x04);
	assert_int_equal(rd(f, RBR), 'h');
	assert_int_equal(f->fm.last_level, 1); /* one byte left */
	assert_int_equal(rd(f, RBR), 'i');
	assert_int_equal(f->fm.last_level, 0);
	assert_int_equal(f->fm.irq_calls, 2);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, IIR), 0x01);
}

static void serial_rx_without_irq(void **state)
{
	struct fixture *f = *state;
	static const uint8_t in[] = {'x'};
	/* With IER clear, data is polled: DR set, no interrupt. */
	assert_int_equal(serial_receive(&f->s, in, 1), 1);
	assert_int_equal(rd(f, LSR) & 0x01, 1);
	assert_int_equal(f->fm.irq_calls, 0);
	/* Enabling RDI with data waiting raises the line at once. */
	wr(f, IER, 0x01);
	assert_int_equal(f->fm.last_level, 1);
}

static void serial_fifo(void **state)
{
	struct fixture *f = *state;
	static const uint8_t in[] = {'1', '2', '3'};
	wr(f, FCR, 0x01);
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, IER, 0x01);
	serial_receive(&f->s, in, sizeof(in));
	assert_int_equal(rd(f, IIR), 0xc4);
	/* Clearing the receive FIFO drops what was queued. */
	wr(f, FCR, 0x03);
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	assert_int_equal(f->fm.last_level, 0);
	assert_int_equal(serial_rx_space(&f->s), SERIAL_RX_SIZE);
	wr(f, FCR, 0x00);
	assert_int_equal(rd(f, IIR), 0x01);
}

static void serial_rx_full(void **state)
{
	struct fixture *f = *state;
	size_t n = SERIAL_RX_SIZE + 100;
	uint8_t *in = malloc(n);
	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		in[i] = (uint8_t)i;
	assert_int_equal(serial_receive(&f->s, in, n), SERIAL_RX_SIZE);
	assert_int_equal(serial_rx_space(&f->s), 0);
	assert_int_equal(serial_receive(&f->s, in, 1), 0);
	/* Draining one byte makes room for exactly one, and order is kept across the wrap. */
	assert_int_equal(rd(f, RBR), 0);
	assert_int_equal(serial_receive(&f->s, (const uint8_t *)"\xfe\xff", 2), 1);
	for (size_t i = 1; i < SERIAL_RX_SIZE; i++)
		assert_int_equal(rd(f, RBR), (uint8_t)i);
	assert_int_equal(rd(f, RBR), 0xfe);
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	free(in);
}

static void serial_output(void **state)
{
	struct fixture *f = *state;
	int fds[2];
	assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
	serial_destroy(&f->s);
	serial_init(&f->s, &f->fm.m, IRQ, fds[1]);
	static const char msg[] = "boot ok\n";
	for (size_t i = 0; i < sizeof(msg) - 1; i++)
		wr(f, THR, (uint8_t)msg[i]);
	char got[32] = {0};
	assert_int_equal(read(fds[0], got, sizeof(got)), sizeof(msg) - 1);
	assert_string_equal(got, msg);
	/* In loopback nothing goes out. */
	wr(f, MCR, 0x10);
	wr(f, THR, 'L');
	assert_int_equal(read(fds[0], got, sizeof(got)), -1);
	assert_int_equal(rd(f, RBR), 'L');
	close(fds[0]);
	close(fds[1]);
}

static void serial_wide_access(void **state)
{
	struct fixture *f = *state;
	/* A 2-byte write at SCR-1 reaches MSR (read-only) and SCR; bytes past offset 7 are
	 * ignored. */
	uint8_t v[4] = {0x11, 0x22, 0x33, 0x44};
	serial_io(&f->s, MSR, v, 2, true);
	assert_int_equal(rd(f, SCR), 0x22);
	uint8_t r[4] = {0xee, 0xee, 0xee, 0xee};
	serial_io(&f->s, SCR, r, 4, false);
	assert_int_equal(r[0], 0x22);
	assert_int_equal(r[1], 0xee);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		T(serial_scratch), T(serial_lsr_idle), T(serial_loopback),       T(serial_dlab),
		T(serial_thri),    T(serial_rx),       T(serial_rx_without_irq), T(serial_fifo),
		T(serial_rx_full), T(serial_output),   T(serial_wide_access),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}

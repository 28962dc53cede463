/* serial: 16550A UART model (see serial.h). Register layout per the PC16550D data sheet. */
#include "serial.h"

#include <errno.h>
#include <unistd.h>

enum {
	REG_DATA = 0, /* RBR / THR, or DLL when LCR.DLAB */
	REG_IER = 1,  /* or DLM when LCR.DLAB */
	REG_IIR = 2,  /* read; FCR on write */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI      0x01 /* received data available */
#define IER_THRI     0x02 /* transmitter holding register empty */
#define IIR_NONE     0x01
#define IIR_THRI     0x02
#define IIR_RDI      0x04
#define IIR_FIFO     0xc0
#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB     0x80
#define MCR_LOOP     0x10
#define LSR_DR       0x01
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define MSR_CTS      0x10
#define MSR_DSR      0x20
#define MSR_RI       0x40
#define MSR_DCD      0x80

void serial_init(struct serial *s, struct machine *m, unsigned irq, int out_fd)
{
	*s = (struct serial){.machine = m, .irq = irq, .out_fd = out_fd};
	pthread_mutex_init(&s->lock, NULL);
	s->mcr = 0x08; /* OUT2 */
	s->lcr = 0x03; /* 8N1 */
	s->dll = 12;   /* 9600 baud */
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

void serial_set_output(struct serial *s, void (*fn)(void *opaque, const uint8_t *buf, size_t n), void *opaque)
{
	s->output = fn;
	s->output_opaque = opaque;
}

static void update_irq(struct serial *s)
{
	int level = ((s->ier & IER_RDI) && s->rx_count) || ((s->ier & IER_THRI) && s->thr_empty_pending);
	if (level != s->irq_level) {
		s->irq_level = level;
		s->machine->set_irq(s->machine, s->irq, level);
	}
}

static void rx_push(struct serial *s, uint8_t b)
{
	if (s->rx_count == SERIAL_RX_SIZE)
		return; /* overrun: the byte is lost, as on the real part */
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = b;
	s->rx_count++;
}

static void transmit(struct serial *s, uint8_t b)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, b);
	} else if (s->output) {
		s->output(s->output_opaque, &b, 1);
	} else if (s->out_fd >= 0) {
		ssize_t n;
		do
			n = write(s->out_fd, &b, 1);
		while (n < 0 && errno == EINTR);
	}
	s->thr_empty_pending = true; /* transmission is instant */
}

static uint8_t read_reg(struct serial *s, unsigned reg)
{
	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (!s->rx_count)
			return 0;
		uint8_t b = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
		s->rx_count--;
		return b;
	case REG_IER: return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR: {
		uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
		if ((s->ier & IER_RDI) && s->rx_count)
			return fifo | IIR_RDI;
		if ((s->ier & IER_THRI) && s->thr_empty_pending) {
			s->thr_empty_pending = false; /* reading IIR acknowledges THR empty */
			return fifo | IIR_THRI;
		}
		return fifo | IIR_NONE;
	}
	case REG_LCR: return s->lcr;
	case REG_MCR: return s->mcr;
	case REG_LSR: return (uint8_t)(LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0));
	case REG_MSR:
		if (s->mcr & MCR_LOOP) /* DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
			return (uint8_t)(((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) | ((s->mcr & 0x04) << 4) |
					 ((s->mcr & 0x08) << 4));
		return MSR_DCD | MSR_DSR | MSR_CTS;
	default: return s->scr;
	}
}

static void write_reg(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
		} else {
			if ((v & IER_THRI) && !(s->ier & IER_THRI))
				s->thr_empty_pending = true; /* enabling THRI with THR empty interrupts */
			s->ier = v & 0x0f;
		}
		break;
	case REG_IIR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_head = s->rx_count = 0;
		break;
	case REG_LCR: s->lcr = v; break;
	case REG_MCR: s->mcr = v & 0x1f; break;
	case REG_SCR: s->scr = v; break;
	default: break; /* LSR and MSR are read-only */
	}
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len && offset + i < 8; i++) {
		if (is_write)
			write_reg(s, (unsigned)(offset + i), data[i]);
		else
			data[i] = read_reg(s, (unsigned)(offset + i));
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t n)
{
	pthread_mutex_lock(&s->lock);
	size_t taken = 0;
	while (taken < n && s->rx_count < SERIAL_RX_SIZE)
		rx_push(s, buf[taken++]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return taken;
}

size_t serial_rx_space(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	size_t space = SERIAL_RX_SIZE - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}

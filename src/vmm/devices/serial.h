/* serial: a 16550A UART (COM1) with a receive FIFO, THR-empty and data-ready interrupts, and
 * loopback, wired to a host file descriptor for output and fed by serial_receive for input. */
#ifndef SHOJI_VMM_DEVICES_SERIAL_H
#define SHOJI_VMM_DEVICES_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../machine.h"

#define SERIAL_RX_SIZE 4096

struct serial {
	pthread_mutex_t lock;
	struct machine *machine;
	unsigned irq;
	int out_fd; /* -1: output discarded */
	/* When set, output goes here instead of out_fd (called with the UART's lock held). */
	void (*output)(void *opaque, const uint8_t *buf, size_t n);
	void *output_opaque;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_empty_pending;
	int irq_level;
	uint8_t rx[SERIAL_RX_SIZE];
	size_t rx_head, rx_count;
};

void serial_init(struct serial *s, struct machine *m, unsigned irq, int out_fd);
void serial_destroy(struct serial *s);
/* Sends the UART's output to fn(opaque, ...) instead of its file descriptor. */
void serial_set_output(struct serial *s, void (*fn)(void *opaque, const uint8_t *buf, size_t n), void *opaque);
/* The port I/O handler for the UART's eight registers. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* Queues host input for the guest; returns how many bytes were taken (the rest must wait). */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t n);
size_t serial_rx_space(struct serial *s);

#endif

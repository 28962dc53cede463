/* workpool: a few worker threads that run a device's blocking jobs (a disk's reads, writes and
 * flushes) side by side, so that the device keeps many requests in flight where it served one
 * at a time. The owner (a device's I/O thread) submits jobs; a worker runs each one and puts it
 * on the done list, whose eventfd the owner watches; the owner reaps the done jobs on its own
 * thread and completes them there (used ring, interrupt), so a worker never takes the device's
 * lock. Jobs finish in any order. QEMU's thread pool (aio=threads, its default) and crosvm's
 * blocking pool work this way; io_uring would save the threads' switches, at the cost of a
 * wider kernel surface inside the monitor's seccomp filter.
 *
 * Threads: workpool_submit, workpool_reap, workpool_drain, workpool_hold, workpool_release and
 * workpool_destroy on the owner's thread (or another that holds the owner's lock); run() on a
 * worker, with no lock held. */
#ifndef SHOJI_VMM_IO_WORKPOOL_H
#define SHOJI_VMM_IO_WORKPOOL_H

#include <pthread.h>
#include <stdbool.h>

#include "../../common/err.h"

#define WORKPOOL_MAX_THREADS 16

struct work {
	void (*run)(struct work *w); /* on a worker */
	struct work *next;
};

struct workpool {
	pthread_mutex_t lock;
	pthread_cond_t todo_cond; /* a job to run, or stopping */
	pthread_cond_t idle_cond; /* in_flight fell to 0, or running did while held */
	struct work *todo, **todo_tail;
	struct work *done, **done_tail;
	unsigned in_flight;   /* submitted, not yet on the done list */
	unsigned outstanding; /* submitted, not yet reaped */
	unsigned running;     /* taken by a worker, not yet done */
	bool held;            /* workpool_hold: the workers take no new job */
	bool stopping;
	int done_fd; /* eventfd: readable while done jobs wait to be reaped */
	unsigned nthreads;
	pthread_t threads[WORKPOOL_MAX_THREADS];
};

/* nthreads workers (1..WORKPOOL_MAX_THREADS), named after name, each with the monitor's small
 * stack (common/thread.h). */
int workpool_init(struct workpool *p, const char *name, unsigned nthreads, struct err *e);
/* Stops the workers once the jobs submitted have run; the done ones not reaped are dropped. */
void workpool_destroy(struct workpool *p);
void workpool_submit(struct workpool *p, struct work *w);
/* The jobs done since the last reap, oldest first (NULL if none); clears done_fd. */
struct work *workpool_reap(struct workpool *p);
/* Waits until every job submitted has run (they are then on the done list). */
void workpool_drain(struct workpool *p);
/* The workers take no new job, and this waits for those they are running: the owner may then
 * change what the jobs not yet started will work on, while they wait in order. */
void workpool_hold(struct workpool *p);
/* The workers take jobs again, in the order submitted. */
void workpool_release(struct workpool *p);
/* Jobs submitted and not yet reaped. */
unsigned workpool_pending(struct workpool *p);

#endif

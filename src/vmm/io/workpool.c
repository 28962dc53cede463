/* workpool: worker threads for a device's blocking jobs (see workpool.h). */
#include "workpool.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../../common/thread.h"

static void *worker(void *arg)
{
	struct workpool *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while ((!p->todo || p->held) && !p->stopping)
			pthread_cond_wait(&p->todo_cond, &p->lock);
		struct work *w = p->todo;
		if (!w)
			break; /* stopping, and nothing left to run */
		p->todo = w->next;
		if (!p->todo)
			p->todo_tail = &p->todo;
		p->running++;
		pthread_mutex_unlock(&p->lock);
		w->run(w);
		pthread_mutex_lock(&p->lock);
		w->next = NULL;
		p->running--;
		bool was_empty = !p->done;
		*p->done_tail = w;
		p->done_tail = &w->next;
		if (--p->in_flight == 0 || (p->held && !p->running))
			pthread_cond_broadcast(&p->idle_cond);
		if (was_empty) {
			uint64_t one = 1;
			if (write(p->done_fd, &one, sizeof(one)) < 0) {
				/* cannot fail: the counter is far from its limit */
			}
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int start_workers(struct workpool *p, const char *name, unsigned n, struct err *e)
{
	for (p->nthreads = 0; p->nthreads < n; p->nthreads++) {
		int r = thread_start(&p->threads[p->nthreads], worker, p);
		if (r)
			return err_errno(e, r, "%s: cannot start a worker thread", name);
		char tname[16];
		snprintf(tname, sizeof(tname), "%.12s/%u", name, p->nthreads);
		pthread_setname_np(p->threads[p->nthreads], tname);
	}
	return 0;
}

int workpool_init(struct workpool *p, const char *name, unsigned nthreads, struct err *e)
{
	memset(p, 0, sizeof(*p));
	p->done_fd = -1;
	if (nthreads < 1 || nthreads > WORKPOOL_MAX_THREADS)
		return err_set(e, "%s: %u worker threads asked for, 1 to %u allowed", name, nthreads,
			       WORKPOOL_MAX_THREADS);
	p->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->done_fd < 0)
		return err_errno(e, errno, "%s: cannot create the workers' eventfd", name);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->todo_cond, NULL);
	pthread_cond_init(&p->idle_cond, NULL);
	p->todo_tail = &p->todo;
	p->done_tail = &p->done;
	if (start_workers(p, name, nthreads, e) < 0) {
		workpool_destroy(p);
		return -1;
	}
	return 0;
}

void workpool_destroy(struct workpool *p)
{
	if (p->done_fd < 0)
		return; /* never set up, or destroyed already */
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->todo_cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->idle_cond);
	pthread_cond_destroy(&p->todo_cond);
	pthread_mutex_destroy(&p->lock);
	close(p->done_fd);
	p->done_fd = -1;
	p->nthreads = 0;
}

void workpool_submit(struct workpool *p, struct work *w)
{
	w->next = NULL;
	pthread_mutex_lock(&p->lock);
	*p->todo_tail = w;
	p->todo_tail = &w->next;
	p->in_flight++;
	p->outstanding++;
	pthread_cond_signal(&p->todo_cond);
	pthread_mutex_unlock(&p->lock);
}

struct work *workpool_reap(struct workpool *p)
{
	uint64_t count;
	if (read(p->done_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing was signalled since the last reap */
	}
	pthread_mutex_lock(&p->lock);
	struct work *w = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	for (struct work *i = w; i; i = i->next)
		p->outstanding--;
	pthread_mutex_unlock(&p->lock);
	return w;
}

void workpool_drain(struct workpool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->in_flight)
		pthread_cond_wait(&p->idle_cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void workpool_hold(struct workpool *p)
{
	pthread_mutex_lock(&p->lock);
	p->held = true;
	while (p->running)
		pthread_cond_wait(&p->idle_cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void workpool_release(struct workpool *p)
{
	pthread_mutex_lock(&p->lock);
	p->held = false;
	pthread_cond_broadcast(&p->todo_cond);
	pthread_mutex_unlock(&p->lock);
}

unsigned workpool_pending(struct workpool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->outstanding;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* test_workpool: jobs run on the workers side by side, every one comes back through reap (in
 * any order), drain waits for all, pending counts until reaped, and destroy runs what was
 * submitted before the workers stop. */
#include "unit.h"

#include <poll.h>
#include <stdatomic.h>
#include <unistd.h>

#include "vmm/io/workpool.h"

#define JOBS 200

struct job {
	struct work w; /* first */
	int ran;
};

static atomic_int running, most;

static void run(struct work *w)
{
	int now = atomic_fetch_add(&running, 1) + 1;
	for (int m = atomic_load(&most); now > m && !atomic_compare_exchange_weak(&most, &m, now);)
		;
	usleep(1000);
	((struct job *)w)->ran++;
	atomic_fetch_sub(&running, 1);
}

static void all_jobs_come_back(void **state)
{
	(void)state;
	struct workpool p;
	struct err e;
	static struct job jobs[JOBS];
	assert_int_equal(workpool_init(&p, "test", 4, &e), 0);
	for (int i = 0; i < JOBS; i++) {
		jobs[i] = (struct job){.w.run = run};
		workpool_submit(&p, &jobs[i].w);
	}
	assert_true(workpool_pending(&p) > 0);
	int reaped = 0;
	while (reaped < JOBS) {
		struct pollfd pfd = {.fd = p.done_fd, .events = POLLIN};
		assert_int_equal(poll(&pfd, 1, 10000), 1); /* the eventfd says when some are done */
		for (struct work *w = workpool_reap(&p); w; w = w->next) {
			assert_int_equal(((struct job *)w)->ran, 1);
			reaped++;
		}
	}
	assert_int_equal(workpool_pending(&p), 0);
	assert_true(atomic_load(&most) > 1); /* they ran side by side */
	assert_true(atomic_load(&most) <= 4);
	workpool_destroy(&p);
	workpool_destroy(&p); /* twice is harmless */
}

static void drain_and_destroy(void **state)
{
	(void)state;
	struct workpool p;
	struct err e;
	static struct job jobs[20];
	assert_int_equal(workpool_init(&p, "test", 2, &e), 0);
	for (int i = 0; i < 10; i++) {
		jobs[i] = (struct job){.w.run = run};
		workpool_submit(&p, &jobs[i].w);
	}
	workpool_drain(&p);
	for (int i = 0; i < 10; i++)
		assert_int_equal(jobs[i].ran, 1);
	assert_int_equal(workpool_pending(&p), 10); /* done, not reaped */
	for (int i = 10; i < 20; i++) {
		jobs[i] = (struct job){.w.run = run};
		workpool_submit(&p, &jobs[i].w);
	}
	workpool_destroy(&p); /* what was submitted runs first */
	for (int i = 10; i < 20; i++)
		assert_int_equal(jobs[i].ran, 1);
}

static void bad_thread_counts(void **state)
{
	(void)state;
	struct workpool p;
	struct err e;
	assert_int_equal(workpool_init(&p, "test", 0, &e), -1);
	assert_contains(e.msg, "1 to 16");
	assert_int_equal(workpool_init(&p, "test", WORKPOOL_MAX_THREADS + 1, &e), -1);
	workpool_destroy(&p); /* harmless after a failed init */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(all_jobs_come_back),
		cmocka_unit_test(drain_and_destroy),
		cmocka_unit_test(bad_thread_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

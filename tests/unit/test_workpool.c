/* test_workpool: jobs run on the workers side by side, every one comes back through reap (in
 * any order), drain waits for all, pending counts until reaped, hold waits for the running
 * jobs only and starts no other until release, and destroy runs what was submitted before the
 * workers stop. */
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

/* A job that runs until the test lets it finish. */
struct gated {
	struct work w; /* first */
	atomic_int started, finish, done;
};

static void run_gated(struct work *w)
{
	struct gated *g = (struct gated *)w;
	atomic_store(&g->started, 1);
	while (!atomic_load(&g->finish))
		usleep(100);
	atomic_store(&g->done, 1);
}

static void hold_waits_for_running_jobs_only(void **state)
{
	(void)state;
	struct workpool p;
	struct err e;
	static struct gated g[6];
	assert_int_equal(workpool_init(&p, "test", 2, &e), 0);
	for (int i = 0; i < 6; i++) {
		g[i] = (struct gated){.w.run = run_gated};
		workpool_submit(&p, &g[i].w);
	}
	while (!atomic_load(&g[0].started) || !atomic_load(&g[1].started))
		usleep(100); /* both workers busy, four jobs waiting */
	atomic_store(&g[0].finish, 1);
	atomic_store(&g[1].finish, 1);
	for (int i = 2; i < 6; i++)
		atomic_store(&g[i].finish, 1);
	/* The held workers finish what they run, and may have started one or two more before the
	 * hold: every started job is done when hold returns. */
	workpool_hold(&p);
	int started = 0;
	for (int i = 0; i < 6; i++) {
		assert_int_equal(atomic_load(&g[i].started), atomic_load(&g[i].done));
		started += atomic_load(&g[i].started);
	}
	usleep(20000);
	int later = 0;
	for (int i = 0; i < 6; i++)
		later += atomic_load(&g[i].started);
	assert_int_equal(later, started); /* none started while held */
	workpool_release(&p);
	workpool_drain(&p);
	for (int i = 0; i < 6; i++)
		assert_int_equal(atomic_load(&g[i].done), 1);
	assert_int_equal(workpool_pending(&p), 6);
	workpool_destroy(&p);
}

static void hold_stops_new_jobs_and_destroy_runs_them(void **state)
{
	(void)state;
	struct workpool p;
	struct err e;
	static struct gated g[3];
	assert_int_equal(workpool_init(&p, "test", 2, &e), 0);
	workpool_hold(&p); /* nothing running: returns at once */
	for (int i = 0; i < 3; i++) {
		g[i] = (struct gated){.w.run = run_gated};
		atomic_store(&g[i].finish, 1);
		workpool_submit(&p, &g[i].w);
	}
	usleep(20000);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&g[i].started), 0);
	workpool_destroy(&p); /* stopping overrides the hold: what was submitted runs */
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&g[i].done), 1);
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
		cmocka_unit_test(hold_waits_for_running_jobs_only),
		cmocka_unit_test(hold_stops_new_jobs_and_destroy_runs_them),
		cmocka_unit_test(bad_thread_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

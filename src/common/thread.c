/* thread: worker threads with a small stack (see thread.h). */
#include "thread.h"

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
	int r = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return r;
}

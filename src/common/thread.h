/* thread: starting the monitor's worker threads (vCPUs, device I/O) with a small stack. The
 * default 8 MiB stack can be backed by a 2 MiB transparent huge page that such a thread never
 * needs, which would count against the monitor's memory overhead. */
#ifndef SHOJI_COMMON_THREAD_H
#define SHOJI_COMMON_THREAD_H

#include <pthread.h>

#define THREAD_STACK_SIZE (512u << 10)

/* pthread_create with THREAD_STACK_SIZE; returns 0 or an errno value. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

#endif

/* threadpool: the thread backend of pool.h ([performance] backend=thread, the default).
 *
 * Worker threads each own one scanner state (a Lua state) for their whole life. Workers start at
 * minthreads and grow at once (one per waiting job, up to maxthreads) when jobs queue up; a worker
 * idle for idle_seconds exits while more than minthreads run. A finished job goes back to the main
 * thread through a lock-free stack and an eventfd; the main thread never waits for a worker.
 */
#ifndef FUGLU_THREADPOOL_H
#define FUGLU_THREADPOOL_H

#include <event2/event.h>
#include "monitor/stats.h"
#include "pool/pool.h"

typedef struct fg_threadpool_opts {
    fg_scanner scanner;
    fg_stats *stats;            /* the workers' workerlist slots and counters (NULL: none) */
    int minthreads;
    int maxthreads;
    size_t queue_max;           /* 0 = maxthreads * 10 */
    double idle_seconds;        /* 0 = 30 */
    struct event_base *base;
    fg_pool_done_fn done;       /* called on the main thread for every submitted job */
    void *done_arg;
} fg_threadpool_opts;

/* Opens minthreads scanner states on the calling thread first, so a plugin that does not load is
 * reported here (NULL, *err). */
fg_pool *fg_threadpool_new(const fg_threadpool_opts *opts, char **err);

#endif

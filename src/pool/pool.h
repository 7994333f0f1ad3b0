/* pool: what a generation scans with, whichever the backend ([performance] backend).
 *
 * Two backends implement it: threads (threadpool.c: worker threads in this process) and processes
 * (procpool.c: re-executed workers fed over socketpairs). Both take jobs on the main thread,
 * queue them in one bounded fg_job_queue (job.h), run them on a worker and hand every submitted
 * job back to the main thread through the done callback, exactly once. The pools know nothing of
 * Lua: the thread backend runs an fg_scanner's functions, and the process workers run the same
 * scanner in their own process (procworker.c).
 */
#ifndef FUGLU_POOL_H
#define FUGLU_POOL_H

#include <stddef.h>
#include "pool/job.h"

typedef struct fg_pool fg_pool;
typedef void (*fg_pool_done_fn)(fg_job *job, void *arg);

/* What one worker runs. open is called once per worker (a Lua state with the plugins loaded; NULL
 * with *err when they do not load), scan for each job (fills the reply), after once the job has
 * been handed back (the appenders), close when the worker ends. */
typedef struct fg_scanner {
    void *(*open)(void *arg, const char *worker_name, char **err);
    void (*scan)(void *state, fg_job *job);
    void (*after)(void *state);
    void (*close)(void *state);
    void *arg;
    /* Optional (NULL): the bytes the state holds, a counter any thread may read while the state
     * lives (workerlist, /metrics). */
    const _Atomic size_t *(*memory)(void *state);
} fg_scanner;

typedef struct fg_pool_ops {
    const char *backend;                            /* "thread", "process" */
    /* 0, or -1 when the queue is full or the pool is stopping (the caller answers 4xx). */
    int (*submit)(fg_pool *p, fg_job *job);
    /* For a generation swap: stops taking jobs and hands back the jobs not started yet (linked by
     * next, in order); running jobs finish here. */
    fg_job *(*take_queued)(fg_pool *p);
    /* Stops taking jobs; queued jobs come back through the done callback with this reply. */
    void (*stop)(fg_pool *p, int code, const char *text);
    size_t (*pending)(fg_pool *p);                  /* queued or running */
    size_t (*queued)(fg_pool *p);                   /* waiting for a free worker */
    int (*workers)(fg_pool *p);                     /* threads or processes alive */
    char *(*describe)(fg_pool *p);                  /* one line per worker; caller frees */
    /* After stop (or take_queued) and when pending is 0: waits for the workers and frees. */
    void (*free)(fg_pool *p);
} fg_pool_ops;

/* Every backend's struct starts with this. */
struct fg_pool {
    const fg_pool_ops *ops;
};

static inline int fg_pool_submit(fg_pool *p, fg_job *job) { return p->ops->submit(p, job); }
static inline fg_job *fg_pool_take_queued(fg_pool *p) { return p->ops->take_queued(p); }
static inline void fg_pool_stop(fg_pool *p, int code, const char *text) { p->ops->stop(p, code, text); }
static inline size_t fg_pool_pending(fg_pool *p) { return p->ops->pending(p); }
static inline size_t fg_pool_queued(fg_pool *p) { return p->ops->queued(p); }
static inline int fg_pool_workers(fg_pool *p) { return p->ops->workers(p); }
static inline char *fg_pool_describe(fg_pool *p) { return p->ops->describe(p); }
static inline const char *fg_pool_backend(const fg_pool *p) { return p->ops->backend; }
static inline void fg_pool_free(fg_pool *p)
{
    if (p)
        p->ops->free(p);
}

#endif

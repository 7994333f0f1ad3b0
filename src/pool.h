/* pool: the scan worker threads of one generation and their bounded job queue.
 *
 * The main thread submits jobs; a worker runs the Lua chain (and the re-injection) and hands the job
 * back to the main thread through a libevent event, where the done callback answers the client.
 * Workers start at minthreads and grow at once (one per waiting job, up to maxthreads) when jobs
 * queue up; a worker idle for idle_seconds exits while more than minthreads run. The main thread
 * never waits for a worker.
 */
#ifndef FUGLU_POOL_H
#define FUGLU_POOL_H

#include <event2/event.h>
#include <stddef.h>
#include "config.h"
#include "job.h"
#include "lua/lua_worker.h"

typedef struct fg_pool fg_pool;
typedef void (*fg_pool_done_fn)(fg_job *job, void *arg);

typedef struct fg_pool_opts {
    const fg_config *cfg;       /* read-only while the pool lives */
    fg_lua_env env;
    int minthreads;
    int maxthreads;
    size_t queue_max;
    double idle_seconds;
    struct event_base *base;
    fg_pool_done_fn done;       /* called on the main thread for every submitted job */
    void *done_arg;
} fg_pool_opts;

/* Loads minthreads Lua states on the calling thread first, so a plugin that does not load is
 * reported here (NULL, *err). */
fg_pool *fg_pool_new(const fg_pool_opts *opts, char **err);
/* 0, or -1 when the queue is full or the pool is stopping (the caller answers 4xx). */
int fg_pool_submit(fg_pool *p, fg_job *job);
/* Stops taking jobs; jobs still queued come back through the done callback with this reply;
 * running jobs finish normally. */
void fg_pool_stop(fg_pool *p, int code, const char *text);
/* For a generation swap: stops taking jobs and hands back the jobs not started yet (a list linked
 * by job->next, in order) so they can go to the new pool; running jobs finish here. */
fg_job *fg_pool_take_queued(fg_pool *p);
/* Jobs queued or running. */
size_t fg_pool_pending(fg_pool *p);
int fg_pool_thread_count(fg_pool *p);
/* After fg_pool_stop and when fg_pool_pending is 0: waits for the threads and frees. */
void fg_pool_free(fg_pool *p);

#endif

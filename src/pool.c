/* pool: worker threads with a bounded queue, results returned to the libevent loop. See pool.h. */
#include "pool.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fg_pool {
    fg_pool_opts o;
    pthread_mutex_t lock;
    pthread_cond_t work;        /* a job was queued, or stopping */
    pthread_cond_t exited;      /* a thread ended */
    fg_job *queue_head, *queue_tail;
    size_t queued;
    size_t running;
    int threads;
    int idle;
    int next_worker_number;
    int stopping;

    pthread_mutex_t done_lock;
    fg_job *done_head, *done_tail;
    struct event *done_ev;
};

typedef struct worker_start {
    fg_pool *pool;
    fg_lua_worker *lua;         /* preloaded, or NULL to load in the thread */
    int number;
} worker_start;

static void post_done(fg_pool *p, fg_job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&p->done_lock);
    if (p->done_tail)
        p->done_tail->next = job;
    else
        p->done_head = job;
    p->done_tail = job;
    pthread_mutex_unlock(&p->done_lock);
    event_active(p->done_ev, EV_READ, 1);
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_pool *p = arg;
    pthread_mutex_lock(&p->done_lock);
    fg_job *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->done_lock);
    while (list) {
        fg_job *next = list->next;
        pthread_mutex_lock(&p->lock);
        p->running--;
        pthread_mutex_unlock(&p->lock);
        p->o.done(list, p->o.done_arg);
        list = next;
    }
}

static fg_job *pop_job(fg_pool *p)
{
    fg_job *job = p->queue_head;
    if (job) {
        p->queue_head = job->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        p->queued--;
        job->next = NULL;
    }
    return job;
}

static void *worker_main(void *arg)
{
    worker_start *start = arg;
    fg_pool *p = start->pool;
    fg_lua_worker *lua = start->lua;
    char name[32];
    int number = start->number;
    snprintf(name, sizeof name, "Pool worker [%d]", number);
    free(start);

    if (!lua) {
        char *err = NULL;
        lua = fg_lua_worker_new(p->o.cfg, &p->o.env, name, &err);
        if (!lua) {
            fg_log("fuglu.threadpool", FG_ERROR, "%s: plugins failed to load: %s", name, err);
            free(err);
        }
    }
    fg_log("fuglu.threadpool", FG_DEBUG, "%s started", name);
    /* monitoring: this thread's workerlist slot (stats.c) */
    fg_stats_worker *slot = fg_stats_worker_enter(fg_stats_global(), number, name);

    pthread_mutex_lock(&p->lock);
    for (;;) {
        fg_job *job = lua ? pop_job(p) : NULL;
        if (!job) {
            if (p->stopping || !lua)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += (time_t)p->o.idle_seconds;
            p->idle++;
            int rc = pthread_cond_timedwait(&p->work, &p->lock, &until);
            p->idle--;
            if (rc == ETIMEDOUT && !p->queue_head && p->threads > p->o.minthreads)
                break;
            continue;
        }
        p->running++;
        pthread_mutex_unlock(&p->lock);

        char *state = xasprintf("Suspect %s: starting", job->id);   /* monitoring: workerlist */
        fg_stats_worker_set_state(slot, state, true);
        free(state);
        fg_lua_worker_handle(lua, job);
        post_done(p, job);   /* the job belongs to the main thread from here on */
        fg_lua_worker_after(lua);
        fg_stats_worker_set_state(slot, "waiting for task", false);

        pthread_mutex_lock(&p->lock);
    }
    fg_stats_worker_leave(slot);   /* before the pool may see 0 threads and the stats be freed */
    p->threads--;
    pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->lock);
    fg_log("fuglu.threadpool", FG_DEBUG, "%s ended", name);
    fg_lua_worker_free(lua);
    return NULL;
}

/* Called with p->lock held. */
static int spawn_worker(fg_pool *p, fg_lua_worker *preloaded)
{
    worker_start *start = xmalloc(sizeof *start);
    start->pool = p;
    start->lua = preloaded;
    static atomic_int next_number; /* unique across pools and generations, as Fuglu's "Pool worker [N]" */
    start->number = atomic_fetch_add(&next_number, 1) + 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, worker_main, start);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        fg_log("fuglu.threadpool", FG_ERROR, "cannot start a worker thread: %s", strerror(rc));
        free(start);
        return -1;
    }
    p->threads++;
    return 0;
}

fg_pool *fg_pool_new(const fg_pool_opts *opts, char **err)
{
    fg_pool *p = xcalloc(1, sizeof *p);
    p->o = *opts;
    if (p->o.minthreads < 1)
        p->o.minthreads = 1;
    if (p->o.maxthreads < p->o.minthreads)
        p->o.maxthreads = p->o.minthreads;
    if (p->o.queue_max == 0)
        p->o.queue_max = (size_t)p->o.maxthreads * 10;
    if (p->o.idle_seconds <= 0)
        p->o.idle_seconds = 30;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->exited, NULL);
    pthread_mutex_init(&p->done_lock, NULL);
    p->done_ev = event_new(p->o.base, -1, 0, on_done, p);

    fg_lua_worker **states = xcalloc((size_t)p->o.minthreads, sizeof *states);
    for (int i = 0; i < p->o.minthreads; i++) {
        states[i] = fg_lua_worker_new(p->o.cfg, &p->o.env, "worker", err);
        if (!states[i]) {
            for (int j = 0; j < i; j++)
                fg_lua_worker_free(states[j]);
            free(states);
            event_free(p->done_ev);
            free(p);
            return NULL;
        }
    }
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->o.minthreads; i++)
        if (spawn_worker(p, states[i]) != 0)
            fg_lua_worker_free(states[i]);
    pthread_mutex_unlock(&p->lock);
    free(states);
    fg_log("fuglu.threadpool", FG_INFO, "started %d worker threads (max %d)", p->o.minthreads, p->o.maxthreads);
    return p;
}

int fg_pool_submit(fg_pool *p, fg_job *job)
{
    pthread_mutex_lock(&p->lock);
    if (p->stopping || p->queued >= p->o.queue_max) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    job->next = NULL;
    if (p->queue_tail)
        p->queue_tail->next = job;
    else
        p->queue_head = job;
    p->queue_tail = job;
    p->queued++;
    /* Grow at once when every worker is busy: a queued job should not wait for a timer. */
    if ((size_t)p->idle < p->queued && p->threads < p->o.maxthreads)
        spawn_worker(p, NULL);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void fg_pool_stop(fg_pool *p, int code, const char *text)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    fg_job *list = NULL, **tail = &list;
    fg_job *job;
    while ((job = pop_job(p))) {
        *tail = job;
        tail = &job->next;
        p->running++; /* balanced in on_done */
    }
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    size_t n = 0;
    while (list) {
        fg_job *next = list->next;
        fg_job_set_reply(list, code, text);
        post_done(p, list);
        list = next;
        n++;
    }
    if (n)
        fg_log("fuglu.threadpool", FG_INFO, "Marked %zu messages as '%d %s' to close queue", n, code, text);
}

fg_job *fg_pool_take_queued(fg_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    fg_job *list = p->queue_head;
    p->queue_head = p->queue_tail = NULL;
    p->queued = 0;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    return list;
}

size_t fg_pool_pending(fg_pool *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->queued + p->running;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int fg_pool_thread_count(fg_pool *p)
{
    pthread_mutex_lock(&p->lock);
    int n = p->threads;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void fg_pool_free(fg_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    while (p->threads > 0)
        pthread_cond_wait(&p->exited, &p->lock);
    pthread_mutex_unlock(&p->lock);
    on_done(-1, 0, p); /* anything posted after the loop stopped */
    event_free(p->done_ev);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->exited);
    pthread_mutex_destroy(&p->done_lock);
    free(p);
}

/* threadpool: worker threads with a bounded queue, results returned to the libevent loop. See
 * threadpool.h. */
#include "pool/threadpool.h"
#include "log/log.h"
#include "monitor/stats.h"
#include "lib/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* An idle worker waiting for a job. The idle workers form a stack: a new job wakes the one that
 * went idle last, whose Lua state and stack are still in the CPU's caches, instead of whichever
 * thread a shared condition variable would pick; under a light load the same few threads do all
 * the work and the others stay asleep. */
typedef struct idle_waiter {
    pthread_cond_t cv;
    struct idle_waiter *next;
    int woken;                  /* taken off the stack by a submit or a stop */
} idle_waiter;

typedef struct threadpool {
    fg_pool base;               /* first: the pool.h interface */
    fg_threadpool_opts o;
    pthread_mutex_t lock;
    idle_waiter *idle_top;      /* most recently idle first */
    pthread_cond_t exited;      /* a thread ended */
    fg_job_queue queue;
    atomic_size_t running;      /* taken by a worker, not yet returned to the main thread */
    int threads;
    int idle;
    int next_worker_number;
    int stopping;

    /* Finished jobs on their way back to the main thread: a lock-free stack the workers push on;
     * the worker that finds it empty writes the eventfd, the main loop takes the whole stack. No
     * lock is shared with the main loop (event_active() would take libevent's base lock). */
    _Atomic(fg_job *) done_top;
    int done_fd;
    struct event *done_ev;
} threadpool;

typedef struct worker_start {
    threadpool *pool;
    void *state;                /* the scanner's, opened beforehand, or NULL to open in the thread */
    int number;
} worker_start;

static void post_done(threadpool *p, fg_job *job)
{
    fg_job *top = atomic_load_explicit(&p->done_top, memory_order_relaxed);
    do
        job->next = top;
    while (!atomic_compare_exchange_weak_explicit(&p->done_top, &top, job, memory_order_release,
                                                  memory_order_relaxed));
    if (top == NULL) {   /* the main loop may be asleep: the first job of a batch wakes it */
        uint64_t one = 1;
        while (write(p->done_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    threadpool *p = arg;
    /* Drain the eventfd first: a push after the exchange below writes it again. */
    uint64_t n;
    while (read(p->done_fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    fg_job *stack = atomic_exchange_explicit(&p->done_top, NULL, memory_order_acquire);
    fg_job *list = NULL;   /* the stack reversed: jobs in the order they finished */
    while (stack) {
        fg_job *next = stack->next;
        stack->next = list;
        list = stack;
        stack = next;
    }
    while (list) {
        fg_job *next = list->next;
        atomic_fetch_sub(&p->running, 1);
        p->o.done(list, p->o.done_arg);
        list = next;
    }
}

/* Called with p->lock held: takes the worker that went idle last off the stack (NULL if none).
 * The caller signals its condition variable after unlocking, so that the worker does not wake up
 * only to block on the lock the caller still holds. That is safe because a worker taken off the
 * stack (woken set) does not end before it has looked at the queue again, and only the main
 * thread takes waiters off the stack, one submit at a time. */
static idle_waiter *take_idle(threadpool *p)
{
    idle_waiter *w = p->idle_top;
    if (w) {
        p->idle_top = w->next;
        w->woken = 1;
    }
    return w;
}

/* Called with p->lock held: wakes every idle worker (stop, hand-over). Signals under the lock:
 * a worker woken here may end at once. */
static void wake_all(threadpool *p)
{
    idle_waiter *w;
    while ((w = take_idle(p)))
        pthread_cond_signal(&w->cv);
}

static fg_job *pop_job(threadpool *p)
{
    return fg_job_queue_pop(&p->queue);
}

static void *worker_main(void *arg)
{
    worker_start *start = arg;
    threadpool *p = start->pool;
    /* A copy: once this thread has said it ended (threads--), the pool may be freed. */
    const fg_scanner scanner = p->o.scanner, *sc = &scanner;
    fg_stats *stats = p->o.stats;   /* the controller's: it outlives every pool */
    void *state = start->state;
    char name[32];
    int number = start->number;
    snprintf(name, sizeof name, "Pool worker [%d]", number);
    free(start);
    char tname[16];   /* top -H, perf --sort comm: 15 characters at most */
    snprintf(tname, sizeof tname, "fuglu-w%d", number);
    pthread_setname_np(pthread_self(), tname);

    if (!state) {
        char *err = NULL;
        state = sc->open(sc->arg, name, &err);
        if (!state) {
            fg_log("fuglu.threadpool", FG_ERROR, "%s: plugins failed to load: %s", name, err);
            free(err);
        }
    }
    fg_log("fuglu.threadpool", FG_DEBUG, "%s started", name);
    /* monitoring: this thread's workerlist slot (stats.c) */
    fg_stats_worker *slot = fg_stats_worker_enter(stats, number, name);
    if (state && sc->memory)   /* the slot reads the live byte count; it is left before close */
        fg_stats_worker_set_lua_counter(slot, sc->memory(state));

    idle_waiter me = { .next = NULL, .woken = 0 };
    pthread_cond_init(&me.cv, NULL);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        fg_job *job = state ? pop_job(p) : NULL;
        if (!job) {
            if (p->stopping || !state)
                break;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += (time_t)p->o.idle_seconds;
            me.woken = 0;
            me.next = p->idle_top;
            p->idle_top = &me;
            p->idle++;
            int rc = 0;
            while (!me.woken && rc != ETIMEDOUT)
                rc = pthread_cond_timedwait(&me.cv, &p->lock, &until);
            p->idle--;
            if (me.woken)
                continue;   /* a submit may still be about to signal: look at the queue first */
            /* timed out: still on the stack */
            for (idle_waiter **pp = &p->idle_top; *pp; pp = &(*pp)->next)
                if (*pp == &me) {
                    *pp = me.next;
                    break;
                }
            if (!p->queue.head && p->threads > p->o.minthreads)
                break;
            continue;
        }
        atomic_fetch_add(&p->running, 1);
        pthread_mutex_unlock(&p->lock);

        char *what = xasprintf("Suspect %s: starting", job->id);   /* monitoring: workerlist */
        fg_stats_worker_set_state(slot, what, true);
        free(what);
        sc->scan(state, job);
        post_done(p, job);   /* the job belongs to the main thread from here on */
        sc->after(state);
        fg_stats_worker_set_state(slot, "waiting for task", false);

        pthread_mutex_lock(&p->lock);
    }
    fg_stats_worker_leave(slot);   /* before the pool may see 0 threads and the stats be freed */
    pthread_cond_destroy(&me.cv);
    p->threads--;
    pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->lock);
    fg_log("fuglu.threadpool", FG_DEBUG, "%s ended", name);
    if (state)
        sc->close(state);
    return NULL;
}

/* Called with p->lock held. */
static int spawn_worker(threadpool *p, void *preloaded)
{
    worker_start *start = xmalloc(sizeof *start);
    start->pool = p;
    start->state = preloaded;
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

static const fg_pool_ops threadpool_ops;

fg_pool *fg_threadpool_new(const fg_threadpool_opts *opts, char **err)
{
    threadpool *p = xcalloc(1, sizeof *p);
    p->base.ops = &threadpool_ops;
    p->o = *opts;
    const fg_scanner *sc = &p->o.scanner;
    if (p->o.minthreads < 1)
        p->o.minthreads = 1;
    if (p->o.maxthreads < p->o.minthreads)
        p->o.maxthreads = p->o.minthreads;
    if (p->o.queue_max == 0)
        p->o.queue_max = (size_t)p->o.maxthreads * 10;
    p->queue.max = p->o.queue_max;
    if (p->o.idle_seconds <= 0)
        p->o.idle_seconds = 30;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->exited, NULL);
    p->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->done_fd < 0) {
        *err = xasprintf("eventfd: %s", strerror(errno));
        free(p);
        return NULL;
    }
    p->done_ev = event_new(p->o.base, p->done_fd, EV_READ | EV_PERSIST, on_done, p);
    event_add(p->done_ev, NULL);

    void **states = xcalloc((size_t)p->o.minthreads, sizeof *states);
    for (int i = 0; i < p->o.minthreads; i++) {
        states[i] = sc->open(sc->arg, "worker", err);
        if (!states[i]) {
            for (int j = 0; j < i; j++)
                sc->close(states[j]);
            free(states);
            event_free(p->done_ev);
            close(p->done_fd);
            free(p);
            return NULL;
        }
    }
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->o.minthreads; i++)
        if (spawn_worker(p, states[i]) != 0)
            sc->close(states[i]);
    pthread_mutex_unlock(&p->lock);
    free(states);
    fg_log("fuglu.threadpool", FG_INFO, "started %d worker threads (max %d)", p->o.minthreads, p->o.maxthreads);
    return &p->base;
}

static int tp_submit(fg_pool *pool, fg_job *job)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    if (p->stopping || fg_job_queue_push(&p->queue, job) != 0) {
        pthread_mutex_unlock(&p->lock);
        return -1;
    }
    /* Grow at once when every worker is busy: a queued job should not wait for a timer. */
    if ((size_t)p->idle < p->queue.count && p->threads < p->o.maxthreads)
        spawn_worker(p, NULL);
    idle_waiter *w = take_idle(p);
    pthread_mutex_unlock(&p->lock);
    if (w)
        pthread_cond_signal(&w->cv);
    return 0;
}

static void tp_stop(fg_pool *pool, int code, const char *text)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    fg_job *list = fg_job_queue_take_all(&p->queue);
    for (fg_job *job = list; job; job = job->next)
        atomic_fetch_add(&p->running, 1); /* balanced in on_done */
    wake_all(p);
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

static fg_job *tp_take_queued(fg_pool *pool)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    fg_job *list = fg_job_queue_take_all(&p->queue);
    wake_all(p);
    pthread_mutex_unlock(&p->lock);
    return list;
}

static size_t tp_pending(fg_pool *pool)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    size_t n = p->queue.count + p->running;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static size_t tp_queued(fg_pool *pool)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    size_t n = p->queue.count;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static int tp_workers(fg_pool *pool)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    int n = p->threads;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static char *tp_describe(fg_pool *pool)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    char *s = xasprintf("%d worker threads (%d idle, min %d, max %d), %zu queued\n", p->threads, p->idle,
                        p->o.minthreads, p->o.maxthreads, p->queue.count);
    pthread_mutex_unlock(&p->lock);
    return s;
}

static void tp_free(fg_pool *pool)
{
    threadpool *p = (threadpool *)pool;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    wake_all(p);
    while (p->threads > 0)
        pthread_cond_wait(&p->exited, &p->lock);
    pthread_mutex_unlock(&p->lock);
    on_done(-1, 0, p); /* anything posted after the loop stopped */
    event_free(p->done_ev);
    close(p->done_fd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->exited);
    free(p);
}

static const fg_pool_ops threadpool_ops = {
    .backend = "thread",
    .submit = tp_submit,
    .take_queued = tp_take_queued,
    .stop = tp_stop,
    .pending = tp_pending,
    .queued = tp_queued,
    .workers = tp_workers,
    .describe = tp_describe,
    .free = tp_free,
};

/* log_writer: the bounded record queue and the writer thread behind fg_log, and what fork() and
 * exit() mean for them. See log.h for the behaviour, log_internal.h for the seam with log.c.
 *
 * The queue is Vyukov's bounded multi-producer array queue: a producer claims a cell with one
 * compare-and-swap and never waits; a full queue drops the record and counts it. The single
 * consumer is the writer thread: it takes up to LOG_BATCH records, renders each handler's lines
 * and writes them with one write() per handler under log_emit_lock, then reports drops. A producer
 * signals the writer only when it sleeps; a busy writer naps a few milliseconds to gather records.
 *
 * Producers push while inside a reader stripe (log.c), so stopping the writer waits for a grace
 * period before it joins: no record is pushed to a queue that is gone.
 */
#include "log/log.h"
#include "log/log_internal.h"
#include "lib/util.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_BATCH 256
#define LOG_DROP_LOGGER "fuglu.log"

/* ---- the record queue ---- */

/* A record with its strings copied behind it: one allocation, freed by the writer. */
typedef struct log_queued {
    fg_log_record rec;
    char data[];
} log_queued;

typedef struct log_cell {
    _Atomic size_t seq;
    log_queued *rec;
} log_cell;

static log_cell *log_queue;
static size_t log_queue_mask;
static _Atomic size_t log_enqueue_pos;
static size_t log_dequeue_pos;
static size_t log_queue_capacity = 65536;

static _Atomic size_t log_written_pos;   /* records the writer has written (queue positions) */
static _Atomic bool log_writer_running;
static _Atomic bool log_writer_stop;
static _Atomic bool log_writer_sleeping;
static pthread_t log_writer_thread;
static pthread_mutex_t log_wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_wake_cond = PTHREAD_COND_INITIALIZER;
static _Atomic unsigned long log_dropped_total;
static _Atomic unsigned long log_dropped_unreported;

static bool log_queue_push(log_queued *r)
{
    size_t pos = atomic_load_explicit(&log_enqueue_pos, memory_order_relaxed);
    for (;;) {
        log_cell *c = &log_queue[pos & log_queue_mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&log_enqueue_pos, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->rec = r;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&log_enqueue_pos, memory_order_relaxed);
        }
    }
}

/* Single consumer: the writer thread. */
static log_queued *log_queue_pop(void)
{
    log_cell *c = &log_queue[log_dequeue_pos & log_queue_mask];
    size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
    if ((intptr_t)seq - (intptr_t)(log_dequeue_pos + 1) != 0)
        return NULL;
    log_queued *r = c->rec;
    atomic_store_explicit(&c->seq, log_dequeue_pos + log_queue_mask + 1, memory_order_release);
    log_dequeue_pos++;
    return r;
}

static void log_wake_writer(void)
{
    if (atomic_load(&log_writer_sleeping)) {
        pthread_mutex_lock(&log_wake_lock);
        pthread_cond_signal(&log_wake_cond);
        pthread_mutex_unlock(&log_wake_lock);
    }
}

/* The record goes to the writer (queued, or dropped when the queue is full): true. No writer: false,
 * and the caller writes it itself. */
bool log_writer_submit(const fg_log_record *rec, size_t message_len)
{
    if (!atomic_load(&log_writer_running))
        return false;
    size_t lname = strlen(rec->name) + 1, ltn = strlen(rec->thread_name) + 1;
    size_t lpath = strlen(rec->pathname) + 1, lfunc = strlen(rec->func) + 1;
    log_queued *q = xmalloc(sizeof *q + lname + message_len + 1 + ltn + lpath + lfunc);
    q->rec = *rec;
    char *p = q->data;
    q->rec.name = memcpy(p, rec->name, lname), p += lname;
    q->rec.message = memcpy(p, rec->message, message_len + 1), p += message_len + 1;
    q->rec.thread_name = memcpy(p, rec->thread_name, ltn), p += ltn;
    q->rec.pathname = memcpy(p, rec->pathname, lpath), p += lpath;
    q->rec.func = memcpy(p, rec->func, lfunc);
    if (log_queue_push(q)) {
        log_wake_writer();
    } else {
        free(q);
        atomic_fetch_add(&log_dropped_total, 1);
        atomic_fetch_add(&log_dropped_unreported, 1);
    }
    return true;
}

/* ---- the writer thread ---- */

void log_report_drops(log_snapshot *s, fg_buf *scratch)
{
    unsigned long n = atomic_exchange(&log_dropped_unreported, 0);
    if (n == 0)
        return;
    char msg[64];
    snprintf(msg, sizeof msg, "%lu log records dropped", n);
    fg_log_record r = {.name = LOG_DROP_LOGGER, .level = FG_WARNING, .message = msg, .created = fg_now(),
                       .process = log_pid(), .thread = (unsigned long)pthread_self(), .thread_name = "fuglu-log",
                       .pathname = __FILE__, .func = __func__, .lineno = __LINE__};
    log_emit(s, &r, scratch);
    log_flush(s);
}

#define LOG_NAP_NS (5 * 1000 * 1000)   /* how long a busy writer gathers records after a wake-up */
#define LOG_BUSY_SECONDS 0.02          /* a batch this soon after the last one means "busy" */

static void *log_writer_main(void *arg)
{
    (void)arg;
    fg_buf scratch;
    fg_buf_init(&scratch);
    log_queued *batch[LOG_BATCH];
    double last_batch = 0;
    for (;;) {
        size_t n = 0;
        while (n < LOG_BATCH && (batch[n] = log_queue_pop()) != NULL)
            n++;
        double now = fg_monotonic();
        bool urgent = false;
        for (size_t i = 0; i < n && !urgent; i++)
            urgent = batch[i]->rec.level >= FG_WARNING;
        if (n > 0 && n < LOG_BATCH && !urgent && now - last_batch < LOG_BUSY_SECONDS &&
            !atomic_load(&log_writer_stop)) {
            /* Records keep coming (the last batch was moments ago): gather for a moment instead
             * of being woken for every record. Producers only signal a sleeping writer, and a
             * napping one is not sleeping: one wake-up and one write() per handler for each nap's
             * worth of records. A quiet engine's lines, and warnings and errors, go out at once. */
            struct timespec nap = {0, LOG_NAP_NS};
            nanosleep(&nap, NULL);
            while (n < LOG_BATCH && (batch[n] = log_queue_pop()) != NULL)
                n++;
        }
        if (n > 0)
            last_batch = now;
        if (n == 0) {
            if (atomic_load(&log_writer_stop))
                break;
            pthread_mutex_lock(&log_wake_lock);
            atomic_store(&log_writer_sleeping, true);
            log_cell *c = &log_queue[log_dequeue_pos & log_queue_mask];
            if ((intptr_t)atomic_load(&c->seq) - (intptr_t)(log_dequeue_pos + 1) != 0 &&
                !atomic_load(&log_writer_stop)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 100 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&log_wake_cond, &log_wake_lock, &ts);
            }
            atomic_store(&log_writer_sleeping, false);
            pthread_mutex_unlock(&log_wake_lock);
            continue;
        }
        log_stripe *st = log_reader_enter();
        pthread_mutex_lock(&log_emit_lock);
        log_snapshot *s = atomic_load(&log_current);
        for (size_t i = 0; i < n; i++)
            log_emit(s, &batch[i]->rec, &scratch);
        log_flush(s);
        log_report_drops(s, &scratch);
        atomic_store(&log_written_pos, log_dequeue_pos);
        pthread_mutex_unlock(&log_emit_lock);
        log_reader_exit(st);
        for (size_t i = 0; i < n; i++)
            free(batch[i]);
    }
    fg_buf_free(&scratch);
    return NULL;
}

/* ---- fork and exit ---- */

/* No lock is held across fork(), and a forked child has no writer thread: it writes
 * synchronously until it starts one (fg_log_load_config, fg_log_start_writer). */
static void log_atfork_prepare(void)
{
    pthread_mutex_lock(&log_install_lock);
    pthread_mutex_lock(&log_emit_lock);
}

static void log_atfork_parent(void)
{
    pthread_mutex_unlock(&log_emit_lock);
    pthread_mutex_unlock(&log_install_lock);
}

static void log_atfork_child(void)
{
    atomic_store(&log_writer_running, false);
    log_queue = NULL;
    pthread_mutex_unlock(&log_emit_lock);
    pthread_mutex_unlock(&log_install_lock);
}

/* exit() (a return from main on a start-up error, say) writes what is queued first. */
static void log_atexit(void)
{
    if (pthread_mutex_trylock(&log_install_lock) != 0)
        return;
    log_writer_stop_and_join();
    pthread_mutex_unlock(&log_install_lock);
}

static void log_atfork_register(void)
{
    pthread_atfork(log_atfork_prepare, log_atfork_parent, log_atfork_child);
    atexit(log_atexit);
}

void log_writer_start(void)
{
    if (atomic_load(&log_writer_running))
        return;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, log_atfork_register);
    size_t cap = 2;
    while (cap < log_queue_capacity)
        cap <<= 1;
    log_queue = xcalloc(cap, sizeof *log_queue);
    for (size_t i = 0; i < cap; i++)
        atomic_init(&log_queue[i].seq, i);
    log_queue_mask = cap - 1;
    atomic_store(&log_enqueue_pos, 0);
    log_dequeue_pos = 0;
    atomic_store(&log_written_pos, 0);
    atomic_store(&log_writer_stop, false);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* signals are for the main thread */
    int rc = pthread_create(&log_writer_thread, NULL, log_writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(log_queue);
        log_queue = NULL;
        return;   /* stays synchronous */
    }
    pthread_setname_np(log_writer_thread, "fuglu-log");
    atomic_store(&log_writer_running, true);
}

/* Waits (at most 2 s) until the writer has written every record queued so far, so that they come
 * out with the configuration they were logged under. Called with log_install_lock held. */
void log_writer_drain(void)
{
    if (!atomic_load(&log_writer_running))
        return;
    size_t target = atomic_load(&log_enqueue_pos);
    double deadline = fg_monotonic() + 2.0;
    while ((intptr_t)(atomic_load(&log_written_pos) - target) < 0 && fg_monotonic() < deadline) {
        log_wake_writer();
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}

/* Stops the writer after it wrote everything queued. */
void log_writer_stop_and_join(void)
{
    if (!atomic_load(&log_writer_running))
        return;
    atomic_store(&log_writer_running, false);
    /* producers that saw the writer running are done pushing after this */
    log_reader_synchronize(5000);
    atomic_store(&log_writer_stop, true);
    pthread_mutex_lock(&log_wake_lock);
    pthread_cond_signal(&log_wake_cond);
    pthread_mutex_unlock(&log_wake_lock);
    pthread_join(log_writer_thread, NULL);
    free(log_queue);
    log_queue = NULL;
}

bool log_writer_is_running(void)
{
    return atomic_load(&log_writer_running);
}

void fg_log_start_writer(void)
{
    pthread_mutex_lock(&log_install_lock);
    log_writer_start();
    pthread_mutex_unlock(&log_install_lock);
}


unsigned long fg_log_dropped(void)
{
    return atomic_load(&log_dropped_total);
}


void fg_log_set_queue_capacity(size_t records)
{
    log_queue_capacity = records < 2 ? 2 : records;
}

/* log: the logging core behind log.h: the API, configuration snapshots, level checks and emitting.
 * The record queue, the writer thread and fork handling are log_writer.c's (seam: log_internal.h).
 *
 * Snapshots. The configuration in use is `log_current`, an immutable snapshot (a logging.conf, the
 * fg_log_set_level overrides and a cache of per-logger routes) swapped with one atomic exchange.
 * Readers (fg_log_enabled, fg_log, the writer) announce themselves on a per-thread reader stripe
 * (an uncontended atomic counter); the thread that swaps waits until every stripe has been seen at
 * zero once before it frees the old snapshot, so no reader can hold it (a grace period, as RCU).
 *
 * Routes. For a logger name the route is its effective level (the nearest configured ancestor with
 * a level, else root) and the handlers a record meets walking up the hierarchy until a logger with
 * propagate=0: Python's Logger.getEffectiveLevel and callHandlers. Routes are computed once per
 * snapshot and name and cached in a lock-free open-addressing table.
 *
 * Records. The caller formats the message only when the level is enabled and, with the writer
 * running, hands a copy to log_writer.c's bounded queue; the writer thread renders each handler's
 * line with log_emit and does all the I/O and rotation under `log_emit_lock`. Without the writer
 * the caller emits under that lock itself.
 */
#include "log/log.h"
#include "lib/io.h"
#include "log/log_conf.h"
#include "log/log_internal.h"
#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LOG_STRIPES 64
#define LOG_CACHE_SLOTS 1024
#define LOG_CACHE_PROBES 16

/* ---- reader stripes (grace periods) ---- */

struct log_stripe {
    _Atomic unsigned long active;
    char pad[64 - sizeof(unsigned long)];
};

static log_stripe log_stripes[LOG_STRIPES];
static _Atomic unsigned log_stripe_next;
static _Thread_local int log_my_stripe = -1;

log_stripe *log_reader_enter(void)
{
    if (log_my_stripe < 0)
        log_my_stripe = (int)(atomic_fetch_add(&log_stripe_next, 1) % LOG_STRIPES);
    log_stripe *s = &log_stripes[log_my_stripe];
    atomic_fetch_add(&s->active, 1);
    return s;
}

void log_reader_exit(log_stripe *s)
{
    atomic_fetch_sub(&s->active, 1);
}

/* Waits until every stripe was seen idle once after the caller's swap; false after timeout_ms. */
bool log_reader_synchronize(int timeout_ms)
{
    for (int i = 0; i < LOG_STRIPES; i++) {
        int waited_us = 0;
        while (atomic_load(&log_stripes[i].active) != 0) {
            if (waited_us >= timeout_ms * 1000)
                return false;
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
            waited_us += 50;
        }
    }
    return true;
}

/* ---- snapshots and routes ---- */

typedef struct log_route {
    uint64_t hash;
    int level;
    size_t n;            /* handlers met; 0 = Python's lastResort (WARNING and up to stderr) */
    size_t *handlers;
    char name[];
} log_route;

typedef struct log_shared_conf {
    fg_log_conf *conf;   /* opened */
    int refs;            /* snapshots using it; under log_install_lock */
} log_shared_conf;

typedef struct log_override {
    char *name;
    int level;
} log_override;

struct log_snapshot {
    log_shared_conf *shared;    /* NULL = built-in: INFO to stderr in the default format */
    log_override *overrides;
    size_t n_overrides;
    bool simple;                /* only a root logger and no overrides: the level is root's */
    int simple_level;
    _Atomic(log_route *) cache[LOG_CACHE_SLOTS];
};

_Atomic(log_snapshot *) log_current;
pthread_mutex_t log_install_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t log_emit_lock = PTHREAD_MUTEX_INITIALIZER;
static log_snapshot **log_retired;     /* snapshots whose grace period timed out; freed at shutdown */
static size_t log_n_retired;

static uint64_t log_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* a is the logger `name` itself or one of its dotted ancestors ("" is the root). */
static bool log_is_ancestor(const char *a, const char *name)
{
    size_t n = strlen(a);
    return n == 0 || (strncmp(name, a, n) == 0 && (name[n] == '\0' || name[n] == '.'));
}

static log_route *log_route_compute(const log_snapshot *s, const char *name, uint64_t hash)
{
    size_t namelen = strlen(name);
    log_route *r = xcalloc(1, sizeof *r + namelen + 1);
    memcpy(r->name, name, namelen + 1);
    r->hash = hash;
    const fg_log_conf *c = s->shared ? s->shared->conf : NULL;
    /* the chain of configured loggers from `name` up to the root, most specific first */
    size_t nchain = 0, *chain = xcalloc(c ? c->n_loggers + 1 : 1, sizeof *chain);
    for (size_t i = 1; c && i < c->n_loggers; i++) {
        if (!log_is_ancestor(c->loggers[i].name, name))
            continue;
        size_t j = nchain++;
        size_t len = strlen(c->loggers[i].name);
        while (j > 0 && strlen(c->loggers[chain[j - 1]].name) < len) {
            chain[j] = chain[j - 1];
            j--;
        }
        chain[j] = i;
    }
    if (c)
        chain[nchain++] = 0;
    /* effective level: the most specific logger (or override) with a level */
    int level = c ? c->loggers[0].level : FG_INFO;
    long best = -1;
    for (size_t k = 0; k < nchain; k++) {
        const fg_log_logger *l = &c->loggers[chain[k]];
        if (l->level != 0 && (long)strlen(l->name) > best && chain[k] != 0) {
            best = (long)strlen(l->name);
            level = l->level;
        }
    }
    for (size_t k = 0; k < s->n_overrides; k++) {
        const log_override *o = &s->overrides[k];
        long len = (long)strlen(o->name);
        if (o->level != 0 && log_is_ancestor(o->name, name) && len >= best) {   /* ties: override wins */
            best = len;
            level = o->level;
        }
    }
    r->level = level;
    /* handlers: up the chain until propagate=0 */
    size_t total = 0;
    for (size_t k = 0; k < nchain; k++)
        total += c->loggers[chain[k]].n_handlers;
    r->handlers = xcalloc(total + 1, sizeof *r->handlers);
    for (size_t k = 0; k < nchain; k++) {
        const fg_log_logger *l = &c->loggers[chain[k]];
        for (size_t h = 0; h < l->n_handlers; h++)
            r->handlers[r->n++] = l->handlers[h];
        if (!l->propagate)
            break;
    }
    free(chain);
    return r;
}

static void log_route_free(log_route *r)
{
    if (r) {
        free(r->handlers);
        free(r);
    }
}

/* The cached route of `name`; when the cache is full *tofree is set and the caller frees it. */
static const log_route *log_route_get(log_snapshot *s, const char *name, log_route **tofree)
{
    uint64_t h = log_hash(name, strlen(name));
    log_route *mine = NULL;
    *tofree = NULL;
    for (size_t p = 0; p < LOG_CACHE_PROBES; p++) {
        _Atomic(log_route *) *slot = &s->cache[(h + p) & (LOG_CACHE_SLOTS - 1)];
        log_route *r = atomic_load_explicit(slot, memory_order_acquire);
        if (!r) {
            if (!mine)
                mine = log_route_compute(s, name, h);
            log_route *expected = NULL;
            if (atomic_compare_exchange_strong(slot, &expected, mine))
                return mine;
            r = expected;
        }
        if (r->hash == h && strcmp(r->name, name) == 0) {
            log_route_free(mine);
            return r;
        }
    }
    if (!mine)
        mine = log_route_compute(s, name, h);
    *tofree = mine;
    return mine;
}

static int log_snapshot_level(log_snapshot *s, const char *name)
{
    if (!s)
        return FG_INFO;
    if (s->simple)
        return s->simple_level;
    log_route *tofree;
    int level = log_route_get(s, name, &tofree)->level;
    log_route_free(tofree);
    return level;
}

static log_snapshot *log_snapshot_new(log_shared_conf *shared, const log_snapshot *old_overrides)
{
    log_snapshot *s = xcalloc(1, sizeof *s);
    s->shared = shared;
    if (shared)
        shared->refs++;
    if (old_overrides && old_overrides->n_overrides) {
        s->overrides = xcalloc(old_overrides->n_overrides, sizeof *s->overrides);
        for (size_t i = 0; i < old_overrides->n_overrides; i++) {
            s->overrides[i].name = xstrdup(old_overrides->overrides[i].name);
            s->overrides[i].level = old_overrides->overrides[i].level;
        }
        s->n_overrides = old_overrides->n_overrides;
    }
    return s;
}

/* Decides the fast path once the snapshot is complete. */
static void log_snapshot_seal(log_snapshot *s)
{
    const fg_log_conf *c = s->shared ? s->shared->conf : NULL;
    s->simple = s->n_overrides == 0 && (!c || c->n_loggers == 1);
    s->simple_level = c ? c->loggers[0].level : FG_INFO;
}

/* Frees a snapshot nobody reads any more; the last user of a conf closes its handlers. */
static void log_snapshot_free(log_snapshot *s)
{
    for (size_t i = 0; i < LOG_CACHE_SLOTS; i++)
        log_route_free(atomic_load(&s->cache[i]));
    for (size_t i = 0; i < s->n_overrides; i++)
        free(s->overrides[i].name);
    free(s->overrides);
    if (s->shared && --s->shared->refs == 0) {
        pthread_mutex_lock(&log_emit_lock);
        fg_log_conf_free(s->shared->conf);
        pthread_mutex_unlock(&log_emit_lock);
        free(s->shared);
    }
    free(s);
}

/* Makes s current and frees the previous snapshot after its grace period. Call with
 * log_install_lock held. */
static void log_install_locked(log_snapshot *s)
{
    if (s)
        log_snapshot_seal(s);
    log_snapshot *old = atomic_exchange(&log_current, s);
    if (!old)
        return;
    if (log_reader_synchronize(2000)) {
        log_snapshot_free(old);
    } else {
        log_retired = xrealloc(log_retired, (log_n_retired + 1) * sizeof *log_retired);
        log_retired[log_n_retired++] = old;
    }
}

/* ---- emitting (under log_emit_lock) ---- */

static fg_log_format *log_default_format;
static fg_log_format *log_message_format;
static fg_buf log_sync_scratch;

static fg_buf log_stderr_pending;   /* lines for stderr not written yet (under log_emit_lock) */

static void log_write_stderr(const fg_log_format *f, const fg_log_record *r, fg_buf *scratch)
{
    fg_buf_clear(scratch);
    fg_log_format_render(f, r, scratch);
    fg_buf_append(scratch, "\n", 1);
    fg_buf_append(&log_stderr_pending, scratch->data, scratch->len);
}

void log_flush(log_snapshot *s)
{
    if (s && s->shared) {
        for (size_t i = 0; i < s->shared->conf->n_handlers; i++)
            fg_log_handler_flush(s->shared->conf->handlers[i]);
    }
    if (log_stderr_pending.len == 0)
        return;
    (void)fg_write_all(2, log_stderr_pending.data, log_stderr_pending.len);
    fg_buf_clear(&log_stderr_pending);
}

void log_emit(log_snapshot *s, const fg_log_record *r, fg_buf *scratch)
{
    if (!log_default_format) {
        char *err = NULL;
        log_default_format = fg_log_format_compile(FG_LOG_DEFAULT_FORMAT, NULL, &err);
        log_message_format = fg_log_format_compile(NULL, NULL, &err);
    }
    if (!s || !s->shared) {
        if (r->level >= log_snapshot_level(s, r->name))
            log_write_stderr(log_default_format, r, scratch);
        return;
    }
    log_route *tofree;
    const log_route *route = log_route_get(s, r->name, &tofree);
    if (r->level >= route->level) {
        for (size_t i = 0; i < route->n; i++)
            fg_log_handler_emit(s->shared->conf->handlers[route->handlers[i]], r, scratch);
        if (route->n == 0 && r->level >= FG_WARNING)
            log_write_stderr(log_message_format, r, scratch);
    }
    log_route_free(tofree);
}

/* ---- the calling thread's identity ---- */

/* %(process)d for every record without a getpid() call each time; reset in a forked child. */
static _Atomic pid_t log_pid_cache;

static void log_pid_forget(void)
{
    atomic_store(&log_pid_cache, 0);
}

static void log_pid_register(void)
{
    pthread_atfork(NULL, NULL, log_pid_forget);
}

pid_t log_pid(void)
{
    pid_t pid = atomic_load_explicit(&log_pid_cache, memory_order_relaxed);
    if (pid == 0) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, log_pid_register);
        pid = getpid();
        atomic_store_explicit(&log_pid_cache, pid, memory_order_relaxed);
    }
    return pid;
}

static _Thread_local char log_thread_name[64];

void fg_log_set_thread_name(const char *name)
{
    snprintf(log_thread_name, sizeof log_thread_name, "%s", name);
}

static const char *log_get_thread_name(void)
{
    if (!log_thread_name[0]) {
        if ((pid_t)syscall(SYS_gettid) == log_pid()) {
            strcpy(log_thread_name, "MainThread");
        } else {
            char comm[17] = {0};
            prctl(PR_GET_NAME, comm, 0, 0, 0);
            snprintf(log_thread_name, sizeof log_thread_name, "%s", comm[0] ? comm : "Thread");
        }
    }
    return log_thread_name;
}

/* ---- public API ---- */

static uint64_t log_loaded_hash;
static char *log_loaded_path;

/* Makes the opened c the configuration once what was queued under the old one is written. Call
 * with log_install_lock held. */
static void log_install_conf_locked(fg_log_conf *c)
{
    log_shared_conf *shared = xcalloc(1, sizeof *shared);
    shared->conf = c;
    log_writer_drain();
    log_install_locked(log_snapshot_new(shared, atomic_load(&log_current)));
}

int fg_log_configure(int root_level, const char *path)
{
    fg_log_conf *c = fg_log_conf_simple(root_level, path && *path ? path : NULL);
    char *err = NULL;
    if (fg_log_conf_open(c, &err) != 0) {
        int e = errno;
        free(err);
        fg_log_conf_free(c);
        errno = e;
        return -1;
    }
    pthread_mutex_lock(&log_install_lock);
    log_install_conf_locked(c);
    pthread_mutex_unlock(&log_install_lock);
    return 0;
}

void fg_log_set_level(const char *logger, int level)
{
    const char *name = strcmp(logger, "root") == 0 ? "" : logger;
    pthread_mutex_lock(&log_install_lock);
    log_snapshot *old = atomic_load(&log_current);
    log_snapshot *s = log_snapshot_new(old ? old->shared : NULL, old);
    size_t i = 0;
    while (i < s->n_overrides && strcmp(s->overrides[i].name, name) != 0)
        i++;
    if (i == s->n_overrides) {
        s->overrides = xrealloc(s->overrides, (i + 1) * sizeof *s->overrides);
        s->overrides[i].name = xstrdup(name);
        s->n_overrides++;
    }
    s->overrides[i].level = level;
    log_install_locked(s);
    pthread_mutex_unlock(&log_install_lock);
}

bool fg_log_enabled(const char *logger, int level)
{
    log_stripe *st = log_reader_enter();
    int eff = log_snapshot_level(atomic_load(&log_current), logger);
    log_reader_exit(st);
    return level >= eff;
}

int fg_log_level_from_name(const char *name)
{
    static const struct { const char *n; int l; } names[] = {
        {"DEBUG", FG_DEBUG}, {"INFO", FG_INFO}, {"WARNING", FG_WARNING}, {"WARN", FG_WARNING},
        {"ERROR", FG_ERROR}, {"CRITICAL", FG_CRITICAL}, {"FATAL", FG_CRITICAL}, {"NOTSET", 0},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].n) == 0)
            return names[i].l;
    return -1;
}

void fg_logv_src(const char *logger, int level, const char *file, int line, const char *func, const char *fmt,
                 va_list ap)
{
    log_stripe *st = log_reader_enter();
    log_snapshot *s = atomic_load(&log_current);
    if (level < log_snapshot_level(s, logger)) {
        log_reader_exit(st);
        return;
    }
    char small[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    char *message = small, *big = NULL;
    if (n < 0) {
        n = 0;
        small[0] = '\0';
    } else if ((size_t)n >= sizeof small) {
        big = xmalloc((size_t)n + 1);
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
        message = big;
    }
    va_end(ap2);
    fg_log_record rec = {
        .name = logger, .level = level, .message = message, .created = fg_now(), .process = log_pid(),
        .thread = (unsigned long)pthread_self(), .thread_name = log_get_thread_name(),
        .pathname = file ? file : "(unknown file)", .func = func ? func : "(unknown function)",
        .lineno = file ? line : 0,
    };
    if (!log_writer_submit(&rec, (size_t)n)) {
        pthread_mutex_lock(&log_emit_lock);
        log_snapshot *cur = atomic_load(&log_current);
        log_emit(cur, &rec, &log_sync_scratch);
        log_flush(cur);
        pthread_mutex_unlock(&log_emit_lock);
    }
    log_reader_exit(st);
    free(big);
}

void fg_log_src(const char *logger, int level, const char *file, int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fg_logv_src(logger, level, file, line, func, fmt, ap);
    va_end(ap);
}

void fg_logv(const char *logger, int level, const char *fmt, va_list ap)
{
    fg_logv_src(logger, level, NULL, 0, NULL, fmt, ap);
}

void fg_log(const char *logger, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fg_logv_src(logger, level, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}

int fg_log_check_config(const char *path, char **err)
{
    fg_log_conf *c = fg_log_conf_read_file(path, err);
    if (!c)
        return -1;
    fg_log_conf_free(c);
    return 0;
}

int fg_log_load_config(const char *path, char **err)
{
    size_t len = 0;
    char *text = fg_read_file(path, (size_t)-1, &len, NULL);
    if (!text) {
        *err = xasprintf("%s: cannot read the logging configuration: %s", path, strerror(errno));
        return -1;
    }
    fg_log_conf *c = fg_log_conf_read_string(text, path, err);
    if (!c || fg_log_conf_open(c, err) != 0) {
        fg_log_conf_free(c);
        free(text);
        return -1;
    }
    pthread_mutex_lock(&log_install_lock);
    log_install_conf_locked(c);
    log_loaded_hash = log_hash(text, len);
    free(log_loaded_path);
    log_loaded_path = xstrdup(path);
    log_writer_start();
    pthread_mutex_unlock(&log_install_lock);
    free(text);
    return 0;
}

bool fg_log_config_changed(const char *path)
{
    size_t len = 0;
    char *text = fg_read_file(path, (size_t)-1, &len, NULL);
    pthread_mutex_lock(&log_install_lock);
    bool changed = !text || !log_loaded_path || strcmp(log_loaded_path, path) != 0 ||
                   log_hash(text, len) != log_loaded_hash;
    pthread_mutex_unlock(&log_install_lock);
    free(text);
    return changed;
}

void fg_log_shutdown(void)
{
    pthread_mutex_lock(&log_install_lock);
    log_writer_stop_and_join();
    pthread_mutex_lock(&log_emit_lock);
    log_report_drops(atomic_load(&log_current), &log_sync_scratch);
    pthread_mutex_unlock(&log_emit_lock);
    log_install_locked(NULL);
    for (size_t i = 0; i < log_n_retired; i++)
        log_snapshot_free(log_retired[i]);
    free(log_retired);
    log_retired = NULL;
    log_n_retired = 0;
    free(log_loaded_path);
    log_loaded_path = NULL;
    log_loaded_hash = 0;
    pthread_mutex_lock(&log_emit_lock);
    fg_buf_free(&log_sync_scratch);
    fg_log_format_free(log_default_format);
    fg_log_format_free(log_message_format);
    log_default_format = log_message_format = NULL;
    pthread_mutex_unlock(&log_emit_lock);
    pthread_mutex_unlock(&log_install_lock);
}

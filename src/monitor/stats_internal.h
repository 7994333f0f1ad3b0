/* stats_internal: the layout of fg_stats, shared by the counters (stats.c) and the renderings
 * (stats_render.c) and by no other file. The renderings read the worker list and the exception ring
 * under their locks, as the counters write them.
 */
#ifndef FUGLU_STATS_INTERNAL_H
#define FUGLU_STATS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include "monitor/stats.h"

#define STATS_RECENT_SCANS 101

typedef struct stats_plugin {
    char *name;
    uint64_t runs, errors;
    uint64_t decisions[FG_STATS_ACTIONS];
    double time_sum;
    uint64_t buckets[FG_STATS_BUCKETS];
    fg_stats_net net;
} stats_plugin;

typedef struct stats_exception {
    double when;
    char *thread, *info, *traceback;
} stats_exception;

struct fg_stats_worker {
    fg_stats *stats;
    int number;
    char *name;
    char *state;
    char *plugin;               /* the running plugin, or NULL */
    bool busy;
    double since;               /* monotonic time the state was set */
    const _Atomic size_t *lua_counter;  /* a thread worker's live counter, or NULL */
    _Atomic size_t lua_bytes;   /* a process worker's last report */
    bool lua_known;             /* lua_counter or lua_bytes was set */
    fg_stats_worker *next;
};

struct fg_stats {
    double started_wall, started_mono;
    atomic_uint_fast64_t in, out, total, ham, spam, highspam, virus, blocked, deferred, reinject_failed;
    atomic_uint_fast64_t actions[FG_STATS_ACTIONS];
    atomic_uint_fast64_t protocols[FG_STATS_PROTOCOLS];
    atomic_uint_fast64_t scan_buckets[FG_STATS_BUCKETS];
    atomic_uint_fast64_t scan_count;
    atomic_uint_fast64_t scan_sum_us;

    pthread_mutex_t recent_lock;            /* Fuglu's scantimes list */
    double recent[STATS_RECENT_SCANS];
    int recent_count, recent_next;
    double last_scan;                       /* monotonic */

    pthread_mutex_t plugins_lock;
    stats_plugin *plugins;
    size_t nplugins, plugins_cap;

    pthread_mutex_t exceptions_lock;
    stats_exception exceptions[FG_STATS_EXCEPTIONS];
    int exceptions_count, exceptions_next;

    pthread_mutex_t workers_lock;
    fg_stats_worker *workers;               /* sorted by number */
};

/* A worker's Lua memory in bytes (when lua_known). Called with workers_lock held. */
static inline size_t stats_worker_lua_bytes(const fg_stats_worker *w)
{
    return atomic_load_explicit(w->lua_counter ? w->lua_counter : &w->lua_bytes, memory_order_relaxed);
}

#endif

/* stats: the daemon's counters, per-plugin timings, worker states and the last errors.
 *
 * The controller owns one fg_stats and hands it to whoever records (the pools, the console) or reads
 * (control socket, MRTG, metrics); there is no process-wide instance. Worker threads write to it, the
 * main thread reads it. Message counters are atomics; plugin counters,
 * the recent scan times, worker states and the exception ring each have their own mutex, so every
 * count is exact under concurrency and no reader ever waits for a scan.
 *
 * Counting follows Fuglu's Statskeeper: `in` when a message is taken in, `out` when it was
 * re-injected; after the final action, unless the message was deferred, total += 1, and ham / spam /
 * virus / blocked from the suspect's verdict (ham = neither spam nor virus, so a blocked message is
 * also ham). The scan time is the one the pipeline put into the tag fuglu.scantime.
 *
 * Worker threads register a slot (fg_stats_worker_enter) that remembers the thread in a thread-local
 * variable; the Lua side (lua_stats.c) sets the state of the current thread's slot.
 */
#ifndef FUGLU_STATS_H
#define FUGLU_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/util.h"

typedef struct fg_stats fg_stats;
typedef struct fg_stats_worker fg_stats_worker;

/* Scan time histogram bucket upper bounds in seconds (the last bucket is +Inf). */
#define FG_STATS_BUCKETS 16
extern const double fg_stats_bucket_bounds[FG_STATS_BUCKETS - 1];

/* Fuglu's action codes DUNNO..DEFER; anything else is counted as "other". */
#define FG_STATS_ACTIONS 6
extern const char *const fg_stats_action_names[FG_STATS_ACTIONS];

/* Protocols counted by name; an unknown name counts as "other". */
#define FG_STATS_PROTOCOLS 5
extern const char *const fg_stats_protocol_names[FG_STATS_PROTOCOLS];

/* How many errors exceptionlist keeps (Fuglu's CrashStore keeps 10). */
#define FG_STATS_EXCEPTIONS 10

fg_stats *fg_stats_new(void);
/* Only once no thread uses it any more. */
void fg_stats_free(fg_stats *s);
/* The fg_stats of the calling worker thread's slot (fg_stats_worker_enter); NULL elsewhere (the main
 * thread, a process worker, busted), where a recording call goes to the forwarder or nowhere. */
fg_stats *fg_stats_current(void);

/* ---- messages ---- */

typedef struct fg_stats_result {
    int action;             /* final action code, -1 unknown */
    bool deferred;          /* answered 4xx: not counted in total/ham/spam/... */
    bool spam, highspam, virus, blocked;
    bool reinjected;        /* counted as "out" */
    double scantime;        /* seconds, < 0 when unknown */
} fg_stats_result;

void fg_stats_message_in(fg_stats *s, const char *protocol);
void fg_stats_message_done(fg_stats *s, const fg_stats_result *r);
/* A message the outgoing host did not take (it is then deferred or rejected). */
void fg_stats_reinject_failed(fg_stats *s);

/* ---- plugins ---- */

void fg_stats_plugin_run(fg_stats *s, const char *plugin, double seconds, int action);
void fg_stats_plugin_error(fg_stats *s, const char *plugin);

/* ---- plugins' network calls ---- */

/* What a plugin's calls through the toolkit's modules cost, per kind. A worker adds each call to
 * its thread's pending counters (fg_stats_net_call, from lua_socket.c, lua_dns.c, lua_redis.c,
 * lua_http.c); fg_stats_plugin_run and fg_stats_plugin_error book them to that plugin. */
enum { FG_STATS_NET_SOCKET, FG_STATS_NET_DNS, FG_STATS_NET_REDIS, FG_STATS_NET_HTTP, FG_STATS_NET_KINDS };
extern const char *const fg_stats_net_names[FG_STATS_NET_KINDS];
typedef struct fg_stats_net {
    uint64_t calls[FG_STATS_NET_KINDS], errors[FG_STATS_NET_KINDS];
    double seconds[FG_STATS_NET_KINDS];
} fg_stats_net;
void fg_stats_net_call(int kind, double seconds, bool error);
/* Adds n to plugin's network counters (the parent, for a process worker's report). */
void fg_stats_plugin_net(fg_stats *s, const char *plugin, const fg_stats_net *n);

/* ---- the last errors (exceptionlist) ---- */

/* thread NULL = the calling worker's name (or "MainThread"). */
void fg_stats_exception(fg_stats *s, const char *thread, const char *info, const char *traceback);

/* ---- worker states (workerlist) ---- */

/* Registers the calling thread as worker `number` named `name`; state "waiting for task". */
fg_stats_worker *fg_stats_worker_enter(fg_stats *s, int number, const char *name);
void fg_stats_worker_leave(fg_stats_worker *w);
/* busy: the worker is handling a message (for the busy/idle gauges). */
void fg_stats_worker_set_state(fg_stats_worker *w, const char *state, bool busy);
/* state = "<suspect> : Running Plugin <plugin>" (Fuglu's workerlist line); busy. */
void fg_stats_worker_set_plugin(fg_stats_worker *w, const char *suspect, const char *plugin);
/* The calling thread's slot, or NULL outside a worker thread. */
fg_stats_worker *fg_stats_worker_current(void);
/* The bytes the worker's Lua state holds (lua_alloc.h). A thread worker hands its allocator's live
 * counter (read whenever the stats are; it must stay valid until fg_stats_worker_leave); the
 * parent's slot of a process worker is given the value the child reports after each message. */
void fg_stats_worker_set_lua_counter(fg_stats_worker *w, const _Atomic size_t *bytes);
void fg_stats_worker_set_lua_bytes(fg_stats_worker *w, size_t bytes);

/* ---- process workers ---- */
/* In a process worker there is no fg_stats: every recording call made with a NULL fg_stats (or a
 * NULL worker slot) goes to the forwarder instead, which sends it to the parent (procpool.c), where
 * it is recorded for that worker. */
typedef struct fg_stats_forwarder {
    void (*message_done)(const fg_stats_result *r);
    void (*reinject_failed)(void);
    void (*plugin_run)(const char *plugin, double seconds, int action);
    void (*plugin_error)(const char *plugin);
    void (*exception)(const char *info, const char *traceback);
    void (*worker_state)(const char *state, bool busy);
    void (*worker_plugin)(const char *suspect, const char *plugin);
    void (*plugin_net)(const char *plugin, const fg_stats_net *n);
} fg_stats_forwarder;
void fg_stats_set_forwarder(const fg_stats_forwarder *f);
/* Whether a recording call made now on this thread is kept (a worker slot or a forwarder). */
bool fg_stats_recording(void);
/* A workerlist slot that is not bound to the calling thread (the parent's view of a process). */
fg_stats_worker *fg_stats_worker_register(fg_stats *s, int number, const char *name);

/* ---- reading ---- */

typedef struct fg_stats_plugin_snapshot {
    char *name;
    uint64_t runs, errors;
    uint64_t decisions[FG_STATS_ACTIONS];
    double time_sum;
    uint64_t buckets[FG_STATS_BUCKETS];   /* not cumulative */
    fg_stats_net net;
} fg_stats_plugin_snapshot;

typedef struct fg_stats_worker_snapshot {
    int number;
    bool lua_known;             /* false until the worker reported its Lua memory */
    uint64_t lua_bytes;
} fg_stats_worker_snapshot;

typedef struct fg_stats_snapshot {
    double started;             /* wall clock */
    double uptime;              /* seconds */
    uint64_t in, out, total, ham, spam, highspam, virus, blocked, deferred, reinject_failed;
    uint64_t actions[FG_STATS_ACTIONS];
    uint64_t protocols[FG_STATS_PROTOCOLS];
    uint64_t scan_count;
    double scan_sum;
    uint64_t scan_buckets[FG_STATS_BUCKETS];  /* not cumulative */
    char avg_scantime[32];      /* Fuglu's string: "%.4f" of the last <= 101, or "0" */
    int workers, workers_busy;
    fg_stats_worker_snapshot *worker_list;  /* `workers` entries, by number */
    size_t nplugins;
    fg_stats_plugin_snapshot *plugins;   /* sorted by name */
} fg_stats_snapshot;

void fg_stats_snapshot_take(fg_stats *s, fg_stats_snapshot *out);
void fg_stats_snapshot_free(fg_stats_snapshot *snap);
/* The p-quantile (0..1) upper bound from a histogram; 0 when empty, +Inf stays the last bound. */
double fg_stats_quantile(const uint64_t buckets[FG_STATS_BUCKETS], double q);
/* Threads of the process as threadlist counts them (main thread + workers). */
int fg_stats_thread_count(fg_stats *s);

/* ---- renderings (stats_render.c; Fuglu's formats, see doc/monitoring.md) ---- */

/* Python's str(timedelta): "H:MM:SS.ffffff" or "N day(s), H:MM:SS.ffffff". */
void fg_stats_format_timedelta(fg_buf *b, double seconds);
/* MRTG's uptime line: "1 day, 2 hours, 3 minutes, 4 seconds" without leading zero units. */
void fg_stats_format_uptime_words(fg_buf *b, double seconds);
void fg_stats_json_string(fg_buf *b, const char *s);

void fg_stats_render_stats(fg_stats *s, fg_buf *b, bool json);
void fg_stats_render_uptime(fg_stats *s, fg_buf *b);
void fg_stats_render_workerlist(fg_stats *s, fg_buf *b, bool json);
void fg_stats_render_threadlist(fg_stats *s, fg_buf *b);
void fg_stats_render_exceptionlist(fg_stats *s, fg_buf *b, bool json);
void fg_stats_render_pluginstats(fg_stats *s, fg_buf *b, bool json);

#endif

/* stats: counters, plugin timings, worker states and the exception ring. See stats.h.
 *
 * Recording and reading only; the texts the control socket answers with are stats_render.c's.
 */
#include "monitor/stats.h"
#include "monitor/stats_internal.h"
#include "lib/util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATS_RECENT_MAX_AGE 300.0

const double fg_stats_bucket_bounds[FG_STATS_BUCKETS - 1] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};
const char *const fg_stats_action_names[FG_STATS_ACTIONS] = {"DUNNO", "ACCEPT", "DELETE", "REJECT", "DEFER", "other"};
const char *const fg_stats_protocol_names[FG_STATS_PROTOCOLS] = {"smtp", "esmtp", "milter", "netcat", "other"};


static _Thread_local fg_stats_worker *stats_current_worker;

fg_stats *fg_stats_new(void)
{
    fg_stats *s = xcalloc(1, sizeof *s);
    s->started_wall = fg_now();
    s->started_mono = fg_monotonic();
    pthread_mutex_init(&s->recent_lock, NULL);
    pthread_mutex_init(&s->plugins_lock, NULL);
    pthread_mutex_init(&s->exceptions_lock, NULL);
    pthread_mutex_init(&s->workers_lock, NULL);
    return s;
}

void fg_stats_free(fg_stats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nplugins; i++)
        free(s->plugins[i].name);
    free(s->plugins);
    for (int i = 0; i < FG_STATS_EXCEPTIONS; i++) {
        free(s->exceptions[i].thread);
        free(s->exceptions[i].info);
        free(s->exceptions[i].traceback);
    }
    while (s->workers) {
        fg_stats_worker *w = s->workers;
        s->workers = w->next;
        free(w->name);
        free(w->state);
        free(w->plugin);
        free(w);
    }
    pthread_mutex_destroy(&s->recent_lock);
    pthread_mutex_destroy(&s->plugins_lock);
    pthread_mutex_destroy(&s->exceptions_lock);
    pthread_mutex_destroy(&s->workers_lock);
    free(s);
}


static const fg_stats_forwarder *stats_forwarder; /* set once in a process worker */
void fg_stats_set_forwarder(const fg_stats_forwarder *f) { stats_forwarder = f; }
bool fg_stats_recording(void) { return stats_current_worker != NULL || stats_forwarder != NULL; }
fg_stats *fg_stats_current(void) { return stats_current_worker ? stats_current_worker->stats : NULL; }

static int stats_bucket_of(double seconds)
{
    for (int i = 0; i < FG_STATS_BUCKETS - 1; i++)
        if (seconds <= fg_stats_bucket_bounds[i])
            return i;
    return FG_STATS_BUCKETS - 1;
}

static int stats_action_index(int action)
{
    return action >= 0 && action < FG_STATS_ACTIONS - 1 ? action : FG_STATS_ACTIONS - 1;
}

/* ---- messages ---- */

void fg_stats_message_in(fg_stats *s, const char *protocol)
{
    if (!s)
        return;
    atomic_fetch_add(&s->in, 1);
    int i = FG_STATS_PROTOCOLS - 1;
    for (int k = 0; protocol && k < FG_STATS_PROTOCOLS - 1; k++)
        if (strcmp(protocol, fg_stats_protocol_names[k]) == 0)
            i = k;
    atomic_fetch_add(&s->protocols[i], 1);
}

void fg_stats_message_done(fg_stats *s, const fg_stats_result *r)
{
    if (!s) {
        if (stats_forwarder)
            stats_forwarder->message_done(r);
        return;
    }
    atomic_fetch_add(&s->actions[stats_action_index(r->action)], 1);
    if (r->reinjected)
        atomic_fetch_add(&s->out, 1);
    if (r->deferred) {
        atomic_fetch_add(&s->deferred, 1);
        return;
    }
    atomic_fetch_add(&s->total, 1);
    if (r->spam)
        atomic_fetch_add(&s->spam, 1);
    if (r->highspam)
        atomic_fetch_add(&s->highspam, 1);
    if (r->virus)
        atomic_fetch_add(&s->virus, 1);
    if (r->blocked)
        atomic_fetch_add(&s->blocked, 1);
    if (!r->spam && !r->virus)
        atomic_fetch_add(&s->ham, 1);
    if (r->scantime >= 0) {
        atomic_fetch_add(&s->scan_count, 1);
        atomic_fetch_add(&s->scan_sum_us, (uint_fast64_t)llround(r->scantime * 1e6));
        atomic_fetch_add(&s->scan_buckets[stats_bucket_of(r->scantime)], 1);
        pthread_mutex_lock(&s->recent_lock);
        s->recent[s->recent_next] = r->scantime;
        s->recent_next = (s->recent_next + 1) % STATS_RECENT_SCANS;
        if (s->recent_count < STATS_RECENT_SCANS)
            s->recent_count++;
        s->last_scan = fg_monotonic();
        pthread_mutex_unlock(&s->recent_lock);
    }
}

void fg_stats_reinject_failed(fg_stats *s)
{
    if (s)
        atomic_fetch_add(&s->reinject_failed, 1);
    else if (stats_forwarder)
        stats_forwarder->reinject_failed();
}

/* ---- plugins ---- */

/* Called with plugins_lock held. */
static stats_plugin *stats_plugin_get(fg_stats *s, const char *name)
{
    for (size_t i = 0; i < s->nplugins; i++)
        if (strcmp(s->plugins[i].name, name) == 0)
            return &s->plugins[i];
    if (s->nplugins == s->plugins_cap) {
        s->plugins_cap = s->plugins_cap ? s->plugins_cap * 2 : 8;
        s->plugins = xrealloc(s->plugins, s->plugins_cap * sizeof *s->plugins);
    }
    stats_plugin *p = &s->plugins[s->nplugins++];
    memset(p, 0, sizeof *p);
    p->name = xstrdup(name);
    return p;
}

const char *const fg_stats_net_names[FG_STATS_NET_KINDS] = {"socket", "dns", "redis", "http"};

static _Thread_local fg_stats_net stats_net_pending;
static _Thread_local bool stats_net_any;

void fg_stats_net_call(int kind, double seconds, bool error)
{
    if (kind < 0 || kind >= FG_STATS_NET_KINDS)
        return;
    stats_net_pending.calls[kind]++;
    stats_net_pending.errors[kind] += error;
    stats_net_pending.seconds[kind] += seconds > 0 ? seconds : 0;
    stats_net_any = true;
}

static void stats_net_add(fg_stats_net *to, const fg_stats_net *n)
{
    for (int k = 0; k < FG_STATS_NET_KINDS; k++) {
        to->calls[k] += n->calls[k];
        to->errors[k] += n->errors[k];
        to->seconds[k] += n->seconds[k];
    }
}

void fg_stats_plugin_net(fg_stats *s, const char *plugin, const fg_stats_net *n)
{
    if (!s && plugin && stats_forwarder && stats_forwarder->plugin_net)
        stats_forwarder->plugin_net(plugin, n);
    if (!s || !plugin)
        return;
    pthread_mutex_lock(&s->plugins_lock);
    stats_net_add(&stats_plugin_get(s, plugin)->net, n);
    pthread_mutex_unlock(&s->plugins_lock);
}

/* The calls made since the last plugin ended belong to this one. */
static void stats_net_flush(fg_stats *s, const char *plugin)
{
    if (!stats_net_any)
        return;
    fg_stats_plugin_net(s, plugin, &stats_net_pending);
    memset(&stats_net_pending, 0, sizeof stats_net_pending);
    stats_net_any = false;
}

void fg_stats_plugin_run(fg_stats *s, const char *plugin, double seconds, int action)
{
    stats_net_flush(s, plugin);
    if (!s && plugin && stats_forwarder)
        stats_forwarder->plugin_run(plugin, seconds, action);
    if (!s || !plugin)
        return;
    if (seconds < 0)
        seconds = 0;
    pthread_mutex_lock(&s->plugins_lock);
    stats_plugin *p = stats_plugin_get(s, plugin);
    p->runs++;
    p->decisions[stats_action_index(action)]++;
    p->time_sum += seconds;
    p->buckets[stats_bucket_of(seconds)]++;
    pthread_mutex_unlock(&s->plugins_lock);
}

void fg_stats_plugin_error(fg_stats *s, const char *plugin)
{
    stats_net_flush(s, plugin);
    if (!s && plugin && stats_forwarder)
        stats_forwarder->plugin_error(plugin);
    if (!s || !plugin)
        return;
    pthread_mutex_lock(&s->plugins_lock);
    stats_plugin_get(s, plugin)->errors++;
    pthread_mutex_unlock(&s->plugins_lock);
}

/* ---- exceptions ---- */

void fg_stats_exception(fg_stats *s, const char *thread, const char *info, const char *traceback)
{
    if (!s) {
        if (stats_forwarder)
            stats_forwarder->exception(info ? info : "", traceback ? traceback : "");
        return;
    }
    if (!thread)
        thread = stats_current_worker ? stats_current_worker->name : "MainThread";
    pthread_mutex_lock(&s->exceptions_lock);
    stats_exception *e = &s->exceptions[s->exceptions_next];
    free(e->thread);
    free(e->info);
    free(e->traceback);
    e->when = fg_now();
    e->thread = xstrdup(thread);
    e->info = xstrdup(info ? info : "");
    e->traceback = xstrdup(traceback ? traceback : "");
    s->exceptions_next = (s->exceptions_next + 1) % FG_STATS_EXCEPTIONS;
    if (s->exceptions_count < FG_STATS_EXCEPTIONS)
        s->exceptions_count++;
    pthread_mutex_unlock(&s->exceptions_lock);
}

/* ---- workers ---- */

fg_stats_worker *fg_stats_worker_enter(fg_stats *s, int number, const char *name)
{
    fg_stats_worker *w = fg_stats_worker_register(s, number, name);
    if (w)
        stats_current_worker = w;
    return w;
}

fg_stats_worker *fg_stats_worker_register(fg_stats *s, int number, const char *name)
{
    if (!s)
        return NULL;
    fg_stats_worker *w = xcalloc(1, sizeof *w);
    w->stats = s;
    w->number = number;
    w->name = xstrdup(name);
    w->state = xstrdup("waiting for task");
    w->since = fg_monotonic();
    pthread_mutex_lock(&s->workers_lock);
    fg_stats_worker **at = &s->workers;
    while (*at && (*at)->number < number)
        at = &(*at)->next;
    w->next = *at;
    *at = w;
    pthread_mutex_unlock(&s->workers_lock);
    return w;
}

void fg_stats_worker_leave(fg_stats_worker *w)
{
    if (!w)
        return;
    fg_stats *s = w->stats;
    pthread_mutex_lock(&s->workers_lock);
    for (fg_stats_worker **at = &s->workers; *at; at = &(*at)->next)
        if (*at == w) {
            *at = w->next;
            break;
        }
    pthread_mutex_unlock(&s->workers_lock);
    if (stats_current_worker == w)
        stats_current_worker = NULL;
    free(w->name);
    free(w->state);
    free(w->plugin);
    free(w);
}

static void stats_worker_set(fg_stats_worker *w, char *state, char *plugin, bool busy)
{
    pthread_mutex_lock(&w->stats->workers_lock);
    char *old_state = w->state, *old_plugin = w->plugin;
    w->state = state;
    w->plugin = plugin;
    w->busy = busy;
    w->since = fg_monotonic();
    pthread_mutex_unlock(&w->stats->workers_lock);
    free(old_state);
    free(old_plugin);
}

void fg_stats_worker_set_state(fg_stats_worker *w, const char *state, bool busy)
{
    if (!w && stats_forwarder)
        stats_forwarder->worker_state(state ? state : "", busy);
    if (w)
        stats_worker_set(w, xstrdup(state ? state : ""), NULL, busy);
}

void fg_stats_worker_set_plugin(fg_stats_worker *w, const char *suspect, const char *plugin)
{
    if (!w && stats_forwarder)
        stats_forwarder->worker_plugin(suspect ? suspect : "", plugin ? plugin : "?");
    if (w)
        stats_worker_set(w, xasprintf("%s : Running Plugin %s", suspect ? suspect : "", plugin ? plugin : "?"),
                         xstrdup(plugin ? plugin : "?"), true);
}

fg_stats_worker *fg_stats_worker_current(void) { return stats_current_worker; }

void fg_stats_worker_set_lua_counter(fg_stats_worker *w, const _Atomic size_t *bytes)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->stats->workers_lock);
    w->lua_counter = bytes;
    w->lua_known = bytes != NULL;
    pthread_mutex_unlock(&w->stats->workers_lock);
}

void fg_stats_worker_set_lua_bytes(fg_stats_worker *w, size_t bytes)
{
    if (!w)
        return;
    atomic_store_explicit(&w->lua_bytes, bytes, memory_order_relaxed);
    pthread_mutex_lock(&w->stats->workers_lock);
    w->lua_known = true;
    pthread_mutex_unlock(&w->stats->workers_lock);
}

/* ---- reading ---- */

static int stats_plugin_cmp(const void *a, const void *b)
{
    return strcmp(((const fg_stats_plugin_snapshot *)a)->name, ((const fg_stats_plugin_snapshot *)b)->name);
}

void fg_stats_snapshot_take(fg_stats *s, fg_stats_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->started = s->started_wall;
    out->uptime = fg_monotonic() - s->started_mono;
    out->in = atomic_load(&s->in);
    out->out = atomic_load(&s->out);
    out->total = atomic_load(&s->total);
    out->ham = atomic_load(&s->ham);
    out->spam = atomic_load(&s->spam);
    out->highspam = atomic_load(&s->highspam);
    out->virus = atomic_load(&s->virus);
    out->blocked = atomic_load(&s->blocked);
    out->deferred = atomic_load(&s->deferred);
    out->reinject_failed = atomic_load(&s->reinject_failed);
    for (int i = 0; i < FG_STATS_ACTIONS; i++)
        out->actions[i] = atomic_load(&s->actions[i]);
    for (int i = 0; i < FG_STATS_PROTOCOLS; i++)
        out->protocols[i] = atomic_load(&s->protocols[i]);
    for (int i = 0; i < FG_STATS_BUCKETS; i++)
        out->scan_buckets[i] = atomic_load(&s->scan_buckets[i]);
    out->scan_count = atomic_load(&s->scan_count);
    out->scan_sum = (double)atomic_load(&s->scan_sum_us) / 1e6;

    /* Fuglu: "0" with no scan or when the last one is older than five minutes (then forgotten). */
    pthread_mutex_lock(&s->recent_lock);
    if (s->recent_count > 0 && fg_monotonic() - s->last_scan > STATS_RECENT_MAX_AGE)
        s->recent_count = s->recent_next = 0;
    if (s->recent_count == 0) {
        snprintf(out->avg_scantime, sizeof out->avg_scantime, "0");
    } else {
        double sum = 0;
        for (int i = 0; i < s->recent_count; i++)
            sum += s->recent[i];
        snprintf(out->avg_scantime, sizeof out->avg_scantime, "%.4f", sum / s->recent_count);
    }
    pthread_mutex_unlock(&s->recent_lock);

    pthread_mutex_lock(&s->workers_lock);
    for (fg_stats_worker *w = s->workers; w; w = w->next)
        out->workers++;
    out->worker_list = xcalloc(out->workers ? (size_t)out->workers : 1, sizeof *out->worker_list);
    int k = 0;
    for (fg_stats_worker *w = s->workers; w; w = w->next, k++) {
        out->workers_busy += w->busy;
        out->worker_list[k].number = w->number;
        out->worker_list[k].lua_known = w->lua_known;
        out->worker_list[k].lua_bytes = w->lua_known ? stats_worker_lua_bytes(w) : 0;
    }
    pthread_mutex_unlock(&s->workers_lock);

    pthread_mutex_lock(&s->plugins_lock);
    out->nplugins = s->nplugins;
    out->plugins = xcalloc(s->nplugins ? s->nplugins : 1, sizeof *out->plugins);
    for (size_t i = 0; i < s->nplugins; i++) {
        const stats_plugin *p = &s->plugins[i];
        fg_stats_plugin_snapshot *q = &out->plugins[i];
        q->name = xstrdup(p->name);
        q->runs = p->runs;
        q->errors = p->errors;
        q->time_sum = p->time_sum;
        memcpy(q->decisions, p->decisions, sizeof q->decisions);
        memcpy(q->buckets, p->buckets, sizeof q->buckets);
        q->net = p->net;
    }
    pthread_mutex_unlock(&s->plugins_lock);
    qsort(out->plugins, out->nplugins, sizeof *out->plugins, stats_plugin_cmp);
}

void fg_stats_snapshot_free(fg_stats_snapshot *snap)
{
    for (size_t i = 0; i < snap->nplugins; i++)
        free(snap->plugins[i].name);
    free(snap->plugins);
    snap->plugins = NULL;
    free(snap->worker_list);
    snap->worker_list = NULL;
    snap->nplugins = 0;
}

double fg_stats_quantile(const uint64_t buckets[FG_STATS_BUCKETS], double q)
{
    uint64_t total = 0;
    for (int i = 0; i < FG_STATS_BUCKETS; i++)
        total += buckets[i];
    if (total == 0)
        return 0;
    double want = q * (double)total;
    uint64_t seen = 0;
    for (int i = 0; i < FG_STATS_BUCKETS - 1; i++) {
        seen += buckets[i];
        if ((double)seen >= want)
            return fg_stats_bucket_bounds[i];
    }
    return INFINITY;
}

int fg_stats_thread_count(fg_stats *s)
{
    pthread_mutex_lock(&s->workers_lock);
    int n = 1;
    for (fg_stats_worker *w = s->workers; w; w = w->next)
        n++;
    pthread_mutex_unlock(&s->workers_lock);
    return n;
}

/* stats_render: the control socket's answers in Fuglu's formats (stats, uptime, workerlist,
 * threadlist, exceptionlist) and the JSON variants and pluginstats this engine adds, plus the
 * timedelta and uptime texts MRTG uses. See stats.h. control.c only parses commands and moves bytes.
 */
#include "monitor/stats.h"
#include "monitor/stats_internal.h"
#include "lib/util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- formatting helpers ---- */

void fg_stats_format_timedelta(fg_buf *b, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    long long us = llround(seconds * 1e6);
    long long days = us / 86400000000LL;
    us -= days * 86400000000LL;
    long long secs = us / 1000000, frac = us % 1000000;
    if (days)
        fg_buf_printf(b, "%lld day%s, ", days, days == 1 ? "" : "s");
    fg_buf_printf(b, "%lld:%02lld:%02lld", secs / 3600, secs / 60 % 60, secs % 60);
    if (frac)
        fg_buf_printf(b, ".%06lld", frac);
}

void fg_stats_format_uptime_words(fg_buf *b, double seconds)
{
    long long total = seconds < 0 ? 0 : (long long)seconds;
    long long parts[4] = {total / 86400, total / 3600 % 24, total / 60 % 60, total % 60};
    static const char *const names[4] = {"day", "hour", "minute", "second"};
    int started = 0;
    for (int i = 0; i < 4; i++) {
        if (!started && parts[i] == 0 && i < 3)
            continue;
        fg_buf_printf(b, "%s%lld %s%s", started ? ", " : "", parts[i], names[i], parts[i] == 1 ? "" : "s");
        started = 1;
    }
}

void fg_stats_json_string(fg_buf *b, const char *s)
{
    fg_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fg_buf_puts(b, "\\\""); break;
        case '\\': fg_buf_puts(b, "\\\\"); break;
        case '\n': fg_buf_puts(b, "\\n"); break;
        case '\r': fg_buf_puts(b, "\\r"); break;
        case '\t': fg_buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                fg_buf_printf(b, "\\u%04x", *p);
            else
                fg_buf_append(b, p, 1);
        }
    }
    fg_buf_puts(b, "\"");
}

/* A finite number for JSON (+Inf becomes null). */
static void stats_json_number(fg_buf *b, double v)
{
    if (isfinite(v))
        fg_buf_printf(b, "%.6f", v);
    else
        fg_buf_puts(b, "null");
}

/* Python's str(datetime) in local time: "2018-08-06 17:22:37.123456". */
static void stats_format_datetime(fg_buf *b, double when)
{
    time_t t = (time_t)when;
    struct tm tm;
    localtime_r(&t, &tm);
    char text[64];
    strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
    fg_buf_puts(b, text);
    long us = (long)((when - (double)t) * 1e6);
    if (us > 0)
        fg_buf_printf(b, ".%06ld", us);
}

/* ---- renderings ---- */

static void stats_render_plugins_json(fg_buf *b, const fg_stats_snapshot *snap)
{
    fg_buf_puts(b, "{");
    for (size_t i = 0; i < snap->nplugins; i++) {
        const fg_stats_plugin_snapshot *p = &snap->plugins[i];
        fg_buf_puts(b, i ? ", " : "");
        fg_stats_json_string(b, p->name);
        fg_buf_printf(b, ": {\"runs\": %llu, \"errors\": %llu, \"decisions\": {", (unsigned long long)p->runs,
                      (unsigned long long)p->errors);
        for (int a = 0; a < FG_STATS_ACTIONS; a++)
            fg_buf_printf(b, "%s\"%s\": %llu", a ? ", " : "", fg_stats_action_names[a],
                          (unsigned long long)p->decisions[a]);
        fg_buf_puts(b, "}, \"mean_seconds\": ");
        stats_json_number(b, p->runs ? p->time_sum / (double)p->runs : 0);
        fg_buf_puts(b, ", \"p99_seconds\": ");
        stats_json_number(b, fg_stats_quantile(p->buckets, 0.99));
        fg_buf_puts(b, ", \"network\": {");
        for (int k = 0; k < FG_STATS_NET_KINDS; k++) {
            fg_buf_printf(b, "%s\"%s\": {\"calls\": %llu, \"errors\": %llu, \"seconds\": ", k ? ", " : "",
                          fg_stats_net_names[k], (unsigned long long)p->net.calls[k],
                          (unsigned long long)p->net.errors[k]);
            stats_json_number(b, p->net.seconds[k]);
            fg_buf_puts(b, "}");
        }
        fg_buf_puts(b, "}}");
    }
    fg_buf_puts(b, "}");
}

void fg_stats_render_stats(fg_stats *s, fg_buf *b, bool json)
{
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    if (json) {
        fg_buf_printf(b, "{\"uptime_seconds\": %.3f, \"started\": %.6f, \"avg_scantime\": %s, ", snap.uptime,
                      snap.started, snap.avg_scantime);
        fg_buf_printf(b,
                      "\"total\": %llu, \"in\": %llu, \"out\": %llu, \"ham\": %llu, \"spam\": %llu, "
                      "\"highspam\": %llu, \"virus\": %llu, \"blocked\": %llu, \"deferred\": %llu, "
                      "\"reinject_failed\": %llu, \"actions\": {",
                      (unsigned long long)snap.total, (unsigned long long)snap.in, (unsigned long long)snap.out,
                      (unsigned long long)snap.ham, (unsigned long long)snap.spam,
                      (unsigned long long)snap.highspam, (unsigned long long)snap.virus,
                      (unsigned long long)snap.blocked, (unsigned long long)snap.deferred,
                      (unsigned long long)snap.reinject_failed);
        for (int a = 0; a < FG_STATS_ACTIONS; a++)
            fg_buf_printf(b, "%s\"%s\": %llu", a ? ", " : "", fg_stats_action_names[a],
                          (unsigned long long)snap.actions[a]);
        fg_buf_printf(b, "}, \"workers\": %d, \"workers_busy\": %d, \"plugins\": ", snap.workers,
                      snap.workers_busy);
        stats_render_plugins_json(b, &snap);
        fg_buf_puts(b, "}\n");
    } else {
        fg_buf_puts(b, "Fuglu statistics\n---------------\nUptime:\t\t");
        fg_stats_format_timedelta(b, snap.uptime);
        fg_buf_printf(b,
                      "\nAvg scan time:\t%s\nTotal msgs:\t%llu in:%llu out:%llu\nHam:\t\t%llu\nSpam:\t\t%llu\n"
                      "Virus:\t\t%llu\nBlock:\t\t%llu\n        ",
                      snap.avg_scantime, (unsigned long long)snap.total, (unsigned long long)snap.in,
                      (unsigned long long)snap.out, (unsigned long long)snap.ham, (unsigned long long)snap.spam,
                      (unsigned long long)snap.virus, (unsigned long long)snap.blocked);
    }
    fg_stats_snapshot_free(&snap);
}

void fg_stats_render_uptime(fg_stats *s, fg_buf *b)
{
    fg_buf_puts(b, "Fuglu was started on ");
    stats_format_datetime(b, s->started_wall);
    fg_buf_puts(b, "\nUptime: ");
    fg_stats_format_timedelta(b, fg_monotonic() - s->started_mono);
}

void fg_stats_render_workerlist(fg_stats *s, fg_buf *b, bool json)
{
    pthread_mutex_lock(&s->workers_lock);
    int n = 0;
    for (fg_stats_worker *w = s->workers; w; w = w->next)
        n++;
    double now = fg_monotonic();
    if (json)
        fg_buf_printf(b, "{\"total\": %d, \"workers\": [", n);
    else
        fg_buf_printf(b, "Total %d worker threads\n\n", n);
    for (fg_stats_worker *w = s->workers; w; w = w->next) {
        if (json) {
            fg_buf_printf(b, "%s{\"number\": %d, \"name\": ", w == s->workers ? "" : ", ", w->number);
            fg_stats_json_string(b, w->name);
            fg_buf_printf(b, ", \"busy\": %s, \"seconds\": %.3f, \"plugin\": ", w->busy ? "true" : "false",
                          now - w->since);
            if (w->plugin)
                fg_stats_json_string(b, w->plugin);
            else
                fg_buf_puts(b, "null");
            fg_buf_puts(b, ", \"state\": ");
            fg_stats_json_string(b, w->state);
            if (w->lua_known)
                fg_buf_printf(b, ", \"lua_memory_bytes\": %zu}", stats_worker_lua_bytes(w));
            else
                fg_buf_puts(b, ", \"lua_memory_bytes\": null}");
        } else {
            fg_buf_printf(b, "%s[%d]: %s", w == s->workers ? "" : "\n*******\n", w->number, w->state);
        }
    }
    pthread_mutex_unlock(&s->workers_lock);
    if (json)
        fg_buf_puts(b, "]}\n");
}

void fg_stats_render_threadlist(fg_stats *s, fg_buf *b)
{
    fg_buf_printf(b, "Total %d Threads\n\nname=MainThread alive=True daemon=False", fg_stats_thread_count(s));
    pthread_mutex_lock(&s->workers_lock);
    for (fg_stats_worker *w = s->workers; w; w = w->next)
        fg_buf_printf(b, "\n*******\nname=%s alive=True daemon=True", w->name);
    pthread_mutex_unlock(&s->workers_lock);
}

void fg_stats_render_exceptionlist(fg_stats *s, fg_buf *b, bool json)
{
    pthread_mutex_lock(&s->exceptions_lock);
    int first = (s->exceptions_next - s->exceptions_count + FG_STATS_EXCEPTIONS) % FG_STATS_EXCEPTIONS;
    if (json)
        fg_buf_puts(b, "[");
    for (int i = 0; i < s->exceptions_count; i++) {
        const stats_exception *e = &s->exceptions[(first + i) % FG_STATS_EXCEPTIONS];
        if (json) {
            fg_buf_printf(b, "%s{\"time\": %.6f, \"thread\": ", i ? ", " : "", e->when);
            fg_stats_json_string(b, e->thread);
            fg_buf_puts(b, ", \"info\": ");
            fg_stats_json_string(b, e->info);
            fg_buf_puts(b, ", \"traceback\": ");
            fg_stats_json_string(b, e->traceback);
            fg_buf_puts(b, "}");
        } else {
            /* Python's time.ctime: "Mon Aug  6 17:22:37 2018" */
            time_t t = (time_t)e->when;
            struct tm tm;
            char when[64];
            localtime_r(&t, &tm);
            strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", &tm);
            size_t tl = strlen(e->traceback);
            fg_buf_printf(b, "\n[%d] %s : %s (%s)\n%s%s", i + 1, when, e->thread, e->info, e->traceback,
                          tl && e->traceback[tl - 1] != '\n' ? "\n" : "");
        }
    }
    pthread_mutex_unlock(&s->exceptions_lock);
    if (json)
        fg_buf_puts(b, "]\n");
}

void fg_stats_render_pluginstats(fg_stats *s, fg_buf *b, bool json)
{
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    if (json) {
        stats_render_plugins_json(b, &snap);
        fg_buf_puts(b, "\n");
    } else {
        fg_buf_printf(b, "%-30s %10s %8s %12s %12s  %s\n", "plugin", "runs", "errors", "mean", "p99",
                      "decisions");
        for (size_t i = 0; i < snap.nplugins; i++) {
            const fg_stats_plugin_snapshot *p = &snap.plugins[i];
            double p99 = fg_stats_quantile(p->buckets, 0.99);
            fg_buf_printf(b, "%-30s %10llu %8llu %12.4f ", p->name, (unsigned long long)p->runs,
                          (unsigned long long)p->errors, p->runs ? p->time_sum / (double)p->runs : 0.0);
            if (isfinite(p99))
                fg_buf_printf(b, "%12.4f ", p99);
            else
                fg_buf_printf(b, "%12s ", ">60");
            for (int a = 0; a < FG_STATS_ACTIONS; a++)
                if (p->decisions[a]) {
                    fg_buf_printf(b, " %s:%llu", fg_stats_action_names[a],
                                  (unsigned long long)p->decisions[a]);
                }
            fg_buf_puts(b, "\n");
        }
        /* the plugins' network calls, for those that made any */
        bool header = false;
        for (size_t i = 0; i < snap.nplugins; i++) {
            const fg_stats_plugin_snapshot *p = &snap.plugins[i];
            for (int k = 0; k < FG_STATS_NET_KINDS; k++) {
                if (!p->net.calls[k])
                    continue;
                if (!header) {
                    fg_buf_printf(b, "\n%-30s %-8s %10s %8s %12s\n", "network calls", "kind", "calls", "errors",
                                  "mean");
                    header = true;
                }
                fg_buf_printf(b, "%-30s %-8s %10llu %8llu %12.4f\n", p->name, fg_stats_net_names[k],
                              (unsigned long long)p->net.calls[k], (unsigned long long)p->net.errors[k],
                              p->net.seconds[k] / (double)p->net.calls[k]);
            }
        }
    }
    fg_stats_snapshot_free(&snap);
}

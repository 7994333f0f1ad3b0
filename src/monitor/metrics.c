/* metrics: Prometheus endpoint and status page on the bounded httpd (httpd.h). See metrics.h. */
#include "monitor/metrics.h"
#include "log/log.h"

#include "monitor/httpd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_LOGGER "fuglu.metrics"
#define METRICS_SAMPLE_SECONDS 10
#define METRICS_SAMPLES 361                 /* one hour of 10 s steps, both ends included */
#define METRICS_MAX_CONNECTIONS 32          /* scrapers and a browser; more wait in the backlog */
#define METRICS_MAX_HEADER 8192             /* a request head beyond it gets 431 */
#define METRICS_TIMEOUT_SECONDS 10          /* for a whole request, reply included */

typedef struct metrics_sample {
    double when;                            /* wall clock */
    uint64_t in, total, spam, virus;
} metrics_sample;

struct fg_metrics {
    fg_stats *stats;
    fg_generation *gen;         /* in service; NULL before the first one */
    fg_httpd *http;
    struct event *sampler;
    metrics_sample samples[METRICS_SAMPLES];
    int nsamples, next;
};

/* ---- Prometheus text ---- */

static void metrics_label(fg_buf *b, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            fg_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            fg_buf_puts(b, "\\n");
        else
            fg_buf_append(b, p, 1);
    }
}

static void metrics_head(fg_buf *b, const char *name, const char *type, const char *help)
{
    fg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_bound(fg_buf *b, int i)
{
    if (i < FG_STATS_BUCKETS - 1)
        fg_buf_printf(b, "%g", fg_stats_bucket_bounds[i]);
    else
        fg_buf_puts(b, "+Inf");
}

/* The _bucket/_sum/_count lines of one histogram; labels: "" or `plugin="x",`. */
static void metrics_histogram(fg_buf *b, const char *name, const char *labels, const uint64_t *buckets,
                              double sum)
{
    uint64_t cumulative = 0;
    for (int i = 0; i < FG_STATS_BUCKETS; i++) {
        cumulative += buckets[i];
        fg_buf_printf(b, "%s_bucket{%sle=\"", name, labels);
        metrics_bound(b, i);
        fg_buf_printf(b, "\"} %llu\n", (unsigned long long)cumulative);
    }
    size_t n = strlen(labels);
    fg_buf_printf(b, "%s_sum%s%.*s%s %.6f\n", name, n ? "{" : "", n ? (int)n - 1 : 0, labels, n ? "}" : "", sum);
    fg_buf_printf(b, "%s_count%s%.*s%s %llu\n", name, n ? "{" : "", n ? (int)n - 1 : 0, labels, n ? "}" : "",
                  (unsigned long long)cumulative);
}

void fg_metrics_render_prometheus(fg_buf *b, const fg_stats_snapshot *snap, long queue)
{
    metrics_head(b, "fuglu_uptime_seconds", "gauge", "Seconds since the daemon started.");
    fg_buf_printf(b, "fuglu_uptime_seconds %.3f\n", snap->uptime);
    metrics_head(b, "fuglu_messages_in_total", "counter", "Messages received for scanning.");
    fg_buf_printf(b, "fuglu_messages_in_total %llu\n", (unsigned long long)snap->in);
    metrics_head(b, "fuglu_messages_out_total", "counter", "Messages re-injected to the outgoing host.");
    fg_buf_printf(b, "fuglu_messages_out_total %llu\n", (unsigned long long)snap->out);
    metrics_head(b, "fuglu_messages_total", "counter", "Messages with a final verdict (deferred ones excluded).");
    fg_buf_printf(b, "fuglu_messages_total %llu\n", (unsigned long long)snap->total);
    metrics_head(b, "fuglu_messages_deferred_total", "counter", "Messages answered with a temporary error.");
    fg_buf_printf(b, "fuglu_messages_deferred_total %llu\n", (unsigned long long)snap->deferred);
    metrics_head(b, "fuglu_messages_by_verdict_total", "counter",
                 "Messages by verdict (ham = neither spam nor virus, as Fuglu counts).");
    const struct { const char *name; uint64_t value; } verdicts[] = {
        {"ham", snap->ham}, {"spam", snap->spam}, {"highspam", snap->highspam},
        {"virus", snap->virus}, {"blocked", snap->blocked},
    };
    for (size_t i = 0; i < sizeof verdicts / sizeof verdicts[0]; i++)
        fg_buf_printf(b, "fuglu_messages_by_verdict_total{verdict=\"%s\"} %llu\n", verdicts[i].name,
                      (unsigned long long)verdicts[i].value);
    metrics_head(b, "fuglu_messages_by_action_total", "counter", "Messages by final action.");
    for (int a = 0; a < FG_STATS_ACTIONS; a++)
        fg_buf_printf(b, "fuglu_messages_by_action_total{action=\"%s\"} %llu\n", fg_stats_action_names[a],
                      (unsigned long long)snap->actions[a]);
    metrics_head(b, "fuglu_messages_by_protocol_total", "counter", "Messages received by protocol.");
    for (int p = 0; p < FG_STATS_PROTOCOLS; p++)
        fg_buf_printf(b, "fuglu_messages_by_protocol_total{protocol=\"%s\"} %llu\n", fg_stats_protocol_names[p],
                      (unsigned long long)snap->protocols[p]);
    metrics_head(b, "fuglu_reinject_failures_total", "counter", "Messages the outgoing host did not take.");
    fg_buf_printf(b, "fuglu_reinject_failures_total %llu\n", (unsigned long long)snap->reinject_failed);
    metrics_head(b, "fuglu_scan_duration_seconds", "histogram", "Time the scanner plugins took per message.");
    metrics_histogram(b, "fuglu_scan_duration_seconds", "", snap->scan_buckets, snap->scan_sum);
    metrics_head(b, "fuglu_workers", "gauge", "Worker threads by state.");
    fg_buf_printf(b, "fuglu_workers{state=\"busy\"} %d\nfuglu_workers{state=\"idle\"} %d\n", snap->workers_busy,
                  snap->workers - snap->workers_busy);
    metrics_head(b, "fuglu_lua_memory_bytes", "gauge",
                 "Bytes held by each worker's Lua state (thread workers live, process workers after each message).");
    for (int i = 0; i < snap->workers; i++)
        if (snap->worker_list[i].lua_known)
            fg_buf_printf(b, "fuglu_lua_memory_bytes{worker=\"%d\"} %llu\n", snap->worker_list[i].number,
                          (unsigned long long)snap->worker_list[i].lua_bytes);
    if (queue >= 0) {
        metrics_head(b, "fuglu_queue_length", "gauge", "Messages waiting for a free worker.");
        fg_buf_printf(b, "fuglu_queue_length %ld\n", queue);
    }
    metrics_head(b, "fuglu_plugin_runs_total", "counter", "Plugin runs that returned.");
    for (size_t i = 0; i < snap->nplugins; i++) {
        fg_buf_puts(b, "fuglu_plugin_runs_total{plugin=\"");
        metrics_label(b, snap->plugins[i].name);
        fg_buf_printf(b, "\"} %llu\n", (unsigned long long)snap->plugins[i].runs);
    }
    metrics_head(b, "fuglu_plugin_errors_total", "counter", "Plugin runs that raised an error.");
    for (size_t i = 0; i < snap->nplugins; i++) {
        fg_buf_puts(b, "fuglu_plugin_errors_total{plugin=\"");
        metrics_label(b, snap->plugins[i].name);
        fg_buf_printf(b, "\"} %llu\n", (unsigned long long)snap->plugins[i].errors);
    }
    metrics_head(b, "fuglu_plugin_decisions_total", "counter", "Plugin decisions by action.");
    for (size_t i = 0; i < snap->nplugins; i++)
        for (int a = 0; a < FG_STATS_ACTIONS; a++) {
            if (!snap->plugins[i].decisions[a])
                continue;
            fg_buf_puts(b, "fuglu_plugin_decisions_total{plugin=\"");
            metrics_label(b, snap->plugins[i].name);
            fg_buf_printf(b, "\",action=\"%s\"} %llu\n", fg_stats_action_names[a],
                          (unsigned long long)snap->plugins[i].decisions[a]);
        }
    static const char *const net_metrics[3][2] = {
        {"fuglu_plugin_network_calls_total", "Network calls plugins made (socket, dns, redis, http)."},
        {"fuglu_plugin_network_errors_total", "Network calls of plugins that failed or timed out."},
        {"fuglu_plugin_network_seconds_total", "Time plugins waited on network calls."},
    };
    for (int m = 0; m < 3; m++) {
        metrics_head(b, net_metrics[m][0], "counter", net_metrics[m][1]);
        for (size_t i = 0; i < snap->nplugins; i++)
            for (int k = 0; k < FG_STATS_NET_KINDS; k++) {
                const fg_stats_net *n = &snap->plugins[i].net;
                if (!n->calls[k])
                    continue;
                fg_buf_printf(b, "%s{plugin=\"", net_metrics[m][0]);
                metrics_label(b, snap->plugins[i].name);
                fg_buf_printf(b, "\",kind=\"%s\"} ", fg_stats_net_names[k]);
                if (m == 0)
                    fg_buf_printf(b, "%llu\n", (unsigned long long)n->calls[k]);
                else if (m == 1)
                    fg_buf_printf(b, "%llu\n", (unsigned long long)n->errors[k]);
                else
                    fg_buf_printf(b, "%.6f\n", n->seconds[k]);
            }
    }
    metrics_head(b, "fuglu_plugin_duration_seconds", "histogram", "Time of each plugin run.");
    for (size_t i = 0; i < snap->nplugins; i++) {
        fg_buf labels;
        fg_buf_init(&labels);
        fg_buf_puts(&labels, "plugin=\"");
        metrics_label(&labels, snap->plugins[i].name);
        fg_buf_puts(&labels, "\",");
        metrics_histogram(b, "fuglu_plugin_duration_seconds", labels.data, snap->plugins[i].buckets,
                          snap->plugins[i].time_sum);
        fg_buf_free(&labels);
    }
}

/* ---- samples for the graph ---- */

static void metrics_take_sample(fg_metrics *m)
{
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(m->stats, &snap);
    metrics_sample *x = &m->samples[m->next];
    x->when = fg_now();
    x->in = snap.in;
    x->total = snap.total;
    x->spam = snap.spam;
    x->virus = snap.virus;
    m->next = (m->next + 1) % METRICS_SAMPLES;
    if (m->nsamples < METRICS_SAMPLES)
        m->nsamples++;
    fg_stats_snapshot_free(&snap);
}

static void metrics_on_sample(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    metrics_take_sample(arg);
}

static const metrics_sample *metrics_sample_at(const fg_metrics *m, int i)
{
    return &m->samples[(m->next - m->nsamples + i + METRICS_SAMPLES) % METRICS_SAMPLES];
}

/* An SVG of messages (in) and spam per 10 s step over the last hour; x = minutes ago. */
static void metrics_svg(fg_buf *b, const fg_metrics *m)
{
    const int width = 720, height = 200, left = 40, bottom = 20;
    double top_value = 1;
    for (int i = 1; i < m->nsamples; i++) {
        double d = (double)(metrics_sample_at(m, i)->in - metrics_sample_at(m, i - 1)->in);
        if (d > top_value)
            top_value = d;
    }
    fg_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" "
                  "aria-label=\"messages per 10 seconds, last hour\">\n"
                  "<rect x=\"%d\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f8\" stroke=\"#ccc\"/>\n"
                  "<text x=\"2\" y=\"12\" font-size=\"10\">%.0f</text><text x=\"2\" y=\"%d\" font-size=\"10\">0</text>\n"
                  "<text x=\"%d\" y=\"%d\" font-size=\"10\">-60 min</text><text x=\"%d\" y=\"%d\" font-size=\"10\">now</text>\n",
                  width + left, height + bottom, left, width, height, top_value, height, left, height + 14,
                  left + width - 22, height + 14);
    static const struct { const char *color; int field; } lines[] = {{"#2a6fdb", 0}, {"#d9480f", 1}, {"#7b2cbf", 2}};
    double now = fg_now();
    for (size_t l = 0; l < sizeof lines / sizeof lines[0]; l++) {
        fg_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", lines[l].color);
        for (int i = 1; i < m->nsamples; i++) {
            const metrics_sample *a = metrics_sample_at(m, i - 1), *c = metrics_sample_at(m, i);
            uint64_t d = lines[l].field == 0 ? c->in - a->in : lines[l].field == 1 ? c->spam - a->spam
                                                                                     : c->virus - a->virus;
            double age = now - c->when;
            if (age > 3600)
                continue;
            double x = left + width * (1 - age / 3600);
            double y = height - (double)height * (double)d / top_value;
            fg_buf_printf(b, "%.1f,%.1f ", x, y);
        }
        fg_buf_puts(b, "\"/>\n");
    }
    fg_buf_puts(b, "</svg>\n");
}

/* ---- HTTP ---- */

static void metrics_html_escape(fg_buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fg_buf_puts(b, "&lt;"); break;
        case '>': fg_buf_puts(b, "&gt;"); break;
        case '&': fg_buf_puts(b, "&amp;"); break;
        case '"': fg_buf_puts(b, "&quot;"); break;
        default: fg_buf_append(b, s, 1);
        }
    }
}

static long metrics_queue(const fg_metrics *m, const fg_stats_snapshot *snap)
{
    (void)snap;
    return m->gen ? (long)fg_generation_queued(m->gen) : -1;
}

static void metrics_status_page(fg_buf *b, fg_metrics *m)
{
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(m->stats, &snap);
    fg_buf uptime;
    fg_buf_init(&uptime);
    fg_stats_format_timedelta(&uptime, snap.uptime);
    fg_buf_puts(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fuglu status</title>\n"
                   "<style>body{font-family:sans-serif;margin:1em}td,th{padding:2px 8px;text-align:right}"
                   "th{background:#eee}td:first-child,th:first-child{text-align:left}</style></head><body>\n"
                   "<h1>fuglu status</h1>\n");
    fg_buf_printf(b, "<p>Uptime %s &middot; workers busy %d of %d &middot; queue %ld &middot; avg scan time %s s</p>\n",
                  uptime.data, snap.workers_busy, snap.workers, metrics_queue(m, &snap), snap.avg_scantime);
    fg_buf_printf(b,
                  "<table><tr><th>in</th><th>out</th><th>total</th><th>ham</th><th>spam</th><th>virus</th>"
                  "<th>blocked</th><th>deferred</th><th>re-inject failures</th></tr>\n"
                  "<tr><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
                  "<td>%llu</td><td>%llu</td></tr></table>\n",
                  (unsigned long long)snap.in, (unsigned long long)snap.out, (unsigned long long)snap.total,
                  (unsigned long long)snap.ham, (unsigned long long)snap.spam, (unsigned long long)snap.virus,
                  (unsigned long long)snap.blocked, (unsigned long long)snap.deferred,
                  (unsigned long long)snap.reinject_failed);
    fg_buf_puts(b, "<h2>Last hour</h2>\n<p><span style=\"color:#2a6fdb\">messages in</span>, "
                   "<span style=\"color:#d9480f\">spam</span>, <span style=\"color:#7b2cbf\">virus</span> "
                   "per 10 seconds</p>\n");
    metrics_svg(b, m);
    fg_buf_puts(b, "<h2>Plugins</h2>\n<table><tr><th>plugin</th><th>runs</th><th>errors</th><th>mean s</th>"
                   "<th>p99 s</th></tr>\n");
    for (size_t i = 0; i < snap.nplugins; i++) {
        const fg_stats_plugin_snapshot *p = &snap.plugins[i];
        double p99 = fg_stats_quantile(p->buckets, 0.99);
        fg_buf_puts(b, "<tr><td>");
        metrics_html_escape(b, p->name);
        fg_buf_printf(b, "</td><td>%llu</td><td>%llu</td><td>%.4f</td><td>", (unsigned long long)p->runs,
                      (unsigned long long)p->errors, p->runs ? p->time_sum / (double)p->runs : 0.0);
        if (isfinite(p99))
            fg_buf_printf(b, "%.4f", p99);
        else
            fg_buf_puts(b, "&gt;60");
        fg_buf_puts(b, "</td></tr>\n");
    }
    fg_buf_puts(b, "</table>\n<p><a href=\"/metrics\">Prometheus metrics</a></p>\n</body></html>\n");
    fg_buf_free(&uptime);
    fg_stats_snapshot_free(&snap);
}

static int metrics_on_request(void *arg, const char *path, fg_buf *body, const char **content_type)
{
    fg_metrics *m = arg;
    if (strcmp(path, "/metrics") == 0) {
        fg_stats_snapshot snap;
        fg_stats_snapshot_take(m->stats, &snap);
        fg_metrics_render_prometheus(body, &snap, metrics_queue(m, &snap));
        fg_stats_snapshot_free(&snap);
        *content_type = "text/plain; version=0.0.4; charset=utf-8";
        return 200;
    }
    if (strcmp(path, "/") == 0) {
        metrics_status_page(body, m);
        *content_type = "text/html; charset=utf-8";
        return 200;
    }
    return 404;
}

fg_metrics *fg_metrics_new(struct event_base *base, fg_stats *s, const char *port, char **err)
{
    char *end = NULL;
    long number = strtol(port, &end, 10);
    if (!*port || *end || number < 1 || number > 65535) {
        *err = xasprintf("metricsport %s is not a valid port", port);
        return NULL;
    }
    fg_metrics *m = xcalloc(1, sizeof *m);
    m->stats = s;
    fg_httpd_opts ho = {
        .base = base, .addr = "127.0.0.1", .port = (int)number, .handler = metrics_on_request, .arg = m,
        .max_conns = METRICS_MAX_CONNECTIONS, .max_header = METRICS_MAX_HEADER, .timeout = METRICS_TIMEOUT_SECONDS,
        .logger = METRICS_LOGGER,
    };
    char *herr = NULL;
    m->http = fg_httpd_new(&ho, &herr);
    if (!m->http) {
        *err = xasprintf("metrics endpoint: %s", herr);
        free(herr);
        free(m);
        return NULL;
    }
    metrics_take_sample(m);
    m->sampler = event_new(base, -1, EV_PERSIST, metrics_on_sample, m);
    struct timeval tv = {METRICS_SAMPLE_SECONDS, 0};
    event_add(m->sampler, &tv);
    fg_log(METRICS_LOGGER, FG_INFO, "metrics endpoint on http://127.0.0.1:%ld/metrics", number);
    return m;
}

void fg_metrics_set_generation(fg_metrics *m, fg_generation *g)
{
    if (m)
        m->gen = g;
}

void fg_metrics_free(fg_metrics *m)
{
    if (!m)
        return;
    event_free(m->sampler);
    fg_httpd_free(m->http);
    free(m);
}

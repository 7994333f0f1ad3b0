/* metrics: an HTTP endpoint for Prometheus and a small status page (beyond Fuglu).
 *
 * [main] metricsport (empty = off, the default) opens a bounded HTTP server (httpd.h: 32
 * connections, 8 KB request head, 10 s per request) on 127.0.0.1 in the main event loop:
 *   GET /metrics   Prometheus text format 0.0.4: messages by verdict, action and protocol, the scan
 *                  time histogram, per-plugin runs, errors, decisions and times, busy/idle workers,
 *                  queue length, re-inject failures;
 *   GET /          an HTML page with the same numbers and an inline SVG graph of the last hour
 *                  (one sample every 10 s), no external assets.
 */
#ifndef FUGLU_METRICS_H
#define FUGLU_METRICS_H

#include <event2/event.h>
#include "daemon/generation.h"
#include "monitor/stats.h"
#include "lib/util.h"

typedef struct fg_metrics fg_metrics;

/* port: the metricsport value. NULL with *err when it cannot listen. */
fg_metrics *fg_metrics_new(struct event_base *base, fg_stats *s, const char *port, char **err);
/* The generation in service, asked for its queue (set on start and on every swap). */
void fg_metrics_set_generation(fg_metrics *m, fg_generation *g);
void fg_metrics_free(fg_metrics *m);

/* The Prometheus text for a snapshot (exposed for the unit tests). queue < 0: not shown. */
void fg_metrics_render_prometheus(fg_buf *b, const fg_stats_snapshot *snap, long queue);

#endif

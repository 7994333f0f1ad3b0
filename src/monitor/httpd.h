/* httpd: a small, bounded HTTP/1.1 server for GET and HEAD on the main event loop (the metrics and
 * status page; later the web console).
 *
 * Bounded so that no client can cost more than a socket and a few kilobytes: at most max_conns
 * connections (the listener is paused, not spinning, while full, and resumed when one closes), a
 * request head of at most max_header bytes (431 and close beyond it, checked as bytes arrive, so an
 * endless line costs no CPU), no request body (413), an idle timeout and a total time per request.
 * One request per connection (Connection: close): a scraper reconnects, nothing is held open.
 */
#ifndef FUGLU_HTTPD_H
#define FUGLU_HTTPD_H

#include <event2/event.h>
#include "lib/util.h"

typedef struct fg_httpd fg_httpd;

/* Fills body and *content_type for path and returns the status (200, 404...). Runs on the loop. */
typedef int (*fg_httpd_handler)(void *arg, const char *path, fg_buf *body, const char **content_type);

typedef struct fg_httpd_opts {
    struct event_base *base;
    const char *addr;           /* numeric, e.g. "127.0.0.1" */
    int port;
    fg_httpd_handler handler;
    void *arg;
    int max_conns;              /* 0 = 64 */
    size_t max_header;          /* 0 = 8192 */
    double timeout;             /* seconds for the whole request, 0 = 10 */
    const char *logger;
} fg_httpd_opts;

/* NULL with *err when it cannot listen. */
fg_httpd *fg_httpd_new(const fg_httpd_opts *opts, char **err);
int fg_httpd_connections(const fg_httpd *h);
void fg_httpd_free(fg_httpd *h);

#endif

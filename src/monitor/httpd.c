/* httpd: bounded GET/HEAD server. See httpd.h. */
#include "monitor/httpd.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef struct http_conn {
    fg_httpd *h;
    struct bufferevent *bev;
    struct event *deadline;     /* the whole request, reply included */
    struct http_conn *prev, *next;
    int answered;               /* the reply is queued: close once it is written */
    int late;                   /* the deadline passed once: the next time closes */
} http_conn;

struct fg_httpd {
    fg_httpd_opts o;
    struct evconnlistener *listener;
    http_conn *conns;
    int nconns;
    int paused;
    struct event *resume;       /* after an accept error: try again in a second */
};

static void conn_free(http_conn *c)
{
    fg_httpd *h = c->h;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    event_free(c->deadline);
    free(c);
    h->nconns--;
    if (h->paused && h->nconns < h->o.max_conns) {
        evconnlistener_enable(h->listener);
        h->paused = 0;
    }
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

static void send_reply(http_conn *c, int status, const char *content_type, const fg_buf *body, int head_only)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = body ? body->len : 0;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                        "Connection: close\r\n\r\n",
                        status, reason(status), content_type ? content_type : "text/plain; charset=utf-8", len);
    if (body && len && !head_only)
        evbuffer_add(out, body->data, len);
    c->answered = 1;
    bufferevent_disable(c->bev, EV_READ);
}

static void send_error(http_conn *c, int status)
{
    fg_buf b;
    fg_buf_init(&b);
    fg_buf_printf(&b, "%d %s\n", status, reason(status));
    send_reply(c, status, NULL, &b, 0);
    fg_buf_free(&b);
}

/* Parses "METHOD SP target SP HTTP/x.y" and the header lines of a complete head (NUL-terminated,
 * without the blank line). */
static void handle_head(http_conn *c, char *head)
{
    char *save = NULL;
    char *line = strtok_r(head, "\n", &save);
    if (!line) {
        send_error(c, 400);
        return;
    }
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r')
        line[n - 1] = '\0';
    char *method = line, *target = strchr(line, ' ');
    if (!target) {
        send_error(c, 400);
        return;
    }
    *target++ = '\0';
    char *version = strchr(target, ' ');
    if (!version || strncmp(version + 1, "HTTP/1.", 7) != 0) {
        send_error(c, version && strncmp(version + 1, "HTTP/", 5) == 0 ? 505 : 400);
        return;
    }
    *version = '\0';
    int head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        send_error(c, 405);
        return;
    }
    for (char *h = strtok_r(NULL, "\n", &save); h; h = strtok_r(NULL, "\n", &save)) {
        if (strncasecmp(h, "Content-Length:", 15) == 0 && strtol(h + 15, NULL, 10) > 0) {
            send_error(c, 413);
            return;
        }
        if (strncasecmp(h, "Transfer-Encoding:", 18) == 0) {
            send_error(c, 413);
            return;
        }
    }
    char *query = strpbrk(target, "?#");
    if (query)
        *query = '\0';
    fg_buf body;
    fg_buf_init(&body);
    const char *ctype = NULL;
    int status = c->h->o.handler(c->h->o.arg, target, &body, &ctype);
    if (status == 200)
        send_reply(c, 200, ctype, &body, head_only);
    else
        send_error(c, status);
    fg_buf_free(&body);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    http_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->answered) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    size_t skip = 4;
    if (end.pos < 0) {
        end = evbuffer_search(in, "\n\n", 2, NULL);
        skip = 2;
    }
    size_t have = evbuffer_get_length(in);
    if (end.pos < 0 || (size_t)end.pos + skip > c->h->o.max_header) {
        /* The watermark stops reading at max_header + 1 bytes: more than that without the end of
         * the head is refused at once. */
        if (have > c->h->o.max_header || (end.pos >= 0))
            send_error(c, 431);
        return;
    }
    char *head = xmalloc((size_t)end.pos + 1);
    evbuffer_remove(in, head, (size_t)end.pos);
    head[end.pos] = '\0';
    evbuffer_drain(in, evbuffer_get_length(in));
    handle_head(c, head);
    free(head);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    http_conn *c = arg;
    if (c->answered)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg);
}

/* Past the deadline: a request still incomplete gets 408 and a second to take it; a client that
 * does not read its reply is closed. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_conn *c = arg;
    if (c->answered || c->late) {
        conn_free(c);
        return;
    }
    c->late = 1;
    send_error(c, 408);
    struct timeval tv = {1, 0};
    evtimer_add(c->deadline, &tv);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    fg_httpd *h = arg;
    http_conn *c = xcalloc(1, sizeof *c);
    c->h = h;
    c->bev = bufferevent_socket_new(h->o.base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, h->o.max_header + 1);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* One timer for the whole request, not an inactivity timer a trickle would keep re-arming. */
    double t = h->o.timeout;
    struct timeval tv = {(time_t)t, (suseconds_t)((t - (double)(time_t)t) * 1e6)};
    c->deadline = evtimer_new(h->o.base, on_deadline, c);
    evtimer_add(c->deadline, &tv);
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (h->nconns >= h->o.max_conns && !h->paused) {
        evconnlistener_disable(h->listener);
        h->paused = 1;
        fg_log(h->o.logger, FG_WARNING, "%d connections open: not accepting more until one closes", h->nconns);
    }
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    fg_httpd *h = arg;
    int e = EVUTIL_SOCKET_ERROR();
    /* Out of descriptors: pause instead of spinning; a closing connection resumes it. */
    fg_log(h->o.logger, FG_ERROR, "accept failed: %s (pausing for a second)", evutil_socket_error_to_string(e));
    evconnlistener_disable(l);
    h->paused = 1;
    struct timeval tv = {1, 0};
    evtimer_add(h->resume, &tv);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_httpd *h = arg;
    if (h->paused && h->nconns < h->o.max_conns) {
        evconnlistener_enable(h->listener);
        h->paused = 0;
    }
}

fg_httpd *fg_httpd_new(const fg_httpd_opts *opts, char **err)
{
    fg_httpd *h = xcalloc(1, sizeof *h);
    h->o = *opts;
    if (h->o.max_conns <= 0)
        h->o.max_conns = 64;
    if (h->o.max_header == 0)
        h->o.max_header = 8192;
    if (h->o.timeout <= 0)
        h->o.timeout = 10;
    if (!h->o.logger)
        h->o.logger = "fuglu.httpd";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opts->addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)opts->port);
        len = sizeof *s4;
    } else if (inet_pton(AF_INET6, opts->addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)opts->port);
        len = sizeof *s6;
    } else {
        *err = xasprintf("%s is not a numeric address", opts->addr);
        free(h);
        return NULL;
    }
    h->listener = evconnlistener_new_bind(opts->base, on_accept, h,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 64,
                                          (struct sockaddr *)&ss, (int)len);
    if (!h->listener) {
        *err = xasprintf("cannot listen on %s:%d: %s", opts->addr, opts->port, strerror(errno));
        free(h);
        return NULL;
    }
    evconnlistener_set_error_cb(h->listener, on_accept_error);
    h->resume = evtimer_new(opts->base, on_resume, h);
    return h;
}

int fg_httpd_connections(const fg_httpd *h)
{
    return h->nconns;
}

void fg_httpd_free(fg_httpd *h)
{
    if (!h)
        return;
    while (h->conns)
        conn_free(h->conns);
    evconnlistener_free(h->listener);
    event_free(h->resume);
    free(h);
}

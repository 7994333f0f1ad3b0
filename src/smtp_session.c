/* server: listeners and SMTP sessions (protocol `smtp`, the after-queue content filter).
 * See server.h. Reply texts follow Postfix's smtpd where Fuglu had none of its own.
 */
#include "server.h"
#include "log.h"
#include "smtp_proto.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SMTP_MAX_LINE 4096
#define SMTP_MAX_ERRORS 20
#define SMTP_MAX_PENDING_INPUT (256 * 1024)

typedef enum { ST_COMMAND, ST_DATA, ST_WAIT } session_state;

typedef struct listener {
    fg_server *srv;
    struct evconnlistener *evl;
    fg_portspec spec;
    struct listener *next;
} listener;

typedef struct session {
    fg_server *srv;
    struct bufferevent *bev;
    char peer_addr[INET6_ADDRSTRLEN];
    int local_port;
    session_state state;
    char *helo;
    smtp_xforward xf;
    int has_xf;
    fg_job *txn;                /* the transaction after MAIL, until DATA ends or RSET */
    fg_msg *msg;                /* DATA being received */
    smtp_data_decoder dec;
    fg_buf dbuf;
    int data_too_big;
    char *data_error;
    fg_job *inflight;           /* submitted, waiting for the verdict */
    struct event *scan_timer;   /* scan_timeout while inflight */
    int discarding;             /* inside an over-long command line */
    fg_buf out;                 /* replies not yet written (see flush_replies) */
    int errors;
    int closing;
    struct session *prev, *next;
} session;

struct fg_server {
    fg_server_opts o;
    int (*submit)(fg_job *job, void *arg);
    void *submit_arg;
    listener *listeners;
    session *sessions;
    size_t nsessions;
    int shutting_down;
    char *hostname;
};

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_process(session *s);

fg_server *fg_server_new(const fg_server_opts *opts)
{
    fg_server *srv = xcalloc(1, sizeof *srv);
    srv->o = *opts;
    srv->o.tempdir = xstrdup(opts->tempdir && *opts->tempdir ? opts->tempdir : "/tmp");
    if (srv->o.max_recipients == 0)
        srv->o.max_recipients = 1000;
    srv->hostname = xstrdup(fg_hostname());
    return srv;
}

void fg_server_set_submit(fg_server *srv, int (*submit)(fg_job *job, void *arg), void *arg)
{
    srv->submit = submit;
    srv->submit_arg = arg;
}

/* ---- replies and session lifetime ---- */

/* Replies are collected in s->out and written by flush_replies() once the input at hand has been
 * handled: pipelined commands get their replies in one write, and a reply to a socket that can take
 * it goes out with one send() instead of a write event armed and disarmed around it. */
static void reply(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)(sizeof line - 3);
    fg_buf_append(&s->out, line, (size_t)n);
    fg_buf_append(&s->out, "\r\n", 2);
}

static void flush_replies(session *s)
{
    if (s->out.len == 0)
        return;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    size_t sent = 0;
    if (evbuffer_get_length(out) == 0) {
        ssize_t n = send(bufferevent_getfd(s->bev), s->out.data, s->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            sent = (size_t)n;
        /* Errors other than a full socket show again when the bufferevent writes the rest. */
    }
    if (sent < s->out.len)
        evbuffer_add(out, s->out.data + sent, s->out.len - sent);
    fg_buf_clear(&s->out);
}

static void transaction_reset(session *s)
{
    fg_job_free(s->txn);
    s->txn = NULL;
    fg_msg_unref(s->msg);
    s->msg = NULL;
    fg_buf_free(&s->dbuf);
    free(s->data_error);
    s->data_error = NULL;
    s->data_too_big = 0;
}

static void session_free(session *s)
{
    fg_server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    if (s->inflight) {
        /* The client left before its answer and will send the message again: this copy is not
         * delivered unless its final dot is out already. */
        fg_job_cancel(s->inflight);
        s->inflight->owner = NULL;
    }
    transaction_reset(s);
    if (s->scan_timer)
        event_free(s->scan_timer);
    smtp_xforward_clear(&s->xf);
    free(s->helo);
    fg_buf_free(&s->out);
    if (s->bev)
        bufferevent_free(s->bev);
    free(s);
}

static void close_when_flushed_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_free(arg);
}

/* While closing, any error, EOF or write timeout just ends the session. */
static void closing_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    session_free(arg);
}

/* Stops reading and frees the session once its pending output has been written. */
static void session_close(session *s)
{
    if (s->closing)
        return;
    flush_replies(s);
    s->closing = 1;
    bufferevent_disable(s->bev, EV_READ);
    bufferevent_setcb(s->bev, NULL, close_when_flushed_cb, closing_event_cb, s);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void set_timeout(session *s, int seconds)
{
    if (seconds <= 0) {
        bufferevent_set_timeouts(s->bev, NULL, NULL);
        return;
    }
    struct timeval tv = {seconds, 0};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static void count_error(session *s)
{
    if (++s->errors >= SMTP_MAX_ERRORS) {
        reply(s, "421 4.7.0 %s Error: too many errors", s->srv->hostname);
        session_close(s);
    }
}

/* ---- commands ---- */

static void cmd_helo(session *s, const smtp_command *c, int extended)
{
    const char *arg = c->arg;
    while (*arg == ' ')
        arg++;
    if (!*arg) {
        reply(s, "501 5.5.4 Syntax: %s hostname", extended ? "EHLO" : "HELO");
        count_error(s);
        return;
    }
    transaction_reset(s);
    free(s->helo);
    s->helo = xstrdup(arg);
    if (!extended) {
        reply(s, "250 %s", s->srv->hostname);
        return;
    }
    reply(s, "250-%s", s->srv->hostname);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %zu", s->srv->o.max_message_size);
    reply(s, "250-8BITMIME");
    reply(s, "250-ENHANCEDSTATUSCODES");
    reply(s, "250-SMTPUTF8");
    reply(s, "250-DSN");
    reply(s, "250 XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE");
}

static void cmd_mail(session *s, const smtp_command *c)
{
    if (!s->helo) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        count_error(s);
        return;
    }
    if (s->txn) {
        reply(s, "503 5.5.1 Error: nested MAIL command");
        count_error(s);
        return;
    }
    char *addr = NULL, *params = NULL;
    const char *err = NULL;
    if (smtp_parse_path(c->arg, "FROM:", &addr, &params, &err) != 0) {
        reply(s, "501 %s", err ? err : "5.5.4 Syntax: MAIL FROM:<address>");
        count_error(s);
        return;
    }
    char *size = smtp_param_get(params, "SIZE");
    if (size) {
        char *end = NULL;
        unsigned long long declared = strtoull(size, &end, 10);
        int bad = !*size || (end && *end);
        free(size);
        if (bad) {
            reply(s, "501 5.5.4 Bad message size syntax");
            free(addr);
            free(params);
            count_error(s);
            return;
        }
        if (declared > s->srv->o.max_message_size) {
            reply(s, "552 5.3.4 Message size exceeds fixed limit");
            free(addr);
            free(params);
            return;
        }
    }
    fg_job *job = fg_job_new(FG_PROTO_SMTP);
    job->mail_from = addr;
    job->mail_params = params;
    s->txn = job;
    reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(session *s, const smtp_command *c)
{
    if (!s->txn) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        count_error(s);
        return;
    }
    char *addr = NULL, *params = NULL;
    const char *err = NULL;
    if (smtp_parse_path(c->arg, "TO:", &addr, &params, &err) != 0) {
        reply(s, "501 %s", err ? err : "5.5.4 Syntax: RCPT TO:<address>");
        count_error(s);
        return;
    }
    if (!*addr) {
        reply(s, "501 5.1.3 Bad recipient address syntax");
        free(addr);
        free(params);
        count_error(s);
        return;
    }
    if (s->txn->nrcpt >= s->srv->o.max_recipients) {
        reply(s, "452 4.5.3 Error: too many recipients");
    } else {
        fg_job_add_rcpt(s->txn, addr, params);
        reply(s, "250 2.1.5 Ok");
    }
    free(addr);
    free(params);
}

static void cmd_data(session *s, const smtp_command *c)
{
    if (!s->txn) {
        reply(s, "503 5.5.1 Error: need MAIL command");
        count_error(s);
        return;
    }
    if (s->txn->nrcpt == 0) {
        reply(s, "503 5.5.1 Error: need RCPT command");
        count_error(s);
        return;
    }
    if (*c->arg) {
        reply(s, "501 5.5.4 Syntax: DATA");
        count_error(s);
        return;
    }
    s->msg = fg_msg_new(s->srv->o.tempdir, s->srv->o.spill_threshold);
    smtp_data_decoder_init(&s->dec);
    fg_buf_init(&s->dbuf);
    s->state = ST_DATA;
    set_timeout(s, s->srv->o.data_timeout);
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_xforward(session *s, const smtp_command *c)
{
    if (s->txn) {
        reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        count_error(s);
        return;
    }
    const char *err = NULL;
    if (smtp_parse_xforward(c->arg, &s->xf, &err) != 0) {
        reply(s, "501 %s", err ? err : "5.5.4 Bad XFORWARD command syntax");
        count_error(s);
        return;
    }
    s->has_xf = 1;
    reply(s, "250 2.0.0 Ok");
}

static void handle_command(session *s, const char *line)
{
    smtp_command c;
    smtp_parse_command(line, &c);
    switch (c.verb) {
    case SMTP_CMD_HELO: cmd_helo(s, &c, 0); break;
    case SMTP_CMD_EHLO: cmd_helo(s, &c, 1); break;
    case SMTP_CMD_MAIL: cmd_mail(s, &c); break;
    case SMTP_CMD_RCPT: cmd_rcpt(s, &c); break;
    case SMTP_CMD_DATA: cmd_data(s, &c); break;
    case SMTP_CMD_XFORWARD: cmd_xforward(s, &c); break;
    case SMTP_CMD_RSET:
        transaction_reset(s);
        reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_CMD_NOOP: reply(s, "250 2.0.0 Ok"); break;
    case SMTP_CMD_QUIT:
        reply(s, "221 2.0.0 Bye");
        session_close(s);
        break;
    case SMTP_CMD_VRFY: reply(s, "502 5.5.1 VRFY command is disabled"); break;
    case SMTP_CMD_HELP: reply(s, "214 2.0.0 See RFC 5321"); break;
    default:
        if (!*line)
            reply(s, "500 5.5.2 Error: bad syntax");
        else
            reply(s, "500 5.5.2 Error: command not recognized");
        count_error(s);
        break;
    }
}

/* ---- DATA ---- */

static void finish_data(session *s)
{
    set_timeout(s, s->srv->o.smtp_timeout);
    s->state = ST_COMMAND;
    char *err = NULL;
    if (s->data_too_big) {
        reply(s, "552 5.3.4 Error: message file too big");
        transaction_reset(s);
        return;
    }
    if (!s->data_error && fg_msg_finish(s->msg, &err) != 0)
        s->data_error = err;
    if (s->data_error) {
        fg_log("fuglu.smtpsession", FG_ERROR, "%s: %s", s->peer_addr, s->data_error);
        reply(s, "451 4.3.0 Error: could not store the message");
        transaction_reset(s);
        return;
    }
    fg_job *job = s->txn;
    s->txn = NULL;
    job->msg = s->msg;
    s->msg = NULL;
    fg_buf_free(&s->dbuf);
    job->peer_addr = xstrdup(s->peer_addr);
    job->local_port = s->local_port;
    job->helo = s->helo ? xstrdup(s->helo) : NULL;
    if (s->has_xf) {
        job->xforward = s->xf;                 /* moved: XFORWARD applies to one transaction */
        memset(&s->xf, 0, sizeof s->xf);
        job->has_xforward = 1;
        s->has_xf = 0;
    }
    job->t_received = fg_monotonic();
    job->owner = s;
    if (!s->srv->submit || s->srv->submit(job, s->srv->submit_arg) != 0) {
        fg_log("fuglu.smtpsession", FG_WARNING, "%s: scan queue full or shutting down, message deferred", job->id);
        reply(s, "451 4.3.2 Error: too many messages in progress, try again later");
        fg_job_free(job);
        return;
    }
    s->inflight = job;
    s->state = ST_WAIT;
    set_timeout(s, 0); /* the client waits for our verdict, up to scan_timeout */
    if (s->srv->o.scan_timeout > 0) {
        struct timeval tv = {s->srv->o.scan_timeout, 0};
        evtimer_add(s->scan_timer, &tv);
    }
}

/* The verdict did not come within scan_timeout (a plugin looping or stuck, a slow downstream). The
 * job is cancelled first: then it is never delivered, the client gets 451 and can go on, and the
 * job's late answer goes nowhere (fg_server_job_done). A job that has already sent its final dot
 * downstream cannot be cancelled: the session waits for the downstream's reply (bounded by
 * reinject_timeout), since a 451 now would make the MTA's retry a duplicate. */
static void scan_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session *s = arg;
    if (s->state != ST_WAIT || !s->inflight)
        return;
    if (!fg_job_cancel(s->inflight)) {
        fg_log("fuglu.smtpsession", FG_WARNING,
               "%s: no verdict after %d s, but the message is being delivered: waiting for the downstream's answer",
               s->inflight->id, s->srv->o.scan_timeout);
        return;
    }
    fg_log("fuglu.smtpsession", FG_ERROR, "%s: no verdict after %d s (a plugin is stuck?), message deferred",
           s->inflight->id, s->srv->o.scan_timeout);
    s->inflight->owner = NULL;
    s->inflight = NULL;
    s->state = ST_COMMAND;
    reply(s, "451 4.3.0 Error: scan timed out, message deferred");
    set_timeout(s, s->srv->o.smtp_timeout);
    session_process(s);
}

/* Returns 1 when the end of data was reached. */
static int feed_data(session *s, struct evbuffer *in)
{
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t consumed = 0;
        int end = smtp_data_decode(&s->dec, v.iov_base, v.iov_len, &s->dbuf, &consumed);
        evbuffer_drain(in, consumed);
        if (!s->data_too_big && !s->data_error) {
            if (fg_msg_len(s->msg) + s->dbuf.len > s->srv->o.max_message_size) {
                s->data_too_big = 1;
            } else if (s->dbuf.len) {
                char *err = NULL;
                if (fg_msg_append(s->msg, s->dbuf.data, s->dbuf.len, &err) != 0)
                    s->data_error = err;
            }
        }
        fg_buf_clear(&s->dbuf);
        if (end)
            return 1;
    }
    return 0;
}

/* ---- input loop ---- */

static void session_process_input(session *s);

static void session_process(session *s)
{
    session_process_input(s);
    if (!s->closing)
        flush_replies(s);
}

static void session_process_input(session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    while (!s->closing) {
        if (s->state == ST_WAIT)
            return;
        if (s->state == ST_DATA) {
            if (!feed_data(s, in))
                return;
            finish_data(s);
            continue;
        }
        size_t len = 0;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (!line) {
            if (evbuffer_get_length(in) > SMTP_MAX_LINE) {
                evbuffer_drain(in, evbuffer_get_length(in));
                if (!s->discarding) {
                    reply(s, "500 5.5.0 Error: line too long");
                    count_error(s);
                }
                s->discarding = 1;
            }
            return;
        }
        if (s->discarding) {
            s->discarding = 0;
            free(line);
            continue;
        }
        if (len > SMTP_MAX_LINE) {
            reply(s, "500 5.5.0 Error: line too long");
            count_error(s);
        } else if (memchr(line, '\0', len)) {
            reply(s, "500 5.5.2 Error: bad syntax");
            count_error(s);
        } else {
            handle_command(s, line);
        }
        free(line);
    }
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    session *s = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        fg_log("fuglu.smtpsession", FG_INFO, "timeout after %s from %s",
               s->state == ST_DATA ? "DATA" : "command", s->peer_addr);
        reply(s, "421 4.4.2 %s Error: timeout exceeded", s->srv->hostname);
        session_close(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->state == ST_DATA)
            fg_log("fuglu.smtpsession", FG_INFO, "lost connection after DATA from %s", s->peer_addr);
        session_free(s);
    }
}

void fg_server_job_done(fg_job *job, void *arg)
{
    fg_server *srv = arg;
    session *s = job->owner;
    (void)srv;
    if (!s) {
        if (fg_job_is_cancelled(job))
            fg_log("fuglu.smtpsession", FG_INFO, "%s: finished after its client was answered; not delivered (%d %s)",
                   job->id, job->reply_code, job->reply_text ? job->reply_text : "");
        else
            fg_log("fuglu.smtpsession", FG_WARNING, "%s: client went away before the answer (%d %s)", job->id,
                   job->reply_code, job->reply_text ? job->reply_text : "");
        fg_job_free(job);
        return;
    }
    s->inflight = NULL;
    s->state = ST_COMMAND;
    evtimer_del(s->scan_timer);
    reply(s, "%d %s", job->reply_code ? job->reply_code : 451,
          job->reply_text ? job->reply_text : "4.3.0 internal problem - message deferred");
    fg_job_free(job);
    if (s->srv->shutting_down) {
        session_close(s);
        return;
    }
    set_timeout(s, s->srv->o.smtp_timeout);
    session_process(s);
}

/* ---- listeners ---- */

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)evl;
    listener *l = arg;
    fg_server *srv = l->srv;
    session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    getnameinfo(sa, (socklen_t)salen, s->peer_addr, sizeof s->peer_addr, NULL, 0, NI_NUMERICHOST);
    s->local_port = l->spec.port;
    s->bev = bufferevent_socket_new(evconnlistener_get_base(evl), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        evutil_closesocket(fd);
        free(s);
        return;
    }
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    s->scan_timer = evtimer_new(evconnlistener_get_base(evl), scan_timeout_cb, s);
    bufferevent_setcb(s->bev, session_read_cb, NULL, session_event_cb, s);
    /* A client that keeps sending while its message is being scanned is not read further than
     * this: memory per session stays bounded whatever the client does. */
    bufferevent_setwatermark(s->bev, EV_READ, 0, SMTP_MAX_PENDING_INPUT);
    set_timeout(s, srv->o.smtp_timeout);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    fg_log("fuglu.smtp.incoming", FG_DEBUG, "incoming connection from %s on port %d", s->peer_addr, s->local_port);
    reply(s, "220 %s fuglu scanner ready", srv->hostname);
    flush_replies(s);
}

int fg_server_listen(fg_server *srv, const fg_portspec *spec, char **err)
{
    if (spec->proto != FG_PROTO_SMTP) {
        *err = xasprintf("incomingport %s:%s:%d: protocol '%s' is not supported yet", fg_proto_name(spec->proto),
                         spec->addr, spec->port, fg_proto_name(spec->proto));
        return -1;
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16];
    snprintf(port, sizeof port, "%d", spec->port);
    /* Numeric first: a bind address should never need the resolver. */
    hints.ai_flags |= AI_NUMERICHOST;
    int rc = getaddrinfo(spec->addr, port, &hints, &ai);
    if (rc != 0) {
        hints.ai_flags &= ~AI_NUMERICHOST;
        rc = getaddrinfo(spec->addr, port, &hints, &ai);
    }
    if (rc != 0) {
        *err = xasprintf("cannot resolve bind address '%s': %s", spec->addr, gai_strerror(rc));
        return -1;
    }
    listener *l = xcalloc(1, sizeof *l);
    l->srv = srv;
    l->spec = *spec;
    l->evl = evconnlistener_new_bind(srv->o.base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 511,
                                     ai->ai_addr, (int)ai->ai_addrlen);
    int saved = errno;
    freeaddrinfo(ai);
    if (!l->evl) {
        *err = xasprintf("cannot listen on %s port %d: %s", spec->addr, spec->port, strerror(saved));
        free(l);
        return -1;
    }
    l->next = srv->listeners;
    srv->listeners = l;
    fg_log("fuglu.MainController", FG_INFO, "listening for %s on %s:%d", fg_proto_name(spec->proto), spec->addr,
           spec->port);
    return 0;
}

static int same_spec(const fg_portspec *a, const fg_portspec *b)
{
    return a->proto == b->proto && a->port == b->port && strcmp(a->addr, b->addr) == 0;
}

int fg_server_apply_ports(fg_server *srv, const fg_portspec *specs, size_t n, fg_buf *report)
{
    int errors = 0;
    /* Close what is gone first: a port whose protocol changed is bound again below. */
    for (listener **at = &srv->listeners; *at;) {
        listener *l = *at;
        size_t i = 0;
        while (i < n && !same_spec(&l->spec, &specs[i]))
            i++;
        if (i < n) {
            at = &l->next;
            continue;
        }
        *at = l->next;
        char name[128];
        fg_portspec_format(&l->spec, name, sizeof name);
        fg_log("fuglu.MainController", FG_INFO, "closing listener %s (open sessions continue)", name);
        evconnlistener_free(l->evl);
        free(l);
    }
    for (size_t i = 0; i < n; i++) {
        int have = 0;
        for (listener *l = srv->listeners; l && !have; l = l->next)
            have = same_spec(&l->spec, &specs[i]);
        if (have)
            continue;
        char *err = NULL;
        if (fg_server_listen(srv, &specs[i], &err) != 0) {
            fg_log("fuglu.MainController", FG_ERROR, "%s", err);
            if (report)
                fg_buf_printf(report, "%s\n", err);
            free(err);
            errors++;
        }
    }
    return errors;
}

void fg_server_shutdown(fg_server *srv)
{
    srv->shutting_down = 1;
    while (srv->listeners) {
        listener *l = srv->listeners;
        srv->listeners = l->next;
        evconnlistener_free(l->evl);
        free(l);
    }
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (s->state == ST_WAIT || s->closing)
            continue;
        reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel", srv->hostname);
        session_close(s);
    }
}

size_t fg_server_session_count(fg_server *srv)
{
    return srv->nsessions;
}

void fg_server_free(fg_server *srv)
{
    if (!srv)
        return;
    while (srv->listeners) {
        listener *l = srv->listeners;
        srv->listeners = l->next;
        evconnlistener_free(l->evl);
        free(l);
    }
    while (srv->sessions)
        session_free(srv->sessions);
    free((char *)srv->o.tempdir);
    free(srv->hostname);
    free(srv);
}

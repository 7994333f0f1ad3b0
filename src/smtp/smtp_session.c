/* smtp_session: the session type of protocol `smtp`, the after-queue content filter (session.h).
 *
 * A session is a bufferevent and a small struct on the main thread's loop: it reads commands
 * (pipelined commands answered in order, replies collected and written once per input), receives
 * DATA through the streaming decoder into an fg_msg, hands the job to the pool and stops reading
 * until the verdict comes back or scan_timeout answers 451; then it goes on with the next command.
 * Timeouts: smtp_timeout between commands, data_timeout inside DATA, none while a verdict is due.
 * Reply texts follow Postfix's smtpd where Fuglu had none of its own.
 */
#include "smtp/session.h"
#include "log/log.h"
#include "smtp/smtp_proto.h"
#include "lib/util.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>

#define SMTP_MAX_LINE 4096
#define SMTP_MAX_ERRORS 20
#define SMTP_MAX_PENDING_INPUT (256 * 1024)

typedef enum { ST_COMMAND, ST_DATA, ST_WAIT } session_state;

typedef struct session {
    fg_session base;            /* first: the server's part (session.h) */
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
    struct event *phase_timer;  /* smtp_timeout for a whole command line, data_timeout for all of DATA */
    int discarding;             /* inside an over-long command line */
    fg_buf out;                 /* replies not yet written (see flush_replies) */
    int errors;
    int closing;
} session;

static void session_read_cb(struct bufferevent *bev, void *arg);
static void session_process(session *s);

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
    fg_server_session_remove(s->base.srv, &s->base);
    if (s->inflight) {
        /* The client left before its answer and will send the message again: this copy is not
         * delivered unless its final dot is out already. */
        fg_job_cancel(s->inflight);
        s->inflight->owner = NULL;
    }
    transaction_reset(s);
    if (s->scan_timer)
        event_free(s->scan_timer);
    if (s->phase_timer)
        event_free(s->phase_timer);
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

/* The timeouts of the phase starting now: seconds without a read or write (the bufferevent's),
 * and seconds for the whole phase (phase_timer), so a client trickling a byte at a time cannot keep
 * a command line or DATA open past them. 0: none (waiting for the verdict). */
static void set_timeout(session *s, int seconds)
{
    if (seconds <= 0) {
        bufferevent_set_timeouts(s->bev, NULL, NULL);
        evtimer_del(s->phase_timer);
        return;
    }
    struct timeval tv = {seconds, 0};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    evtimer_add(s->phase_timer, &tv);
}

static void count_error(session *s)
{
    if (++s->errors >= SMTP_MAX_ERRORS) {
        reply(s, "421 4.7.0 %s Error: too many errors", s->base.srv->hostname);
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
        reply(s, "250 %s", s->base.srv->hostname);
        return;
    }
    reply(s, "250-%s", s->base.srv->hostname);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %zu", s->base.srv->o.max_message_size);
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
        if (declared > s->base.srv->o.max_message_size) {
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
    if (s->txn->nrcpt >= s->base.srv->o.max_recipients) {
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
    s->msg = fg_msg_new(s->base.srv->o.tempdir, s->base.srv->o.spill_threshold);
    smtp_data_decoder_init(&s->dec);
    fg_buf_init(&s->dbuf);
    s->state = ST_DATA;
    set_timeout(s, s->base.srv->o.data_timeout);
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
    set_timeout(s, s->base.srv->o.smtp_timeout);
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
    /* A plugin's network calls end a little before the client is answered 451 (a tenth of
     * scan_timeout, at most 1 s), so the chain can still act on the failure (its problem action,
     * re-injection) and the message gets its own verdict instead of the timeout's. */
    if (s->base.srv->o.scan_timeout > 0) {
        double t = s->base.srv->o.scan_timeout;
        job->deadline = job->t_received + t - (t * 0.1 < 1.0 ? t * 0.1 : 1.0);
    }
    job->owner = s;
    if (fg_server_submit(s->base.srv, job) != 0) {
        fg_log("fuglu.smtpsession", FG_WARNING, "%s: scan queue full or shutting down, message deferred", job->id);
        reply(s, "451 4.3.2 Error: too many messages in progress, try again later");
        fg_job_free(job);
        return;
    }
    s->inflight = job;
    s->state = ST_WAIT;
    set_timeout(s, 0); /* the client waits for our verdict, up to scan_timeout */
    if (s->base.srv->o.scan_timeout > 0) {
        struct timeval tv = {s->base.srv->o.scan_timeout, 0};
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
               s->inflight->id, s->base.srv->o.scan_timeout);
        return;
    }
    fg_log("fuglu.smtpsession", FG_ERROR, "%s: no verdict after %d s (a plugin is stuck?), message deferred",
           s->inflight->id, s->base.srv->o.scan_timeout);
    s->inflight->owner = NULL;
    s->inflight = NULL;
    s->state = ST_COMMAND;
    reply(s, "451 4.3.0 Error: scan timed out, message deferred");
    set_timeout(s, s->base.srv->o.smtp_timeout);
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
            if (fg_msg_len(s->msg) + s->dbuf.len > s->base.srv->o.max_message_size) {
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
        if (s->state == ST_COMMAND && !s->closing) {   /* the next command line has its own time */
            struct timeval tv = {s->base.srv->o.smtp_timeout, 0};
            evtimer_add(s->phase_timer, &tv);
        }
    }
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_process(arg);
}

static void phase_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    session *s = arg;
    if (s->state == ST_WAIT || s->closing)
        return;
    fg_log("fuglu.smtpsession", FG_INFO, "timeout after %s from %s (%s of %d s in all)",
           s->state == ST_DATA ? "DATA" : "command", s->peer_addr,
           s->state == ST_DATA ? "data_timeout" : "smtp_timeout",
           s->state == ST_DATA ? s->base.srv->o.data_timeout : s->base.srv->o.smtp_timeout);
    reply(s, "421 4.4.2 %s Error: timeout exceeded", s->base.srv->hostname);
    session_close(s);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    session *s = arg;
    if (what & BEV_EVENT_TIMEOUT) {
        fg_log("fuglu.smtpsession", FG_INFO, "timeout after %s from %s",
               s->state == ST_DATA ? "DATA" : "command", s->peer_addr);
        reply(s, "421 4.4.2 %s Error: timeout exceeded", s->base.srv->hostname);
        session_close(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->state == ST_DATA)
            fg_log("fuglu.smtpsession", FG_INFO, "lost connection after DATA from %s", s->peer_addr);
        session_free(s);
    }
}

/* The verdict of the job this session waits for (a job whose session is gone never comes here:
 * listener.c logs and frees it). */
static void smtp_job_done(fg_session *base, fg_job *job)
{
    session *s = (session *)base;
    s->inflight = NULL;
    s->state = ST_COMMAND;
    evtimer_del(s->scan_timer);
    reply(s, "%d %s", job->reply_code ? job->reply_code : 451,
          job->reply_text ? job->reply_text : "4.3.0 internal problem - message deferred");
    fg_job_free(job);
    if (s->base.srv->shutting_down) {
        session_close(s);
        return;
    }
    set_timeout(s, s->base.srv->o.smtp_timeout);
    session_process(s);
}

/* ---- the session type ---- */

static void smtp_start(fg_server *srv, evutil_socket_t fd, const char *peer, int local_port)
{
    session *s = xcalloc(1, sizeof *s);
    s->base.srv = srv;
    s->base.type = &fg_smtp_session_type;
    snprintf(s->peer_addr, sizeof s->peer_addr, "%s", peer);
    snprintf(s->base.peer, sizeof s->base.peer, "%s", peer);
    s->local_port = local_port;
    s->bev = bufferevent_socket_new(srv->o.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) {
        evutil_closesocket(fd);
        free(s);
        return;
    }
    fg_server_session_add(srv, &s->base);
    s->scan_timer = evtimer_new(srv->o.base, scan_timeout_cb, s);
    s->phase_timer = evtimer_new(srv->o.base, phase_timeout_cb, s);
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

/* Idle sessions get 421 and close; one waiting for its verdict closes after the answer
 * (smtp_job_done sees shutting_down). */
static void smtp_shutdown(fg_session *base)
{
    session *s = (session *)base;
    if (s->state == ST_WAIT || s->closing)
        return;
    reply(s, "421 4.3.2 %s Service shutting down, closing transmission channel", s->base.srv->hostname);
    session_close(s);
}

static void smtp_free(fg_session *base)
{
    session_free((session *)base);
}

/* Over a connection limit: the 421 goes out if the socket takes it now (it is new: it does), then
 * the connection is closed. Nothing is read and no session is made. */
static void smtp_refuse(fg_server *srv, evutil_socket_t fd, const char *why)
{
    char line[300];
    int n = snprintf(line, sizeof line, "421 4.7.0 %s Error: %s, try again later\r\n", srv->hostname, why);
    if (n > 0 && send(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        fg_log("fuglu.smtpsession", FG_DEBUG, "refused connection: %s", strerror(errno));
    evutil_closesocket(fd);
}

const fg_session_type fg_smtp_session_type = {
    .name = "smtp",
    .start = smtp_start,
    .job_done = smtp_job_done,
    .shutdown = smtp_shutdown,
    .free = smtp_free,
    .refuse = smtp_refuse,
};

/* listener: the server object, its listening sockets and the incomingport diff on reload.
 * See server.h (the API main.c uses) and session.h (the seam a protocol's sessions plug into).
 *
 * A listener knows its spec and the session type its protocol has; an accepted connection is
 * handed to that type's start function. The server keeps the list of live sessions of every type,
 * so that shutdown and the session count need not know the protocols, and routes a job's verdict
 * to the session that submitted it.
 */
#include "smtp/server.h"
#include "log/log.h"
#include "smtp/session.h"
#include "lib/util.h"

#include <errno.h>
#include <unistd.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct fg_listener {
    fg_server *srv;
    struct evconnlistener *evl;
    struct event *resume;       /* accepting paused after EMFILE and the like: on again in a second */
    double last_warning;        /* one log line per interval, with how many were refused meanwhile */
    unsigned long refused;
    fg_portspec spec;
    const fg_session_type *type;
    fg_listener *next;
};

/* The protocols with a session type; a new protocol adds its line here. */
static const fg_session_type *const session_types[] = {
    [FG_PROTO_SMTP] = &fg_smtp_session_type,
};

const fg_session_type *fg_session_type_of(fg_proto proto)
{
    if ((unsigned)proto >= sizeof session_types / sizeof session_types[0])
        return NULL;
    return session_types[proto];
}

fg_server *fg_server_new(const fg_server_opts *opts)
{
    fg_server *srv = xcalloc(1, sizeof *srv);
    srv->o = *opts;
    srv->o.tempdir = xstrdup(opts->tempdir && *opts->tempdir ? opts->tempdir : "/tmp");
    if (srv->o.max_recipients == 0)
        srv->o.max_recipients = 1000;
    if (srv->o.max_connections == 0)
        srv->o.max_connections = 2000;
    srv->hostname = xstrdup(fg_hostname());
    return srv;
}

void fg_server_set_submit(fg_server *srv, int (*submit)(fg_job *job, void *arg), void *arg)
{
    srv->submit = submit;
    srv->submit_arg = arg;
}

int fg_server_submit(fg_server *srv, fg_job *job)
{
    return srv->submit ? srv->submit(job, srv->submit_arg) : -1;
}

/* ---- sessions ---- */

void fg_server_session_add(fg_server *srv, fg_session *s)
{
    s->prev = NULL;
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
}

void fg_server_session_remove(fg_server *srv, fg_session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
}

void fg_server_job_done(fg_job *job, void *arg)
{
    (void)arg;
    fg_session *s = job->owner;
    if (s) {
        s->type->job_done(s, job);
        return;
    }
    if (fg_job_is_cancelled(job))
        fg_log("fuglu.smtpsession", FG_INFO, "%s: finished after its client was answered; not delivered (%d %s)",
               job->id, job->reply_code, job->reply_text ? job->reply_text : "");
    else
        fg_log("fuglu.smtpsession", FG_WARNING, "%s: client went away before the answer (%d %s)", job->id,
               job->reply_code, job->reply_text ? job->reply_text : "");
    fg_job_free(job);
}

size_t fg_server_session_count(fg_server *srv)
{
    return srv->nsessions;
}

/* ---- listeners ---- */

/* At most one WARNING per 10 s per listener, saying how many connections were refused since. */
static void listener_warn(fg_listener *l, const char *what)
{
    l->refused++;
    double now = fg_monotonic();
    if (now - l->last_warning < 10)
        return;
    fg_log("fuglu.MainController", FG_WARNING, "%s:%d: %s (%lu since the last warning)", l->spec.addr, l->spec.port,
           what, l->refused);
    l->last_warning = now;
    l->refused = 0;
}

static size_t sessions_of(fg_server *srv, const char *peer)
{
    size_t n = 0;
    for (fg_session *s = srv->sessions; s; s = s->next)
        n += strcmp(s->peer, peer) == 0;
    return n;
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)evl;
    fg_listener *l = arg;
    fg_server *srv = l->srv;
    char peer[INET6_ADDRSTRLEN] = "";
    getnameinfo(sa, (socklen_t)salen, peer, sizeof peer, NULL, 0, NI_NUMERICHOST);
    const char *why = NULL;
    if (srv->nsessions >= srv->o.max_connections)
        why = "too many connections";
    else if (srv->o.max_per_client && sessions_of(srv, peer) >= srv->o.max_per_client)
        why = "too many connections from your address";
    if (why) {
        char what[160];
        snprintf(what, sizeof what, "connection from %s refused: %s (maxconnections%s)", peer, why,
                 srv->nsessions >= srv->o.max_connections ? "" : "_per_client");
        listener_warn(l, what);
        l->type->refuse(srv, fd, why);
        return;
    }
    l->type->start(srv, fd, peer, l->spec.port);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    fg_listener *l = arg;
    evconnlistener_enable(l->evl);
}

/* accept() failed: out of descriptors (or memory) is not fixed by trying again at once, which
 * would spin the loop: accepting pauses for a second; the connections wait in the backlog. */
static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    fg_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EINTR || err == EAGAIN || err == ECONNABORTED)
        return;
    evconnlistener_disable(evl);
    struct timeval tv = {1, 0};
    evtimer_add(l->resume, &tv);
    char what[160];
    snprintf(what, sizeof what, "accept: %s; accepting paused for 1 s", strerror(err));
    listener_warn(l, what);
}

int fg_server_listen(fg_server *srv, const fg_portspec *spec, char **err)
{
    const fg_session_type *type = fg_session_type_of(spec->proto);
    if (!type) {
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
    fg_listener *l = xcalloc(1, sizeof *l);
    l->srv = srv;
    l->spec = *spec;
    l->type = type;
    l->evl = evconnlistener_new_bind(srv->o.base, accept_cb, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
                                     ai->ai_addr, (int)ai->ai_addrlen);
    int saved = errno;
    freeaddrinfo(ai);
    if (!l->evl) {
        *err = xasprintf("cannot listen on %s port %d: %s", spec->addr, spec->port, strerror(saved));
        free(l);
        return -1;
    }
    l->resume = evtimer_new(srv->o.base, resume_cb, l);
    l->last_warning = -1e9;
    evconnlistener_set_error_cb(l->evl, accept_error_cb);
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
    for (fg_listener **at = &srv->listeners; *at;) {
        fg_listener *l = *at;
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
        event_free(l->resume);
        free(l);
    }
    for (size_t i = 0; i < n; i++) {
        int have = 0;
        for (fg_listener *l = srv->listeners; l && !have; l = l->next)
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

static void close_listeners(fg_server *srv)
{
    while (srv->listeners) {
        fg_listener *l = srv->listeners;
        srv->listeners = l->next;
        evconnlistener_free(l->evl);
        event_free(l->resume);
        free(l);
    }
}

void fg_server_shutdown(fg_server *srv)
{
    srv->shutting_down = 1;
    close_listeners(srv);
    for (fg_session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        s->type->shutdown(s);
    }
}

void fg_server_free(fg_server *srv)
{
    if (!srv)
        return;
    close_listeners(srv);
    while (srv->sessions)
        srv->sessions->type->free(srv->sessions);
    free((char *)srv->o.tempdir);
    free(srv->hostname);
    free(srv);
}

int fg_server_adopt(fg_server *srv, int fd, fg_proto proto, const char *peer, int local_port)
{
    const fg_session_type *type = fg_session_type_of(proto);
    if (!type) {
        close(fd);
        return -1;
    }
    evutil_make_socket_nonblocking(fd);
    type->start(srv, fd, peer, local_port);
    return 0;
}

/* control: the control socket on the main event loop. See control.h.
 *
 * A client's request is complete at the first newline, at 4096 bytes (Fuglu reads once, 4096
 * bytes), at end of input, or 200 ms after the last byte when the client sends no newline (Fuglu's
 * fuglu_control sends none and waits for the answer). A connection that sends nothing for 30 s is
 * closed.
 */
#include "monitor/control.h"
#include "console/netconsole.h" /* debugging: the netconsole command */
#include "log/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONTROL_LOGGER "fuglu.ControlServer"
#define CONTROL_REQUEST_MAX 4096

typedef struct control_client control_client;

struct fg_control {
    struct evconnlistener *listener;
    fg_control_env env;
    char *unix_path;                /* to remove at the end, or NULL for TCP */
    control_client *clients;
};

struct control_client {
    fg_control *ctl;
    struct bufferevent *bev;
    int answered;
    control_client *prev, *next;
};

/* ---- commands ---- */

static bool control_has_flag(const char *args, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = args; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == args || isspace((unsigned char)p[-1])) && (p[n] == '\0' || isspace((unsigned char)p[n])))
            return true;
    return false;
}

static void control_stats(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    fg_stats_render_stats(s, out, control_has_flag(args, "--json"));
}

static void control_uptime(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    (void)args;
    fg_stats_render_uptime(s, out);
}

static void control_workerlist(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    fg_stats_render_workerlist(s, out, control_has_flag(args, "--json"));
}

static void control_threadlist(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    (void)args;
    fg_stats_render_threadlist(s, out);
}

static void control_exceptionlist(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    fg_stats_render_exceptionlist(s, out, control_has_flag(args, "--json"));
}

static void control_pluginstats(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    fg_stats_render_pluginstats(s, out, control_has_flag(args, "--json"));
}

static void control_reload(const fg_control_env *env, fg_buf *out, const char *args)
{
    fg_stats *s = env->stats;
    (void)s;
    (void)args;
    if (!env->reload)
        fg_buf_puts(out, "ERROR: reload is not available\n");
    else
        env->reload(env->reload_arg, out);
}

const fg_control_command fg_control_commands[] = {
    {"stats", "message counters and average scan time (--json: one JSON object with per-plugin counters)",
     control_stats},
    {"uptime", "when the daemon was started and how long ago", control_uptime},
    {"workerlist", "what every worker thread is doing (--json: as a JSON object)", control_workerlist},
    {"threadlist", "the threads of the daemon", control_threadlist},
    {"exceptionlist", "the last 10 plugin and core errors with their tracebacks (--json: as a JSON array)",
     control_exceptionlist},
    {"pluginstats", "per-plugin runs, errors, mean and p99 time, decisions (--json: as a JSON object)",
     control_pluginstats},
    {"reload", "re-read fuglu.conf, plugins and logging.conf; swap in the new setup only if it is sound "
               "(prints OK or the ERROR lines with file:line)", control_reload},
    {"netconsole", "netconsole [port [bindaddress]]: a token-protected Lua console with mc (needs [main] netconsole=1)",
     fg_netconsole_command},
    {NULL, NULL, NULL},
};

void fg_control_answer(const fg_control_env *env, const char *request, fg_buf *out)
{
    char *line = xstrdup(request);
    fg_strlower(line);
    char *text = fg_strtrim(line);
    size_t n = strcspn(text, " \t\r\n");
    char *args = text + n;
    if (*args)
        *args++ = '\0';
    args = fg_strtrim(args);
    const fg_control_command *found = NULL;
    for (const fg_control_command *c = fg_control_commands; c->name; c++)
        if (strcmp(c->name, text) == 0)
            found = c;
    if (found)
        found->run(env, out, args);
    else
        fg_buf_printf(out, "ERR no such command: %s", text);
    free(line);
}

/* ---- connections ---- */

static void control_client_free(control_client *cl)
{
    fg_control *ctl = cl->ctl;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        ctl->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    bufferevent_free(cl->bev);
    free(cl);
}

static void control_on_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    control_client_free(arg);
}

static void control_on_event(struct bufferevent *bev, short what, void *arg);

/* Answers what the client sent; frees the client at once for an empty request. */
static void control_respond(control_client *cl)
{
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    size_t len = evbuffer_get_length(in);
    if (len > CONTROL_REQUEST_MAX)
        len = CONTROL_REQUEST_MAX;
    char *request = xmalloc(len + 1);
    evbuffer_remove(in, request, len);
    request[len] = '\0';
    request[strcspn(request, "\n")] = '\0';
    char *trimmed = fg_strtrim(request);
    if (!*trimmed) {                /* Fuglu: an empty request just closes */
        free(request);
        control_client_free(cl);
        return;
    }
    fg_buf answer;
    fg_buf_init(&answer);
    fg_control_answer(&cl->ctl->env, trimmed, &answer);
    free(request);
    if (answer.len == 0) {          /* e.g. an empty exceptionlist: nothing to wait for */
        fg_buf_free(&answer);
        control_client_free(cl);
        return;
    }
    cl->answered = 1;
    bufferevent_disable(cl->bev, EV_READ);
    struct timeval write_timeout = {30, 0};
    bufferevent_set_timeouts(cl->bev, NULL, &write_timeout);
    bufferevent_setcb(cl->bev, NULL, control_on_written, control_on_event, cl);
    bufferevent_write(cl->bev, answer.data, answer.len);
    fg_buf_free(&answer);
}

static void control_on_read(struct bufferevent *bev, void *arg)
{
    control_client *cl = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
    if (nl.pos >= 0 || len >= CONTROL_REQUEST_MAX) {
        control_respond(cl);
        return;
    }
    /* No newline yet: answer when the client pauses. */
    struct timeval pause = {0, 200000};
    bufferevent_set_timeouts(bev, &pause, NULL);
}

static void control_on_event(struct bufferevent *bev, short what, void *arg)
{
    control_client *cl = arg;
    if (!cl->answered && (what & (BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)) && (what & BEV_EVENT_READING) &&
        evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
        control_respond(cl);
        return;
    }
    control_client_free(cl);
}

static void control_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *addr, int len,
                              void *arg)
{
    (void)addr;
    (void)len;
    fg_control *ctl = arg;
    control_client *cl = xcalloc(1, sizeof *cl);
    cl->ctl = ctl;
    cl->bev = bufferevent_socket_new(evconnlistener_get_base(evl), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!cl->bev) {
        evutil_closesocket(fd);
        free(cl);
        return;
    }
    cl->next = ctl->clients;
    if (ctl->clients)
        ctl->clients->prev = cl;
    ctl->clients = cl;
    struct timeval idle = {30, 0};
    bufferevent_set_timeouts(cl->bev, &idle, NULL);
    bufferevent_setcb(cl->bev, control_on_read, NULL, control_on_event, cl);
    bufferevent_enable(cl->bev, EV_READ);
}

static bool control_is_port(const char *spec)
{
    if (!*spec)
        return false;
    for (const char *p = spec; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    return true;
}

/* A listening unix socket at path, mode 0600. Returns the fd or -1 with *err. */
static int control_unix_socket(const char *path, char **err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        *err = xasprintf("control socket path %s is too long (at most %zu bytes)", path, sizeof sa.sun_path - 1);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = xasprintf("control socket: %s", strerror(errno));
        return -1;
    }
    /* Our own socket left by an earlier run is replaced; anything else there (another user's socket
     * in a shared directory: an impostor root's fuglu_control would talk to) is an error. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
            *err = xasprintf("control socket %s exists and is not ours (%s, owner uid %ld): remove it or choose "
                             "another controlport", path, S_ISSOCK(st.st_mode) ? "a socket" : "not a socket",
                             (long)st.st_uid);
            close(fd);
            return -1;
        }
        unlink(path);
    }
    /* umask 077 while binding: the socket never exists with wider permissions. */
    mode_t old = umask(077);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int saved = errno;
    umask(old);
    if (rc != 0) {
        *err = xasprintf("cannot bind the control socket %s: %s", sa.sun_path, strerror(saved));
        close(fd);
        return -1;
    }
    if (chmod(sa.sun_path, 0600) != 0 || listen(fd, 64) != 0) {
        saved = errno;
        *err = xasprintf("cannot set up the control socket %s: %s", sa.sun_path, strerror(saved));
        close(fd);
        unlink(sa.sun_path);
        return -1;
    }
    return fd;
}

fg_control *fg_control_new(struct event_base *base, const fg_control_env *env, const char *spec, char **err)
{
    fg_control *ctl = xcalloc(1, sizeof *ctl);
    ctl->env = *env;
    ctl->env.tcp = control_is_port(spec);
    if (control_is_port(spec)) {
        long port = strtol(spec, NULL, 10);
        if (port < 1 || port > 65535) {
            *err = xasprintf("controlport %s is not a valid port", spec);
            free(ctl);
            return NULL;
        }
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ctl->listener = evconnlistener_new_bind(base, control_on_accept, ctl,
                                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                                64, (struct sockaddr *)&sin, sizeof sin);
        if (!ctl->listener) {
            *err = xasprintf("cannot listen on 127.0.0.1:%ld for the control server: %s", port, strerror(errno));
            free(ctl);
            return NULL;
        }
    } else {
        int fd = control_unix_socket(spec, err);
        if (fd < 0) {
            free(ctl);
            return NULL;
        }
        ctl->listener = evconnlistener_new(base, control_on_accept, ctl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
        if (!ctl->listener) {
            *err = xasprintf("cannot serve the control socket %s", spec);
            close(fd);
            unlink(spec);
            free(ctl);
            return NULL;
        }
        ctl->unix_path = xstrdup(spec);
    }
    fg_log(CONTROL_LOGGER, FG_INFO, "control server listening on %s%s", control_is_port(spec) ? "127.0.0.1:" : "",
           spec);
    return ctl;
}

void fg_control_free(fg_control *c)
{
    if (!c)
        return;
    while (c->clients)
        control_client_free(c->clients);
    evconnlistener_free(c->listener);
    if (c->unix_path) {
        unlink(c->unix_path);
        free(c->unix_path);
    }
    free(c);
}

/* procpool: worker processes fed over socketpairs with the message passed as a descriptor.
 * See procpool.h for the design.
 *
 * Frames (one SOCK_SEQPACKET datagram each; integers little-endian u32, strings u32 length + bytes):
 *   parent -> child  'C' config: luadir, worker name, sections (name, options (name, value)...)
 *                    'S' fate slot: index; SCM_RIGHTS: the pool's shared fate words (a memfd)
 *                    'J' job: id, protocol, local port, peer, helo, from, mail params, recipients
 *                        with params, XFORWARD attributes, message length; SCM_RIGHTS: the message fd
 *   child -> parent  'I' ready for a job      'E' plugins failed to load: text
 *                    'R' reply: code, action, text
 *                    statistics, recorded by the parent for that worker (stats.h forwarder):
 *                    'D' message done, 'F' re-inject failed, 'P' plugin run, 'Q' plugin error,
 *                    'X' exception, 'W' worker state, 'U' running plugin
 */
#include "procpool.h"
#include "log.h"
#include "stats.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRAME_MAX (4 * 1024 * 1024)
#define RESPAWN_DELAY_SECONDS 1

/* One job fate word per worker, shared between the parent and that worker process (job.h: the
 * session cancels, the worker commits before the final dot). A cache line each. */
typedef struct fate_slot {
    fg_fate word;
    char pad[64 - sizeof(fg_fate)];
} fate_slot;

/* ---- frame encoding ---- */

static void put_u32(fg_buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fg_buf_append(b, c, 4);
}

static void put_str(fg_buf *b, const char *s)
{
    if (!s) {
        put_u32(b, UINT32_MAX);
        return;
    }
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    fg_buf_append(b, s, n);
}

typedef struct reader {
    const unsigned char *p;
    size_t left;
    int bad;
} reader;

static uint32_t get_u32(reader *r)
{
    if (r->left < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

/* malloc'ed string, NULL for an absent one (and on a malformed frame, with r->bad set). */
static char *get_str(reader *r)
{
    uint32_t n = get_u32(r);
    if (r->bad || n == UINT32_MAX)
        return NULL;
    if (n > r->left) {
        r->bad = 1;
        return NULL;
    }
    char *s = xstrndup((const char *)r->p, n);
    r->p += n;
    r->left -= n;
    return s;
}

static int send_frame(int fd, const fg_buf *b, int pass_fd)
{
    struct iovec iov = {.iov_base = b->data, .iov_len = b->len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    char control[CMSG_SPACE(sizeof(int))];
    if (pass_fd >= 0) {
        memset(control, 0, sizeof control);
        mh.msg_control = control;
        mh.msg_controllen = sizeof control;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Receives one frame into buf (size FRAME_MAX). Returns its length, 0 on EOF, -1 on error or
 * EAGAIN. *got_fd receives a passed descriptor or -1. */
static ssize_t recv_frame(int fd, unsigned char *buf, int *got_fd)
{
    struct iovec iov = {.iov_base = buf, .iov_len = FRAME_MAX};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    *got_fd = -1;
    ssize_t n;
    do
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                memcpy(got_fd, CMSG_DATA(cm), sizeof(int));
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
            if (*got_fd >= 0)
                close(*got_fd);
            *got_fd = -1;
            errno = EMSGSIZE;
            return -1;
        }
    }
    return n;
}

/* ---- parent side ---- */

typedef enum { CHILD_STARTING, CHILD_IDLE, CHILD_BUSY, CHILD_DEAD } child_state;

typedef struct child {
    struct fg_procpool *pool;
    int number;
    pid_t pid;
    int fd;
    struct event *ev;
    child_state state;
    fg_job *job;                 /* the message it holds */
    int retiring;                /* close once idle (pool stopping) */
    fg_stats_worker *slot;       /* its workerlist entry */
    double busy_since;           /* fg_monotonic() when it got its message */
} child;

struct fg_procpool {
    fg_procpool_opts o;
    fg_buf config_frame;
    child *children;
    int nchildren;
    fg_job *queue_head, *queue_tail;
    size_t queued;
    int stopping;
    struct event *respawn_timer;
    struct event *watchdog;      /* kills workers stuck on one message beyond scan_timeout */
    unsigned char *rbuf;
    int fates_fd;                /* memfd behind fates, passed to every worker */
    fate_slot *fates;            /* nchildren slots, MAP_SHARED */
    size_t fates_size;
};

static void child_read_cb(evutil_socket_t fd, short what, void *arg);
static void dispatch(fg_procpool *p);

static void build_config_frame(fg_procpool *p)
{
    fg_buf *b = &p->config_frame;
    fg_buf_init(b);
    fg_buf_append(b, "C", 1);
    put_str(b, p->o.env.luadir);
    put_str(b, p->o.logging_conf);
    size_t ns = fg_config_section_count(p->o.cfg);
    put_u32(b, (uint32_t)ns);
    for (size_t i = 0; i < ns; i++) {
        put_str(b, fg_config_section_name(p->o.cfg, i));
        size_t no = fg_config_option_count(p->o.cfg, i);
        put_u32(b, (uint32_t)no);
        for (size_t j = 0; j < no; j++) {
            put_str(b, fg_config_option_name(p->o.cfg, i, j));
            put_str(b, fg_config_option_value(p->o.cfg, i, j));
        }
    }
}

static int spawn_child(fg_procpool *p, child *c)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        fg_log("fuglu.procpool", FG_ERROR, "socketpair failed: %s", strerror(errno));
        return -1;
    }
    int bufsize = FRAME_MAX;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize);
    static int next_number;      /* unique across pools and generations, as Fuglu's names */
    c->number = ++next_number;
    pid_t pid = fork();
    if (pid < 0) {
        fg_log("fuglu.procpool", FG_ERROR, "fork failed: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec: this process may have other threads. */
        if (sv[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(sv[1], 3) < 0)
            _exit(70);
        /* Listeners, sessions and control clients must not live on in the worker: a closed port
         * would stay bound and a control client would never see its answer end. */
        close_range(4, ~0U, 0);
        char name[32];
        snprintf(name, sizeof name, "Worker-%d", c->number);
        char *const argv[] = {(char *)"fuglu", (char *)"--process-worker", (char *)"3", name, NULL};
        execv(p->o.exe_path, argv);
        _exit(71);
    }
    close(sv[1]);
    char slot_name[32];
    snprintf(slot_name, sizeof slot_name, "Worker-%d", c->number);
    c->slot = fg_stats_worker_register(fg_stats_global(), c->number, slot_name);
    fg_stats_worker_set_state(c->slot, "loading configuration", false);
    c->pool = p;
    c->pid = pid;
    c->fd = sv[0];
    c->state = CHILD_STARTING;
    c->job = NULL;
    c->retiring = 0;
    evutil_make_socket_nonblocking(c->fd);
    c->ev = event_new(p->o.base, c->fd, EV_READ | EV_PERSIST, child_read_cb, c);
    event_add(c->ev, NULL);
    fg_buf slot;
    fg_buf_init(&slot);
    fg_buf_append(&slot, "S", 1);
    put_u32(&slot, (uint32_t)(c - p->children));
    if (send_frame(c->fd, &p->config_frame, -1) != 0 || send_frame(c->fd, &slot, p->fates_fd) != 0)
        fg_log("fuglu.procpool", FG_ERROR, "Worker-%d: cannot send the configuration: %s", c->number, strerror(errno));
    fg_buf_free(&slot);
    fg_log("fuglu.procpool", FG_DEBUG, "started Worker-%d (pid %ld)", c->number, (long)pid);
    return 0;
}

static void finish_job(fg_procpool *p, fg_job *job)
{
    /* The job's fate moves back from the worker's shared word into the job itself. */
    if (job->fate != &job->fate_word) {
        atomic_store(&job->fate_word, atomic_load(job->fate));
        job->fate = &job->fate_word;
    }
    p->o.done(job, p->o.done_arg);
}

/* The child is gone or unusable: answer its message 451, reap it, and schedule a replacement. */
static void child_died(fg_procpool *p, child *c, const char *why)
{
    if (c->state == CHILD_DEAD)
        return;
    event_free(c->ev);
    c->ev = NULL;
    close(c->fd);
    c->fd = -1;
    kill(c->pid, SIGKILL);
    int status = 0;
    waitpid(c->pid, &status, 0);
    c->state = CHILD_DEAD;
    fg_stats_worker_leave(c->slot);
    c->slot = NULL;
    if (c->job) {
        fg_log("fuglu.procpool", FG_ERROR, "Worker-%d (pid %ld) died while scanning %s (%s): message deferred",
               c->number, (long)c->pid, c->job->id, why);
        fg_job *job = c->job;
        c->job = NULL;
        fg_job_set_reply(job, 451, "4.3.0 internal problem - message deferred");
        finish_job(p, job);
    } else if (!c->retiring && !p->stopping) {
        fg_log("fuglu.procpool", FG_WARNING, "Worker-%d (pid %ld) ended: %s", c->number, (long)c->pid, why);
    }
    if (!p->stopping && !c->retiring && !evtimer_pending(p->respawn_timer, NULL)) {
        struct timeval tv = {0, 0};
        event_add(p->respawn_timer, &tv);
    }
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_procpool *p = arg;
    if (p->stopping)
        return;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i].state == CHILD_DEAD && spawn_child(p, &p->children[i]) != 0) {
            struct timeval tv = {RESPAWN_DELAY_SECONDS, 0};
            event_add(p->respawn_timer, &tv);
            return;
        }
}

static void retire(child *c)
{
    c->retiring = 1;
    child_died(c->pool, c, "retired");
}

static void handle_frame(fg_procpool *p, child *c, const unsigned char *buf, size_t len)
{
    reader r = {.p = buf + 1, .left = len - 1};
    switch (buf[0]) {
    case 'I':
        c->state = CHILD_IDLE;
        fg_stats_worker_set_state(c->slot, "waiting for task", false);
        if (p->stopping) {
            retire(c);
            return;
        }
        dispatch(p);
        return;
    case 'E': {
        char *text = get_str(&r);
        fg_log("fuglu.procpool", FG_ERROR, "Worker-%d: plugins failed to load: %s", c->number, text ? text : "?");
        free(text);
        /* Respawning at once would fail the same way: wait a little. */
        c->retiring = 1;
        child_died(p, c, "plugins failed to load");
        c->retiring = 0;
        struct timeval tv = {RESPAWN_DELAY_SECONDS, 0};
        event_add(p->respawn_timer, &tv);
        return;
    }
    case 'R': {
        uint32_t code = get_u32(&r);
        uint32_t action = get_u32(&r);
        char *text = get_str(&r);
        if (r.bad || !c->job) {
            free(text);
            child_died(p, c, "malformed reply");
            return;
        }
        fg_job *job = c->job;
        c->job = NULL;
        fg_job_set_reply(job, (int)code, text ? text : "4.3.0 internal problem - message deferred");
        job->action = (int)(int32_t)action;
        free(text);
        /* The child still runs the appenders; it says 'I' when it can take the next message. */
        finish_job(p, job);
        return;
    }
    case 'D': {
        fg_stats_result res = {.action = (int)(int32_t)get_u32(&r)};
        uint32_t flags = get_u32(&r);
        res.deferred = flags & 1, res.spam = flags & 2, res.highspam = flags & 4;
        res.virus = flags & 8, res.blocked = flags & 16, res.reinjected = flags & 32;
        res.scantime = (double)(int32_t)get_u32(&r) / 1e6;
        if (!r.bad)
            fg_stats_message_done(fg_stats_global(), &res);
        return;
    }
    case 'F':
        fg_stats_reinject_failed(fg_stats_global());
        return;
    case 'P': case 'Q': case 'X': case 'W': case 'U': {
        char *a = get_str(&r), *b = get_str(&r);
        uint32_t n1 = get_u32(&r), n2 = get_u32(&r);
        if (!r.bad && a && b) {
            if (buf[0] == 'P')
                fg_stats_plugin_run(fg_stats_global(), a, (double)n1 / 1e6, (int)(int32_t)n2);
            else if (buf[0] == 'Q')
                fg_stats_plugin_error(fg_stats_global(), a);
            else if (buf[0] == 'X') {
                char thread[32];
                snprintf(thread, sizeof thread, "Worker-%d", c->number);
                fg_stats_exception(fg_stats_global(), thread, a, b);
            } else if (buf[0] == 'W')
                fg_stats_worker_set_state(c->slot, a, n1 != 0);
            else
                fg_stats_worker_set_plugin(c->slot, a, b);
        }
        free(a);
        free(b);
        return;
    }
    default:
        child_died(p, c, "unknown frame");
    }
}

static void child_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    child *c = arg;
    fg_procpool *p = c->pool;
    for (int i = 0; i < 64 && c->state != CHILD_DEAD; i++) {
        int passed = -1;
        ssize_t n = recv_frame((int)fd, p->rbuf, &passed);
        if (passed >= 0)
            close(passed);
        if (n == 0) {
            child_died(p, c, "connection closed");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            child_died(p, c, strerror(errno));
            return;
        }
        handle_frame(p, c, p->rbuf, (size_t)n);
    }
}

static int send_job(child *c, fg_job *job)
{
    char *err = NULL;
    int mfd = fg_msg_export_fd(job->msg, &err);
    if (mfd < 0) {
        fg_log("fuglu.procpool", FG_ERROR, "%s: %s", job->id, err);
        free(err);
        return -1;
    }
    fg_buf b;
    fg_buf_init(&b);
    fg_buf_append(&b, "J", 1);
    put_str(&b, job->id);
    put_str(&b, job->protocol);
    put_u32(&b, (uint32_t)job->local_port);
    put_str(&b, job->peer_addr);
    put_str(&b, job->helo);
    put_str(&b, job->mail_from);
    put_str(&b, job->mail_params);
    put_u32(&b, (uint32_t)job->nrcpt);
    for (size_t i = 0; i < job->nrcpt; i++) {
        put_str(&b, job->rcpts[i]);
        put_str(&b, job->rcpt_params[i]);
    }
    put_u32(&b, (uint32_t)job->has_xforward);
    const smtp_xforward *xf = &job->xforward;
    const char *attrs[] = {xf->name, xf->addr, xf->port, xf->helo, xf->proto, xf->source, xf->ident};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        put_str(&b, attrs[i]);
    uint64_t len = fg_msg_len(job->msg);
    put_u32(&b, (uint32_t)(len & 0xffffffffu));
    put_u32(&b, (uint32_t)(len >> 32));
    int rc = b.len > FRAME_MAX ? -1 : send_frame(c->fd, &b, mfd);
    fg_buf_free(&b);
    close(mfd);
    return rc;
}

static void dispatch(fg_procpool *p)
{
    for (int i = 0; i < p->nchildren && p->queue_head; i++) {
        child *c = &p->children[i];
        if (c->state != CHILD_IDLE)
            continue;
        fg_job *job = p->queue_head;
        p->queue_head = job->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        p->queued--;
        job->next = NULL;
        if (fg_job_is_cancelled(job)) {
            /* Answered while queued (scan_timeout, the client left): not worth a worker. */
            fg_job_set_reply(job, 451, "4.3.0 internal problem - message deferred");
            job->action = FG_ACTION_DEFER;
            finish_job(p, job);
            i--;
            continue;
        }
        /* From here the worker process decides with the parent through its shared word. */
        fg_fate *slot = &p->fates[c - p->children].word;
        atomic_store(slot, FG_FATE_OPEN);
        job->fate = slot;
        c->job = job;
        c->state = CHILD_BUSY;
        c->busy_since = fg_monotonic();
        if (send_job(c, job) != 0)
            child_died(p, c, "cannot send the message");
    }
}

/* A worker looping in a plugin (LuaJIT's compiled loops ignore hooks) would hold its message
 * forever: past scan_timeout its job is cancelled and it is killed; its message is answered 451 and
 * it is replaced. A worker whose job is committed (its final dot is out) is left to read the
 * downstream's reply: killing it would turn a delivered message into a 451 and a duplicate. */
static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_procpool *p = arg;
    double now = fg_monotonic();
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        if (c->state == CHILD_BUSY && c->job && now - c->busy_since > p->o.scan_timeout && fg_job_cancel(c->job))
            child_died(p, c, "scan timed out: worker killed");
    }
}

fg_procpool *fg_procpool_new(const fg_procpool_opts *opts, char **err)
{
    /* A plugin that does not load should stop the start-up here, not in every child. */
    fg_lua_worker *probe = fg_lua_worker_new(opts->cfg, &opts->env, "probe", err);
    if (!probe)
        return NULL;
    fg_lua_worker_free(probe);

    fg_procpool *p = xcalloc(1, sizeof *p);
    p->o = *opts;
    if (p->o.nprocs <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        p->o.nprocs = (int)(cpus > 0 ? cpus * 2 : 2);
    }
    if (p->o.queue_max == 0)
        p->o.queue_max = (size_t)p->o.nprocs * 10;
    p->o.exe_path = xstrdup(opts->exe_path);
    p->o.logging_conf = opts->logging_conf ? xstrdup(opts->logging_conf) : NULL;
    p->rbuf = xmalloc(FRAME_MAX);
    p->fates_size = ((size_t)p->o.nprocs * sizeof(fate_slot) + 4095) & ~(size_t)4095;
    p->fates_fd = memfd_create("fuglu-fates", MFD_CLOEXEC);
    if (p->fates_fd < 0 || ftruncate(p->fates_fd, (off_t)p->fates_size) != 0
        || (p->fates = mmap(NULL, p->fates_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fates_fd, 0)) == MAP_FAILED) {
        *err = xasprintf("cannot create the workers' shared memory: %s", strerror(errno));
        if (p->fates_fd >= 0)
            close(p->fates_fd);
        free(p->rbuf);
        free((char *)p->o.exe_path);
        free((char *)p->o.logging_conf);
        free(p);
        return NULL;
    }
    build_config_frame(p);
    p->respawn_timer = evtimer_new(p->o.base, respawn_cb, p);
    p->watchdog = event_new(p->o.base, -1, EV_PERSIST, watchdog_cb, p);
    if (p->o.scan_timeout > 0) {
        struct timeval tv = {1, 0};
        event_add(p->watchdog, &tv);
    }
    p->nchildren = p->o.nprocs;
    p->children = xcalloc((size_t)p->nchildren, sizeof *p->children);
    for (int i = 0; i < p->nchildren; i++) {
        p->children[i].pool = p;
        p->children[i].state = CHILD_DEAD;
        p->children[i].fd = -1;
        if (spawn_child(p, &p->children[i]) != 0) {
            struct timeval tv = {RESPAWN_DELAY_SECONDS, 0};
            event_add(p->respawn_timer, &tv);
        }
    }
    fg_log("fuglu.procpool", FG_INFO, "started %d worker processes", p->nchildren);
    return p;
}

int fg_procpool_submit(fg_procpool *p, fg_job *job)
{
    if (p->stopping || p->queued >= p->o.queue_max)
        return -1;
    job->next = NULL;
    if (p->queue_tail)
        p->queue_tail->next = job;
    else
        p->queue_head = job;
    p->queue_tail = job;
    p->queued++;
    dispatch(p);
    return 0;
}

void fg_procpool_stop(fg_procpool *p, int code, const char *text)
{
    p->stopping = 1;
    event_del(p->respawn_timer);
    size_t n = 0;
    while (p->queue_head) {
        fg_job *job = p->queue_head;
        p->queue_head = job->next;
        p->queued--;
        job->next = NULL;
        fg_job_set_reply(job, code, text);
        finish_job(p, job);
        n++;
    }
    p->queue_tail = NULL;
    if (n)
        fg_log("fuglu.procpool", FG_INFO, "Marked %zu messages as '%d %s' to close queue", n, code, text);
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        if (c->state == CHILD_IDLE || c->state == CHILD_STARTING)
            retire(c);
    }
}

fg_job *fg_procpool_take_queued(fg_procpool *p)
{
    p->stopping = 1;
    event_del(p->respawn_timer);
    fg_job *list = p->queue_head;
    p->queue_head = p->queue_tail = NULL;
    p->queued = 0;
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        if (c->state == CHILD_IDLE || c->state == CHILD_STARTING)
            retire(c);
    }
    return list;
}

size_t fg_procpool_pending(fg_procpool *p)
{
    size_t n = p->queued;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i].state == CHILD_BUSY)
            n++;
    return n;
}

int fg_procpool_count(fg_procpool *p)
{
    int n = 0;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i].state != CHILD_DEAD)
            n++;
    return n;
}

char *fg_procpool_describe(fg_procpool *p)
{
    fg_buf b;
    fg_buf_init(&b);
    static const char *const names[] = {"loading configuration", "waiting for task", "scanning", "ended"};
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        fg_buf_printf(&b, "[Worker-%d] pid %ld: %s", c->number, (long)c->pid, names[c->state]);
        if (c->state == CHILD_BUSY && c->job)
            fg_buf_printf(&b, " Suspect %s", c->job->id);
        fg_buf_puts(&b, "\n");
    }
    return fg_buf_steal(&b, NULL);
}

void fg_procpool_free(fg_procpool *p)
{
    if (!p)
        return;
    p->stopping = 1;
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        c->retiring = 1;
        if (c->state != CHILD_DEAD)
            child_died(p, c, "pool closed");
    }
    free(p->children);
    event_free(p->respawn_timer);
    event_free(p->watchdog);
    fg_buf_free(&p->config_frame);
    munmap(p->fates, p->fates_size);
    close(p->fates_fd);
    free(p->rbuf);
    free((char *)p->o.exe_path);
    free((char *)p->o.logging_conf);
    free(p);
}

/* ---- child side ---- */

static int child_fd = -1; /* the socket to the parent, for the statistics forwarder */

/* 'P'/'Q'/'X'/'W'/'U' frames: two strings and two numbers. */
static void forward(char type, const char *a, const char *b, uint32_t n1, uint32_t n2)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, &type, 1);
    put_str(&f, a);
    put_str(&f, b);
    put_u32(&f, n1);
    put_u32(&f, n2);
    send_frame(child_fd, &f, -1);
    fg_buf_free(&f);
}

static void fwd_message_done(const fg_stats_result *res)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, "D", 1);
    put_u32(&f, (uint32_t)res->action);
    put_u32(&f, (uint32_t)(res->deferred | res->spam << 1 | res->highspam << 2 | res->virus << 3 |
                           res->blocked << 4 | res->reinjected << 5));
    put_u32(&f, (uint32_t)(int32_t)(res->scantime < 0 ? -1 : res->scantime * 1e6));
    send_frame(child_fd, &f, -1);
    fg_buf_free(&f);
}

static void fwd_reinject_failed(void)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, "F", 1);
    send_frame(child_fd, &f, -1);
    fg_buf_free(&f);
}

static void fwd_plugin_run(const char *plugin, double seconds, int action)
{
    forward('P', plugin, "", (uint32_t)(seconds * 1e6), (uint32_t)action);
}

static void fwd_plugin_error(const char *plugin) { forward('Q', plugin, "", 0, 0); }
static void fwd_exception(const char *info, const char *traceback) { forward('X', info, traceback, 0, 0); }
static void fwd_worker_state(const char *state, bool busy) { forward('W', state, "", busy, 0); }
static void fwd_worker_plugin(const char *suspect, const char *plugin) { forward('U', suspect, plugin, 0, 0); }

static const fg_stats_forwarder child_forwarder = {
    fwd_message_done, fwd_reinject_failed, fwd_plugin_run, fwd_plugin_error,
    fwd_exception, fwd_worker_state, fwd_worker_plugin,
};

static int child_send_simple(int fd, char type, const char *text)
{
    fg_buf b;
    fg_buf_init(&b);
    fg_buf_append(&b, &type, 1);
    if (text)
        put_str(&b, text);
    int rc = send_frame(fd, &b, -1);
    fg_buf_free(&b);
    return rc;
}

static fg_config *read_config(reader *r, char **luadir, char **logging_conf)
{
    fg_config *cfg = fg_config_new();
    *luadir = get_str(r);
    *logging_conf = get_str(r);
    uint32_t ns = get_u32(r);
    for (uint32_t i = 0; i < ns && !r->bad; i++) {
        char *section = get_str(r);
        uint32_t no = get_u32(r);
        for (uint32_t j = 0; j < no && !r->bad; j++) {
            char *name = get_str(r);
            char *value = get_str(r);
            if (section && name && value)
                fg_config_set(cfg, section, name, value);
            free(name);
            free(value);
        }
        free(section);
    }
    return cfg;
}

static fg_job *read_job(reader *r, int mfd, char **err)
{
    fg_job *job = fg_job_new();
    char *id = get_str(r);
    if (id && strlen(id) == 32)
        memcpy(job->id, id, 33);
    free(id);
    char *proto = get_str(r);
    job->protocol = proto && strcmp(proto, "smtp") != 0 ? "other" : "smtp";
    free(proto);
    job->local_port = (int)get_u32(r);
    job->peer_addr = get_str(r);
    job->helo = get_str(r);
    job->mail_from = get_str(r);
    job->mail_params = get_str(r);
    uint32_t n = get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        char *rcpt = get_str(r);
        char *params = get_str(r);
        if (rcpt)
            fg_job_add_rcpt(job, rcpt, params);
        free(rcpt);
        free(params);
    }
    job->has_xforward = (int)get_u32(r);
    char **attrs[] = {&job->xforward.name, &job->xforward.addr, &job->xforward.port, &job->xforward.helo,
                      &job->xforward.proto, &job->xforward.source, &job->xforward.ident};
    for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
        *attrs[i] = get_str(r);
    uint64_t lo = get_u32(r), hi = get_u32(r);
    if (r->bad || mfd < 0) {
        *err = xstrdup("malformed job frame");
        if (mfd >= 0)
            close(mfd);
        fg_job_free(job);
        return NULL;
    }
    job->msg = fg_msg_from_fd(mfd, (size_t)(lo | hi << 32), err);
    if (!job->msg) {
        fg_job_free(job);
        return NULL;
    }
    return job;
}

int fg_procworker_main(int fd)
{
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    unsigned char *buf = xmalloc(FRAME_MAX);
    int passed = -1;
    ssize_t n = recv_frame(fd, buf, &passed);
    if (n <= 0 || buf[0] != 'C') {
        fprintf(stderr, "fuglu worker: no configuration received\n");
        return 1;
    }
    reader r = {.p = buf + 1, .left = (size_t)n - 1};
    char *luadir = NULL, *logging_conf = NULL;
    fg_config *cfg = read_config(&r, &luadir, &logging_conf);
    /* The same logging.conf as the parent: file rotation is serialised between processes. */
    if (logging_conf && access(logging_conf, R_OK) == 0) {
        char *lerr = NULL;
        if (fg_log_load_config(logging_conf, &lerr) != 0) {
            fprintf(stderr, "fuglu worker: %s\n", lerr);
            free(lerr);
        }
    }
    free(logging_conf);
    /* The fate slot: this worker's word in the pool's shared memory (job.h). */
    fg_fate *fate = NULL;
    n = recv_frame(fd, buf, &passed);
    if (n >= 5 && buf[0] == 'S' && passed >= 0) {
        reader sr = {.p = buf + 1, .left = (size_t)n - 1};
        uint32_t index = get_u32(&sr);
        struct stat st;
        if (fstat(passed, &st) == 0 && (uint64_t)(index + 1) * sizeof(fate_slot) <= (uint64_t)st.st_size) {
            fate_slot *slots = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, passed, 0);
            if (slots != MAP_FAILED)
                fate = &slots[index].word;
        }
    }
    if (passed >= 0)
        close(passed);
    if (!fate) {
        fprintf(stderr, "fuglu worker: no fate slot received\n");
        return 1;
    }
    fg_lua_env env = {.luadir = luadir ? luadir : ""};
    child_fd = fd;
    fg_stats_set_forwarder(&child_forwarder);
    char *err = NULL;
    fg_lua_worker *w = fg_lua_worker_new(cfg, &env, "process worker", &err);
    if (!w) {
        child_send_simple(fd, 'E', err);
        return 1;
    }
    child_send_simple(fd, 'I', NULL);
    for (;;) {
        n = recv_frame(fd, buf, &passed);
        if (n <= 0)
            break;
        if (buf[0] != 'J') {
            if (passed >= 0)
                close(passed);
            continue;
        }
        reader jr = {.p = buf + 1, .left = (size_t)n - 1};
        fg_job *job = read_job(&jr, passed, &err);
        fg_buf b;
        fg_buf_init(&b);
        fg_buf_append(&b, "R", 1);
        if (!job) {
            fg_log("fuglu.process", FG_ERROR, "%s", err);
            free(err);
            err = NULL;
            put_u32(&b, 451);
            put_u32(&b, FG_ACTION_DEFER);
            put_str(&b, "4.3.0 internal problem - message deferred");
            send_frame(fd, &b, -1);
            fg_buf_free(&b);
            child_send_simple(fd, 'I', NULL);
            continue;
        }
        char *state = xasprintf("Suspect %s: starting", job->id);
        fg_stats_worker_set_state(NULL, state, true);
        free(state);
        job->fate = fate;
        fg_lua_worker_handle(w, job);
        put_u32(&b, (uint32_t)job->reply_code);
        put_u32(&b, (uint32_t)job->action);
        put_str(&b, job->reply_text);
        int sent = send_frame(fd, &b, -1);
        fg_buf_free(&b);
        fg_job_free(job);
        if (sent != 0)
            break;
        fg_lua_worker_after(w);
        if (child_send_simple(fd, 'I', NULL) != 0)
            break;
    }
    fg_lua_worker_free(w);
    fg_config_free(cfg);
    free(luadir);
    free(buf);
    fg_log_shutdown();
    return 0;
}

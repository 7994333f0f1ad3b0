/* procpool: the parent side of the process backend: worker processes fed over socketpairs with
 * the message passed as a descriptor. See procpool.h for the design, procworker.c for the child.
 *
 * Frames (frame.h):
 *   parent -> child  'C' config: luadir, logging.conf path, sections (name, options (name, value)...)
 *                    'S' fate slot: index; SCM_RIGHTS: the pool's shared fate words (a memfd)
 *                    'J' job: the envelope (job.c, fg_job_encode) and the message length;
 *                        SCM_RIGHTS: the message fd
 *   child -> parent  'I' ready for a job: the bytes its Lua state holds (u32 low, u32 high)
 *                    'E' plugins failed to load: text
 *                    'R' reply: code, action, text
 *                    statistics, recorded by the parent for that worker (stats.h forwarder):
 *                    'D' message done, 'F' re-inject failed, 'P' plugin run, 'Q' plugin error,
 *                    'X' exception, 'W' worker state, 'U' running plugin
 */
#include "pool/procpool.h"
#include "pool/frame.h"
#include "log/log.h"
#include "monitor/stats.h"
#include "lib/util.h"

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
#include <sys/wait.h>
#include <unistd.h>

#define RESPAWN_DELAY_SECONDS 1

typedef enum { CHILD_STARTING, CHILD_IDLE, CHILD_BUSY, CHILD_DEAD } child_state;

typedef struct child {
    struct procpool *pool;
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

typedef struct procpool {
    fg_pool base;                /* first: the pool.h interface */
    fg_procpool_opts o;
    fg_buf config_frame;
    child *children;
    int nchildren;
    fg_job_queue queue;
    int stopping;
    struct event *respawn_timer;
    struct event *watchdog;      /* kills workers stuck on one message beyond scan_timeout */
    unsigned char *rbuf;
    int fates_fd;                /* memfd behind fates, passed to every worker */
    fg_fate_slot *fates;            /* nchildren slots, MAP_SHARED */
    size_t fates_size;
} procpool;

static void child_read_cb(evutil_socket_t fd, short what, void *arg);
static void dispatch(procpool *p);

static void build_config_frame(procpool *p)
{
    fg_buf *b = &p->config_frame;
    fg_buf_init(b);
    fg_buf_append(b, "C", 1);
    fg_frame_put_str(b, p->o.luadir);
    fg_frame_put_str(b, p->o.logging_conf);
    size_t ns = fg_config_section_count(p->o.cfg);
    fg_frame_put_u32(b, (uint32_t)ns);
    for (size_t i = 0; i < ns; i++) {
        fg_frame_put_str(b, fg_config_section_name(p->o.cfg, i));
        size_t no = fg_config_option_count(p->o.cfg, i);
        fg_frame_put_u32(b, (uint32_t)no);
        for (size_t j = 0; j < no; j++) {
            fg_frame_put_str(b, fg_config_option_name(p->o.cfg, i, j));
            fg_frame_put_str(b, fg_config_option_value(p->o.cfg, i, j));
        }
    }
}

static int spawn_child(procpool *p, child *c)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        fg_log("fuglu.procpool", FG_ERROR, "socketpair failed: %s", strerror(errno));
        return -1;
    }
    int bufsize = FG_FRAME_MAX;
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
    c->slot = fg_stats_worker_register(p->o.stats, c->number, slot_name);
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
    fg_frame_put_u32(&slot, (uint32_t)(c - p->children));
    /* then one 'D' frame per shared dictionary, its memfd passed along */
    size_t ndicts = p->o.dicts ? atomic_load(&p->o.dicts->count) : 0;
    fg_frame_put_u32(&slot, (uint32_t)ndicts);
    int sent = fg_frame_send(c->fd, &p->config_frame, -1) == 0 && fg_frame_send(c->fd, &slot, p->fates_fd) == 0;
    for (size_t i = 0; sent && i < ndicts; i++) {
        fg_buf_clear(&slot);
        fg_buf_append(&slot, "D", 1);
        fg_frame_put_str(&slot, fg_shdict_name(p->o.dicts->dicts[i]));
        sent = fg_frame_send(c->fd, &slot, fg_shdict_fd(p->o.dicts->dicts[i])) == 0;
    }
    if (!sent)
        fg_log("fuglu.procpool", FG_ERROR, "Worker-%d: cannot send the configuration: %s", c->number, strerror(errno));
    fg_buf_free(&slot);
    fg_log("fuglu.procpool", FG_DEBUG, "started Worker-%d (pid %ld)", c->number, (long)pid);
    return 0;
}

static void finish_job(procpool *p, fg_job *job)
{
    /* The job's fate moves back from the worker's shared word into the job itself. */
    if (job->fate != &job->fate_word) {
        atomic_store(&job->fate_word, atomic_load(job->fate));
        job->fate = &job->fate_word;
    }
    p->o.done(job, p->o.done_arg);
}

/* The child is gone or unusable: answer its message 451, reap it, and schedule a replacement. */
static void child_died(procpool *p, child *c, const char *why)
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
    procpool *p = arg;
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

static void handle_frame(procpool *p, child *c, const unsigned char *buf, size_t len)
{
    fg_frame_reader r = {.p = buf + 1, .left = len - 1};
    switch (buf[0]) {
    case 'I': {
        uint64_t lo = fg_frame_get_u32(&r), hi = fg_frame_get_u32(&r);
        c->state = CHILD_IDLE;
        fg_stats_worker_set_state(c->slot, "waiting for task", false);
        if (!r.bad)
            fg_stats_worker_set_lua_bytes(c->slot, (size_t)(lo | hi << 32));
        if (p->stopping) {
            retire(c);
            return;
        }
        dispatch(p);
        return;
    }
    case 'E': {
        char *text = fg_frame_get_str(&r);
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
        uint32_t code = fg_frame_get_u32(&r);
        uint32_t action = fg_frame_get_u32(&r);
        char *text = fg_frame_get_str(&r);
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
        fg_stats_result res = {.action = (int)(int32_t)fg_frame_get_u32(&r)};
        uint32_t flags = fg_frame_get_u32(&r);
        res.deferred = flags & 1, res.spam = flags & 2, res.highspam = flags & 4;
        res.virus = flags & 8, res.blocked = flags & 16, res.reinjected = flags & 32;
        res.scantime = (double)(int32_t)fg_frame_get_u32(&r) / 1e6;
        if (!r.bad)
            fg_stats_message_done(p->o.stats, &res);
        return;
    }
    case 'F':
        fg_stats_reinject_failed(p->o.stats);
        return;
    case 'N': {
        char *plugin = fg_frame_get_str(&r);
        fg_stats_net n;
        memset(&n, 0, sizeof n);
        for (int k = 0; k < FG_STATS_NET_KINDS; k++) {
            n.calls[k] = fg_frame_get_u32(&r);
            n.errors[k] = fg_frame_get_u32(&r);
            n.seconds[k] = fg_frame_get_u32(&r) / 1e6;
        }
        if (!r.bad && plugin)
            fg_stats_plugin_net(p->o.stats, plugin, &n);
        free(plugin);
        return;
    }
    case 'P': case 'Q': case 'X': case 'W': case 'U': {
        char *a = fg_frame_get_str(&r), *b = fg_frame_get_str(&r);
        uint32_t n1 = fg_frame_get_u32(&r), n2 = fg_frame_get_u32(&r);
        if (!r.bad && a && b) {
            if (buf[0] == 'P')
                fg_stats_plugin_run(p->o.stats, a, (double)n1 / 1e6, (int)(int32_t)n2);
            else if (buf[0] == 'Q')
                fg_stats_plugin_error(p->o.stats, a);
            else if (buf[0] == 'X') {
                char thread[32];
                snprintf(thread, sizeof thread, "Worker-%d", c->number);
                fg_stats_exception(p->o.stats, thread, a, b);
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
    procpool *p = c->pool;
    for (int i = 0; i < 64 && c->state != CHILD_DEAD; i++) {
        int passed = -1;
        ssize_t n = fg_frame_recv((int)fd, p->rbuf, &passed);
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
    fg_job_encode(job, &b);
    int rc = b.len > FG_FRAME_MAX ? -1 : fg_frame_send(c->fd, &b, mfd);
    fg_buf_free(&b);
    close(mfd);
    return rc;
}

static void dispatch(procpool *p)
{
    for (int i = 0; i < p->nchildren && p->queue.head; i++) {
        child *c = &p->children[i];
        if (c->state != CHILD_IDLE)
            continue;
        fg_job *job = fg_job_queue_pop(&p->queue);
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
    procpool *p = arg;
    double now = fg_monotonic();
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        if (c->state == CHILD_BUSY && c->job && now - c->busy_since > p->o.scan_timeout && fg_job_cancel(c->job))
            child_died(p, c, "scan timed out: worker killed");
    }
}

/* What fg_procpool_new allocates first: its copies of the options' strings and the frame buffer. */
static void procpool_release(procpool *p)
{
    free(p->rbuf);
    free((char *)p->o.luadir);
    free((char *)p->o.exe_path);
    free((char *)p->o.logging_conf);
    free(p);
}

static const fg_pool_ops procpool_ops;

fg_pool *fg_procpool_new(const fg_procpool_opts *opts, char **err)
{
    procpool *p = xcalloc(1, sizeof *p);
    p->base.ops = &procpool_ops;
    p->o = *opts;
    if (p->o.nprocs <= 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        p->o.nprocs = (int)(cpus > 0 ? cpus * 2 : 2);
    }
    if (p->o.queue_max == 0)
        p->o.queue_max = (size_t)p->o.nprocs * 10;
    p->queue.max = p->o.queue_max;
    p->o.luadir = xstrdup(opts->luadir ? opts->luadir : "");
    p->o.exe_path = xstrdup(opts->exe_path);
    p->o.logging_conf = opts->logging_conf ? xstrdup(opts->logging_conf) : NULL;
    p->rbuf = xmalloc(FG_FRAME_MAX);
    p->fates_size = ((size_t)p->o.nprocs * sizeof(fg_fate_slot) + 4095) & ~(size_t)4095;
    p->fates_fd = memfd_create("fuglu-fates", MFD_CLOEXEC);
    if (p->fates_fd < 0 || ftruncate(p->fates_fd, (off_t)p->fates_size) != 0
        || (p->fates = mmap(NULL, p->fates_size, PROT_READ | PROT_WRITE, MAP_SHARED, p->fates_fd, 0)) == MAP_FAILED) {
        *err = xasprintf("cannot create the workers' shared memory: %s", strerror(errno));
        if (p->fates_fd >= 0)
            close(p->fates_fd);
        procpool_release(p);
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
    return &p->base;
}

static int pp_submit(fg_pool *pool, fg_job *job)
{
    procpool *p = (procpool *)pool;
    if (p->stopping || fg_job_queue_push(&p->queue, job) != 0)
        return -1;
    dispatch(p);
    return 0;
}

static void pp_stop(fg_pool *pool, int code, const char *text)
{
    procpool *p = (procpool *)pool;
    p->stopping = 1;
    event_del(p->respawn_timer);
    size_t n = 0;
    fg_job *job;
    while ((job = fg_job_queue_pop(&p->queue))) {
        fg_job_set_reply(job, code, text);
        finish_job(p, job);
        n++;
    }
    if (n)
        fg_log("fuglu.procpool", FG_INFO, "Marked %zu messages as '%d %s' to close queue", n, code, text);
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        if (c->state == CHILD_IDLE || c->state == CHILD_STARTING)
            retire(c);
    }
}

static fg_job *pp_take_queued(fg_pool *pool)
{
    procpool *p = (procpool *)pool;
    p->stopping = 1;
    event_del(p->respawn_timer);
    fg_job *list = fg_job_queue_take_all(&p->queue);
    for (int i = 0; i < p->nchildren; i++) {
        child *c = &p->children[i];
        if (c->state == CHILD_IDLE || c->state == CHILD_STARTING)
            retire(c);
    }
    return list;
}

static size_t pp_pending(fg_pool *pool)
{
    procpool *p = (procpool *)pool;
    size_t n = p->queue.count;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i].state == CHILD_BUSY)
            n++;
    return n;
}

static size_t pp_queued(fg_pool *pool)
{
    return ((procpool *)pool)->queue.count;
}

static int pp_workers(fg_pool *pool)
{
    procpool *p = (procpool *)pool;
    int n = 0;
    for (int i = 0; i < p->nchildren; i++)
        if (p->children[i].state != CHILD_DEAD)
            n++;
    return n;
}

static char *pp_describe(fg_pool *pool)
{
    procpool *p = (procpool *)pool;
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

static void pp_free(fg_pool *pool)
{
    procpool *p = (procpool *)pool;
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
    procpool_release(p);
}

static const fg_pool_ops procpool_ops = {
    .backend = "process",
    .submit = pp_submit,
    .take_queued = pp_take_queued,
    .stop = pp_stop,
    .pending = pp_pending,
    .queued = pp_queued,
    .workers = pp_workers,
    .describe = pp_describe,
    .free = pp_free,
};


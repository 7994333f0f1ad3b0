/* procworker: a process worker's main loop. See procworker.h; the frames are listed in
 * procpool.c. */
#include "pool/procworker.h"
#include "pool/frame.h"
#include "log/log.h"
#include "pool/procpool.h"
#include "monitor/stats.h"
#include "lib/util.h"
#include "lua/lua_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int child_fd = -1; /* the socket to the parent, for the statistics forwarder */

/* 'P'/'Q'/'X'/'W'/'U' frames: two strings and two numbers. */
static void forward(char type, const char *a, const char *b, uint32_t n1, uint32_t n2)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, &type, 1);
    fg_frame_put_str(&f, a);
    fg_frame_put_str(&f, b);
    fg_frame_put_u32(&f, n1);
    fg_frame_put_u32(&f, n2);
    fg_frame_send(child_fd, &f, -1);
    fg_buf_free(&f);
}

static void fwd_message_done(const fg_stats_result *res)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, "D", 1);
    fg_frame_put_u32(&f, (uint32_t)res->action);
    fg_frame_put_u32(&f, (uint32_t)(res->deferred | res->spam << 1 | res->highspam << 2 | res->virus << 3 |
                           res->blocked << 4 | res->reinjected << 5));
    fg_frame_put_u32(&f, (uint32_t)(int32_t)(res->scantime < 0 ? -1 : res->scantime * 1e6));
    fg_frame_send(child_fd, &f, -1);
    fg_buf_free(&f);
}

static void fwd_reinject_failed(void)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, "F", 1);
    fg_frame_send(child_fd, &f, -1);
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

/* 'N': the plugin, then per kind calls, errors and microseconds */
static void fwd_plugin_net(const char *plugin, const fg_stats_net *n)
{
    fg_buf f;
    fg_buf_init(&f);
    fg_buf_append(&f, "N", 1);
    fg_frame_put_str(&f, plugin);
    for (int k = 0; k < FG_STATS_NET_KINDS; k++) {
        fg_frame_put_u32(&f, (uint32_t)n->calls[k]);
        fg_frame_put_u32(&f, (uint32_t)n->errors[k]);
        fg_frame_put_u32(&f, (uint32_t)(n->seconds[k] * 1e6 > 4e9 ? 4e9 : n->seconds[k] * 1e6));
    }
    fg_frame_send(child_fd, &f, -1);
    fg_buf_free(&f);
}

static const fg_stats_forwarder child_forwarder = {
    fwd_message_done, fwd_reinject_failed, fwd_plugin_run, fwd_plugin_error,
    fwd_exception, fwd_worker_state, fwd_worker_plugin, fwd_plugin_net,
};

static int child_send_simple(int fd, char type, const char *text)
{
    fg_buf b;
    fg_buf_init(&b);
    fg_buf_append(&b, &type, 1);
    if (text)
        fg_frame_put_str(&b, text);
    int rc = fg_frame_send(fd, &b, -1);
    fg_buf_free(&b);
    return rc;
}

/* 'I': ready, with the bytes the worker's state holds (the parent's workerlist and /metrics). */
static int child_send_ready(int fd, const fg_scanner *sc, void *state)
{
    fg_buf b;
    fg_buf_init(&b);
    fg_buf_append(&b, "I", 1);
    uint64_t bytes = sc->memory ? atomic_load_explicit(sc->memory(state), memory_order_relaxed) : 0;
    fg_frame_put_u32(&b, (uint32_t)bytes);
    fg_frame_put_u32(&b, (uint32_t)(bytes >> 32));
    int rc = fg_frame_send(fd, &b, -1);
    fg_buf_free(&b);
    return rc;
}

static fg_config *read_config(fg_frame_reader *r, char **luadir, char **logging_conf)
{
    fg_config *cfg = fg_config_new();
    *luadir = fg_frame_get_str(r);
    *logging_conf = fg_frame_get_str(r);
    uint32_t ns = fg_frame_get_u32(r);
    for (uint32_t i = 0; i < ns && !r->bad; i++) {
        char *section = fg_frame_get_str(r);
        uint32_t no = fg_frame_get_u32(r);
        for (uint32_t j = 0; j < no && !r->bad; j++) {
            char *name = fg_frame_get_str(r);
            char *value = fg_frame_get_str(r);
            if (section && name && value)
                fg_config_set(cfg, section, name, value);
            free(name);
            free(value);
        }
        free(section);
    }
    return cfg;
}

static fg_job *read_job(fg_frame_reader *r, int mfd, char **err)
{
    uint64_t len = 0;
    fg_job *job = mfd >= 0 ? fg_job_decode(r, &len, err) : NULL;
    if (!job) {
        if (mfd < 0)
            *err = xstrdup("job frame without the message");
        else
            close(mfd);
        return NULL;
    }
    job->msg = fg_msg_from_fd(mfd, (size_t)len, err);
    if (!job->msg) {
        fg_job_free(job);
        return NULL;
    }
    return job;
}

int fg_procworker_main(int fd)
{
    /* The parent cleared close-on-exec for the exec of this process only: a program a plugin runs
     * must not hold the socket to the parent. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    unsigned char *buf = xmalloc(FG_FRAME_MAX);
    int passed = -1;
    ssize_t n = fg_frame_recv(fd, buf, &passed);
    if (n <= 0 || buf[0] != 'C') {
        fprintf(stderr, "fuglu worker: no configuration received\n");
        return 1;
    }
    fg_frame_reader r = {.p = buf + 1, .left = (size_t)n - 1};
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
    uint32_t ndicts = 0;
    n = fg_frame_recv(fd, buf, &passed);
    if (n >= 9 && buf[0] == 'S' && passed >= 0) {
        fg_frame_reader sr = {.p = buf + 1, .left = (size_t)n - 1};
        uint32_t index = fg_frame_get_u32(&sr);
        ndicts = fg_frame_get_u32(&sr);
        struct stat st;
        if (fstat(passed, &st) == 0 && (uint64_t)(index + 1) * sizeof(fg_fate_slot) <= (uint64_t)st.st_size) {
            fg_fate_slot *slots = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, passed, 0);
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
    /* The shared dictionaries: the parent's memfds, mapped here too (pool/shdict.h). */
    static fg_shdict_list dicts;
    for (uint32_t i = 0; i < ndicts && i < FG_SHDICT_LIST_MAX; i++) {
        n = fg_frame_recv(fd, buf, &passed);
        char *derr = NULL;
        fg_shdict *d = n > 0 && buf[0] == 'D' && passed >= 0 ? fg_shdict_attach(passed, &derr) : NULL;
        if (!d) {
            fprintf(stderr, "fuglu worker: shared dictionary %u not received: %s\n", i, derr ? derr : "no descriptor");
            return 1;
        }
        fg_shdict_list_add(&dicts, d);
    }
    fg_lua_scanner ls = {.cfg = cfg, .env = {.luadir = luadir ? luadir : "", .dicts = &dicts}};
    fg_scanner sc = fg_lua_scanner_of(&ls);
    child_fd = fd;
    fg_stats_set_forwarder(&child_forwarder);
    char *err = NULL;
    void *w = sc.open(sc.arg, "process worker", &err);
    if (!w) {
        child_send_simple(fd, 'E', err);
        return 1;
    }
    child_send_ready(fd, &sc, w);
    for (;;) {
        n = fg_frame_recv(fd, buf, &passed);
        if (n <= 0)
            break;
        if (buf[0] != 'J') {
            if (passed >= 0)
                close(passed);
            continue;
        }
        fg_frame_reader jr = {.p = buf + 1, .left = (size_t)n - 1};
        fg_job *job = read_job(&jr, passed, &err);
        fg_buf b;
        fg_buf_init(&b);
        fg_buf_append(&b, "R", 1);
        if (!job) {
            fg_log("fuglu.process", FG_ERROR, "%s", err);
            free(err);
            err = NULL;
            fg_frame_put_u32(&b, 451);
            fg_frame_put_u32(&b, FG_ACTION_DEFER);
            fg_frame_put_str(&b, "4.3.0 internal problem - message deferred");
            fg_frame_send(fd, &b, -1);
            fg_buf_free(&b);
            child_send_ready(fd, &sc, w);
            continue;
        }
        char *state = xasprintf("Suspect %s: starting", job->id);
        fg_stats_worker_set_state(NULL, state, true);
        free(state);
        job->fate = fate;
        sc.scan(w, job);
        fg_frame_put_u32(&b, (uint32_t)job->reply_code);
        fg_frame_put_u32(&b, (uint32_t)job->action);
        fg_frame_put_str(&b, job->reply_text);
        int sent = fg_frame_send(fd, &b, -1);
        fg_buf_free(&b);
        fg_job_free(job);
        if (sent != 0)
            break;
        sc.after(w);
        if (child_send_ready(fd, &sc, w) != 0)
            break;
    }
    sc.close(w);
    fg_config_free(cfg);
    free(luadir);
    free(buf);
    fg_log_shutdown();
    return 0;
}

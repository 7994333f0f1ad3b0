/* procpool: the process backend ([performance] backend=process): worker processes running the same
 * worker code (src/lua/lua_worker.c) with their own Lua states.
 *
 * Each worker is this program re-executed as `fuglu --process-worker 3`, fed over a SOCK_SEQPACKET
 * socketpair: the parent sends the config snapshot once, then one job frame per message with the
 * message itself passed as a file descriptor (a memfd or the spill file, mapped read-only by the
 * child: the bytes are never copied through the socket). The child scans, re-injects and answers with
 * the reply, then runs the appenders and reports ready. A worker that dies (crash, kill -9) while it
 * holds a message gets that message answered 451 and is replaced. Everything on the parent side runs
 * on the main libevent loop.
 */
#ifndef FUGLU_PROCPOOL_H
#define FUGLU_PROCPOOL_H

#include <event2/event.h>
#include <stddef.h>
#include "config.h"
#include "job.h"
#include "lua/lua_worker.h"

typedef struct fg_procpool fg_procpool;

typedef struct fg_procpool_opts {
    const fg_config *cfg;
    fg_lua_env env;
    int nprocs;                 /* 0 = 2 per CPU */
    size_t queue_max;           /* 0 = nprocs * 10 */
    struct event_base *base;
    void (*done)(fg_job *job, void *arg);   /* main thread */
    void *done_arg;
    const char *exe_path;       /* this program, for re-execution */
    const char *logging_conf;   /* loaded by each worker process too (may be NULL) */
    int scan_timeout;           /* seconds; a worker busy longer with one message is killed (0 = never) */
} fg_procpool_opts;

/* Checks that the plugins load (in this process) before starting workers: NULL with *err if not. */
fg_procpool *fg_procpool_new(const fg_procpool_opts *opts, char **err);
int fg_procpool_submit(fg_procpool *p, fg_job *job);
void fg_procpool_stop(fg_procpool *p, int code, const char *text);
/* As fg_pool_take_queued: stop, hand back the jobs not started, idle workers end. */
fg_job *fg_procpool_take_queued(fg_procpool *p);
size_t fg_procpool_pending(fg_procpool *p);
int fg_procpool_count(fg_procpool *p);
/* Writes "[Worker-N] pid P: state" lines for workerlist into a malloc'ed string. */
char *fg_procpool_describe(fg_procpool *p);
void fg_procpool_free(fg_procpool *p);

/* The child side: `fuglu --process-worker FD`. Returns the process exit status. */
int fg_procworker_main(int fd);

#endif

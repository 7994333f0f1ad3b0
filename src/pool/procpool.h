/* procpool: the process backend of pool.h ([performance] backend=process).
 *
 * Each worker is this program re-executed as `fuglu --process-worker 3` (procworker.c), fed over a
 * SOCK_SEQPACKET socketpair (frame.h): the parent sends the config snapshot once, then one job frame
 * per message with the message itself passed as a file descriptor (a memfd or the spill file,
 * mapped read-only by the child: the bytes are never copied through the socket). The child scans,
 * re-injects and answers with the reply, then runs the appenders and reports ready. A worker that
 * dies (crash, kill -9) while it holds a message gets that message answered 451 and is replaced.
 * Everything on the parent side runs on the main libevent loop.
 */
#ifndef FUGLU_PROCPOOL_H
#define FUGLU_PROCPOOL_H

#include <event2/event.h>
#include "lib/config.h"
#include "monitor/stats.h"
#include "pool/pool.h"
#include "pool/shdict.h"

typedef struct fg_procpool_opts {
    const fg_config *cfg;       /* sent to every worker */
    fg_stats *stats;            /* what the workers report is recorded here (NULL: dropped) */
    const fg_shdict_list *dicts; /* [shared]: every worker maps them (NULL: none) */
    const char *luadir;         /* sent to every worker */
    int nprocs;                 /* 0 = 2 per CPU */
    size_t queue_max;           /* 0 = nprocs * 10 */
    struct event_base *base;
    fg_pool_done_fn done;       /* main thread */
    void *done_arg;
    const char *exe_path;       /* this program, for re-execution */
    const char *logging_conf;   /* loaded by each worker process too (may be NULL) */
    int scan_timeout;           /* seconds; a worker busy longer with one message is killed (0 = never) */
} fg_procpool_opts;

/* The caller has checked that the plugins load (in this process). NULL with *err. */
fg_pool *fg_procpool_new(const fg_procpool_opts *opts, char **err);

/* One job fate word per worker, shared between the parent and that worker process (job.h: the
 * session cancels, the worker commits before the final dot). A cache line each; the parent passes
 * the memfd and the worker's index in an 'S' frame. */
typedef struct fg_fate_slot {
    fg_fate word;
    char pad[64 - sizeof(fg_fate)];
} fg_fate_slot;

#endif

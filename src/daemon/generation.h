/* generation: one frozen configuration with its plugins and its scan pool (threads or processes).
 *
 * SIGHUP (or `fuglu_control reload`) builds a new generation beside the running one from the files
 * on disk, checks it (config parses, ports parse, every plugin loads, every lint passes) and only then
 * swaps it in: jobs queued but not started move to the new pool, running ones finish in the old
 * one, which is freed when it has nothing left. A fingerprint of every input file tells whether
 * anything changed at all.
 */
#ifndef FUGLU_GENERATION_H
#define FUGLU_GENERATION_H

#include <event2/event.h>
#include "lib/config.h"
#include "pool/job.h"
#include "daemon/lint.h"
#include "lua/lua_worker.h"
#include "pool/pool.h"
#include "lib/util.h"
#include "monitor/stats.h"

typedef struct fg_generation fg_generation;

typedef struct fg_generation_env {
    const char *config_path;
    fg_lua_env lua;
    fg_stats *stats;             /* the controller's; the pools record into it */
    const char *exe_path;        /* for process workers */
    const char *logging_conf;    /* for process workers */
    struct event_base *base;
    void (*done)(fg_job *job, void *arg);
    void *done_arg;
} fg_generation_env;

/* Reads fuglu.conf and its conf.d, with the core defaults. NULL with *err ("FILE:LINE: ..."). */
fg_config *fg_generation_load_config(const char *config_path, char **err);
/* A hex digest over the config files, conf.d, the Lua framework and every plugin file the config can
 * load (lua/plugins, [main] plugindir). Caller frees. */
char *fg_generation_fingerprint(const fg_config *cfg, const char *config_path, const char *luadir);
/* Which parts differ between two fingerprints, for the log: e.g. "configuration, Lua plugins".
 * Caller frees. */
char *fg_generation_fingerprint_diff(const char *old, const char *new);
/* Builds the pool of cfg's backend; takes ownership of cfg and fingerprint. Checks the core options'
 * types and bounds, and with check runs every plugin's lint first (into findings). NULL on failure,
 * with the reasons among the findings' errors. */
fg_generation *fg_generation_new(const fg_generation_env *env, fg_config *cfg, char *fingerprint, int number,
                                 int check, fg_findings *findings);
int fg_generation_submit(fg_generation *g, fg_job *job);
/* Stops taking jobs and returns those not started (linked by next). */
fg_job *fg_generation_retire(fg_generation *g);
/* Stops; queued jobs are answered with code/text. */
void fg_generation_stop(fg_generation *g, int code, const char *text);
size_t fg_generation_pending(fg_generation *g);   /* queued or running */
size_t fg_generation_queued(fg_generation *g);    /* waiting for a free worker */
int fg_generation_workers(fg_generation *g);      /* threads or processes alive */
/* One line per worker, or a summary of the threads; caller frees. */
char *fg_generation_describe(fg_generation *g);
/* A retired generation is finished when no message is pending and no worker is left (a thread may
 * still be running appenders after its message was answered): freeing it then never blocks. */
int fg_generation_finished(fg_generation *g);
int fg_generation_number(const fg_generation *g);
const char *fg_generation_backend(const fg_generation *g);
const char *fg_generation_fingerprint_of(const fg_generation *g);
const fg_config *fg_generation_config(const fg_generation *g);
void fg_generation_free(fg_generation *g);

#endif

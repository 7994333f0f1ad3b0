/* lua_worker: one worker's LuaJIT state with the whole plugin chain loaded (lua/fuglu/worker.lua).
 *
 * A state belongs to one thread at a time and is never shared. fg_lua_worker_handle() runs the chain
 * and the re-injection for one job and fills its reply; fg_lua_worker_after() runs the appenders.
 */
#ifndef FUGLU_LUA_WORKER_H
#define FUGLU_LUA_WORKER_H

#include "pool/shdict.h"
#include "lib/config.h"
#include "pool/job.h"
#include "daemon/lint.h"
#include "pool/pool.h"

typedef struct fg_lua_worker fg_lua_worker;

/* Where the Lua framework lives (lua/ with fuglu/ and plugins/). */
typedef struct fg_lua_env {
    const char *luadir;
    const fg_shdict_list *dicts;  /* [shared] dictionaries for fuglu_shared (NULL: none); outlives the states */
} fg_lua_env;

/* NULL with *err (every load error, one per line, caller frees) when a plugin fails to load. The
 * state allocates through its own counting allocator (lua_alloc.h) limited by [performance]
 * luamemlimit. */
fg_lua_worker *fg_lua_worker_new(const fg_config *cfg, const fg_lua_env *env, const char *name, char **err);
/* Never fails: a Lua error becomes a 451 reply and is logged; so does running out of Lua memory
 * (luamemlimit), and then the message is not delivered and the state recovers in after(). */
void fg_lua_worker_handle(fg_lua_worker *w, fg_job *job);
void fg_lua_worker_after(fg_lua_worker *w);
void fg_lua_worker_free(fg_lua_worker *w);
/* Bytes the worker's Lua state holds now (any thread may ask). */
size_t fg_lua_worker_memory(const fg_lua_worker *w);
/* The live counter behind it, valid until fg_lua_worker_free (for a workerlist slot). */
const _Atomic size_t *fg_lua_worker_memory_counter(const fg_lua_worker *w);
/* The state's allocator, for tests (its fail_countdown hook). */
struct fg_lua_alloc *fg_lua_worker_allocator(fg_lua_worker *w);

/* The pools' view of a Lua worker (pool.h): open = fg_lua_worker_new with cfg and env, scan =
 * handle, after, close = free. ls must outlive the scanner. */
typedef struct fg_lua_scanner {
    const fg_config *cfg;
    fg_lua_env env;
} fg_lua_scanner;
fg_scanner fg_lua_scanner_of(fg_lua_scanner *ls);

/* The plugin part of the lint (--lint and every reload): loads every plugin and runs each lint; its
 * transcript goes into f (lint.h). Returns the number of errors. at_reload: a plugin whose service
 * does not answer (its lint returned false, "service") only warns. */
int fg_lua_lint(const fg_config *cfg, const fg_lua_env *env, fg_findings *f, bool at_reload);

/* Where lua/ is: $FUGLU_LUADIR, else lua/ of the source tree when the program runs from build/,
 * else PREFIX/share/fuglu/lua next to an installed PREFIX/bin program, else the compiled-in data
 * directory. Caller frees. */
char *fg_lua_find_luadir(void);

/* A bare state with package.path set to env->luadir and every C module preloaded (lua_core.h). */
struct lua_State *fg_lua_new_state(const fg_lua_env *env);
/* Pushes {section = {option = value}} for cfg. */
void fg_lua_push_config(struct lua_State *L, const fg_config *cfg);

#endif

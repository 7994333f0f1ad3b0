/* lua_worker: the C side of a worker's Lua state. See lua_worker.h and doc/lua-core-api.md.
 *
 * The per-message job table is built here from the C job; the message bytes are handed over as a
 * fuglu_message object (a reference, not a copy).
 *
 * A worker's state allocates through its own fg_lua_alloc (lua_alloc.h): the bytes it holds are
 * counted for workerlist and /metrics, and [performance] luamemlimit caps them while Lua code runs.
 * A message whose scan hits the limit is deferred (451) and not delivered; the state is then fully
 * collected, and recreated when the collection does not bring it below half the limit (a plugin
 * that keeps what it allocated in a module table would otherwise fail every following message).
 */
#include "lua/lua_worker.h"
#include "lua/lua_alloc.h"
#include "lua/lua_core.h"
#include "lua/lua_job.h"
#include "lua/lua_message.h"
#include "log/log.h"
#include "monitor/stats.h"
#include "lua/lua_shared.h"
#include "lib/util.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <limits.h>
#include <stdatomic.h>
#include <unistd.h>

struct fg_lua_worker {
    lua_State *L;
    int worker_ref;   /* the object returned by worker.new */
    int job_ref;      /* the last job object, for after() */
    int gc_big_kb;    /* a heap above this after a message is collected at once */
    fg_lua_alloc alloc;          /* outlives every state of this worker (see recover) */
    bool recover;                /* the last message ran out of memory: recover in after() */
    /* What a recreated state is loaded from: the pool's config snapshot (read-only while the pool
     * lives) and copies of the rest. */
    const fg_config *cfg;
    char *luadir;
    const fg_shdict_list *dicts;   /* fg_lua_env.dicts: outlives the worker */
    char *name;
};

/* The collector's pause: a cycle starts when the heap reaches 4x what the last one kept (Lua's
 * default is 2x). A worker's live data is its modules, config and plugins, a few hundred KB that
 * every cycle marks again; with 8 states taking turns on a few cores that marking is mostly cache
 * misses. Doubling the pause halves the marking per message for a few hundred KB more per worker
 * under load. Large garbage (a plugin that copied a big message into a string) is collected right
 * after the message instead: see fg_lua_worker_after. */
#define WORKER_GC_PAUSE 400
#define WORKER_GC_BIG_MIN_KB (16 * 1024)

/* A state allocating through a, or through LuaJIT's own allocator when a is NULL (lint, console). */
static lua_State *worker_new_state(const fg_lua_env *env, fg_lua_alloc *a)
{
    lua_State *L = a ? fg_lua_alloc_newstate(a) : luaL_newstate();
    if (!L)
        fg_panic("cannot create a Lua state (%s)", a ? "lua_newstate with the worker's allocator" : "luaL_newstate");
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", env->luadir, env->luadir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    fg_lua_preload(L);
    if (env->dicts)
        fg_lua_shared_attach(L, env->dicts);
    return L;
}

lua_State *fg_lua_new_state(const fg_lua_env *env)
{
    return worker_new_state(env, NULL);
}

/* lua_pcall with the memory limit of a enforced: only protected code may be refused memory. */
static int worker_limited_pcall(fg_lua_alloc *a, lua_State *L, int nargs, int nresults, int errfunc)
{
    a->enforce = true;
    int rc = lua_pcall(L, nargs, nresults, errfunc);
    a->enforce = false;
    return rc;
}

static int worker_pcall(fg_lua_worker *w, int nargs, int nresults, int errfunc)
{
    return worker_limited_pcall(&w->alloc, w->L, nargs, nresults, errfunc);
}

void fg_lua_push_config(lua_State *L, const fg_config *cfg)
{
    lua_newtable(L);
    size_t ns = fg_config_section_count(cfg);
    for (size_t i = 0; i < ns; i++) {
        lua_newtable(L);
        size_t no = fg_config_option_count(cfg, i);
        for (size_t j = 0; j < no; j++) {
            lua_pushstring(L, fg_config_option_value(cfg, i, j));
            lua_setfield(L, -2, fg_config_option_name(cfg, i, j));
        }
        lua_setfield(L, -2, fg_config_section_name(cfg, i));
    }
}

static void worker_push_options(lua_State *L, const fg_lua_env *env, const char *name)
{
    lua_newtable(L);
    lua_pushstring(L, env->luadir);
    lua_setfield(L, -2, "luadir");
    lua_pushstring(L, name ? name : "worker");
    lua_setfield(L, -2, "worker_name");
}

/* The text of a load error; the limit is named when it was what failed. */
static char *worker_load_error(const fg_lua_worker *w, const fg_lua_alloc *a, const char *what)
{
    if (a->refused)
        return xasprintf("%s: the Lua state ran out of memory: [performance] luamemlimit (%zu bytes) is too small to "
                         "load the plugins; raise it or set 0 (no limit)", w->name, a->limit);
    return xstrdup(what);
}

/* Loads the framework and every plugin into a new state w->L allocating through a, a fresh
 * allocator (nothing refused yet). 0, or -1 with *err (and w->L unchanged). */
static int worker_load(fg_lua_worker *w, fg_lua_alloc *a, char **err)
{
    fg_lua_env env = {.luadir = w->luadir, .dicts = w->dicts};
    lua_State *L = worker_new_state(&env, a);
    lua_pushcfunction(L, fg_lua_traceback);
    int tb = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "fuglu.worker");
    if (worker_limited_pcall(a, L, 1, 1, tb) != 0) {
        char *what = xasprintf("cannot load the Lua framework from %s: %s", w->luadir, lua_tostring(L, -1));
        *err = worker_load_error(w, a, what);
        free(what);
        lua_close(L);
        return -1;
    }
    lua_getfield(L, -1, "new");
    fg_lua_push_config(L, w->cfg);
    worker_push_options(L, &env, w->name);
    int rc = worker_limited_pcall(a, L, 2, 2, tb);
    if (rc != 0 || lua_isnil(L, -2)) {
        char *what = rc != 0 ? xstrdup(lua_tostring(L, -1)) : fg_lua_collect_errors(L, -1, "unknown error loading plugins");
        *err = worker_load_error(w, a, what);
        free(what);
        lua_close(L);
        return -1;
    }
    w->L = L;
    lua_pop(L, 1);
    w->worker_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    w->job_ref = LUA_NOREF;
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    int live_kb = lua_gc(L, LUA_GCCOUNT, 0);
    w->gc_big_kb = live_kb * 8 > WORKER_GC_BIG_MIN_KB ? live_kb * 8 : WORKER_GC_BIG_MIN_KB;
    lua_gc(L, LUA_GCSETPAUSE, WORKER_GC_PAUSE);
    return 0;
}

static void worker_destroy(fg_lua_worker *w)
{
    if (w->L)
        lua_close(w->L);
    free(w->luadir);
    free(w->name);
    free(w);
}

fg_lua_worker *fg_lua_worker_new(const fg_config *cfg, const fg_lua_env *env, const char *name, char **err)
{
    long limit = fg_core_int(cfg, "performance", "luamemlimit");   /* bounds: fg_config_check_core */
    fg_lua_worker *w = xcalloc(1, sizeof *w);
    fg_lua_alloc_init(&w->alloc, (size_t)limit);
    w->cfg = cfg;
    w->luadir = xstrdup(env->luadir);
    w->dicts = env->dicts;
    w->name = xstrdup(name ? name : "worker");
    if (worker_load(w, &w->alloc, err) != 0) {
        worker_destroy(w);
        return NULL;
    }
    return w;
}

size_t fg_lua_worker_memory(const fg_lua_worker *w)
{
    return fg_lua_alloc_used(&w->alloc);
}

const _Atomic size_t *fg_lua_worker_memory_counter(const fg_lua_worker *w)
{
    return &w->alloc.used;
}

fg_lua_alloc *fg_lua_worker_allocator(fg_lua_worker *w)
{
    return &w->alloc;
}

/* After a message that ran out of memory: a full collection, and a new state when that does not
 * bring the old one below half the limit (what it kept would make the next message fail too). The
 * new state is loaded beside the old one with an allocator of its own, so the old state's bytes do
 * not count against its load, and takes over the worker's allocator (and its count) once the old
 * one is closed. If the new state cannot be loaded the old one stays. */
static void worker_recover(fg_lua_worker *w)
{
    w->recover = false;
    lua_settop(w->L, 0);
    lua_gc(w->L, LUA_GCCOLLECT, 0);
    size_t used = fg_lua_alloc_used(&w->alloc);
    if (w->alloc.limit == 0 || used <= w->alloc.limit / 2) {
        fg_log("fuglu.SessionHandler", FG_INFO, "%s: Lua state collected after running out of memory: %zu bytes in use",
               w->name, used);
        return;
    }
    lua_State *old = w->L;
    fg_lua_alloc fresh;
    fg_lua_alloc_init(&fresh, w->alloc.limit);
    char *err = NULL;
    if (worker_load(w, &fresh, &err) != 0) {
        fg_log("fuglu.SessionHandler", FG_ERROR, "%s: the Lua state still holds %zu bytes after a full collection "
               "and could not be recreated: %s", w->name, used, err);
        free(err);
        return;
    }
    lua_close(old);   /* the worker's count is back to 0 (what the old state held, to the byte) */
    lua_setallocf(w->L, fg_lua_alloc_fn, &w->alloc);
    atomic_store_explicit(&w->alloc.used, fg_lua_alloc_used(&w->alloc) + fg_lua_alloc_used(&fresh),
                          memory_order_relaxed);
    fg_log("fuglu.SessionHandler", FG_WARNING, "%s: the Lua state still held %zu bytes after a full collection "
           "([performance] luamemlimit = %zu bytes): recreated with every plugin, now %zu bytes", w->name, used,
           w->alloc.limit, fg_lua_alloc_used(&w->alloc));
}

/* The scan of job was refused memory. Unless the message went downstream already (its fate was
 * committed before the limit was hit: then the reply stays the downstream's), it is answered 451
 * and, its fate being cancelled by the allocator, not delivered. True when the reply was set. */
static bool worker_out_of_memory(fg_lua_worker *w, fg_job *job)
{
    w->recover = true;   /* the full collection and the check come in after() */
    if (!fg_fate_is_cancelled(job->fate)) {
        fg_log("fuglu.SessionHandler", FG_WARNING, "%s: %s reached [performance] luamemlimit (%zu bytes) after the "
               "message went downstream: answered with the downstream's reply", job->id, w->name, w->alloc.limit);
        return false;
    }
    char *what = xasprintf("Lua state out of memory: [performance] luamemlimit (%zu bytes) reached", w->alloc.limit);
    fg_log("fuglu.SessionHandler", FG_ERROR, "%s: %s while scanning in %s: message deferred (451), not delivered",
           job->id, what, w->name);
    fg_stats_exception(fg_stats_current(), NULL, job->id, what); /* monitoring: exceptionlist */
    free(what);
    fg_job_set_reply(job, 451, "4.3.0 internal problem - message deferred");
    job->action = FG_ACTION_DEFER;
    lua_settop(w->L, 0);
    return true;
}

void fg_lua_worker_handle(fg_lua_worker *w, fg_job *job)
{
    lua_State *L = w->L;
    if (fg_job_is_cancelled(job)) {
        /* Its client was answered while it waited in the queue: not scanned, not delivered. */
        fg_log("fuglu.SessionHandler", FG_INFO, "%s: answered already (scan_timeout or the client left), not scanned",
               job->id);
        fg_job_set_reply(job, 451, "4.3.0 internal problem - message deferred");
        job->action = FG_ACTION_DEFER;
        return;
    }
    fg_fate_set_current(job->fate);
    fg_job_deadline_set_current(job->deadline);
    unsigned long refused = w->alloc.refused;
    lua_settop(L, 0);
    lua_pushcfunction(L, fg_lua_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->worker_ref);
    lua_getfield(L, -1, "handle");
    lua_pushvalue(L, -2);
    fg_lua_job_push(L, job);
    lua_pushvalue(L, -1);
    luaL_unref(L, LUA_REGISTRYINDEX, w->job_ref);
    w->job_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int rc = worker_pcall(w, 2, 1, 1);
    /* The job goes back to its session with the reply: Lua keeps the object only as a key. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->job_ref);
    fg_lua_job_detach(L, -1);
    lua_pop(L, 1);
    if (w->alloc.refused != refused && worker_out_of_memory(w, job)) {
        fg_fate_set_current(NULL);
        fg_job_deadline_set_current(0);
        return;
    }
    if (rc != 0) {
        fg_log("fuglu.SessionHandler", FG_ERROR, "%s: error in the scan chain: %s", job->id, lua_tostring(L, -1));
        fg_stats_exception(fg_stats_current(), NULL, job->id, lua_tostring(L, -1)); /* monitoring: exceptionlist */
        fg_job_set_reply(job, 451, "4.3.0 internal problem - message deferred");
        job->action = FG_ACTION_DEFER;
        lua_settop(L, 0);
        fg_fate_set_current(NULL);
        fg_job_deadline_set_current(0);
        return;
    }
    int code = 451;
    const char *text = NULL;
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "code");
        if (lua_isnumber(L, -1))
            code = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, -1, "action");
        job->action = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : -1;
        lua_pop(L, 1);
        lua_getfield(L, -1, "text");
        text = lua_tostring(L, -1);
    }
    if (code < 200 || code > 599 || !text) {
        fg_log("fuglu.SessionHandler", FG_ERROR, "%s: the scan chain returned no valid reply", job->id);
        fg_job_set_reply(job, 451, "4.3.0 internal problem - message deferred");
    } else {
        /* A reply text must be one line: CR and LF would let a plugin inject SMTP replies. */
        char *clean = xstrdup(text);
        for (char *p = clean; *p; p++)
            if (*p == '\r' || *p == '\n')
                *p = ' ';
        fg_job_set_reply(job, code, clean);
        free(clean);
    }
    lua_settop(L, 0);
    fg_fate_set_current(NULL);
    fg_job_deadline_set_current(0);
}

void fg_lua_worker_after(fg_lua_worker *w)
{
    lua_State *L = w->L;
    if (w->job_ref == LUA_NOREF)
        return;
    lua_settop(L, 0);
    lua_pushcfunction(L, fg_lua_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->worker_ref);
    lua_getfield(L, -1, "after");
    lua_pushvalue(L, -2);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->job_ref);
    unsigned long refused = w->alloc.refused;
    if (worker_pcall(w, 2, 0, 1) != 0)
        fg_log("fuglu.SessionHandler", FG_ERROR, "error running appenders: %s", lua_tostring(L, -1));
    if (w->alloc.refused != refused) {
        fg_log("fuglu.SessionHandler", FG_ERROR, "%s: Lua state out of memory in the appenders: [performance] "
               "luamemlimit (%zu bytes) reached", w->name, w->alloc.limit);
        w->recover = true;
    }
    /* The message is done with: unmap it now, not when a collection cycle happens to finish. */
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, w->job_ref);
    fg_lua_job_release_message(L, -1);
    luaL_unref(L, LUA_REGISTRYINDEX, w->job_ref);
    w->job_ref = LUA_NOREF;
    lua_settop(L, 0);
    if (w->recover) {
        worker_recover(w);
        return;
    }
    /* Big garbage goes at once; everything else is left to the incremental collector, which paces
     * itself by allocation (a forced step per message kept it marking all the time). */
    if (lua_gc(L, LUA_GCCOUNT, 0) > w->gc_big_kb)
        lua_gc(L, LUA_GCCOLLECT, 0);
}

void fg_lua_worker_free(fg_lua_worker *w)
{
    if (!w)
        return;
    worker_destroy(w);
}

/* print() replacement for fg_lua_lint: its arguments, tab-separated, become one finding in the list
 * of upvalue 1 (a light userdata), classified by Fuglu's "ERROR: "/"WARNING: " prefixes. */
static int l_worker_capture_print(lua_State *L)
{
    fg_findings *f = lua_touserdata(L, lua_upvalueindex(1));
    fg_buf b;
    fg_buf_init(&b);
    int n = lua_gettop(L);
    lua_getglobal(L, "tostring");
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, -1);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        const char *s = lua_tostring(L, -1);
        fg_buf_printf(&b, "%s%s", i > 1 ? "\t" : "", s ? s : "");
        lua_pop(L, 1);
    }
    fg_findings_add_line(f, b.data ? b.data : "");
    fg_buf_free(&b);
    return 0;
}

/* lint.run's report(severity, text, line): one finding in the list of upvalue 1. */
static int l_worker_lint_report(lua_State *L)
{
    fg_findings *f = lua_touserdata(L, lua_upvalueindex(1));
    const char *severity = luaL_checkstring(L, 1);
    const char *text = lua_tostring(L, 2);
    const char *line = luaL_optstring(L, 3, text ? text : "");
    fg_severity sev = strcmp(severity, "error") == 0 ? FG_FINDING_ERROR
                      : strcmp(severity, "warning") == 0 ? FG_FINDING_WARNING : FG_FINDING_INFO;
    fg_findings_add_transcript(f, sev, text, line);
    return 0;
}

int fg_lua_lint(const fg_config *cfg, const fg_lua_env *env, fg_findings *f, bool at_reload)
{
    size_t before = f->errors;
    lua_State *L = fg_lua_new_state(env);
    lua_pushlightuserdata(L, f);
    lua_pushcclosure(L, l_worker_capture_print, 1);
    lua_setglobal(L, "print");
    lua_pushcfunction(L, fg_lua_traceback);
    int tb = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "fuglu.lint");
    int errors;
    if (lua_pcall(L, 1, 1, tb) != 0) {
        char *msg = xasprintf("cannot load the Lua framework from %s: %s", env->luadir, lua_tostring(L, -1));
        fg_findings_add(f, FG_FINDING_ERROR, NULL, msg);
        free(msg);
        errors = 1;
    } else {
        lua_getfield(L, -1, "run");
        fg_lua_push_config(L, cfg);
        worker_push_options(L, env, "lint");
        lua_pushboolean(L, at_reload);   /* a service that does not answer only warns at a reload */
        lua_setfield(L, -2, "reload");
        lua_pushlightuserdata(L, f);
        lua_pushcclosure(L, l_worker_lint_report, 1);
        if (lua_pcall(L, 3, 1, tb) != 0) {
            char *msg = xasprintf("lint failed: %s", lua_tostring(L, -1));
            fg_findings_add(f, FG_FINDING_ERROR, NULL, msg);
            free(msg);
            errors = 1;
        } else {
            errors = (int)lua_tointeger(L, -1);
        }
    }
    lua_close(L);
    /* A plugin whose lint() returned false without printing an ERROR line still counts. */
    size_t printed = f->errors - before;
    if (errors > 0 && printed == 0) {
        char *msg = xasprintf("%d plugins reported errors", errors);
        fg_findings_add(f, FG_FINDING_ERROR, NULL, msg);
        free(msg);
    }
    return errors;
}

char *fg_lua_find_luadir(void)
{
    const char *env = getenv("FUGLU_LUADIR");
    if (env && *env)
        return xstrdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        static const char *const relative[] = {"%s/../lua", "%s/../share/fuglu/lua"};
        for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
            char *candidate = xasprintf(relative[i], dir);
            char *probe = xasprintf("%s/fuglu/worker.lua", candidate);
            int ok = access(probe, R_OK) == 0;
            free(probe);
            char real[PATH_MAX];
            if (ok && realpath(candidate, real)) {
                free(candidate);
                return xstrdup(real);
            }
            free(candidate);
        }
    }
    return xstrdup(FUGLU_DATADIR "/lua");
}

/* ---- the pools' scanner (pool.h) ---- */

static void *scanner_open(void *arg, const char *name, char **err)
{
    fg_lua_scanner *ls = arg;
    return fg_lua_worker_new(ls->cfg, &ls->env, name, err);
}

static void scanner_scan(void *state, fg_job *job) { fg_lua_worker_handle(state, job); }
static void scanner_after(void *state) { fg_lua_worker_after(state); }
static void scanner_close(void *state) { fg_lua_worker_free(state); }
static const _Atomic size_t *scanner_memory(void *state) { return fg_lua_worker_memory_counter(state); }

fg_scanner fg_lua_scanner_of(fg_lua_scanner *ls)
{
    return (fg_scanner){scanner_open, scanner_scan, scanner_after, scanner_close, ls, scanner_memory};
}

/* lua_core: what every C module of the Lua layer shares: the list of modules and how a state gets
 * them, the one error handler, the one way plugin-load errors become a message, and the guard for
 * C allocations held across Lua calls that may raise.
 *
 * One C file per Lua module (doc/lua-core-api.md has the list): src/lua/lua_<name>.c registers
 * `fuglu_<name>` through luaopen_fuglu_<name>; its Lua-callable functions are static
 * l_<name>_<function>, the C functions it offers other files are fg_lua_<name>_<verb>. The engine
 * puts every module in package.preload of each state (fg_lua_preload); busted specs load the same
 * code from build/fuglu_core.so, whose `require "fuglu_core"` does the same preloading.
 *
 * Everything here is safe to use from several threads as long as each Lua state (and its objects)
 * is used by one thread at a time.
 */
#ifndef FUGLU_LUA_CORE_H
#define FUGLU_LUA_CORE_H

#include <lauxlib.h>
#include <lua.h>

#define FUGLU_CORE_VERSION "0.1.0"

/* The openers, one per module (each pushes and returns (1) its table). */
int luaopen_fuglu_sys(lua_State *L);        /* lua_sys.c: version, clocks, ids, host name */
int luaopen_fuglu_config(lua_State *L);     /* lua_config.c: the core options' table */
int luaopen_fuglu_log(lua_State *L);        /* lua_log.c: records and levels */
int luaopen_fuglu_codec(lua_State *L);      /* lua_codec.c: base64, RFC 2047 */
int luaopen_fuglu_message(lua_State *L);    /* lua_message.c (+ lua_mime.c): message objects */
int luaopen_fuglu_job(lua_State *L);        /* lua_job.c: the job's fate, re-injection */
int luaopen_fuglu_fs(lua_State *L);         /* lua_fs.c: stat, realpath, mkdir, chmod, ... */
int luaopen_fuglu_net(lua_State *L);        /* lua_net.c: udp_send */
int luaopen_fuglu_socket(lua_State *L);     /* lua_socket.c: TCP, unix and UDP sockets with deadlines */
int luaopen_fuglu_hash(lua_State *L);       /* lua_hash.c: digests, HMAC, random bytes (libcrypto) */
int luaopen_fuglu_proc(lua_State *L);       /* lua_proc.c: run a program with a timeout */
int luaopen_fuglu_shared(lua_State *L);     /* lua_shared.c: dictionaries shared by all workers */
int luaopen_fuglu_dns(lua_State *L);        /* lua_dns.c: DNS queries (c-ares), cached */
int luaopen_fuglu_redis(lua_State *L);      /* lua_redis.c: Redis client (hiredis), Sentinel */
int luaopen_fuglu_http(lua_State *L);       /* lua_http.c: HTTP(S) requests (libcurl) */
int luaopen_fuglu_regex(lua_State *L);      /* lua_regex.c (+ lua_litset.c): PCRE2 */
int luaopen_fuglu_htmlstrip(lua_State *L);  /* lua_htmlstrip.c: strip */
int luaopen_fuglu_stats(lua_State *L);      /* lua_stats.c: the worker's reports to stats.c */

/* Sets package.preload.fuglu_<name> for every module above. */
void fg_lua_preload(lua_State *L);
/* The library's entry for a stock luajit (busted): preloads every module, returns the list of
 * their names. */
int luaopen_fuglu_core(lua_State *L);

/* Pushes a new module table with functions set in it; returns 1 (what an opener returns). */
int fg_lua_new_module(lua_State *L, const luaL_Reg *functions);
/* Pushes the metatable of a class called name, created on first use in this state with methods as
 * __index and the metamethods __gc and __tostring. Returns whether it was created just now. */
int fg_lua_class_metatable(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                           lua_CFunction tostring);

/* Runs f (a network call of a toolkit module) and adds it to the running plugin's network
 * counters (monitor/stats.h: kind FG_STATS_NET_*): its time, and an error when its first result is
 * nil (the modules' nil, err convention). */
int fg_lua_net_counted(lua_State *L, lua_CFunction f, int kind);

/* The message handler for lua_pcall: the error text with a traceback appended. */
int fg_lua_traceback(lua_State *L);
/* The error strings of an array at idx (or one string there) joined by newlines; fallback when
 * there is none. Caller frees. */
char *fg_lua_collect_errors(lua_State *L, int idx, const char *fallback);

/* A userdata on the stack whose __gc calls release(ptr) while ptr is set: hold a C allocation in it
 * while calling Lua API functions that may raise, then call fg_lua_guard_release. */
typedef struct fg_lua_guard {
    void *ptr;
    void (*release)(void *ptr);
} fg_lua_guard;

fg_lua_guard *fg_lua_guard_push(lua_State *L);
/* Releases ptr now (if set) and clears it; the guard can be reused. */
void fg_lua_guard_release(fg_lua_guard *guard);

#endif

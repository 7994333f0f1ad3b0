/* lua_console: the host functions of the controller state: what `mc` (lua/fuglu/controller.lua)
 * asks the engine about. They are handed to controller.new as a table rather than registered as a
 * module, because only the controller state has a console to ask (console.c makes that state).
 *
 *   host.stats()    -> {uptime=, in=, out=, total=, ham=, spam=, ..., plugins={name={runs=, errors=, time=}}}
 *   host.workers()  -> {threads=, pending=, queued=, backend=, states={...}}
 */
#include "lua/lua_console.h"
#include "monitor/stats.h"

#include <lauxlib.h>
#include <string.h>

static void console_set_number(lua_State *L, const char *key, double v)
{
    lua_pushnumber(L, v);
    lua_setfield(L, -2, key);
}

/* stats() -> the counters of stats.c, per-plugin runs/errors/time; nil without stats */
static int l_console_stats(lua_State *L)
{
    fg_stats *s = fg_console_stats(lua_touserdata(L, lua_upvalueindex(1)));
    if (!s) {
        lua_pushnil(L);
        return 1;
    }
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(s, &snap);
    lua_newtable(L);
    console_set_number(L, "uptime", snap.uptime);
    console_set_number(L, "in", (double)snap.in);
    console_set_number(L, "out", (double)snap.out);
    console_set_number(L, "total", (double)snap.total);
    console_set_number(L, "ham", (double)snap.ham);
    console_set_number(L, "spam", (double)snap.spam);
    console_set_number(L, "virus", (double)snap.virus);
    console_set_number(L, "blocked", (double)snap.blocked);
    console_set_number(L, "deferred", (double)snap.deferred);
    console_set_number(L, "workers", snap.workers);
    console_set_number(L, "workers_busy", snap.workers_busy);
    lua_pushstring(L, snap.avg_scantime);
    lua_setfield(L, -2, "avg_scantime");
    lua_newtable(L);
    for (size_t i = 0; i < snap.nplugins; i++) {
        lua_newtable(L);
        console_set_number(L, "runs", (double)snap.plugins[i].runs);
        console_set_number(L, "errors", (double)snap.plugins[i].errors);
        console_set_number(L, "time", snap.plugins[i].time_sum);
        lua_setfield(L, -2, snap.plugins[i].name);
    }
    lua_setfield(L, -2, "plugins");
    fg_stats_snapshot_free(&snap);
    return 1;
}

/* workers() -> {threads=, pending=, queued=, backend=, states={workerlist lines}} */
static int l_console_workers(lua_State *L)
{
    fg_console *c = lua_touserdata(L, lua_upvalueindex(1));
    lua_newtable(L);
    fg_generation *gen = fg_console_generation_in_service(c);
    if (gen) {
        console_set_number(L, "threads", fg_generation_workers(gen));
        console_set_number(L, "pending", (double)fg_generation_pending(gen));
        console_set_number(L, "queued", (double)fg_generation_queued(gen));
        lua_pushstring(L, fg_generation_backend(gen));
        lua_setfield(L, -2, "backend");
    }
    fg_stats *s = fg_console_stats(c);
    if (s) {
        fg_buf b;
        fg_buf_init(&b);
        fg_stats_render_workerlist(s, &b, false);
        lua_newtable(L);
        int n = 0;
        for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n")) {
            if (strcmp(line, "*******") == 0)
                continue;
            lua_pushstring(L, line);
            lua_rawseti(L, -2, ++n);
        }
        lua_setfield(L, -2, "states");
        fg_buf_free(&b);
    }
    return 1;
}

void fg_lua_console_push_host(lua_State *L, fg_console *c)
{
    lua_newtable(L);
    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, l_console_stats, 1);
    lua_setfield(L, -2, "stats");
    lua_pushlightuserdata(L, c);
    lua_pushcclosure(L, l_console_workers, 1);
    lua_setfield(L, -2, "workers");
}

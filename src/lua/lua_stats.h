/* lua_stats: the Lua module `fuglu_stats` (see lua_stats.c for its functions), preloaded in every
 * worker state by fg_lua_new_state. */
#ifndef FUGLU_LUA_STATS_H
#define FUGLU_LUA_STATS_H

struct lua_State;

int luaopen_fuglu_stats(struct lua_State *L);

#endif

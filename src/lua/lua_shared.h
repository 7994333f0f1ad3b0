/* lua_shared: the Lua module `fuglu_shared` (see lua_shared.c), shared-memory dictionaries. */
#ifndef FUGLU_LUA_SHARED_H
#define FUGLU_LUA_SHARED_H

#include <lua.h>
#include "pool/shdict.h"

/* Gives state L the daemon's dictionaries: shared.dict(name) looks there. set must outlive L. */
void fg_lua_shared_attach(lua_State *L, const fg_shdict_list *set);
/* The set given to L, or NULL. */
const fg_shdict_list *fg_lua_shared_list(lua_State *L);

#endif

/* lua_core: the C module `fuglu_core` that gives the Lua framework time, ids, logging, message
 * objects (headers and a GMime MIME view), base64, RFC 2047 and re-injection.
 *
 * doc/lua-core-api.md is the contract with the Lua side. The engine registers luaopen_fuglu_core in
 * package.preload of every worker state; busted specs load the same code as build/fuglu_core.so.
 *
 * Message objects are "fuglu.message" userdata holding a reference to an fg_msg: the bytes stay in C
 * and Lua copies them only when it asks for them. Everything here is safe to use from several
 * threads as long as each Lua state (and its message objects) is used by one thread at a time.
 */
#ifndef FUGLU_LUA_CORE_H
#define FUGLU_LUA_CORE_H

#include <lua.h>

#include "msg.h"

#define FUGLU_CORE_VERSION "0.1.0"

/* Opens the module: pushes and returns (1) the module table. */
int luaopen_fuglu_core(lua_State *L);

/* Pushes a message object for m; the object takes its own reference (fg_msg_ref), the caller keeps
 * its reference. Works before or without require "fuglu_core". */
void fuglu_core_push_message(lua_State *L, fg_msg *m);

/* The fg_msg of the message object at idx (a Lua argument error if it is none). The reference stays
 * owned by the object: take one with fg_msg_ref to keep the message beyond the object's life. */
fg_msg *fuglu_core_check_message(lua_State *L, int idx);
/* Drops the message object's reference to its bytes (and its parsed MIME tree) now rather than
 * when the collector gets to it: a worker calls it when it is done with a job, so a 20 MB spool
 * file is unmapped at once. Later use of the object raises an error. */
void fuglu_core_release_message(lua_State *L, int idx);

#endif

/* lua_job: the Lua module `fuglu_job`: what the worker's Lua side does with the job in hand:
 * re-inject the message downstream (reinject.c, one cached connection per worker thread) and ask
 * whether the job was cancelled meanwhile (its fate word, job.h).
 *
 *   local job = require "fuglu_job"
 *   job.reinject(t)  -> ok, code, text, temporary, cancelled   (doc/lua-core-api.md lists t's fields)
 *   job.cancelled()  -> true when the message was answered already and must not be delivered
 *
 * Memory rule: nothing C-allocated crosses a Lua call that may raise; the request's strings stay
 * referenced by the argument table, or by an anchor table for numbers converted to strings.
 */
#include <pthread.h>
#include <string.h>

#include <lauxlib.h>

#include "job.h"
#include "lua_core.h"
#include "lua_message.h"
#include "reinject.h"
#include "util.h"

static pthread_once_t job_reinject_once = PTHREAD_ONCE_INIT;
static pthread_key_t job_reinject_key;

static void job_reinject_cache_destroy(void *cache)
{
    fg_reinject_cache_free(cache);
}

static void job_reinject_key_create(void)
{
    if (pthread_key_create(&job_reinject_key, job_reinject_cache_destroy) != 0)
        fg_panic("lua_job: pthread_key_create failed");
}

/* This thread's connection cache, created on first use and freed when the thread exits. */
static fg_reinject_cache *job_reinject_cache(void)
{
    pthread_once(&job_reinject_once, job_reinject_key_create);
    fg_reinject_cache *cache = pthread_getspecific(job_reinject_key);
    if (!cache) {
        cache = fg_reinject_cache_new();
        pthread_setspecific(job_reinject_key, cache);
    }
    return cache;
}

/* A string field of the table at t (numbers are accepted and converted); NULL if absent. Values
 * stay referenced by the table, or by the anchor table for converted numbers, until the call ends. */
static const char *job_field_string(lua_State *L, int t, const char *key, int anchor, size_t *len)
{
    lua_getfield(L, t, key);
    int type = lua_type(L, -1);
    const char *s = NULL;
    if (type == LUA_TSTRING) {
        s = lua_tolstring(L, -1, len);
        lua_pop(L, 1);
    } else if (type == LUA_TNUMBER) {
        s = lua_tolstring(L, -1, len);
        luaL_ref(L, anchor);
    } else if (type == LUA_TNIL) {
        lua_pop(L, 1);
    } else {
        luaL_error(L, "reinject: field '%s' must be a string", key);
    }
    return s;
}

/* An array of strings at t[key] as a C array living in a userdata on the stack. */
static const char **job_field_strings(lua_State *L, int t, const char *key, int anchor, size_t *n,
                                       size_t want)
{
    lua_getfield(L, t, key);
    int arr = lua_gettop(L);
    if (lua_isnil(L, arr)) {
        lua_pop(L, 1);
        *n = 0;
        return NULL;
    }
    if (!lua_istable(L, arr))
        luaL_error(L, "reinject: field '%s' must be an array", key);
    size_t count = want ? want : lua_objlen(L, arr);
    const char **items = lua_newuserdata(L, (count ? count : 1) * sizeof *items);
    luaL_ref(L, anchor);
    for (size_t i = 0; i < count; i++) {
        lua_rawgeti(L, arr, (int)i + 1);
        int type = lua_type(L, -1);
        items[i] = NULL;
        if (type == LUA_TSTRING) {
            items[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        } else if (type == LUA_TNUMBER) {
            items[i] = lua_tostring(L, -1);
            luaL_ref(L, anchor);
        } else if (type == LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
            lua_pop(L, 1);
            if (!want)
                luaL_error(L, "reinject: %s[%d] must be a string", key, (int)i + 1);
        } else {
            luaL_error(L, "reinject: %s[%d] must be a string", key, (int)i + 1);
        }
    }
    lua_pop(L, 1);
    *n = count;
    return items;
}

static int l_job_reinject(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_newtable(L);
    const int anchor = 2;
    fg_reinject_req req;
    memset(&req, 0, sizeof req);
    size_t len;
    req.host = job_field_string(L, 1, "host", anchor, &len);
    lua_getfield(L, 1, "port");
    req.port = (int)lua_tointeger(L, -1);
    lua_getfield(L, 1, "timeout");
    req.timeout = lua_tonumber(L, -1);
    lua_pop(L, 2);
    if (!req.host || req.port <= 0 || req.port > 65535)
        return luaL_error(L, "reinject: host and port (1-65535) are required");
    req.helo = job_field_string(L, 1, "helo", anchor, &len);
    if (!req.helo)
        req.helo = fg_hostname();
    req.mail_from = job_field_string(L, 1, "from", anchor, &len);
    if (!req.mail_from)
        req.mail_from = "";
    req.mail_params = job_field_string(L, 1, "mail_params", anchor, &len);
    req.rcpts = job_field_strings(L, 1, "rcpts", anchor, &req.nrcpt, 0);
    if (req.nrcpt == 0)
        return luaL_error(L, "reinject: rcpts must list at least one recipient");
    size_t nparams;
    req.rcpt_params = job_field_strings(L, 1, "rcpt_params", anchor, &nparams, req.nrcpt);

    lua_getfield(L, 1, "xforward");
    if (lua_istable(L, -1)) {
        int xf = lua_gettop(L);
        req.xf_name = job_field_string(L, xf, "name", anchor, &len);
        req.xf_addr = job_field_string(L, xf, "addr", anchor, &len);
        req.xf_port = job_field_string(L, xf, "port", anchor, &len);
        req.xf_helo = job_field_string(L, xf, "helo", anchor, &len);
        req.xf_proto = job_field_string(L, xf, "proto", anchor, &len);
        req.xf_source = job_field_string(L, xf, "source", anchor, &len);
        req.xf_ident = job_field_string(L, xf, "ident", anchor, &len);
    }
    lua_pop(L, 1);

    req.prefix = job_field_string(L, 1, "prefix", anchor, &req.prefix_len);
    if (!req.prefix)
        req.prefix_len = 0;
    lua_getfield(L, 1, "message");
    if (!lua_isnil(L, -1)) {
        if (!fg_lua_message_is(L, -1))
            return luaL_error(L, "reinject: field 'message' must be a message object");
        fg_msg *msg = fg_lua_message_check(L, lua_gettop(L));
        req.body = fg_msg_data(msg);
        req.body_len = fg_msg_len(msg);
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        req.body = job_field_string(L, 1, "source", anchor, &req.body_len);
        if (!req.body)
            return luaL_error(L, "reinject: either message or source is required");
    }

    fg_reinject_res res;
    memset(&res, 0, sizeof res);
    req.fate = fg_fate_current();
    fg_reinject_send(job_reinject_cache(), &req, &res);
    res.text[sizeof res.text - 1] = '\0';
    lua_pushboolean(L, res.ok);
    lua_pushinteger(L, res.code);
    lua_pushstring(L, res.text);
    lua_pushboolean(L, res.temporary);
    lua_pushboolean(L, res.cancelled);
    return 5;
}

/* job.cancelled(): true when the message being scanned by this worker was answered already
 * (scan_timeout, the client went away) and must not be delivered. */
static int l_job_cancelled(lua_State *L)
{
    fg_fate *f = fg_fate_current();
    lua_pushboolean(L, f && fg_fate_is_cancelled(f));
    return 1;
}

static const luaL_Reg job_functions[] = {
    {"reinject", l_job_reinject},
    {"cancelled", l_job_cancelled},
    {NULL, NULL},
};

int luaopen_fuglu_job(lua_State *L)
{
    return fg_lua_new_module(L, job_functions);
}

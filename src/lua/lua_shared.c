/* lua_shared: the Lua module `fuglu_shared`: dictionaries shared by every worker thread and worker
 * process, across reloads (pool/shdict.c; OpenResty's ngx.shared.DICT is the model).
 *
 *   local shared = require "fuglu_shared"
 *   local d, err = shared.dict("ratelimit")     -- declared in fuglu.conf: [shared] ratelimit = 10m
 *   d:get(key)                      -> value (string, number, boolean) | nil
 *   d:set(key, value [, ttl])       -> true, nil, evicted | false, "no memory"   (value nil: delete)
 *   d:add(key, value [, ttl])       -> true | false, "exists"
 *   d:replace(key, value [, ttl])   -> true | false, "not found"
 *   d:incr(key, by [, init [, init_ttl]]) -> new value | nil, "not found" | nil, "not a number"
 *   d:delete(key)                   -> true
 *   d:ttl(key)                      -> seconds left (0: never expires) | nil, "not found"
 *   d:expire(key, ttl)              -> true | nil, "not found"
 *   d:keys([max])                   -> array of keys (max default 1024, 0 = all), most recent first
 *   d:flush_all()
 *   d:usage()                       -> entries, free bytes, capacity
 *   shared.create(name, size)       -> a private dictionary of this state (specs, tools)
 *
 * ttl is in seconds (fractions allowed), 0 or absent = never expires. Every call is atomic: incr
 * with an init is the one round trip a rate limiter needs. A full dictionary evicts its least
 * recently used entries; set's third result says it did.
 *
 * The worker hands its state the daemon's set of dictionaries (fg_lua_shared_attach, from
 * fg_lua_env.dicts); shared.dict finds a name there.
 */
#include "lua/lua_core.h"
#include "lua/lua_shared.h"
#include "lib/util.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#define SHARED_CLASS "fuglu.shared.dict"
#define SHARED_SET_KEY "fuglu.shared.set"

typedef struct shared_ud {
    fg_shdict *d;
    bool owned;     /* made by shared.create: freed with the userdata */
} shared_ud;

void fg_lua_shared_attach(lua_State *L, const fg_shdict_list *set)
{
    lua_pushlightuserdata(L, (void *)set);
    lua_setfield(L, LUA_REGISTRYINDEX, SHARED_SET_KEY);
}

const fg_shdict_list *fg_lua_shared_list(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, SHARED_SET_KEY);
    const fg_shdict_list *set = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return set;
}

static fg_shdict *shared_check(lua_State *L)
{
    shared_ud *u = luaL_checkudata(L, 1, SHARED_CLASS);
    if (!u->d)
        luaL_error(L, "shared dict: already freed");
    return u->d;
}

static void shared_push(lua_State *L, fg_shdict *d, bool owned)
{
    shared_ud *u = lua_newuserdata(L, sizeof *u);
    u->d = d;
    u->owned = owned;
    luaL_getmetatable(L, SHARED_CLASS);
    lua_setmetatable(L, -2);
}

static int l_shared_dict(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const fg_shdict_list *set = fg_lua_shared_list(L);
    fg_shdict *d = set ? fg_shdict_list_find(set, name) : NULL;
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "no shared dict '%s' (declare it in fuglu.conf: [shared] %s = 1m)", name, name);
        return 2;
    }
    shared_push(L, d, false);
    return 1;
}

static int l_shared_create(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    size_t size = lua_type(L, 2) == LUA_TNUMBER ? (size_t)lua_tointeger(L, 2)
                                                : fg_shdict_parse_size(luaL_checkstring(L, 2));
    char *err = NULL;
    fg_shdict *d = fg_shdict_create(name, size, &err);
    if (!d) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        free(err);
        return 2;
    }
    shared_push(L, d, true);
    return 1;
}

static int l_shared_gc(lua_State *L)
{
    shared_ud *u = luaL_checkudata(L, 1, SHARED_CLASS);
    if (u->owned)
        fg_shdict_free(u->d);
    u->d = NULL;
    return 0;
}

static int l_shared_tostring(lua_State *L)
{
    shared_ud *u = luaL_checkudata(L, 1, SHARED_CLASS);
    lua_pushfstring(L, "shared dict '%s'", u->d ? fg_shdict_name(u->d) : "(freed)");
    return 1;
}

static void shared_value(lua_State *L, int idx, fg_shvalue *v)
{
    memset(v, 0, sizeof *v);
    switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: v->type = FG_SHV_NONE; break;
    case LUA_TNUMBER: v->type = FG_SHV_NUMBER, v->num = lua_tonumber(L, idx); break;
    case LUA_TBOOLEAN: v->type = FG_SHV_BOOLEAN, v->num = lua_toboolean(L, idx); break;
    case LUA_TSTRING: v->type = FG_SHV_STRING, v->str = lua_tolstring(L, idx, &v->len); break;
    default: luaL_argerror(L, idx, "a string, number, boolean or nil");
    }
}

static double shared_ttl(lua_State *L, int idx)
{
    double ttl = luaL_optnumber(L, idx, 0);
    luaL_argcheck(L, ttl >= 0, idx, "ttl in seconds, 0 = never expires");
    return ttl;
}

static int shared_result(lua_State *L, int rc, bool evicted)
{
    static const char *const why[] = {"", "not found", "exists", "no memory", "not a number"};
    if (rc == FG_SHD_OK) {
        lua_pushboolean(L, 1);
        lua_pushnil(L);
        lua_pushboolean(L, evicted);
        return 3;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, why[rc]);
    return 2;
}

typedef int (*shared_store_fn)(fg_shdict *, const char *, size_t, const fg_shvalue *, double, bool *);

static int shared_store(lua_State *L, shared_store_fn fn)
{
    fg_shdict *d = shared_check(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    luaL_argcheck(L, klen > 0, 2, "an empty key");
    fg_shvalue v;
    shared_value(L, 3, &v);
    double ttl = shared_ttl(L, 4);
    bool evicted = false;
    int rc = fn(d, key, klen, &v, ttl, &evicted);
    return shared_result(L, rc, evicted);
}

static int l_shared_set(lua_State *L) { return shared_store(L, fg_shdict_set); }
static int l_shared_add(lua_State *L) { return shared_store(L, fg_shdict_add); }
static int l_shared_replace(lua_State *L) { return shared_store(L, fg_shdict_replace); }

static int l_shared_get(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    fg_shvalue v;
    if (fg_shdict_get(d, key, klen, &v, NULL) != FG_SHD_OK) {
        lua_pushnil(L);
        return 1;
    }
    switch (v.type) {
    case FG_SHV_STRING:
        lua_pushlstring(L, v.str, v.len);
        free((char *)v.str);
        break;
    case FG_SHV_NUMBER: lua_pushnumber(L, v.num); break;
    case FG_SHV_BOOLEAN: lua_pushboolean(L, v.num != 0); break;
    default: lua_pushnil(L);
    }
    return 1;
}

static int l_shared_incr(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    luaL_argcheck(L, klen > 0, 2, "an empty key");
    double by = luaL_checknumber(L, 3);
    bool has_init = !lua_isnoneornil(L, 4);
    double init = has_init ? luaL_checknumber(L, 4) : 0;
    double init_ttl = shared_ttl(L, 5);
    double result = 0;
    int rc = fg_shdict_incr(d, key, klen, by, has_init, init, init_ttl, &result);
    if (rc != FG_SHD_OK) {
        lua_pushnil(L);
        lua_pushstring(L, rc == FG_SHD_NOT_FOUND ? "not found" : rc == FG_SHD_NOT_NUMBER ? "not a number" : "no memory");
        return 2;
    }
    lua_pushnumber(L, result);
    return 1;
}

static int l_shared_delete(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    fg_shdict_delete(d, key, klen);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_shared_ttl(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    fg_shvalue v;
    double left = 0;
    if (fg_shdict_get(d, key, klen, &v, &left) != FG_SHD_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "not found");
        return 2;
    }
    if (v.type == FG_SHV_STRING)
        free((char *)v.str);
    lua_pushnumber(L, left);
    return 1;
}

static int l_shared_expire(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    size_t klen;
    const char *key = luaL_checklstring(L, 2, &klen);
    if (fg_shdict_expire(d, key, klen, shared_ttl(L, 3)) != FG_SHD_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "not found");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

typedef struct shared_keys {
    char **keys;
    size_t *lens;
    size_t n, cap;
} shared_keys;

static void shared_collect(const char *key, size_t klen, void *arg)
{
    shared_keys *k = arg;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->keys = xrealloc(k->keys, k->cap * sizeof *k->keys);
        k->lens = xrealloc(k->lens, k->cap * sizeof *k->lens);
    }
    k->keys[k->n] = xmalloc(klen);
    memcpy(k->keys[k->n], key, klen);
    k->lens[k->n++] = klen;
}

static int l_shared_keys(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    lua_Integer max = luaL_optinteger(L, 2, 1024);
    luaL_argcheck(L, max >= 0, 2, "0 (all) or a positive count");
    shared_keys k = {0};
    fg_shdict_keys(d, (size_t)max, shared_collect, &k);   /* copied first: no Lua call under the lock */
    lua_createtable(L, (int)k.n, 0);
    for (size_t i = 0; i < k.n; i++) {
        lua_pushlstring(L, k.keys[i], k.lens[i]);
        lua_rawseti(L, -2, (int)i + 1);
        free(k.keys[i]);
    }
    free(k.keys);
    free(k.lens);
    return 1;
}

static int l_shared_flush_all(lua_State *L)
{
    fg_shdict_flush(shared_check(L));
    return 0;
}

static int l_shared_usage(lua_State *L)
{
    fg_shdict *d = shared_check(L);
    size_t entries, free_bytes;
    fg_shdict_usage(d, &entries, &free_bytes);
    lua_pushinteger(L, (lua_Integer)entries);
    lua_pushinteger(L, (lua_Integer)free_bytes);
    lua_pushinteger(L, (lua_Integer)fg_shdict_size(d));
    return 3;
}

static const luaL_Reg shared_methods[] = {
    {"get", l_shared_get},
    {"set", l_shared_set},
    {"add", l_shared_add},
    {"replace", l_shared_replace},
    {"incr", l_shared_incr},
    {"delete", l_shared_delete},
    {"ttl", l_shared_ttl},
    {"expire", l_shared_expire},
    {"keys", l_shared_keys},
    {"flush_all", l_shared_flush_all},
    {"usage", l_shared_usage},
    {NULL, NULL},
};

static const luaL_Reg shared_functions[] = {
    {"dict", l_shared_dict},
    {"create", l_shared_create},
    {NULL, NULL},
};

int luaopen_fuglu_shared(lua_State *L)
{
    fg_lua_class_metatable(L, SHARED_CLASS, shared_methods, l_shared_gc, l_shared_tostring);
    lua_pop(L, 1);
    return fg_lua_new_module(L, shared_functions);
}

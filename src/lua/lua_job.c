/* lua_job: the Lua module `fuglu_job` and the job object: the one fg_job (job.h) a session made,
 * seen from Lua while a worker handles it, and what the worker does with it: re-inject the message
 * downstream (reinject.c, one cached connection per worker thread) and ask whether the job was
 * cancelled meanwhile (its fate word).
 *
 *   job.id, .protocol, .from, .mail_params, .helo, .peer_addr, .local_port, .rcpts, .rcpt_params,
 *   .xforward, .message   read from the fg_job when first asked (tables and the message are made
 *                         once per job); valid while the worker handles it, an error afterwards
 *   local lib = require "fuglu_job"
 *   lib.reinject(t, job)  -> ok, code, text, temporary, cancelled: t says what Lua decided (host,
 *                            port, helo, timeout, from, rcpts, prefix, source or message [, skip:
 *                            leading bytes of message not sent]); the
 *                            envelope's parameters and XFORWARD come from job (without a job, from
 *                            t: mail_params, rcpt_params, xforward; doc/lua-core-api.md)
 *   lib.cancelled()       -> true when the message was answered already and must not be delivered
 *
 * Memory rule: nothing C-allocated crosses a Lua call that may raise; the request's strings stay
 * referenced by the argument table, or by an anchor table for numbers converted to strings.
 */
#include <pthread.h>
#include <string.h>

#include <lauxlib.h>

#include "pool/job.h"
#include "lua/lua_core.h"
#include "lua/lua_job.h"
#include "lua/lua_message.h"
#include "smtp/reinject.h"
#include "lib/util.h"

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

/* ---- the job object ---- */

#define JOB_CLASS "fuglu.job"

typedef struct job_ud {
    fg_job *job;                /* NULL once handed back */
} job_ud;

static job_ud *job_test(lua_State *L, int idx)
{
    job_ud *u = lua_touserdata(L, idx);
    if (!u || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, JOB_CLASS);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? u : NULL;
}

fg_job *fg_lua_job_check(lua_State *L, int idx)
{
    job_ud *u = job_test(L, idx);
    if (!u)
        luaL_typerror(L, idx, "job");
    if (!u->job)
        luaL_error(L, "the job was handed back to its session: read what you need while handling it");
    return u->job;
}

static void job_push_string(lua_State *L, const char *s)
{
    if (s)
        lua_pushstring(L, s);
    else
        lua_pushnil(L);
}

static void job_push_strings(lua_State *L, char *const *items, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, items[i] ? items[i] : "");
        lua_rawseti(L, -2, (int)i + 1);
    }
}

static void job_push_xforward(lua_State *L, const fg_job *job)
{
    if (!job->has_xforward) {
        lua_pushnil(L);
        return;
    }
    const smtp_xforward *xf = &job->xforward;
    const char *names[] = {"name", "addr", "port", "helo", "proto", "source", "ident"};
    const char *values[] = {xf->name, xf->addr, xf->port, xf->helo, xf->proto, xf->source, xf->ident};
    lua_createtable(L, 0, 7);
    for (size_t i = 0; i < 7; i++)
        if (values[i]) {
            lua_pushstring(L, values[i]);
            lua_setfield(L, -2, names[i]);
        }
}

/* job.key: strings and numbers straight from the fg_job; tables and the message made once and
 * kept in the object's environment table, so that job.rcpts is the same table every time. */
static int l_job_index(lua_State *L)
{
    fg_job *job = fg_lua_job_check(L, 1);
    size_t len;
    const char *key = luaL_checklstring(L, 2, &len);
    lua_getfenv(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1))
        return 1;
    lua_pop(L, 1);
    switch (key[0]) {
    case 'i': if (strcmp(key, "id") == 0) { lua_pushstring(L, job->id); return 1; } break;
    case 'p':
        if (strcmp(key, "protocol") == 0) { job_push_string(L, job->protocol); return 1; }
        if (strcmp(key, "peer_addr") == 0) { job_push_string(L, job->peer_addr); return 1; }
        break;
    case 'f': if (strcmp(key, "from") == 0) { lua_pushstring(L, job->mail_from ? job->mail_from : ""); return 1; } break;
    case 'h': if (strcmp(key, "helo") == 0) { job_push_string(L, job->helo); return 1; } break;
    case 'l': if (strcmp(key, "local_port") == 0) { lua_pushinteger(L, job->local_port); return 1; } break;
    case 'm':
        if (strcmp(key, "mail_params") == 0) {
            lua_pushstring(L, job->mail_params ? job->mail_params : "");
            return 1;
        }
        if (strcmp(key, "message") == 0) {
            fg_lua_message_push(L, job->msg);
            goto keep;
        }
        break;
    case 'r':
        if (strcmp(key, "rcpts") == 0) {
            job_push_strings(L, job->rcpts, job->nrcpt);
            goto keep;
        }
        if (strcmp(key, "rcpt_params") == 0) {
            job_push_strings(L, job->rcpt_params, job->nrcpt);
            goto keep;
        }
        break;
    case 'x':
        if (strcmp(key, "xforward") == 0) {
            job_push_xforward(L, job);
            goto keep;
        }
        break;
    }
    lua_pushnil(L);
    return 1;
keep:
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);   /* the environment table, under the value */
    return 1;
}

static int l_job_newindex(lua_State *L)
{
    return luaL_error(L, "the job is read-only (change the Suspect instead): job.%s", luaL_checkstring(L, 2));
}

static int l_job_tostring(lua_State *L)
{
    job_ud *u = job_test(L, 1);
    lua_pushfstring(L, "job %s", u && u->job ? u->job->id : "(handed back)");
    return 1;
}

void fg_lua_job_push(lua_State *L, fg_job *job)
{
    job_ud *u = lua_newuserdata(L, sizeof *u);
    u->job = job;
    if (luaL_newmetatable(L, JOB_CLASS)) {
        lua_pushcfunction(L, l_job_index);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_job_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, l_job_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_setmetatable(L, -2);
    lua_createtable(L, 0, 4);
    lua_setfenv(L, -2);
}

void fg_lua_job_detach(lua_State *L, int idx)
{
    job_ud *u = job_test(L, idx);
    if (u)
        u->job = NULL;
}

void fg_lua_job_release_message(lua_State *L, int idx)
{
    if (!job_test(L, idx))
        return;
    lua_getfenv(L, idx);
    lua_getfield(L, -1, "message");
    if (!lua_isnil(L, -1))
        fg_lua_message_release(L, lua_gettop(L));
    lua_pop(L, 2);
}

/* A recipient's original RCPT parameters: by address, so a Suspect that dropped or reordered
 * recipients still sends each one's own (NOTIFY=..., ORCPT=...). */
static const char *job_rcpt_params(const fg_job *job, const char *rcpt)
{
    for (size_t i = 0; i < job->nrcpt; i++)
        if (strcmp(job->rcpts[i], rcpt) == 0)
            return job->rcpt_params[i];
    return NULL;
}

static int l_job_reinject(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    fg_job *job = lua_isnoneornil(L, 2) ? NULL : fg_lua_job_check(L, 2);
    lua_settop(L, 2);
    lua_newtable(L);
    const int anchor = 3;
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
    req.rcpts = job_field_strings(L, 1, "rcpts", anchor, &req.nrcpt, 0);
    if (req.nrcpt == 0)
        return luaL_error(L, "reinject: rcpts must list at least one recipient");
    if (job) {
        /* The envelope as the client gave it: nothing copied through Lua. */
        req.mail_params = job->mail_params;
        const char **params = lua_newuserdata(L, req.nrcpt * sizeof *params);
        luaL_ref(L, anchor);
        for (size_t i = 0; i < req.nrcpt; i++)
            params[i] = job_rcpt_params(job, req.rcpts[i]);
        req.rcpt_params = params;
        if (job->has_xforward) {
            const smtp_xforward *xf = &job->xforward;
            req.xf_name = xf->name, req.xf_addr = xf->addr, req.xf_port = xf->port, req.xf_helo = xf->helo;
            req.xf_proto = xf->proto, req.xf_source = xf->source, req.xf_ident = xf->ident;
        } else {
            /* made up from the connection, as Fuglu does */
            req.xf_addr = job->peer_addr;
            req.xf_helo = job->helo;
        }
    } else {
        req.mail_params = job_field_string(L, 1, "mail_params", anchor, &len);
        size_t nparams;
        req.rcpt_params = job_field_strings(L, 1, "rcpt_params", anchor, &nparams, req.nrcpt);
    }

    lua_getfield(L, 1, "xforward");
    if (!job && lua_istable(L, -1)) {
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
        /* skip: leading bytes of the message not sent (its header block, replaced in prefix) */
        lua_getfield(L, 1, "skip");
        lua_Integer skip = luaL_optinteger(L, -1, 0);
        lua_pop(L, 1);
        if (skip < 0 || (size_t)skip > req.body_len)
            return luaL_error(L, "reinject: skip must be 0 to the message's size");
        req.body += skip;
        req.body_len -= (size_t)skip;
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

/* lua_dns: the Lua module `fuglu_dns`: DNS lookups for plugins (c-ares for the transport,
 * lib/dnsmsg.c for the answers), with a cache in a shared dictionary.
 *
 *   local cdns = require "fuglu_dns"
 *   local r = assert(cdns.resolver{ nameservers = "127.0.0.1:5353,[::1]:53",  -- "" = /etc/resolv.conf
 *                                   timeout = 3000, attempts = 2,             -- ms per try, tries
 *                                   cache = true })                           -- the daemon's cache
 *   records, err, detail = r:query(name, type)   -- type "A", "AAAA", "TXT", "MX", "PTR", "CNAME", "NS"
 *   results = r:query_many{ {name, type}, ... }  -- all in flight at once; results[i] = {records, err, detail}
 *
 * records: an array of strings (addresses, names, TXT strings joined), or for MX of
 * {preference =, exchange =} sorted by preference; records.ttl is the smallest TTL. A failure
 * gives nil, one of "NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "TIMEOUT", "ERROR", and a detail
 * naming the query ("bl.example TXT: timed out after 2 tries (127.0.0.1:5353)").
 *
 * The calls block the worker thread (like fuglu_socket) and end at the resolver's timeout × tries
 * or at the message's deadline (scan_timeout), whichever is first. The cache is the shared
 * dictionary "fuglu.dnscache" ([main] dnscachesize), so every worker profits from a lookup any
 * of them made; positive answers live for their TTL, NXDOMAIN and NODATA for the SOA's negative
 * TTL (at most an hour), SERVFAIL and timeouts are not cached.
 */
#include "lua/lua_core.h"
#include "monitor/stats.h"
#include "lua/lua_shared.h"
#include "lib/dnsmsg.h"
#include "pool/job.h"
#include "lib/util.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <lauxlib.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_CLASS "fuglu.dns.resolver"
#define DNS_CACHE_DICT "fuglu.dnscache"
#define DNS_MAX_BATCH 256
#define DNS_NEG_TTL_MAX 3600
#define DNS_TTL_MAX 86400
#define DNS_MAX_HOPS 8

typedef struct resolver {
    ares_channel channel;
    bool ready;
    int timeout_ms, attempts;
    char servers[256];          /* for error details */
    fg_shdict *cache;           /* NULL: no cache */
} resolver;

typedef struct dns_query {
    char *name;                 /* as asked (the cache key) */
    char *target;               /* where a CNAME chain led (NULL: name itself) */
    int hops;
    uint32_t chain_ttl;         /* smallest TTL of the CNAMEs followed, 0 = none */
    int type;
    bool done, cached;
    int status;                 /* ares status */
    fg_dns_answer answer;
    const char *parse_error;
} dns_query;

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_init_status;
static void dns_library_init(void) { dns_init_status = ares_library_init(ARES_LIB_INIT_ALL); }

/* ---- the cache: "type:name" -> rcode byte, then per record: 2-byte pref, 4-byte length, bytes ---- */

static void dns_cache_key(fg_buf *k, const dns_query *q)
{
    fg_buf_printf(k, "%d:", q->type);
    for (const char *p = q->name; *p; p++)
        fg_buf_append(k, &(char){(char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p)}, 1);
    if (k->len > 0 && k->data[k->len - 1] == '.')
        k->len--;
}

static bool dns_cache_get(resolver *r, dns_query *q)
{
    if (!r->cache)
        return false;
    fg_buf k;
    fg_buf_init(&k);
    dns_cache_key(&k, q);
    fg_shvalue v;
    double left = 0;
    int rc = fg_shdict_get(r->cache, k.data, k.len, &v, &left);
    fg_buf_free(&k);
    if (rc != FG_SHD_OK)
        return false;
    if (v.type != FG_SHV_STRING || v.len < 1) {
        if (v.type == FG_SHV_STRING)
            free((char *)v.str);
        return false;
    }
    const unsigned char *p = (const unsigned char *)v.str, *end = p + v.len;
    memset(&q->answer, 0, sizeof q->answer);
    q->answer.rcode = *p++;
    q->answer.ttl = left > 0 ? (uint32_t)left : 0;
    while (end - p >= 6) {
        uint16_t pref = (uint16_t)(p[0] << 8 | p[1]);
        uint32_t len = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 | (uint32_t)p[4] << 8 | p[5];
        p += 6;
        if ((size_t)(end - p) < len)
            break;
        q->answer.rr = xrealloc(q->answer.rr, (q->answer.count + 1) * sizeof *q->answer.rr);
        fg_dns_rr *rr = &q->answer.rr[q->answer.count++];
        rr->ttl = q->answer.ttl;
        rr->pref = pref;
        rr->text = xmalloc(len + 1);
        memcpy(rr->text, p, len);
        rr->text[len] = 0;
        rr->len = len;
        p += len;
    }
    free((char *)v.str);
    q->status = ARES_SUCCESS;
    q->done = q->cached = true;
    return true;
}

static void dns_cache_put(resolver *r, const dns_query *q)
{
    const fg_dns_answer *a = &q->answer;
    bool negative = a->rcode == 3 || (a->rcode == 0 && a->count == 0);
    if (!r->cache || (a->rcode != 0 && a->rcode != 3) || a->ttl == 0)
        return;
    uint32_t ttl = a->ttl;
    if (negative && ttl > DNS_NEG_TTL_MAX)
        ttl = DNS_NEG_TTL_MAX;
    if (ttl > DNS_TTL_MAX)
        ttl = DNS_TTL_MAX;
    fg_buf k, v;
    fg_buf_init(&k);
    fg_buf_init(&v);
    dns_cache_key(&k, q);
    unsigned char rcode = (unsigned char)a->rcode;
    fg_buf_append(&v, &rcode, 1);
    for (size_t i = 0; i < a->count; i++) {
        const fg_dns_rr *rr = &a->rr[i];
        unsigned char h[6] = {(unsigned char)(rr->pref >> 8), (unsigned char)rr->pref, (unsigned char)(rr->len >> 24),
                              (unsigned char)(rr->len >> 16), (unsigned char)(rr->len >> 8), (unsigned char)rr->len};
        fg_buf_append(&v, h, 6);
        fg_buf_append(&v, rr->text, rr->len);
    }
    fg_shvalue sv = {.type = FG_SHV_STRING, .str = v.data, .len = v.len};
    fg_shdict_set(r->cache, k.data, k.len, &sv, ttl, NULL);
    fg_buf_free(&k);
    fg_buf_free(&v);
}

/* ---- queries ---- */

/* Names equal ignoring ASCII case and a final dot. */
static bool dns_same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static void dns_callback(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    dns_query *q = arg;
    q->done = true;
    q->status = status;
    if (abuf && alen > 0 && (status == ARES_SUCCESS || status == ARES_ENOTFOUND || status == ARES_ENODATA ||
                             status == ARES_ESERVFAIL || status == ARES_EREFUSED)) {
        if (fg_dns_parse(abuf, (size_t)alen, q->type, &q->answer, &q->parse_error) != 0) {
            q->status = ARES_EBADRESP;
        } else if (q->answer.qtype != q->type || !dns_same_name(q->answer.qname, q->target ? q->target : q->name)) {
            /* NOCHECKRESP lets SERVFAIL and REFUSED through: the question is checked here */
            fg_dns_answer_free(&q->answer);
            q->parse_error = "the answer is for another question";
            q->status = ARES_EBADRESP;
        } else {
            q->status = ARES_SUCCESS;   /* the rcode says the rest */
        }
    }
}

/* Runs the channel until every query is done or the deadline; true when the deadline cut it. */
static bool dns_wait(resolver *r, dns_query *qs, size_t n)
{
    double until = fg_monotonic() + (double)r->timeout_ms * r->attempts / 1000.0 + 0.5;
    double deadline = fg_job_deadline_current();
    bool by_deadline = false;
    if (deadline > 0 && deadline < until) {
        until = deadline;
        by_deadline = true;
    }
    for (;;) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++)
            pending += !qs[i].done;
        if (!pending)
            return false;
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(r->channel, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd p[ARES_GETSOCK_MAXNUM];
        int np = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = (short)((ARES_GETSOCK_READABLE(bits, i) ? POLLIN : 0) | (ARES_GETSOCK_WRITABLE(bits, i) ? POLLOUT : 0));
            if (ev)
                p[np++] = (struct pollfd){.fd = socks[i], .events = ev};
        }
        double left = until - fg_monotonic();
        if (left <= 0) {
            ares_cancel(r->channel);   /* every pending callback runs now with ARES_ECANCELLED */
            return by_deadline;
        }
        struct timeval maxtv = {(time_t)left, (suseconds_t)((left - (double)(time_t)left) * 1e6)}, tv;
        struct timeval *t = ares_timeout(r->channel, &maxtv, &tv);
        int ms = (int)(t->tv_sec * 1000 + t->tv_usec / 1000) + 1;
        int rc = poll(p, (nfds_t)np, ms);
        if (rc < 0 && errno != EINTR)
            return false;
        if (rc <= 0) {
            ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);   /* timeouts */
            continue;
        }
        for (int i = 0; i < np; i++)
            if (p[i].revents)
                ares_process_fd(r->channel, p[i].revents & (POLLIN | POLLERR | POLLHUP) ? p[i].fd : ARES_SOCKET_BAD,
                                p[i].revents & POLLOUT ? p[i].fd : ARES_SOCKET_BAD);
    }
}

/* An answer that is only a CNAME (the server did not follow it): ask again at its target, at most
 * DNS_MAX_HOPS times; true when it was sent again. */
static bool dns_follow(resolver *r, dns_query *q)
{
    fg_dns_answer *a = &q->answer;
    if (q->status != ARES_SUCCESS || a->rcode != 0 || a->count > 0 || !a->cname[0] || q->type == FG_DNS_CNAME ||
        q->hops >= DNS_MAX_HOPS)
        return false;
    free(q->target);
    q->target = xstrdup(a->cname);
    q->chain_ttl = q->chain_ttl && q->chain_ttl < a->cname_ttl ? q->chain_ttl : a->cname_ttl;
    q->hops++;
    fg_dns_answer_free(a);
    memset(a, 0, sizeof *a);
    q->done = false;
    ares_query(r->channel, q->target, ns_c_in, q->type, dns_callback, q);
    return true;
}

static void dns_run(resolver *r, dns_query *qs, size_t n)
{
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if (dns_cache_get(r, &qs[i]))
            continue;
        ares_query(r->channel, qs[i].name, ns_c_in, qs[i].type, dns_callback, &qs[i]);
        sent++;
    }
    bool by_deadline = sent ? dns_wait(r, qs, n) : false;
    for (int round = 0; sent && !by_deadline && round < DNS_MAX_HOPS; round++) {
        size_t again = 0;
        for (size_t i = 0; i < n; i++)
            again += dns_follow(r, &qs[i]);
        if (!again)
            break;
        by_deadline = dns_wait(r, qs, n);
    }
    for (size_t i = 0; i < n; i++) {
        if (qs[i].chain_ttl && qs[i].status == ARES_SUCCESS && qs[i].chain_ttl < qs[i].answer.ttl)
            qs[i].answer.ttl = qs[i].chain_ttl;
        if (qs[i].status == ARES_ECANCELLED || !qs[i].done)
            qs[i].status = by_deadline ? ARES_ECANCELLED : ARES_ETIMEOUT;
        else if (!qs[i].cached && qs[i].status == ARES_SUCCESS)
            dns_cache_put(r, &qs[i]);
    }
}

/* Pushes records (or nil), err, detail for one query: 3 values. */
static int dns_push_result(lua_State *L, resolver *r, dns_query *q)
{
    const char *code = NULL;
    char *detail = NULL;
    const char *tname = fg_dns_type_name(q->type);
    if (q->status == ARES_SUCCESS) {
        int rc = q->answer.rcode;
        if (rc == 0 && q->answer.count > 0) {
            lua_createtable(L, (int)q->answer.count, 1);
            if (q->type == FG_DNS_MX) {
                /* by preference; stable for equal ones */
                for (size_t i = 1; i < q->answer.count; i++)
                    for (size_t j = i; j > 0 && q->answer.rr[j - 1].pref > q->answer.rr[j].pref; j--) {
                        fg_dns_rr t = q->answer.rr[j];
                        q->answer.rr[j] = q->answer.rr[j - 1];
                        q->answer.rr[j - 1] = t;
                    }
            }
            for (size_t i = 0; i < q->answer.count; i++) {
                if (q->type == FG_DNS_MX) {
                    lua_createtable(L, 0, 2);
                    lua_pushinteger(L, q->answer.rr[i].pref);
                    lua_setfield(L, -2, "preference");
                    lua_pushlstring(L, q->answer.rr[i].text, q->answer.rr[i].len);
                    lua_setfield(L, -2, "exchange");
                } else {
                    lua_pushlstring(L, q->answer.rr[i].text, q->answer.rr[i].len);
                }
                lua_rawseti(L, -2, (int)i + 1);
            }
            lua_pushinteger(L, q->answer.ttl);
            lua_setfield(L, -2, "ttl");
            lua_pushnil(L);
            lua_pushnil(L);
            return 3;
        }
        code = rc == 0 ? "NODATA" : rc == 3 ? "NXDOMAIN" : rc == 2 ? "SERVFAIL" : rc == 5 ? "REFUSED" : "ERROR";
        detail = xasprintf("%s %s: %s%s", q->name, tname, code, q->cached ? " (cached)" : "");
    } else if (q->status == ARES_ETIMEOUT || q->status == ARES_ECANCELLED) {
        code = "TIMEOUT";
        detail = xasprintf("%s %s: %s (%s)", q->name, tname,
                           q->status == ARES_ECANCELLED ? "timed out (the message's scan_timeout)" : "timed out",
                           r->servers[0] ? r->servers : "/etc/resolv.conf");
    } else if (q->status == ARES_ESERVFAIL) {
        code = "SERVFAIL";
        detail = xasprintf("%s %s: SERVFAIL", q->name, tname);
    } else if (q->status == ARES_ENOTFOUND) {
        code = "NXDOMAIN";
        detail = xasprintf("%s %s: NXDOMAIN", q->name, tname);
    } else if (q->status == ARES_EREFUSED) {
        code = "REFUSED";
        detail = xasprintf("%s %s: REFUSED", q->name, tname);
    } else {
        code = "ERROR";
        detail = xasprintf("%s %s: %s", q->name, tname, q->status == ARES_EBADRESP && q->parse_error
                                                              ? q->parse_error : ares_strerror(q->status));
    }
    lua_pushnil(L);
    lua_pushstring(L, code);
    lua_pushstring(L, detail);
    free(detail);
    return 3;
}

static void dns_query_free(dns_query *q)
{
    free(q->name);
    free(q->target);
    fg_dns_answer_free(&q->answer);
}

static resolver *dns_check(lua_State *L)
{
    resolver *r = luaL_checkudata(L, 1, DNS_CLASS);
    if (!r->ready)
        luaL_error(L, "dns: resolver closed");
    return r;
}

static int dns_check_type(lua_State *L, int idx)
{
    const char *t = luaL_checkstring(L, idx);
    int type = fg_dns_type_of(t);
    if (!type || type == FG_DNS_SOA)
        luaL_argerror(L, idx, "A, AAAA, TXT, MX, PTR, CNAME or NS");
    return type;
}

static int l_dns_query(lua_State *L)
{
    resolver *r = dns_check(L);
    const char *name = luaL_checkstring(L, 2);
    int type = dns_check_type(L, 3);
    dns_query q = {.name = xstrdup(name), .type = type};
    dns_run(r, &q, 1);
    int n = dns_push_result(L, r, &q);
    dns_query_free(&q);
    return n;
}

static int l_dns_query_many(lua_State *L)
{
    resolver *r = dns_check(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    size_t n = lua_objlen(L, 2);
    luaL_argcheck(L, n <= DNS_MAX_BATCH, 2, "at most 256 queries in one call");
    /* check everything before allocating */
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        luaL_argcheck(L, lua_istable(L, -1), 2, "each query is {name, type}");
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        luaL_argcheck(L, lua_isstring(L, -2) && lua_isstring(L, -1) && fg_dns_type_of(lua_tostring(L, -1)) &&
                         fg_dns_type_of(lua_tostring(L, -1)) != FG_DNS_SOA, 2,
                      "each query is {name, type} with type A, AAAA, TXT, MX, PTR, CNAME or NS");
        lua_pop(L, 3);
    }
    dns_query *qs = xcalloc(n ? n : 1, sizeof *qs);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, 2, (int)i + 1);
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        qs[i].name = xstrdup(lua_tostring(L, -2));
        qs[i].type = fg_dns_type_of(lua_tostring(L, -1));
        lua_pop(L, 3);
    }
    dns_run(r, qs, n);
    /* results: C memory is freed before anything that may raise runs out of its table pushes */
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_createtable(L, 3, 0);
        dns_push_result(L, r, &qs[i]);
        lua_rawseti(L, -4, 3);
        lua_rawseti(L, -3, 2);
        lua_rawseti(L, -2, 1);
        lua_rawseti(L, -2, (int)i + 1);
        dns_query_free(&qs[i]);
    }
    free(qs);
    return 1;
}

static int l_dns_gc(lua_State *L)
{
    resolver *r = luaL_checkudata(L, 1, DNS_CLASS);
    if (r->ready)
        ares_destroy(r->channel);
    r->ready = false;
    return 0;
}

static int l_dns_tostring(lua_State *L)
{
    resolver *r = luaL_checkudata(L, 1, DNS_CLASS);
    lua_pushfstring(L, "dns resolver (%s)", r->servers[0] ? r->servers : "/etc/resolv.conf");
    return 1;
}

/* cdns.resolver{nameservers=, timeout=, attempts=, cache=} */
static int l_dns_resolver(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "nameservers");
    const char *servers = luaL_optstring(L, -1, "");
    lua_getfield(L, 1, "timeout");
    lua_Integer timeout = luaL_optinteger(L, -1, 3000);
    lua_getfield(L, 1, "attempts");
    lua_Integer attempts = luaL_optinteger(L, -1, 2);
    lua_getfield(L, 1, "cache");
    bool cache = lua_toboolean(L, -1);
    luaL_argcheck(L, timeout >= 10 && timeout <= 60000, 1, "timeout: 10 to 60000 ms");
    luaL_argcheck(L, attempts >= 1 && attempts <= 10, 1, "attempts: 1 to 10");
    luaL_argcheck(L, strlen(servers) < sizeof ((resolver *)0)->servers, 1, "nameservers: too long");
    pthread_once(&dns_once, dns_library_init);
    if (dns_init_status != ARES_SUCCESS) {
        lua_pushnil(L);
        lua_pushfstring(L, "c-ares: %s", ares_strerror(dns_init_status));
        return 2;
    }
    resolver *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    struct ares_options o = {.timeout = (int)timeout, .tries = (int)attempts, .flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP};
    int st = ares_init_options(&r->channel, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS);
    if (st != ARES_SUCCESS) {
        lua_pushnil(L);
        lua_pushfstring(L, "dns: cannot set up the resolver: %s", ares_strerror(st));
        return 2;
    }
    r->ready = true;
    r->timeout_ms = (int)timeout;
    r->attempts = (int)attempts;
    luaL_getmetatable(L, DNS_CLASS);
    lua_setmetatable(L, -2);   /* from here __gc destroys the channel */
    if (*servers) {
        st = ares_set_servers_ports_csv(r->channel, servers);
        if (st != ARES_SUCCESS) {
            lua_pushnil(L);
            lua_pushfstring(L, "nameservers '%s': %s (give IP[:port] or [IPv6]:port, comma separated)", servers,
                            ares_strerror(st));
            return 2;
        }
        strcpy(r->servers, servers);
    }
    if (cache) {
        const fg_shdict_list *set = fg_lua_shared_list(L);
        r->cache = set ? fg_shdict_list_find(set, DNS_CACHE_DICT) : NULL;
    }
    return 1;
}

/* the network calls, counted for the running plugin (fuglu_control pluginstats, /metrics) */
static int l_dns_query_counted(lua_State *L) { return fg_lua_net_counted(L, l_dns_query, FG_STATS_NET_DNS); }
static int l_dns_query_many_counted(lua_State *L) { return fg_lua_net_counted(L, l_dns_query_many, FG_STATS_NET_DNS); }

static const luaL_Reg dns_methods[] = {
    {"query", l_dns_query_counted},
    {"query_many", l_dns_query_many_counted},
    {NULL, NULL},
};

static const luaL_Reg dns_functions[] = {
    {"resolver", l_dns_resolver},
    {NULL, NULL},
};

int luaopen_fuglu_dns(lua_State *L)
{
    fg_lua_class_metatable(L, DNS_CLASS, dns_methods, l_dns_gc, l_dns_tostring);
    lua_pop(L, 1);
    return fg_lua_new_module(L, dns_functions);
}

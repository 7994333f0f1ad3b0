/* lua_litset: a multi-literal prefilter for the rule files (`fuglu_regex.literal_set`, see
 * lua_regex.h). lua/fuglu/suspectfilter.lua extracts from each rule's regex the literal text every
 * match must contain (one per top-level alternative) and asks, per field value, which rules'
 * literals occur; only those rules (and the rules without a literal) need their regex.
 *
 * The search is case-insensitive for ASCII letters (a case-sensitive rule's literal is then found
 * too often, never too rarely) and also treats PCRE2's two non-ASCII case equivalents of ASCII
 * letters as their letters: U+212A KELVIN SIGN = k and U+017F LONG S = s (PCRE2 matches /k/i
 * against U+212A in UTF mode). A subject that contains either is searched in a folded copy.
 *
 * Literals are at least 4 bytes long. 4-byte windows of the subject are OR-ed with 0x20 in each
 * byte (a cheap case fold that keeps every caseless match), hashed to 16 bits and looked up in an
 * 8 KB bitmap; only a hit looks at the literals with that hash (a sorted array) and compares
 * them. With m the shortest literal's length, only every (m-3)-th window is looked at (at most
 * every 8th): each occurrence of a literal contains one of those, at one of its first m-3
 * offsets, and the bitmap holds the literal's windows at all of them. With literals of 8 bytes
 * that is about two instructions per subject byte and a well-predicted branch. (A Wu-Manber skip
 * loop was tried first: its data-dependent branches made it slower on mail text.)
 *
 * A set belongs to the Lua state that made it (the scan keeps per-set scratch state).
 */
#include "lua/lua_core.h"
#include "lua/lua_regex.h"
#include "lib/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#define LITSET_METATABLE "fuglu.literal_set"
#define LITSET_MIN_LEN 4
#define LITSET_BITS 16
#define LITSET_MAX_STRIDE 8

typedef struct litset_entry {
    uint32_t hash;      /* hash of the literal's window at offset at */
    uint32_t off;       /* in pool */
    uint32_t len;
    uint32_t id;        /* 1-based */
    uint32_t at;        /* 0..stride-1 */
} litset_entry;

typedef struct fg_litset {
    uint64_t bitmap[(1u << LITSET_BITS) / 64];
    uint32_t min_len;           /* the shortest literal's length */
    uint32_t stride;            /* windows looked at: every stride-th (min_len - 3, at most 8) */
    litset_entry *entries;      /* sorted by hash */
    uint32_t count;
    unsigned char *pool;        /* the literals, lower-cased */
    uint32_t nids;
    uint32_t *stamp;            /* per id: the scan generation that found it */
    uint32_t generation;
    unsigned char *fold;        /* scratch for subjects with U+212A / U+017F */
    size_t fold_cap;
} fg_litset;

static unsigned char litset_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static uint32_t litset_hash_at(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    v |= 0x20202020u;
    return (v * 2654435761u) >> (32 - LITSET_BITS);
}

static int litset_entry_cmp(const void *a, const void *b)
{
    const litset_entry *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int l_litset_gc(lua_State *L)
{
    fg_litset *set = luaL_checkudata(L, 1, LITSET_METATABLE);
    free(set->entries);
    free(set->pool);
    free(set->stamp);
    free(set->fold);
    set->entries = NULL;
    set->pool = NULL;
    set->stamp = NULL;
    set->fold = NULL;
    set->count = 0;
    set->nids = 0;
    return 0;
}

/* literal_set(literals, ids, nids): literals[i] (>= 4 bytes) belongs to ids[i] (1..nids). */
static int l_litset_new(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer nids = luaL_checkinteger(L, 3);
    luaL_argcheck(L, nids >= 0 && nids < 0x40000000, 3, "bad id count");
    size_t count = lua_objlen(L, 1);
    luaL_argcheck(L, count < 0x40000000, 1, "too many literals");
    size_t total = 0;
    for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, 1, (int)i);
        lua_rawgeti(L, 2, (int)i);
        size_t len = 0;
        if (lua_type(L, -2) != LUA_TSTRING || (lua_tolstring(L, -2, &len), len < LITSET_MIN_LEN))
            return luaL_error(L, "literal_set: literal #%d is not a string of at least %d bytes",
                              (int)i, LITSET_MIN_LEN);
        lua_Integer id = lua_tointeger(L, -1);
        if (id < 1 || id > nids)
            return luaL_error(L, "literal_set: id #%d out of range", (int)i);
        total += len;
        lua_pop(L, 2);
    }
    luaL_argcheck(L, total < 0x40000000, 1, "literals too long");

    fg_litset *set = lua_newuserdata(L, sizeof *set);
    memset(set, 0, sizeof *set);
    luaL_getmetatable(L, LITSET_METATABLE);
    lua_setmetatable(L, -2);
    set->min_len = UINT32_MAX;
    for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, 1, (int)i);
        uint32_t len = (uint32_t)lua_objlen(L, -1);
        if (len < set->min_len)
            set->min_len = len;
        lua_pop(L, 1);
    }
    set->stride = count ? set->min_len - LITSET_MIN_LEN + 1 : 1;
    if (set->stride > LITSET_MAX_STRIDE)
        set->stride = LITSET_MAX_STRIDE;
    set->count = (uint32_t)(count * set->stride);
    set->entries = xcalloc(set->count ? set->count : 1, sizeof *set->entries);
    set->pool = xmalloc(total ? total : 1);
    set->stamp = xcalloc((size_t)nids + 1, sizeof *set->stamp);
    set->nids = (uint32_t)nids;
    size_t off = 0;
    for (size_t i = 1; i <= count; i++) {
        lua_rawgeti(L, 1, (int)i);
        lua_rawgeti(L, 2, (int)i);
        size_t len;
        const char *lit = lua_tolstring(L, -2, &len);
        for (size_t j = 0; j < len; j++)
            set->pool[off + j] = litset_lower((unsigned char)lit[j]);
        for (uint32_t at = 0; at < set->stride; at++) {
            litset_entry *e = &set->entries[(i - 1) * set->stride + at];
            e->off = (uint32_t)off;
            e->len = (uint32_t)len;
            e->id = (uint32_t)lua_tointeger(L, -1);
            e->at = at;
            e->hash = litset_hash_at(set->pool + off + at);
            set->bitmap[e->hash >> 6] |= (uint64_t)1 << (e->hash & 63);
        }
        off += len;
        lua_pop(L, 2);
    }
    qsort(set->entries, set->count, sizeof *set->entries, litset_entry_cmp);
    return 1;
}

/* Whether s has U+212A (E2 84 AA) or U+017F (C5 BF). */
static int litset_has_special(const unsigned char *s, size_t n)
{
    for (const unsigned char *p = memchr(s, 0xE2, n); p; p = memchr(p + 1, 0xE2, n - (size_t)(p + 1 - s)))
        if ((size_t)(p - s) + 2 < n && p[1] == 0x84 && p[2] == 0xAA)
            return 1;
    for (const unsigned char *p = memchr(s, 0xC5, n); p; p = memchr(p + 1, 0xC5, n - (size_t)(p + 1 - s)))
        if ((size_t)(p - s) + 1 < n && p[1] == 0xBF)
            return 1;
    return 0;
}

/* The subject folded: ASCII lower case, U+212A -> "k", U+017F -> "s". Returns the new length. */
static size_t litset_fold(fg_litset *set, const unsigned char *s, size_t n)
{
    if (set->fold_cap < n + 1) {
        set->fold = xrealloc(set->fold, n + 1);
        set->fold_cap = n + 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0xE2 && i + 2 < n && s[i + 1] == 0x84 && s[i + 2] == 0xAA) {
            set->fold[o++] = 'k';
            i += 2;
        } else if (s[i] == 0xC5 && i + 1 < n && s[i + 1] == 0xBF) {
            set->fold[o++] = 's';
            i += 1;
        } else {
            set->fold[o++] = litset_lower(s[i]);
        }
    }
    return o;
}

static int litset_caseeq(const unsigned char *s, const unsigned char *lit, size_t len)
{
    for (size_t j = 0; j < len; j++)
        if (litset_lower(s[j]) != lit[j])
            return 0;
    return 1;
}

/* Looks at the window at position i: marks and reports the ids of the literals that contain it at
 * their offset `at` (they start at i - at). Returns the number of ids found so far. */
static int litset_check_at(lua_State *L, fg_litset *set, const unsigned char *s, size_t n, size_t i,
                           int found)
{
    uint32_t h = litset_hash_at(s + i);
    uint32_t lo = 0, hi = set->count;      /* lower bound of h in the sorted entries */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (set->entries[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t k = lo; k < set->count && set->entries[k].hash == h; k++) {
        const litset_entry *en = &set->entries[k];
        if (set->stamp[en->id] == set->generation || en->at > i || en->len > n - (i - en->at))
            continue;
        if (!litset_caseeq(s + i - en->at, set->pool + en->off, en->len))
            continue;
        set->stamp[en->id] = set->generation;
        lua_pushinteger(L, (lua_Integer)en->id);
        lua_rawseti(L, 3, ++found);
    }
    return found;
}

/* set:scan(subject, out) -> k; out[1..k] = the distinct ids whose literal occurs in subject */
static int l_litset_scan(lua_State *L)
{
    fg_litset *set = luaL_checkudata(L, 1, LITSET_METATABLE);
    size_t n;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 2, &n);
    luaL_checktype(L, 3, LUA_TTABLE);
    int found = 0;
    if (set->count == 0 || n < set->min_len) {
        lua_pushinteger(L, 0);
        return 1;
    }
    if (litset_has_special(s, n)) {
        n = litset_fold(set, s, n);
        s = set->fold;
    }
    if (++set->generation == 0) {
        memset(set->stamp, 0, ((size_t)set->nids + 1) * sizeof *set->stamp);
        set->generation = 1;
    }
    /* every occurrence of a literal (at least min_len = stride + 3 bytes) covers a window at a
     * multiple of stride, at one of the offsets 0..stride-1 the bitmap holds for it */
    const uint64_t *bitmap = set->bitmap;
    size_t stride = set->stride;
    for (size_t i = 0; i + LITSET_MIN_LEN <= n && (uint32_t)found < set->nids; i += stride) {
        uint32_t h = litset_hash_at(s + i);
        if (bitmap[h >> 6] & ((uint64_t)1 << (h & 63)))
            found = litset_check_at(L, set, s, n, i, found);
    }
    lua_pushinteger(L, found);
    return 1;
}

static int l_litset_tostring(lua_State *L)
{
    fg_litset *set = luaL_checkudata(L, 1, LITSET_METATABLE);
    lua_pushfstring(L, "literal_set (%d literals, %d ids)", (int)set->count, (int)set->nids);
    return 1;
}

static const luaL_Reg litset_methods[] = {
    {"scan", l_litset_scan},
    {NULL, NULL},
};

void fg_lua_litset_register(lua_State *L)
{
    fg_lua_class_metatable(L, LITSET_METATABLE, litset_methods, l_litset_gc, l_litset_tostring);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_litset_new);
    lua_setfield(L, -2, "literal_set");
}

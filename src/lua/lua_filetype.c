/* lua_filetype: libmagic and libarchive for the attachment blocker (module `fuglu_filetype`, see
 * lua_filetype.h and doc/lua-core-api.md#fuglu_filetype).
 *
 * Magic: one magic_t per Lua state (a worker thread's, since libmagic handles are not thread-safe),
 * loaded on first use and kept in the registry; closed by its __gc. A part's bytes are decoded by
 * the MIME code (lua_mime.c) into a C buffer, typed and freed: they never become a Lua string.
 *
 * Archives: an archive is opened from memory with only the libarchive readers of its type (a zip is
 * read as a zip, never as whatever libarchive would also accept). Every member is listed; with
 * `content`, a member is read into a buffer of at most `maxsize` bytes, counting what is really
 * decompressed (a header may claim any size: a member whose header says more than maxsize is not
 * read, and one that yields more than maxsize bytes is stopped at maxsize + 1), typed with libmagic,
 * and opened in turn when it is an archive and the level allows. Bounds: `maxmembers` entries in
 * all, `maxtotal` bytes decompressed in all (reading and skipping), FT_MAX_DEPTH levels even when
 * the level is unlimited. An archive error is a string in the result's `errors`, never a Lua error.
 * Everything held across Lua calls (handles, buffers) lives in a context userdata whose __gc frees
 * it, so a Lua error (out of memory) in the middle of a scan leaks nothing.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <lauxlib.h>
#include <magic.h>

#include "lua/lua_core.h"
#include "lua/lua_filetype.h"
#include "lua/lua_message.h"
#include "lib/util.h"

#define FT_MAGIC_KEY "fuglu.filetype.magic"
/* libmagic looks at the first 1 MiB of a part at most (its own default is 7 MiB): a type is
 * decided by the start of the data, and a 20 MB text part would otherwise cost seconds */
#define FT_MAGIC_BYTES ((size_t)1 << 20)
#define FT_MAGIC_METATABLE "fuglu.filetype.magic_t"
#define FT_SCAN_METATABLE "fuglu.filetype.scan"
#define FT_MAX_DEPTH 32                       /* archive levels, also when "unlimited" */
#define FT_DEFAULT_MAXSIZE 5000000
#define FT_DEFAULT_MAXMEMBERS 10000
#define FT_MIN_MAXTOTAL ((size_t)64 << 20)
#define FT_MAX_ENABLED 32

/* ---- archive types ---- */

static const struct {
    const char *prefix;
    const char *type;
} ft_magic_types[] = {
    {"application/zip", "zip"},
    {"application/x-zip", "zip"},
    {"application/x-tar", "tar"},
    {"application/x-gtar", "tar"},
    {"application/x-gzip", "gz"},
    {"application/gzip", "gz"},
    {"application/x-bzip2", "bz2"},
    {"application/x-xz", "xz"},
    {"application/x-compress", "z"},
    {"application/x-rar", "rar"},
    {"application/vnd.rar", "rar"},
    {"application/x-7z-compressed", "7z"},
};

/* Longest first, so that "x.tar.gz" is a tar.gz and not a gz. */
static const struct {
    const char *ext;
    const char *type;
} ft_ext_types[] = {
    {"tar.bz2", "bz2"}, {"tar.gz", "gz"}, {"tar.xz", "xz"},
    {"tbz2", "bz2"}, {"tar", "tar"}, {"tgz", "gz"}, {"tbz", "bz2"}, {"txz", "xz"}, {"zip", "zip"},
    {"bz2", "bz2"}, {"rar", "rar"},
    {"gz", "gz"}, {"xz", "xz"}, {"7z", "7z"},
    {"z", "z"},
};

const char *fg_filetype_type_from_magic(const char *mime)
{
    if (!mime)
        return NULL;
    for (size_t i = 0; i < sizeof ft_magic_types / sizeof ft_magic_types[0]; i++)
        if (strncasecmp(mime, ft_magic_types[i].prefix, strlen(ft_magic_types[i].prefix)) == 0)
            return ft_magic_types[i].type;
    return NULL;
}

const char *fg_filetype_type_from_name(const char *name, const char **ext)
{
    if (!name)
        return NULL;
    size_t len = strlen(name);
    for (size_t i = 0; i < sizeof ft_ext_types / sizeof ft_ext_types[0]; i++) {
        size_t n = strlen(ft_ext_types[i].ext);
        if (len > n && name[len - n - 1] == '.' && strcasecmp(name + len - n, ft_ext_types[i].ext) == 0) {
            if (ext)
                *ext = ft_ext_types[i].ext;
            return ft_ext_types[i].type;
        }
    }
    return NULL;
}

typedef struct ft_enabled {
    char *names[FT_MAX_ENABLED];
    int n;                      /* 0: every type is enabled */
} ft_enabled;

static bool ft_is_enabled(const ft_enabled *en, const char *ext)
{
    if (!en || en->n == 0)
        return true;
    for (int i = 0; i < en->n; i++)
        if (strcasecmp(en->names[i], ext) == 0)
            return true;
    return false;
}

/* The archive type of an object: the magic type decides first; otherwise the extension, and then
 * only if that extension is enabled (Fuglu's enabledarchivetypes). *how is "magic" or "extension". */
static const char *ft_detect(const char *mime, const char *name, const ft_enabled *en, const char **how,
                             const char **ext)
{
    const char *type = fg_filetype_type_from_magic(mime);
    if (type) {
        *how = "magic";
        *ext = NULL;
        return type;
    }
    type = fg_filetype_type_from_name(name, ext);
    if (type && ft_is_enabled(en, *ext)) {
        *how = "extension";
        return type;
    }
    return NULL;
}

/* Sets up the readers of one type; false if libarchive lacks one of them. */
static bool ft_setup(struct archive *a, const char *type)
{
    int r = ARCHIVE_OK;
#define FT_TRY(call) do { if ((call) != ARCHIVE_OK) r = ARCHIVE_FATAL; } while (0)
    if (strcmp(type, "zip") == 0) {
        FT_TRY(archive_read_support_format_zip(a));
    } else if (strcmp(type, "tar") == 0) {
        FT_TRY(archive_read_support_format_tar(a));
    } else if (strcmp(type, "7z") == 0) {
        FT_TRY(archive_read_support_format_7zip(a));
    } else if (strcmp(type, "rar") == 0) {
        FT_TRY(archive_read_support_format_rar(a));
        FT_TRY(archive_read_support_format_rar5(a));
    } else {
        if (strcmp(type, "gz") == 0) {
            FT_TRY(archive_read_support_filter_gzip(a));
        } else if (strcmp(type, "bz2") == 0) {
            FT_TRY(archive_read_support_filter_bzip2(a));
        } else if (strcmp(type, "xz") == 0) {
            FT_TRY(archive_read_support_filter_xz(a));
            FT_TRY(archive_read_support_filter_lzma(a));
        } else if (strcmp(type, "z") == 0) {
            FT_TRY(archive_read_support_filter_compress(a));
            FT_TRY(archive_read_support_format_zip(a));
        } else {
            return false;
        }
        FT_TRY(archive_read_support_format_tar(a));
        FT_TRY(archive_read_support_format_raw(a));     /* a plain .gz: one member, the data */
    }
#undef FT_TRY
    return r == ARCHIVE_OK;
}

static const char *const ft_all_types[] = {"zip", "tar", "gz", "bz2", "xz", "z", "7z", "rar"};

static bool ft_setup_ok_type(const char *type)
{
    for (size_t i = 0; i < sizeof ft_all_types / sizeof ft_all_types[0]; i++)
        if (strcmp(ft_all_types[i], type) == 0)
            return true;
    return false;
}

/* ---- magic ---- */

typedef struct ft_magic {
    magic_t cookie;
    char *error;                /* why it could not be loaded (then cookie is NULL) */
} ft_magic;

static int l_ft_magic_gc(lua_State *L)
{
    ft_magic *m = luaL_checkudata(L, 1, FT_MAGIC_METATABLE);
    if (m->cookie)
        magic_close(m->cookie);
    m->cookie = NULL;
    free(m->error);
    m->error = NULL;
    return 0;
}

/* This state's magic handle (loaded on first use); NULL and *err when libmagic cannot load. */
static magic_t ft_magic_get(lua_State *L, const char **err)
{
    lua_getfield(L, LUA_REGISTRYINDEX, FT_MAGIC_KEY);
    ft_magic *m = lua_touserdata(L, -1);
    if (!m) {
        lua_pop(L, 1);
        m = lua_newuserdata(L, sizeof *m);
        m->cookie = NULL;
        m->error = NULL;
        if (luaL_newmetatable(L, FT_MAGIC_METATABLE)) {
            lua_pushcfunction(L, l_ft_magic_gc);
            lua_setfield(L, -2, "__gc");
        }
        lua_setmetatable(L, -2);
        m->cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_ERROR);
        if (!m->cookie) {
            m->error = xstrdup("magic_open failed");
        } else if (magic_setparam(m->cookie, MAGIC_PARAM_BYTES_MAX, &(size_t){FT_MAGIC_BYTES}) != 0 ||
                   magic_load(m->cookie, NULL) != 0) {
            const char *e = magic_error(m->cookie);
            m->error = xasprintf("cannot load the magic database: %s", e ? e : "unknown error");
            magic_close(m->cookie);
            m->cookie = NULL;
        }
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, FT_MAGIC_KEY);
    }
    lua_pop(L, 1);                  /* the registry keeps it */
    *err = m->error;
    return m->cookie;
}

/* The MIME type of data (a libmagic-owned string) or NULL. */
static const char *ft_magic_buffer(magic_t cookie, const char *data, size_t len)
{
    const char *type = magic_buffer(cookie, len ? data : "", len);
    return type;
}

/* Pushes the MIME type of data, or nil and why (no libmagic: the load error; libmagic failed). */
static int ft_push_magic(lua_State *L, magic_t cookie, const char *data, size_t len)
{
    const char *type = NULL;
    if (cookie)
        type = ft_magic_buffer(cookie, data, len);
    if (!type) {
        const char *err = NULL;
        if (!cookie)
            ft_magic_get(L, &err);
        else
            err = magic_error(cookie);
        lua_pushnil(L);
        lua_pushstring(L, err ? err : "magic failed");
        return 2;
    }
    lua_pushstring(L, type);
    return 1;
}

/* ---- the scan context ---- */

/* The archive open at one level and the member of it being read (whose bytes may be the next
 * level's archive). */
typedef struct ft_level {
    struct archive *archive;
    char *buf;
} ft_level;

typedef struct ft_scan {
    ft_level level[FT_MAX_DEPTH + 2];   /* [depth]: the archive whose members are at that depth */
    char *input;                /* decoded part bytes (g_malloc'd) for scan_part */
    magic_t cookie;             /* NULL without content checks */
    ft_enabled enabled;
    size_t maxsize, maxmembers, maxtotal;
    int maxlevel;               /* levels of archives opened, the top one is level 1 */
    bool unlimited;             /* level < 0: FT_MAX_DEPTH, and reaching it is reported */
    bool depth_hit;
    bool content;
    size_t total;               /* bytes decompressed so far */
    size_t nentries;
    const char *truncated;      /* "members", "total", "depth" */
    int entries_idx, errors_idx;
    int nerrors;
} ft_scan;

static void ft_free_archive(ft_level *l)
{
    if (l->archive)
        archive_read_free(l->archive);
    l->archive = NULL;
}

static void ft_free_buf(ft_level *l)
{
    free(l->buf);
    l->buf = NULL;
}

static void ft_scan_free_level(ft_level *l)
{
    ft_free_archive(l);
    ft_free_buf(l);
}

static int l_ft_scan_gc(lua_State *L)
{
    ft_scan *s = luaL_checkudata(L, 1, FT_SCAN_METATABLE);
    for (int i = 0; i < FT_MAX_DEPTH + 2; i++)
        ft_scan_free_level(&s->level[i]);
    g_free(s->input);
    s->input = NULL;
    for (int i = 0; i < s->enabled.n; i++)
        free(s->enabled.names[i]);
    s->enabled.n = 0;
    return 0;
}

static void ft_error(lua_State *L, ft_scan *s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Adds a line to the result's errors (a bounded local buffer: nothing to free if Lua raises). */
static void ft_error(lua_State *L, ft_scan *s, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    lua_pushstring(L, text);
    lua_rawseti(L, s->errors_idx, ++s->nerrors);
}

static size_t ft_opt_size(lua_State *L, int idx, const char *key, size_t def)
{
    lua_getfield(L, idx, key);
    size_t v = def;
    if (lua_isnumber(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        v = n <= 0 ? 0 : n >= (lua_Number)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)n;
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "scan option %s must be a number", key);
    }
    lua_pop(L, 1);
    return v;
}

static void ft_read_enabled(lua_State *L, int idx, ft_enabled *en)
{
    en->n = 0;
    if (lua_type(L, idx) != LUA_TTABLE)
        return;
    size_t n = lua_objlen(L, idx);
    for (size_t i = 1; i <= n && en->n < FT_MAX_ENABLED; i++) {
        lua_rawgeti(L, idx, (int)i);
        const char *name = lua_tostring(L, -1);
        if (name)
            en->names[en->n++] = xstrdup(name);
        lua_pop(L, 1);
    }
}

/* Pushes a new scan context from the options table at opts_idx (or none). */
static ft_scan *ft_scan_new(lua_State *L, int opts_idx)
{
    ft_scan *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    if (luaL_newmetatable(L, FT_SCAN_METATABLE)) {
        lua_pushcfunction(L, l_ft_scan_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    s->maxsize = FT_DEFAULT_MAXSIZE;
    s->maxmembers = FT_DEFAULT_MAXMEMBERS;
    s->maxlevel = 1;
    if (lua_type(L, opts_idx) == LUA_TTABLE) {
        s->maxsize = ft_opt_size(L, opts_idx, "maxsize", FT_DEFAULT_MAXSIZE);
        s->maxmembers = ft_opt_size(L, opts_idx, "maxmembers", FT_DEFAULT_MAXMEMBERS);
        lua_getfield(L, opts_idx, "level");
        if (lua_isnumber(L, -1)) {
            lua_Number lv = lua_tonumber(L, -1);
            s->maxlevel = lv < 0 || lv > FT_MAX_DEPTH ? FT_MAX_DEPTH : (int)lv;
            s->unlimited = lv < 0 || lv > FT_MAX_DEPTH;
        }
        lua_pop(L, 1);
        lua_getfield(L, opts_idx, "content");
        s->content = lua_toboolean(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, opts_idx, "enabled");
        ft_read_enabled(L, lua_gettop(L), &s->enabled);
        lua_pop(L, 1);
    }
    if (s->maxlevel == 0) {         /* level 0: the first archive is still listed, nothing is read */
        s->maxlevel = 1;
        s->content = false;
    }
    size_t def_total = s->maxsize > SIZE_MAX / 16 ? SIZE_MAX / 2 : s->maxsize * 10;
    if (def_total < FT_MIN_MAXTOTAL)
        def_total = FT_MIN_MAXTOTAL;
    s->maxtotal = lua_type(L, opts_idx) == LUA_TTABLE ? ft_opt_size(L, opts_idx, "maxtotal", def_total) : def_total;
    return s;
}

static bool ft_is_zip(struct archive *a)
{
    return (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP;
}

/* Skips the rest of the current member. A zip member is skipped without decompressing it; other
 * formats must decompress to skip, and those bytes count towards maxtotal. False when the scan must
 * stop (budget spent or a fatal error). */
static bool ft_skip(ft_scan *s, struct archive *a)
{
    if (ft_is_zip(a))
        return archive_read_data_skip(a) != ARCHIVE_FATAL;
    for (;;) {
        const void *block;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(a, &block, &size, &offset);
        if (r == ARCHIVE_EOF)
            return true;
        if (r < ARCHIVE_WARN)
            return r != ARCHIVE_FATAL;
        s->total += size;
        if (s->total > s->maxtotal) {
            s->truncated = "total";
            return false;
        }
    }
}

/* The name of the single member of a raw (compressed, not archived) file: the file's name without
 * its compression extension. Result malloc'd. */
static char *ft_raw_name(const char *name)
{
    const char *ext = NULL;
    const char *type = fg_filetype_type_from_name(name, &ext);
    if (!name || !*name)
        return xstrdup("data");
    if (!type)
        return xstrdup(name);
    size_t keep = strlen(name) - strlen(ext) - 1;
    if (strcasecmp(ext, "tgz") == 0 || strcasecmp(ext, "tbz") == 0 || strcasecmp(ext, "tbz2") == 0 ||
        strcasecmp(ext, "txz") == 0)
        return xasprintf("%.*s.tar", (int)keep, name);
    return xasprintf("%.*s", (int)keep, name);
}

static void ft_set_str(lua_State *L, const char *key, const char *value)
{
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

static void ft_set_num(lua_State *L, const char *key, double value)
{
    lua_pushnumber(L, value);
    lua_setfield(L, -2, key);
}

static void ft_set_true(lua_State *L, const char *key)
{
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, key);
}

/* Lists (and with content, reads and types) the members of data[0..len), an archive of `type`
 * called `name`, whose members are at `depth` (1 for the attachment's own archive). Returns false
 * when the whole scan must stop. */
static bool ft_scan_archive(lua_State *L, ft_scan *s, const char *data, size_t len, const char *type,
                            const char *name, int depth)
{
    ft_level *lv = &s->level[depth];
    ft_scan_free_level(lv);
    lv->archive = archive_read_new();
    if (!lv->archive) {
        ft_error(L, s, "%s: archive_read_new failed", name);
        return true;
    }
    struct archive *a = lv->archive;
    if (!ft_setup(a, type)) {
        ft_error(L, s, "%s: libarchive cannot read %s archives", name, type);
        ft_scan_free_level(lv);
        return true;
    }
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        ft_error(L, s, "%s: not a readable %s archive: %s", name, type, archive_error_string(a));
        ft_scan_free_level(lv);
        return true;
    }
    bool go_on = true;
    for (;;) {
        if (s->nentries >= s->maxmembers) {
            s->truncated = "members";
            go_on = false;
            break;
        }
        struct archive_entry *entry;
        int r = archive_read_next_header(a, &entry);
        if (r == ARCHIVE_EOF)
            break;
        if (r == ARCHIVE_RETRY)
            continue;
        if (r == ARCHIVE_WARN)
            ft_error(L, s, "%s: %s", name, archive_error_string(a));
        else if (r != ARCHIVE_OK) {
            ft_error(L, s, "%s: %s", name, archive_error_string(a));
            break;
        }
        bool raw = (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_RAW;
        const char *path = raw ? NULL : archive_entry_pathname_utf8(entry);
        if (!raw && !path)
            path = archive_entry_pathname(entry);
        char *member = raw ? ft_raw_name(name) : xstrdup(path ? path : "");
        lua_createtable(L, 0, 8);
        lua_pushstring(L, member);      /* pushed before the free: an error here leaks it (OOM only) */
        free(member);
        lua_setfield(L, -2, "name");
        lua_pushinteger(L, depth);
        lua_setfield(L, -2, "depth");
        lua_rawseti(L, s->entries_idx, (int)++s->nentries);
        lua_rawgeti(L, s->entries_idx, (int)s->nentries);     /* the entry, to fill in */
        bool sized = archive_entry_size_is_set(entry);
        la_int64_t hdr_size = sized ? archive_entry_size(entry) : -1;
        if (sized)
            ft_set_num(L, "size", (double)hdr_size);
        if (archive_entry_filetype(entry) == AE_IFDIR) {
            ft_set_true(L, "dir");
            lua_pop(L, 1);
            continue;
        }
        if (archive_entry_is_encrypted(entry))
            ft_set_true(L, "encrypted");
        if (!s->content) {
            lua_pop(L, 1);
            if (!ft_skip(s, a)) {
                go_on = false;
                break;
            }
            continue;
        }
        if (sized && hdr_size > 0 && (uint64_t)hdr_size > s->maxsize) {
            ft_set_true(L, "oversize");
            lua_pop(L, 1);
            if (!ft_skip(s, a)) {
                go_on = false;
                break;
            }
            continue;
        }
        /* Read at most maxsize + 1 bytes, whatever the header said. */
        ft_level *mine = lv;            /* this level's member buffer */
        ft_free_buf(mine);
        size_t cap = 0, got = 0;
        bool failed = false, over = false;
        la_ssize_t status = 0;
        for (;;) {
            if (got > s->maxsize) {
                over = true;
                break;
            }
            if (cap - got < 65536) {
                size_t want = cap ? cap * 2 : 65536;
                if (want > s->maxsize + 1)
                    want = s->maxsize + 1;
                if (want <= got) {
                    over = true;
                    break;
                }
                mine->buf = xrealloc(mine->buf, want);
                cap = want;
            }
            size_t room = cap - got < 65536 ? cap - got : 65536;   /* maxtotal overshoots by < 64 KiB */
            la_ssize_t n = archive_read_data(a, mine->buf + got, room);
            if (n == 0)
                break;
            if (n < 0) {
                const char *why = archive_error_string(a) ? archive_error_string(a) : "read error";
                failed = true;
                status = n;
                ft_set_str(L, "error", why);
                lua_getfield(L, -1, "name");
                ft_error(L, s, "%s: member %s: %s", name, lua_tostring(L, -1), why);
                lua_pop(L, 1);
                break;
            }
            got += (size_t)n;
            s->total += (size_t)n;
            if (s->total > s->maxtotal) {
                s->truncated = "total";
                break;
            }
        }
        ft_set_num(L, "read", (double)got);
        if (s->truncated) {
            lua_pop(L, 1);
            ft_free_buf(mine);
            go_on = false;
            break;
        }
        if (over) {
            ft_set_true(L, "oversize");
            lua_pop(L, 1);
            ft_free_buf(mine);
            if (!ft_skip(s, a)) {
                go_on = false;
                break;
            }
            continue;
        }
        if (failed) {
            lua_pop(L, 1);
            ft_free_buf(mine);
            if (status == ARCHIVE_FATAL)
                break;
            continue;
        }
        const char *mime = ft_magic_buffer(s->cookie, mine->buf, got);
        if (mime)
            ft_set_str(L, "magic", mime);
        lua_getfield(L, -1, "name");
        const char *mname = lua_tostring(L, -1);
        const char *how, *ext;
        const char *inner = ft_detect(mime, mname, &s->enabled, &how, &ext);
        if (inner && depth >= s->maxlevel && s->unlimited)
            s->depth_hit = true;
        if (inner && depth < s->maxlevel) {
            {
                lua_pushvalue(L, -2);
                ft_set_str(L, "archive", inner);
                lua_pop(L, 1);
                char *inner_name = xstrdup(mname ? mname : "");
                lua_pop(L, 2);
                bool ok = ft_scan_archive(L, s, mine->buf, got, inner, inner_name, depth + 1);
                free(inner_name);
                ft_free_buf(mine);
                if (!ok) {
                    go_on = false;
                    break;
                }
                continue;
            }
        }
        lua_pop(L, 2);
        ft_free_buf(mine);
    }
    ft_scan_free_level(lv);
    return go_on;
}

/* scan(data or msg, i, opts): data[0..len) is the archive; pushes the result table. */
static int ft_scan_run(lua_State *L, ft_scan *s, int opts_idx, const char *data, size_t len)
{
    const char *name = "";
    const char *type = NULL;
    if (lua_type(L, opts_idx) == LUA_TTABLE) {
        lua_getfield(L, opts_idx, "name");
        name = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
        lua_getfield(L, opts_idx, "type");
        type = lua_tostring(L, -1);
        /* both stay on the stack (anchored) until the end */
    }
    if (s->content) {
        const char *err;
        s->cookie = ft_magic_get(L, &err);
        if (!s->cookie) {
            lua_pushnil(L);
            lua_pushstring(L, err);
            return 2;
        }
    }
    if (!type) {
        const char *how, *ext, *mime = NULL;
        if (s->cookie)
            mime = ft_magic_buffer(s->cookie, data, len);
        else {
            const char *err;
            magic_t cookie = ft_magic_get(L, &err);
            if (cookie)
                mime = ft_magic_buffer(cookie, data, len);
        }
        type = ft_detect(mime, name, &s->enabled, &how, &ext);
    }
    lua_createtable(L, 0, 6);
    int result = lua_gettop(L);
    lua_newtable(L);
    s->entries_idx = lua_gettop(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, result, "entries");
    lua_newtable(L);
    s->errors_idx = lua_gettop(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, result, "errors");
    if (!type) {
        lua_settop(L, result);
        return 1;
    }
    lua_pushstring(L, type);
    lua_setfield(L, result, "type");
    if (!ft_setup_ok_type(type)) {
        ft_error(L, s, "%s: unknown archive type %s", name, type);
    } else {
        ft_scan_archive(L, s, data, len, type, name, 1);
    }
    if (!s->truncated && s->depth_hit)
        s->truncated = "depth";
    if (s->truncated) {
        lua_pushstring(L, s->truncated);
        lua_setfield(L, result, "truncated");
    }
    lua_pushnumber(L, (double)s->total);
    lua_setfield(L, result, "read");
    lua_settop(L, result);
    return 1;
}

/* ---- the module ---- */

/* The fg_lua_mime parse of the message object at idx (made on first use, as msg:mime() does). */
static fg_lua_mime *ft_message_mime(lua_State *L, int idx)
{
    fg_lua_message *m = luaL_checkudata(L, idx, FG_LUA_MESSAGE_METATABLE);
    if (!m->msg)
        luaL_argerror(L, idx, "message object already released");
    if (!m->mime)
        m->mime = fg_lua_mime_parse(fg_msg_data(m->msg), fg_msg_len(m->msg));
    return m->mime;
}

/* magic(data) -> mime type | nil, err; data is a string or a message object. */
static int l_ft_magic(lua_State *L)
{
    size_t len;
    const char *data = fg_lua_bytes(L, 1, &len, "data");
    if (!data)
        return luaL_argerror(L, 1, "string or message object expected");
    return ft_push_magic(L, ft_magic_get(L, &(const char *){NULL}), data, len);
}

/* part_magic(msg, i) -> mime type of the decoded bytes of leaf part i | nil (no leaf part) |
 * nil, err (libmagic). The bytes are decoded and freed in C. */
static int l_ft_part_magic(lua_State *L)
{
    fg_lua_mime *mime = ft_message_mime(L, 1);
    lua_Integer index = luaL_checkinteger(L, 2);
    const char *err;
    magic_t cookie = ft_magic_get(L, &err);   /* first: it may raise, the bytes would leak */
    size_t len;
    char *bytes = cookie ? fg_lua_mime_part_bytes(mime, (long)index, &len) : NULL;
    if (cookie && !bytes) {
        lua_pushnil(L);
        return 1;
    }
    int n = ft_push_magic(L, cookie, bytes, bytes ? len : 0);   /* the type is libmagic's */
    g_free(bytes);
    return n;
}

/* part_size(msg, i) -> bytes of the decoded leaf part i | nil. */
static int l_ft_part_size(lua_State *L)
{
    fg_lua_mime *mime = ft_message_mime(L, 1);
    lua_Integer index = luaL_checkinteger(L, 2);
    size_t len;
    char *bytes = fg_lua_mime_part_bytes(mime, (long)index, &len);
    if (!bytes) {
        lua_pushnil(L);
        return 1;
    }
    g_free(bytes);
    lua_pushnumber(L, (double)len);
    return 1;
}

/* detect(magictype, name[, enabled]) -> type, how ("magic"/"extension"), extension | nil */
static int l_ft_detect(lua_State *L)
{
    const char *mime = luaL_optstring(L, 1, NULL);
    const char *name = luaL_optstring(L, 2, NULL);
    ft_enabled en;
    ft_read_enabled(L, 3, &en);
    const char *how = NULL, *ext = NULL;
    const char *type = ft_detect(mime, name, &en, &how, &ext);
    for (int i = 0; i < en.n; i++)
        free(en.names[i]);
    if (!type) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushstring(L, type);
    lua_pushstring(L, how);
    if (ext)
        lua_pushstring(L, ext);
    else
        lua_pushnil(L);
    return 3;
}

/* scan(data, opts) -> result | nil, err (libmagic missing with content) */
static int l_ft_scan(lua_State *L)
{
    size_t len;
    const char *data = fg_lua_bytes(L, 1, &len, "data");
    if (!data)
        return luaL_argerror(L, 1, "string or message object expected");
    lua_settop(L, 2);
    ft_scan_new(L, 2);
    return ft_scan_run(L, lua_touserdata(L, 3), 2, data, len);
}

/* scan_part(msg, i, opts) -> result | nil (not a leaf part) | nil, err */
static int l_ft_scan_part(lua_State *L)
{
    fg_lua_mime *mime = ft_message_mime(L, 1);
    lua_Integer index = luaL_checkinteger(L, 2);
    lua_settop(L, 3);
    ft_scan *s = ft_scan_new(L, 3);
    size_t len;
    s->input = fg_lua_mime_part_bytes(mime, (long)index, &len);
    if (!s->input) {
        lua_pushnil(L);
        return 1;
    }
    return ft_scan_run(L, s, 3, s->input, len);
}

/* archive_types() -> array of the types libarchive can read here */
static int l_ft_archive_types(lua_State *L)
{
    lua_newtable(L);
    int n = 0;
    for (size_t i = 0; i < sizeof ft_all_types / sizeof ft_all_types[0]; i++) {
        struct archive *a = archive_read_new();
        bool ok = a && ft_setup(a, ft_all_types[i]);
        if (a)
            archive_read_free(a);
        if (ok) {
            lua_pushstring(L, ft_all_types[i]);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/* versions() -> {libarchive =, libmagic =, magic = true | error text} */
static int l_ft_versions(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushstring(L, archive_version_details());
    lua_setfield(L, -2, "libarchive");
    lua_pushfstring(L, "%d.%02d", magic_version() / 100, magic_version() % 100);
    lua_setfield(L, -2, "libmagic");
    const char *err;
    if (ft_magic_get(L, &err))
        lua_pushboolean(L, 1);
    else
        lua_pushstring(L, err);
    lua_setfield(L, -2, "magic");
    return 1;
}

static const luaL_Reg ft_functions[] = {
    {"magic", l_ft_magic},
    {"part_magic", l_ft_part_magic},
    {"part_size", l_ft_part_size},
    {"detect", l_ft_detect},
    {"scan", l_ft_scan},
    {"scan_part", l_ft_scan_part},
    {"archive_types", l_ft_archive_types},
    {"versions", l_ft_versions},
    {NULL, NULL},
};

int luaopen_fuglu_filetype(lua_State *L)
{
    fg_lua_mime_init();
    fg_lua_new_module(L, ft_functions);
    lua_pushinteger(L, FT_MAX_DEPTH);
    lua_setfield(L, -2, "MAX_DEPTH");
    lua_pushinteger(L, FT_DEFAULT_MAXMEMBERS);
    lua_setfield(L, -2, "MAX_MEMBERS");
    return 1;
}

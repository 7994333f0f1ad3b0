/* test_filetype: the module fuglu_filetype (src/lua/lua_filetype.c): archive type detection,
 * libmagic types of strings and of message parts (epilogue parts included), and archive scans
 * with their bounds: member sizes by bytes really read (a header that lies does not matter),
 * member count, nesting levels, broken archives as errors and never a crash. The archives are made
 * here with libarchive's writers (zip, tar.gz, 7z). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lua_core.h"
#include "lua/lua_filetype.h"
#include "lib/util.h"

/* ---- archives made in memory ---- */

typedef struct member {
    const char *name;
    const char *data;           /* NULL: `size` zero bytes */
    size_t size;
} member;

typedef struct blob {
    char *data;
    size_t len;
} blob;

/* format: "zip", "tar.gz" or "7z". */
static blob make_archive(const char *format, const member *members, size_t n)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    if (strcmp(format, "zip") == 0) {
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
    } else if (strcmp(format, "tar.gz") == 0) {
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    } else {
        assert_int_equal(archive_write_set_format_7zip(a), ARCHIVE_OK);
    }
    size_t cap = 16 << 20;
    blob b = {xmalloc(cap), 0};
    assert_int_equal(archive_write_open_memory(a, b.data, cap, &b.len), ARCHIVE_OK);
    static char zeros[1 << 16];
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, members[i].name);
        archive_entry_set_size(e, (la_int64_t)members[i].size);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        size_t left = members[i].size;
        const char *p = members[i].data;
        while (left > 0) {
            size_t chunk = left < sizeof zeros ? left : sizeof zeros;
            la_ssize_t w = archive_write_data(a, p ? p : zeros, chunk);
            assert_true(w > 0);
            left -= (size_t)w;
            if (p)
                p += w;
        }
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
    return b;
}

/* ---- Lua ---- */

/* A DOS/Windows executable stub as libmagic knows it ("MZ" and zeros). */
static const char MZ[256] = {'M', 'Z'};

/* Lua helpers: entries as "name@depth:magic" joined with ",". */
static const char *LIST =
    "function list(r) local t = {} for _, e in ipairs(r.entries) do "
    "t[#t + 1] = e.name .. '@' .. e.depth .. (e.magic and (':' .. e.magic) or '') .. (e.oversize and '!' or '') end "
    "return table.concat(t, ',') end";

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    fg_lua_preload(L);
    if (luaL_dostring(L, "ft = require 'fuglu_filetype'; message = require 'fuglu_message'") != 0 ||
        luaL_dostring(L, LIST) != 0)
        fail_msg("%s", lua_tostring(L, -1));
    return L;
}

static void set_blob(lua_State *L, const char *global, blob b)
{
    lua_pushlstring(L, b.data, b.len);
    lua_setglobal(L, global);
    free(b.data);
}

/* Runs chunk (which returns a string) and compares its result with want. */
static void expect(lua_State *L, const char *chunk, const char *want)
{
    if (luaL_loadstring(L, chunk) != 0 || lua_pcall(L, 0, 1, 0) != 0)
        fail_msg("%s: %s", chunk, lua_tostring(L, -1));
    const char *got = lua_tostring(L, -1);
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s\n  got:  %s\n  want: %s", chunk, got ? got : "(not a string)", want);
    lua_pop(L, 1);
}

static void test_detection(void **state)
{
    (void)state;
    assert_string_equal(fg_filetype_type_from_magic("application/zip"), "zip");
    assert_string_equal(fg_filetype_type_from_magic("application/gzip"), "gz");
    assert_string_equal(fg_filetype_type_from_magic("application/x-7z-compressed"), "7z");
    assert_string_equal(fg_filetype_type_from_magic("application/vnd.rar"), "rar");
    assert_null(fg_filetype_type_from_magic("text/plain"));
    assert_null(fg_filetype_type_from_magic(NULL));
    const char *ext = NULL;
    assert_string_equal(fg_filetype_type_from_name("a.TAR.GZ", &ext), "gz");
    assert_string_equal(ext, "tar.gz");
    assert_string_equal(fg_filetype_type_from_name("a.tgz", &ext), "gz");
    assert_string_equal(fg_filetype_type_from_name("x.Z", &ext), "z");
    assert_string_equal(fg_filetype_type_from_name("b.7z", &ext), "7z");
    assert_null(fg_filetype_type_from_name("zip", &ext));
    assert_null(fg_filetype_type_from_name("a.txt", &ext));

    lua_State *L = new_state();
    /* magic decides first, even against the extension; an extension only if enabled */
    expect(L, "return table.concat({ft.detect('application/zip', 'x.gz')}, ' ')", "zip magic");
    expect(L, "return table.concat({ft.detect('text/plain', 'x.tar.gz')}, ' ')", "gz extension tar.gz");
    expect(L, "return tostring(ft.detect('text/plain', 'x.tar.gz', {'zip'}))", "nil");
    expect(L, "return tostring(ft.detect('application/zip', 'x', {'tar'}))", "zip");
    expect(L, "return table.concat(ft.archive_types(), ' ')", "zip tar gz bz2 xz z 7z rar");
    expect(L, "return tostring(ft.versions().magic)", "true");
    lua_close(L);
}

static void test_magic(void **state)
{
    (void)state;
    lua_State *L = new_state();
    expect(L, "return ft.magic('hello world\\n')", "text/plain");
    expect(L, "return ft.magic('')", "application/x-empty");
    expect(L, "return ft.magic('MZ' .. string.rep('\\0', 200))", "application/x-dosexec");
    expect(L, "return ft.magic(string.rep('\\0', 1000))", "application/octet-stream");
    lua_close(L);
}

static const char *EPILOGUE_MSG =
    "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    "--b\r\nContent-Type: text/plain; name=\"bin.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "TVoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
    "--b--\r\n"
    "Content-Type: application/octet-stream; name=\"x.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "TVoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n";

static void test_parts_and_epilogue(void **state)
{
    (void)state;
    lua_State *L = new_state();
    lua_pushstring(L, EPILOGUE_MSG);
    lua_setglobal(L, "src");
    expect(L, "m = message.from_string(src) local t = {} for _, p in ipairs(m:mime()) do "
              "t[#t + 1] = p.index .. ':' .. p.content_type .. ':' .. tostring(p.filename) .. ':' .. tostring(p.epilogue) end "
              "return table.concat(t, ' ')",
           "1:multipart/mixed:nil:nil 2:text/plain:nil:nil 3:text/plain:bin.txt:nil 4:application/octet-stream:x.exe:true");
    /* the declared text/plain part is an executable by its bytes; the epilogue part is typed too */
    expect(L, "return ft.part_magic(m, 3) .. ' ' .. ft.part_magic(m, 4) .. ' ' .. ft.part_size(m, 4)",
           "application/x-dosexec application/x-dosexec 200");
    expect(L, "return tostring(ft.part_magic(m, 1)) .. ' ' .. tostring(ft.part_magic(m, 99))", "nil nil");
    lua_close(L);
}

static void test_zip_names_and_content(void **state)
{
    (void)state;
    lua_State *L = new_state();
    const member ms[] = {{"readme.txt", "hello there\n", 12}, {"dir/run.exe", MZ, sizeof MZ}};
    set_blob(L, "zip", make_archive("zip", ms, 2));
    expect(L, "local r = ft.scan(zip, {name = 'a.zip'}) return r.type .. ' ' .. list(r)",
           "zip readme.txt@1,dir/run.exe@1");
    expect(L, "local r = ft.scan(zip, {name = 'a.zip', content = true}) return list(r) .. ' ' .. r.read",
           "readme.txt@1:text/plain,dir/run.exe@1:application/x-dosexec 268");
    /* not an archive: no type, nothing listed */
    expect(L, "local r = ft.scan('just text', {name = 'a.txt', content = true}) return tostring(r.type) .. #r.entries", "nil0");
    lua_close(L);
}

static void test_7z(void **state)
{
    (void)state;
    lua_State *L = new_state();
    const member ms[] = {{"inner.exe", MZ, sizeof MZ}, {"note.txt", "hello\n", 6}};
    set_blob(L, "z7", make_archive("7z", ms, 2));
    expect(L, "local r = ft.scan(z7, {name = 'x.bin', content = true}) return r.type .. ' ' .. list(r)",
           "7z inner.exe@1:application/x-dosexec,note.txt@1:text/plain");
    lua_close(L);
}

/* A member larger than maxsize is not kept, and no more than maxsize + 1 bytes of it are read:
 * first with an honest header (not read at all), then with a header that claims 100 bytes. */
static void test_size_cap_and_lying_header(void **state)
{
    (void)state;
    lua_State *L = new_state();
    const member ms[] = {{"bomb.bin", NULL, 50u << 20}, {"after.txt", "still listed\n", 13}};
    blob b = make_archive("zip", ms, 2);
    assert_true(b.len < (1u << 20));            /* 50 MiB of zeros deflate to ~50 KiB */
    lua_pushlstring(L, b.data, b.len);
    lua_setglobal(L, "honest");
    expect(L, "local r = ft.scan(honest, {name = 'b.zip', content = true, maxsize = 1000000}) "
              "return list(r) .. ' ' .. tostring(r.entries[1].read) .. ' ' .. tostring(r.truncated)",
           "bomb.bin@1!,after.txt@1:text/plain nil nil");
    /* patch the uncompressed size in the local header (offset 22) and the central directory
     * entry (offset 24) of the first member to 100 */
    size_t patched = 0;
    for (size_t i = 0; i + 46 < b.len; i++) {
        size_t off = 0;
        if (memcmp(b.data + i, "PK\003\004", 4) == 0 && patched == 0)
            off = i + 22;
        else if (memcmp(b.data + i, "PK\001\002", 4) == 0 && patched == 1)
            off = i + 24;
        if (off) {
            unsigned char v[4] = {100, 0, 0, 0};
            memcpy(b.data + off, v, 4);
            patched++;
        }
    }
    assert_int_equal(patched, 2);
    set_blob(L, "lying", b);
    /* whatever libarchive makes of it (an error, 100 bytes, or the real data), no more than
     * maxsize + 1 bytes are ever read, and the scan ends normally */
    expect(L, "local r = ft.scan(lying, {name = 'b.zip', content = true, maxsize = 1000000}) "
              "local e = r.entries[1] "
              "return tostring(e.name) .. ' ' .. tostring((e.read or 0) <= 1000001) .. ' ' .. tostring(r.read <= 1000001 + 13)",
           "bomb.bin true true");
    lua_close(L);
}

static void test_total_budget_and_members(void **state)
{
    (void)state;
    lua_State *L = new_state();
    member many[40];
    char names[40][24];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "f%02d.txt", i);
        many[i] = (member){names[i], "x\n", 2};
    }
    set_blob(L, "many", make_archive("zip", many, 40));
    expect(L, "local r = ft.scan(many, {name = 'm.zip', maxmembers = 10}) return #r.entries .. ' ' .. r.truncated",
           "10 members");
    const member big[] = {{"a.bin", NULL, 3u << 20}, {"b.bin", NULL, 3u << 20}, {"c.bin", NULL, 3u << 20}};
    set_blob(L, "tgz", make_archive("tar.gz", big, 3));
    /* a tar.gz must be decompressed to be skipped: that counts towards maxtotal too */
    expect(L, "local r = ft.scan(tgz, {name = 't.tgz', content = true, maxsize = 4000000, maxtotal = 5000000}) "
              "return r.truncated .. ' ' .. tostring(r.read <= 5000000 + 65536)",
           "total true");
    expect(L, "local r = ft.scan(tgz, {name = 't.tgz', maxtotal = 5000000}) return tostring(r.truncated)", "total");
    lua_close(L);
}

/* Nesting: a.tar.gz holds l1.txt and b.tar.gz, which holds l2.txt and c.zip, which holds l3.exe. */
static void test_nesting_levels(void **state)
{
    (void)state;
    lua_State *L = new_state();
    const member m3[] = {{"l3.exe", MZ, sizeof MZ}};
    blob c = make_archive("zip", m3, 1);
    const member m2[] = {{"l2.txt", "two\n", 4}, {"c.zip", c.data, c.len}};
    blob b = make_archive("tar.gz", m2, 2);
    free(c.data);
    const member m1[] = {{"l1.txt", "one\n", 4}, {"b.tar.gz", b.data, b.len}};
    blob a = make_archive("tar.gz", m1, 2);
    free(b.data);
    set_blob(L, "nested", a);
    expect(L, "return list(ft.scan(nested, {name = 'a.tar.gz', content = true, level = 1}))",
           "l1.txt@1:text/plain,b.tar.gz@1:application/gzip");
    expect(L, "return list(ft.scan(nested, {name = 'a.tar.gz', content = true, level = 2}))",
           "l1.txt@1:text/plain,b.tar.gz@1:application/gzip,l2.txt@2:text/plain,c.zip@2:application/zip");
    expect(L, "local r = ft.scan(nested, {name = 'a.tar.gz', content = true, level = -1}) "
              "return list(r) .. ' ' .. r.entries[2].archive .. ' ' .. tostring(r.truncated)",
           "l1.txt@1:text/plain,b.tar.gz@1:application/gzip,l2.txt@2:text/plain,c.zip@2:application/zip,"
           "l3.exe@3:application/x-dosexec gz nil");
    /* names only (no content): the first archive's names, nothing read */
    expect(L, "return list(ft.scan(nested, {name = 'a.tar.gz', level = 5}))", "l1.txt@1,b.tar.gz@1");
    /* level 0 lists the first archive without reading members */
    expect(L, "return list(ft.scan(nested, {name = 'a.tar.gz', content = true, level = 0}))", "l1.txt@1,b.tar.gz@1");
    lua_close(L);
}

static void test_broken_archives(void **state)
{
    (void)state;
    lua_State *L = new_state();
    static char noise[200000];              /* incompressible: the cut falls inside two.bin */
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (char)(x >> 24);
    }
    const member ms[] = {{"one.txt", "first member\n", 13}, {"two.bin", noise, sizeof noise}};
    blob b = make_archive("tar.gz", ms, 2);
    lua_pushlstring(L, b.data, b.len / 2);
    lua_setglobal(L, "half");
    free(b.data);
    expect(L, "local r = ft.scan(half, {name = 'h.tgz', content = true}) "
              "return r.entries[1].name .. ' ' .. tostring(#r.errors > 0)", "one.txt true");
    expect(L, "local r = ft.scan('PK\\3\\4garbage garbage garbage', {name = 'g.zip', content = true}) "
              "return r.type .. ' ' .. #r.entries .. ' ' .. tostring(#r.errors > 0)", "zip 0 true");
    /* not gzip after all: the raw reader hands the bytes over as they are, one member */
    expect(L, "local r = ft.scan(string.rep('\\31\\139', 100), {name = 'x.gz', type = 'gz', content = true}) "
              "return list(r)", "x@1:application/gzip");
    expect(L, "local r = ft.scan('abc', {name = 'x', type = 'nonsense'}) return r.errors[1]",
           "x: unknown archive type nonsense");
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detection),
        cmocka_unit_test(test_magic),
        cmocka_unit_test(test_parts_and_epilogue),
        cmocka_unit_test(test_zip_names_and_content),
        cmocka_unit_test(test_7z),
        cmocka_unit_test(test_size_cap_and_lying_header),
        cmocka_unit_test(test_total_budget_and_members),
        cmocka_unit_test(test_nesting_levels),
        cmocka_unit_test(test_broken_archives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

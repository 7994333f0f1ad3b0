/* test_lua_alloc: unit tests of src/lua/lua_alloc.c, the allocator of worker Lua states: the count
 * covers what LuaJIT counts and is back to 0 after lua_close; an injected failure of the Nth
 * allocation (any N) raises "not enough memory" in the protected call and leaves a state that
 * collects and runs again with the count still exact; the limit refuses growth only while enforced;
 * a refusal cancels the running job's fate.
 *
 * The count is malloc's (usable sizes), close to LuaJIT's total, which drifts by a few bytes after
 * some failures (a closure whose upvalue could not be allocated is freed as one without).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <string.h>

#include "pool/job.h"
#include "lua/lua_alloc.h"

/* A chunk that allocates a few hundred KB: strings, tables, closures. */
static const char *const ALLOCATING =
    "local t = {} for i = 1, 5000 do t[i] = { tostring(i) .. 'x', function() return i end } end "
    "return #t";

static size_t lua_count(lua_State *L)
{
    return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

/* Runs code protected with the limit enforced; returns lua_pcall's result, stack emptied. */
static int run_enforced(fg_lua_alloc *a, lua_State *L, const char *code)
{
    if (luaL_loadstring(L, code) != 0)
        return -1;
    a->enforce = true;
    int rc = lua_pcall(L, 0, 1, 0);
    a->enforce = false;
    if (rc == LUA_ERRMEM)
        assert_string_equal(lua_tostring(L, -1), "not enough memory");
    lua_settop(L, 0);
    return rc;
}

static void test_counts_what_luajit_counts(void **state)
{
    (void)state;
    fg_lua_alloc a;
    fg_lua_alloc_init(&a, 0);
    lua_State *L = fg_lua_alloc_newstate(&a);
    assert_non_null(L);
    luaL_openlibs(L);
    assert_in_range(fg_lua_alloc_used(&a), lua_count(L) - 64, lua_count(L) * 2);
    assert_int_equal(run_enforced(&a, L, ALLOCATING), 0);
    assert_in_range(fg_lua_alloc_used(&a), lua_count(L) - 64, lua_count(L) * 2);
    lua_gc(L, LUA_GCCOLLECT, 0);
    assert_in_range(fg_lua_alloc_used(&a), lua_count(L) - 64, lua_count(L) * 2);
    lua_close(L);
    assert_int_equal(fg_lua_alloc_used(&a), 0);
    assert_int_equal(a.refused, 0);
}

/* The Nth growing allocation fails, for many N: every point of the chunk, the compiler's and the
 * collector's allocations included, must leave a sound state. */
static void test_nth_allocation_fails_and_the_state_survives(void **state)
{
    (void)state;
    int raised = 0, runs = 0;
    for (unsigned long n = 1; n <= 400; n += (n < 40 ? 1 : 23)) {
        fg_lua_alloc a;
        fg_lua_alloc_init(&a, 0);
        lua_State *L = fg_lua_alloc_newstate(&a);
        luaL_openlibs(L);
        a.fail_countdown = n;
        /* 0 when LuaJIT absorbed the failure itself (the JIT compiler abandons a trace) */
        int rc = run_enforced(&a, L, ALLOCATING);
        if (rc != LUA_ERRMEM && rc != 0)
            fail_msg("n = %lu: rc %d", n, rc);
        raised += rc == LUA_ERRMEM;
        runs++;
        assert_int_equal(a.refused, 1);
        assert_int_equal(a.fail_countdown, 0);
        lua_gc(L, LUA_GCCOLLECT, 0);
        assert_in_range(fg_lua_alloc_used(&a), lua_count(L) - 64, lua_count(L) * 2);
        /* usable again: the same chunk runs to the end */
        assert_int_equal(run_enforced(&a, L, ALLOCATING), 0);
        assert_in_range(fg_lua_alloc_used(&a), lua_count(L) - 64, lua_count(L) * 2);
        lua_close(L);
        assert_int_equal(fg_lua_alloc_used(&a), 0);
    }
    assert_true(raised > runs / 2);
}

static void test_limit_refuses_growth_while_enforced(void **state)
{
    (void)state;
    fg_lua_alloc a;
    fg_lua_alloc_init(&a, 0);
    lua_State *L = fg_lua_alloc_newstate(&a);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCCOLLECT, 0);
    size_t base = fg_lua_alloc_used(&a);
    a.limit = base + 64 * 1024;
    /* A 1 MB string cannot be built under the limit... */
    assert_int_equal(run_enforced(&a, L, "big = string.rep('x', 1024 * 1024) return #big"), LUA_ERRMEM);
    assert_true(a.refused >= 1);
    assert_true(fg_lua_alloc_used(&a) <= a.limit);
    lua_gc(L, LUA_GCCOLLECT, 0);
    assert_true(fg_lua_alloc_used(&a) <= base + 8192);
    assert_in_range(fg_lua_alloc_used(&a), lua_count(L) - 64, lua_count(L) * 2);
    /* ...small work still runs under it... */
    unsigned long refused = a.refused;
    assert_int_equal(run_enforced(&a, L, "local s = 0 for i = 1, 100 do s = s + #tostring(i) end return s"), 0);
    assert_int_equal(a.refused, refused);
    /* ...and outside a protected call the limit does not apply (the panic function would end the
     * process): C-side pushes may go past it. */
    lua_pushstring(L, "y");
    lua_pushinteger(L, 1024 * 1024);
    lua_getglobal(L, "string");
    lua_getfield(L, -1, "rep");
    lua_remove(L, -2);
    lua_insert(L, -3);
    lua_call(L, 2, 1);
    assert_int_equal(lua_objlen(L, -1), 1024 * 1024);
    assert_true(fg_lua_alloc_used(&a) > a.limit);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_close(L);
    assert_int_equal(fg_lua_alloc_used(&a), 0);
}

static void test_refusal_cancels_the_running_job(void **state)
{
    (void)state;
    fg_lua_alloc a;
    fg_lua_alloc_init(&a, 0);
    lua_State *L = fg_lua_alloc_newstate(&a);
    luaL_openlibs(L);
    fg_fate fate = FG_FATE_OPEN;
    fg_fate_set_current(&fate);
    assert_int_equal(run_enforced(&a, L, ALLOCATING), 0);
    assert_false(fg_fate_is_cancelled(&fate));
    a.fail_countdown = 5;
    assert_int_equal(run_enforced(&a, L, ALLOCATING), LUA_ERRMEM);
    assert_true(fg_fate_is_cancelled(&fate));
    /* A committed job stays committed: its message is on its way downstream. */
    fg_fate committed = FG_FATE_OPEN;
    assert_true(fg_fate_commit(&committed));
    fg_fate_set_current(&committed);
    a.fail_countdown = 5;
    assert_int_equal(run_enforced(&a, L, ALLOCATING), LUA_ERRMEM);
    assert_false(fg_fate_is_cancelled(&committed));
    fg_fate_set_current(NULL);
    lua_close(L);
    assert_int_equal(fg_lua_alloc_used(&a), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_what_luajit_counts),
        cmocka_unit_test(test_nth_allocation_fails_and_the_state_survives),
        cmocka_unit_test(test_limit_refuses_growth_while_enforced),
        cmocka_unit_test(test_refusal_cancels_the_running_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

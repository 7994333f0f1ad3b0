/* lua_alloc: counting, limiting allocator for worker Lua states. See lua_alloc.h. */
#include "lua/lua_alloc.h"
#include "pool/job.h"
#include "lib/util.h"

#include <lua.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void fg_lua_alloc_init(fg_lua_alloc *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    atomic_init(&a->used, 0);
    a->limit = limit;
}

/* The single writer's update: a relaxed load and store, not a read-modify-write (see the header). */
static void alloc_account(fg_lua_alloc *a, size_t osize, size_t nsize)
{
    size_t used = atomic_load_explicit(&a->used, memory_order_relaxed);
    atomic_store_explicit(&a->used, used - osize + nsize, memory_order_relaxed);
}

/* Whether growing a block of osize bytes to nsize is refused: the limit or the test hook. */
static bool alloc_refuse(fg_lua_alloc *a, size_t osize, size_t nsize)
{
    if (!a->enforce || nsize <= osize)
        return false;
    if (a->fail_countdown > 0 && --a->fail_countdown == 0)
        return true;
    size_t used = atomic_load_explicit(&a->used, memory_order_relaxed);
    return a->limit > 0 && used - osize + nsize > a->limit;
}

/* Counted are the sizes malloc really holds (malloc_usable_size), not the sizes LuaJIT passes: they
 * are the process's memory, and LuaJIT's are not always the ones it allocated (a closure whose
 * upvalues could not all be allocated is freed with the size of one without upvalues), so after
 * such a failure a count of LuaJIT's sizes would never return to 0. */
void *fg_lua_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fg_lua_alloc *a = ud;
    (void)osize;
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    if (nsize == 0) {
        free(ptr);
        alloc_account(a, old, 0);
        return NULL;
    }
    if (alloc_refuse(a, old, nsize)) {
        a->refused++;
        /* A plugin's error is caught by the pipeline and the chain goes on to the re-injection:
         * the job must not be delivered after its state ran out of memory, so it is cancelled here
         * (a no-op once it is committed, i.e. its final dot is on the way downstream). */
        fg_fate *f = fg_fate_current();
        if (f)
            fg_fate_cancel(f);
        return NULL;   /* LuaJIT keeps the old block and raises "not enough memory" */
    }
    void *p = realloc(ptr, nsize);
    if (p)
        alloc_account(a, old, malloc_usable_size(p));
    return p;
}

size_t fg_lua_alloc_used(const fg_lua_alloc *a)
{
    return atomic_load_explicit((_Atomic size_t *)&a->used, memory_order_relaxed);
}

static int l_alloc_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fg_panic("unprotected error in a Lua state: %s", msg ? msg : "(error object is not a string)");
    return 0;
}

lua_State *fg_lua_alloc_newstate(fg_lua_alloc *a)
{
    lua_State *L = lua_newstate(fg_lua_alloc_fn, a);
    if (L)
        lua_atpanic(L, l_alloc_panic);
    return L;
}

/* lua_alloc: the allocator of a worker's Lua state (lua_newstate), counting the bytes the state
 * uses and refusing growth beyond an optional limit ([performance] luamemlimit).
 *
 * One fg_lua_alloc belongs to one fg_lua_worker and outlives every state created with it (a state
 * that has to be recreated gets the same allocator, so its counter carries on). Only the thread
 * that runs the state allocates, so the counter has one writer; other threads (the control socket,
 * /metrics on the main thread) read it at any time, which is why it is an atomic written with plain
 * relaxed load/store pairs: no locked instruction per allocation.
 *
 * The limit is enforced only while `enforce` is set, i.e. around protected calls (lua_pcall): an
 * allocation refused outside one would reach the panic function and end the process. A refused
 * allocation makes LuaJIT raise "not enough memory" (LUA_ERRMEM) in the running protected call,
 * and cancels the fate of the job the thread is running (job.h), so that a message whose scan ran
 * out of memory is never delivered, even when the pipeline caught the plugin's error.
 */
#ifndef FUGLU_LUA_ALLOC_H
#define FUGLU_LUA_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fg_lua_alloc {
    _Atomic size_t used;        /* bytes of the state's blocks as malloc holds them (usable size) */
    size_t limit;               /* 0: no limit */
    bool enforce;               /* the limit (and fail_countdown) apply only while set */
    unsigned long refused;      /* growing allocations refused so far */
    /* Test hook: when > 0, counts growing allocations down while enforced, and the one that
     * brings it to 0 is refused (then it stays 0: no further injected failure). */
    unsigned long fail_countdown;
} fg_lua_alloc;

/* A zeroed allocator with the given limit (0 = none). */
void fg_lua_alloc_init(fg_lua_alloc *a, size_t limit);
/* The lua_Alloc function; ud is the fg_lua_alloc. */
void *fg_lua_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize);
/* Bytes in use, from any thread. */
size_t fg_lua_alloc_used(const fg_lua_alloc *a);
/* A new state allocating through a (NULL: no memory, as lua_newstate), with a panic function that
 * reports the error through fg_panic instead of LuaJIT's silent exit. */
struct lua_State *fg_lua_alloc_newstate(fg_lua_alloc *a);

#endif

/* shdict: named, size-bounded key/value dictionaries in shared memory, shared by every worker
 * thread and worker process of every generation (OpenResty's ngx.shared.DICT is the model).
 *
 * Each dictionary is one memfd mapped MAP_SHARED: a header with a process-shared robust mutex, a
 * hash table of offsets (never pointers: each process maps it elsewhere), an LRU list and a heap
 * of blocks in power-of-two size classes. The controller creates them from fuglu.conf's [shared]
 * section at start (and any new name at reload); they live until the daemon exits, so a reload
 * keeps their contents. A process worker maps the same memfds (passed at its start).
 *
 * Every operation takes the mutex for a bounded time (no call into Lua, no allocation outside the
 * map). A writer that needs room evicts the least recently used entries; expired entries count as
 * absent and are reclaimed on the way. If a worker process dies while holding the mutex
 * (EOWNERDEAD: the watchdog's kill -9), the dictionary may be half-updated: it is emptied, and the
 * next caller logs that once.
 */
#ifndef FUGLU_SHDICT_H
#define FUGLU_SHDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fg_shdict fg_shdict;

#define FG_SHDICT_MIN_SIZE (64u * 1024)
#define FG_SHDICT_MAX_SIZE ((size_t)1 << 34)    /* 16 GiB */
#define FG_SHDICT_NAME_MAX 63
#define FG_SHDICT_MAX_ITEM ((size_t)1 << 20)    /* key + value + the entry header fit in 1 MiB */

/* A new dictionary of `size` bytes (rounded to pages; FG_SHDICT_MIN_SIZE..FG_SHDICT_MAX_SIZE). */
fg_shdict *fg_shdict_create(const char *name, size_t size, char **err);
/* Maps the dictionary behind fd (from fg_shdict_fd of another process); takes ownership of fd. */
fg_shdict *fg_shdict_attach(int fd, char **err);
void fg_shdict_free(fg_shdict *d);
const char *fg_shdict_name(const fg_shdict *d);
size_t fg_shdict_size(const fg_shdict *d);
int fg_shdict_fd(const fg_shdict *d);

/* Value types. */
enum { FG_SHV_NONE = 0, FG_SHV_STRING = 1, FG_SHV_NUMBER = 2, FG_SHV_BOOLEAN = 3 };

typedef struct fg_shvalue {
    int type;
    const char *str;        /* STRING: the bytes (for set), or a copy the caller frees (get) */
    size_t len;
    double num;             /* NUMBER; BOOLEAN: 0 or 1 */
} fg_shvalue;

/* Results. */
enum {
    FG_SHD_OK = 0,
    FG_SHD_NOT_FOUND = 1,   /* get, incr without init, replace */
    FG_SHD_EXISTS = 2,      /* add */
    FG_SHD_NO_MEMORY = 3,   /* even after evicting every entry, or an item over FG_SHDICT_MAX_ITEM */
    FG_SHD_NOT_NUMBER = 4,  /* incr on a non-number */
};

/* ttl in seconds, 0 = never expires. *evicted (may be NULL): other entries were evicted for room. */
int fg_shdict_set(fg_shdict *d, const char *key, size_t klen, const fg_shvalue *v, double ttl, bool *evicted);
int fg_shdict_add(fg_shdict *d, const char *key, size_t klen, const fg_shvalue *v, double ttl, bool *evicted);
int fg_shdict_replace(fg_shdict *d, const char *key, size_t klen, const fg_shvalue *v, double ttl, bool *evicted);
/* v->str is malloc'd for a string (caller frees). *ttl_left: seconds left, 0 = none (may be NULL). */
int fg_shdict_get(fg_shdict *d, const char *key, size_t klen, fg_shvalue *v, double *ttl_left);
/* Adds by to a number. Missing (or expired) and has_init: init + by is stored with init_ttl. */
int fg_shdict_incr(fg_shdict *d, const char *key, size_t klen, double by, bool has_init, double init,
                   double init_ttl, double *result);
int fg_shdict_delete(fg_shdict *d, const char *key, size_t klen);
/* Sets a present entry's ttl (0 = never expires). */
int fg_shdict_expire(fg_shdict *d, const char *key, size_t klen, double ttl);
/* Calls fn for up to max live keys (0 = all), in no particular order, under the lock: fn must not
 * call back into the dictionary. */
void fg_shdict_keys(fg_shdict *d, size_t max, void (*fn)(const char *key, size_t klen, void *arg), void *arg);
void fg_shdict_flush(fg_shdict *d);
/* Live entries and bytes of the heap not used by entries (free lists and never used). */
void fg_shdict_usage(fg_shdict *d, size_t *entries, size_t *free_bytes);

/* The dictionaries a worker can reach, by name. Append-only up to FG_SHDICT_LIST_MAX (a reload adds
 * new names; readers on other threads see a consistent prefix). */
#define FG_SHDICT_LIST_MAX 64
typedef struct fg_shdict_list {
    fg_shdict *dicts[FG_SHDICT_LIST_MAX];
    _Atomic size_t count;
} fg_shdict_list;

fg_shdict *fg_shdict_list_find(const fg_shdict_list *s, const char *name);
/* 0, or -1 when the set is full. */
int fg_shdict_list_add(fg_shdict_list *s, fg_shdict *d);
void fg_shdict_list_free_all(fg_shdict_list *s);

/* "10m", "512k", "1g", "65536" -> bytes; 0 on a malformed size. */
size_t fg_shdict_parse_size(const char *text);
/* A [shared] line "name = value": its size, or 0 with *err (for lint and the controller). */
size_t fg_shdict_check_spec(const char *name, const char *value, char **err);

#endif

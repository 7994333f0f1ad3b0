/* shdict: shared-memory dictionaries (see shdict.h). */
#include "pool/shdict.h"
#include "log/log.h"
#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHD_MAGIC 0x48534746u       /* "FGSH" */
#define SHD_VERSION 1
#define SHD_CLASSES 15              /* blocks of 64 << 0 .. 64 << 14 (1 MiB) bytes */
#define SHD_EVICT_MAX 100000        /* evictions one write may make before it gives up */

typedef struct shd_header {
    uint32_t magic, version;
    uint64_t size;
    char name[FG_SHDICT_NAME_MAX + 1];
    pthread_mutex_t mu;             /* process-shared, robust */
    uint64_t nbuckets;              /* a power of two */
    uint64_t buckets_off;           /* uint64_t[nbuckets]: the first entry of each chain */
    uint64_t heap_off, heap_end, bump;
    uint64_t free_head[SHD_CLASSES];
    uint64_t lru_head, lru_tail;    /* most recently used first */
    uint64_t count;
    uint64_t used;                  /* bytes in blocks that hold entries */
} shd_header;

typedef struct shd_entry {
    uint64_t hnext;                 /* next in its hash chain (0: none) */
    uint64_t lprev, lnext;          /* LRU neighbours */
    double expires;                 /* monotonic seconds, 0 = never */
    double num;
    uint32_t hash, klen, vlen;
    uint8_t type, cls;
    char data[];                    /* the key, then a string value */
} shd_entry;

struct fg_shdict {
    int fd;
    size_t size;
    unsigned char *base;
    shd_header *h;
};

#define E(d, off) ((shd_entry *)((d)->base + (off)))

static uint64_t *shd_buckets(fg_shdict *d)
{
    return (uint64_t *)(d->base + d->h->buckets_off);
}

static uint32_t shd_hash(const char *key, size_t len)
{
    uint32_t h = 2166136261u;                /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h;
}

/* ---- layout ---- */

static void shd_format(fg_shdict *d)
{
    shd_header *h = d->h;
    uint64_t nb = 64;
    while (nb * 512 < d->size && nb < (1u << 24))
        nb <<= 1;
    h->nbuckets = nb;
    h->buckets_off = (sizeof *h + 63) & ~(uint64_t)63;
    h->heap_off = (h->buckets_off + nb * sizeof(uint64_t) + 63) & ~(uint64_t)63;
    h->heap_end = d->size;
    h->bump = h->heap_off;
    memset(h->free_head, 0, sizeof h->free_head);
    h->lru_head = h->lru_tail = 0;
    h->count = 0;
    h->used = 0;
    memset(shd_buckets(d), 0, nb * sizeof(uint64_t));
}

static void shd_lock(fg_shdict *d)
{
    int rc = pthread_mutex_lock(&d->h->mu);
    if (rc == EOWNERDEAD) {
        /* Its holder died in the middle of an update: nothing in it can be trusted. */
        shd_format(d);
        pthread_mutex_consistent(&d->h->mu);
        fg_log("fuglu.shared", FG_WARNING, "shared dict '%s': a worker died while updating it; emptied",
               d->h->name);
    } else if (rc != 0) {
        fg_panic("shared dict '%s': pthread_mutex_lock: %s", d->h->name, strerror(rc));
    }
}

static void shd_unlock(fg_shdict *d)
{
    pthread_mutex_unlock(&d->h->mu);
}

static fg_shdict *shd_map(int fd, size_t size, char **err)
{
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        *err = xasprintf("mmap: %s", strerror(errno));
        return NULL;
    }
    fg_shdict *d = xcalloc(1, sizeof *d);
    d->fd = fd;
    d->size = size;
    d->base = base;
    d->h = base;
    return d;
}

size_t fg_shdict_parse_size(const char *text)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (end == text || errno != 0)
        return 0;
    unsigned long long mul = 1;
    if (*end && strchr("kK", *end))
        mul = 1024, end++;
    else if (*end && strchr("mM", *end))
        mul = 1024 * 1024, end++;
    else if (*end && strchr("gG", *end))
        mul = 1024ull * 1024 * 1024, end++;
    if (*end && strchr("bB", *end))
        end++;
    if (*end || n > (unsigned long long)FG_SHDICT_MAX_SIZE / mul)
        return 0;
    return (size_t)(n * mul);
}

size_t fg_shdict_check_spec(const char *name, const char *value, char **err)
{
    size_t size = fg_shdict_parse_size(value);
    if (!size || size < FG_SHDICT_MIN_SIZE || size > FG_SHDICT_MAX_SIZE) {
        *err = xasprintf("[shared] %s = %s: not a size from 64k to 16g (e.g. 10m)", name, value);
        return 0;
    }
    if (!*name || strlen(name) > FG_SHDICT_NAME_MAX) {
        *err = xasprintf("[shared] %s: a name of 1 to %d characters", name, FG_SHDICT_NAME_MAX);
        return 0;
    }
    return size;
}

fg_shdict *fg_shdict_create(const char *name, size_t size, char **err)
{
    if (!*name || strlen(name) > FG_SHDICT_NAME_MAX) {
        *err = xasprintf("shared dict name '%s': 1 to %d characters", name, FG_SHDICT_NAME_MAX);
        return NULL;
    }
    if (size < FG_SHDICT_MIN_SIZE || size > FG_SHDICT_MAX_SIZE) {
        *err = xasprintf("shared dict '%s': size %zu out of range (64k to 16g)", name, size);
        return NULL;
    }
    size = (size + 4095) & ~(size_t)4095;
    char label[80];
    snprintf(label, sizeof label, "fuglu-shared-%s", name);
    int fd = memfd_create(label, MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        *err = xasprintf("shared dict '%s': memfd of %zu bytes: %s", name, size, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    fg_shdict *d = shd_map(fd, size, err);
    if (!d) {
        close(fd);
        return NULL;
    }
    shd_header *h = d->h;
    h->magic = SHD_MAGIC;
    h->version = SHD_VERSION;
    h->size = size;
    snprintf(h->name, sizeof h->name, "%s", name);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&h->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    shd_format(d);
    return d;
}

fg_shdict *fg_shdict_attach(int fd, char **err)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < FG_SHDICT_MIN_SIZE) {
        *err = xstrdup("shared dict: not a dictionary descriptor");
        close(fd);
        return NULL;
    }
    fg_shdict *d = shd_map(fd, (size_t)st.st_size, err);
    if (!d) {
        close(fd);
        return NULL;
    }
    if (d->h->magic != SHD_MAGIC || d->h->version != SHD_VERSION || d->h->size != d->size) {
        *err = xstrdup("shared dict: descriptor holds no dictionary of this version");
        fg_shdict_free(d);
        return NULL;
    }
    return d;
}

void fg_shdict_free(fg_shdict *d)
{
    if (!d)
        return;
    munmap(d->base, d->size);
    close(d->fd);
    free(d);
}

const char *fg_shdict_name(const fg_shdict *d) { return d->h->name; }
size_t fg_shdict_size(const fg_shdict *d) { return d->size; }
int fg_shdict_fd(const fg_shdict *d) { return d->fd; }

/* ---- entries (all under the lock) ---- */

static void lru_unlink(fg_shdict *d, uint64_t off)
{
    shd_entry *e = E(d, off);
    if (e->lprev)
        E(d, e->lprev)->lnext = e->lnext;
    else
        d->h->lru_head = e->lnext;
    if (e->lnext)
        E(d, e->lnext)->lprev = e->lprev;
    else
        d->h->lru_tail = e->lprev;
    e->lprev = e->lnext = 0;
}

static void lru_push_front(fg_shdict *d, uint64_t off)
{
    shd_entry *e = E(d, off);
    e->lprev = 0;
    e->lnext = d->h->lru_head;
    if (d->h->lru_head)
        E(d, d->h->lru_head)->lprev = off;
    d->h->lru_head = off;
    if (!d->h->lru_tail)
        d->h->lru_tail = off;
}

/* The entry for key and the link that points at it (for unlinking); 0 when absent. */
static uint64_t shd_find(fg_shdict *d, const char *key, size_t klen, uint32_t hash, uint64_t **link)
{
    uint64_t *at = &shd_buckets(d)[hash & (d->h->nbuckets - 1)];
    while (*at) {
        shd_entry *e = E(d, *at);
        if (e->hash == hash && e->klen == klen && memcmp(e->data, key, klen) == 0) {
            if (link)
                *link = at;
            return *at;
        }
        at = &e->hnext;
    }
    return 0;
}

static void shd_release(fg_shdict *d, uint64_t off)
{
    shd_entry *e = E(d, off);
    int cls = e->cls;
    lru_unlink(d, off);
    d->h->count--;
    d->h->used -= (uint64_t)64 << cls;
    e->hnext = d->h->free_head[cls];
    d->h->free_head[cls] = off;
}

static void shd_remove(fg_shdict *d, uint64_t off)
{
    shd_entry *e = E(d, off);
    uint64_t *link = NULL;
    shd_find(d, e->data, e->klen, e->hash, &link);
    if (link)
        *link = e->hnext;
    shd_release(d, off);
}

static bool shd_expired(const shd_entry *e, double now)
{
    return e->expires > 0 && e->expires <= now;
}

static int shd_class(size_t bytes)
{
    for (int c = 0; c < SHD_CLASSES; c++)
        if (bytes <= ((size_t)64 << c))
            return c;
    return -1;
}

/* A block of class cls, evicting from the LRU tail when needed; 0 when even that fails. */
static uint64_t shd_alloc(fg_shdict *d, int cls, bool *evicted)
{
    shd_header *h = d->h;
    uint64_t bytes = (uint64_t)64 << cls;
    for (int n = 0; n <= SHD_EVICT_MAX; n++) {
        if (h->free_head[cls]) {
            uint64_t off = h->free_head[cls];
            h->free_head[cls] = E(d, off)->hnext;
            return off;
        }
        if (h->heap_end - h->bump >= bytes) {
            uint64_t off = h->bump;
            h->bump += bytes;
            return off;
        }
        if (!h->lru_tail)
            return 0;
        shd_remove(d, h->lru_tail);
        if (evicted)
            *evicted = true;
    }
    return 0;
}

enum { SHD_SET, SHD_ADD, SHD_REPLACE };

static int shd_store(fg_shdict *d, int mode, const char *key, size_t klen, const fg_shvalue *v, double ttl,
                     bool *evicted)
{
    if (evicted)
        *evicted = false;
    size_t vlen = v->type == FG_SHV_STRING ? v->len : 0;
    size_t need = sizeof(shd_entry) + klen + vlen;
    int cls = need <= FG_SHDICT_MAX_ITEM ? shd_class(need) : -1;
    double now = fg_monotonic();
    uint32_t hash = shd_hash(key, klen);
    shd_lock(d);
    uint64_t old = shd_find(d, key, klen, hash, NULL);
    if (old && shd_expired(E(d, old), now)) {
        shd_remove(d, old);
        old = 0;
    }
    if ((mode == SHD_ADD && old) || (mode == SHD_REPLACE && !old)) {
        shd_unlock(d);
        return mode == SHD_ADD ? FG_SHD_EXISTS : FG_SHD_NOT_FOUND;
    }
    if (old)
        shd_remove(d, old);
    if (v->type == FG_SHV_NONE) {
        shd_unlock(d);
        return FG_SHD_OK;
    }
    uint64_t off = cls < 0 ? 0 : shd_alloc(d, cls, evicted);
    if (!off) {
        shd_unlock(d);
        return FG_SHD_NO_MEMORY;
    }
    shd_entry *e = E(d, off);
    e->hash = hash;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->type = (uint8_t)v->type;
    e->cls = (uint8_t)cls;
    e->num = v->num;
    e->expires = ttl > 0 ? now + ttl : 0;
    memcpy(e->data, key, klen);
    if (vlen)
        memcpy(e->data + klen, v->str, vlen);
    uint64_t *bucket = &shd_buckets(d)[hash & (d->h->nbuckets - 1)];
    e->hnext = *bucket;
    *bucket = off;
    lru_push_front(d, off);
    d->h->count++;
    d->h->used += (uint64_t)64 << cls;
    shd_unlock(d);
    return FG_SHD_OK;
}

int fg_shdict_set(fg_shdict *d, const char *key, size_t klen, const fg_shvalue *v, double ttl, bool *evicted)
{
    return shd_store(d, SHD_SET, key, klen, v, ttl, evicted);
}

int fg_shdict_add(fg_shdict *d, const char *key, size_t klen, const fg_shvalue *v, double ttl, bool *evicted)
{
    return shd_store(d, SHD_ADD, key, klen, v, ttl, evicted);
}

int fg_shdict_replace(fg_shdict *d, const char *key, size_t klen, const fg_shvalue *v, double ttl, bool *evicted)
{
    return shd_store(d, SHD_REPLACE, key, klen, v, ttl, evicted);
}

/* The live entry for key (expired ones are removed), under the lock; 0 when absent. */
static uint64_t shd_live(fg_shdict *d, const char *key, size_t klen, double now)
{
    uint64_t off = shd_find(d, key, klen, shd_hash(key, klen), NULL);
    if (off && shd_expired(E(d, off), now)) {
        shd_remove(d, off);
        off = 0;
    }
    return off;
}

int fg_shdict_get(fg_shdict *d, const char *key, size_t klen, fg_shvalue *v, double *ttl_left)
{
    double now = fg_monotonic();
    memset(v, 0, sizeof *v);
    shd_lock(d);
    uint64_t off = shd_live(d, key, klen, now);
    if (!off) {
        shd_unlock(d);
        return FG_SHD_NOT_FOUND;
    }
    shd_entry *e = E(d, off);
    lru_unlink(d, off);
    lru_push_front(d, off);
    v->type = e->type;
    v->num = e->num;
    if (e->type == FG_SHV_STRING) {
        char *copy = xmalloc(e->vlen + 1);
        memcpy(copy, e->data + e->klen, e->vlen);
        copy[e->vlen] = 0;
        v->str = copy;
        v->len = e->vlen;
    }
    if (ttl_left)
        *ttl_left = e->expires > 0 ? e->expires - now : 0;
    shd_unlock(d);
    return FG_SHD_OK;
}

int fg_shdict_incr(fg_shdict *d, const char *key, size_t klen, double by, bool has_init, double init,
                   double init_ttl, double *result)
{
    double now = fg_monotonic();
    shd_lock(d);
    uint64_t off = shd_live(d, key, klen, now);
    if (off) {
        shd_entry *e = E(d, off);
        if (e->type != FG_SHV_NUMBER) {
            shd_unlock(d);
            return FG_SHD_NOT_NUMBER;
        }
        e->num += by;
        *result = e->num;
        lru_unlink(d, off);
        lru_push_front(d, off);
        shd_unlock(d);
        return FG_SHD_OK;
    }
    shd_unlock(d);
    if (!has_init)
        return FG_SHD_NOT_FOUND;
    /* Store init + by unless another worker created it in between: then add to theirs. */
    fg_shvalue v = {.type = FG_SHV_NUMBER, .num = init + by};
    int rc = fg_shdict_add(d, key, klen, &v, init_ttl, NULL);
    if (rc == FG_SHD_EXISTS)
        return fg_shdict_incr(d, key, klen, by, false, 0, 0, result);
    if (rc == FG_SHD_OK)
        *result = init + by;
    return rc;
}

int fg_shdict_delete(fg_shdict *d, const char *key, size_t klen)
{
    shd_lock(d);
    uint64_t off = shd_live(d, key, klen, fg_monotonic());
    if (off)
        shd_remove(d, off);
    shd_unlock(d);
    return off ? FG_SHD_OK : FG_SHD_NOT_FOUND;
}

int fg_shdict_expire(fg_shdict *d, const char *key, size_t klen, double ttl)
{
    double now = fg_monotonic();
    shd_lock(d);
    uint64_t off = shd_live(d, key, klen, now);
    if (off)
        E(d, off)->expires = ttl > 0 ? now + ttl : 0;
    shd_unlock(d);
    return off ? FG_SHD_OK : FG_SHD_NOT_FOUND;
}

void fg_shdict_keys(fg_shdict *d, size_t max, void (*fn)(const char *key, size_t klen, void *arg), void *arg)
{
    double now = fg_monotonic();
    size_t n = 0;
    shd_lock(d);
    for (uint64_t off = d->h->lru_head; off && (max == 0 || n < max); off = E(d, off)->lnext) {
        shd_entry *e = E(d, off);
        if (!shd_expired(e, now)) {
            fn(e->data, e->klen, arg);
            n++;
        }
    }
    shd_unlock(d);
}

void fg_shdict_flush(fg_shdict *d)
{
    shd_lock(d);
    shd_format(d);
    shd_unlock(d);
}

void fg_shdict_usage(fg_shdict *d, size_t *entries, size_t *free_bytes)
{
    shd_lock(d);
    *entries = (size_t)d->h->count;
    *free_bytes = (size_t)(d->h->heap_end - d->h->heap_off - d->h->used);
    shd_unlock(d);
}

/* ---- sets ---- */

fg_shdict *fg_shdict_list_find(const fg_shdict_list *s, const char *name)
{
    size_t n = atomic_load(&s->count);
    for (size_t i = 0; i < n; i++)
        if (strcmp(fg_shdict_name(s->dicts[i]), name) == 0)
            return s->dicts[i];
    return NULL;
}

int fg_shdict_list_add(fg_shdict_list *s, fg_shdict *d)
{
    size_t n = atomic_load(&s->count);
    if (n >= FG_SHDICT_LIST_MAX)
        return -1;
    s->dicts[n] = d;
    atomic_store(&s->count, n + 1);
    return 0;
}

void fg_shdict_list_free_all(fg_shdict_list *s)
{
    size_t n = atomic_load(&s->count);
    for (size_t i = 0; i < n; i++)
        fg_shdict_free(s->dicts[i]);
    atomic_store(&s->count, 0);
}

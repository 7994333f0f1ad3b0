/* util: allocation wrappers, growable buffers, string and time helpers. See util.h. */
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

_Noreturn void fg_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuglu: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        fg_panic("out of memory allocating %zu bytes", n);
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        fg_panic("out of memory allocating %zu x %zu bytes", count, n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        fg_panic("out of memory reallocating %zu bytes", n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    if (vasprintf(&out, fmt, ap) < 0)
        fg_panic("out of memory formatting a string");
    va_end(ap);
    return out;
}

void fg_buf_init(fg_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void fg_buf_reserve(fg_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void fg_buf_append(fg_buf *b, const void *data, size_t n)
{
    fg_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void fg_buf_puts(fg_buf *b, const char *s)
{
    fg_buf_append(b, s, strlen(s));
}

void fg_buf_printf(fg_buf *b, const char *fmt, ...)
{
    if (!fmt)
        fg_panic("fg_buf_printf without a format");
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fg_panic("bad format string");
    fg_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void fg_buf_clear(fg_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void fg_buf_free(fg_buf *b)
{
    free(b->data);
    fg_buf_init(b);
}

char *fg_buf_steal(fg_buf *b, size_t *len)
{
    if (!b->data)
        fg_buf_reserve(b, 0), b->data[0] = '\0';
    char *d = b->data;
    if (len)
        *len = b->len;
    fg_buf_init(b);
    return d;
}

int fg_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool fg_strcaseprefix(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

char *fg_strtrim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

void fg_strlower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

double fg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fg_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Random bytes for IDs, fetched from the kernel 512 at a time per thread (one getrandom() per 32
 * IDs instead of one per ID); a forked child drops what it inherited so it never repeats its
 * parent's IDs. */
static _Thread_local unsigned char random_pool[512];
static _Thread_local size_t random_left;

static void random_pool_forget(void)
{
    random_left = 0;
}

static void random_pool_register(void)
{
    pthread_atfork(NULL, NULL, random_pool_forget);
}

static void random_bytes(unsigned char *out, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, random_pool_register);
    if (random_left < len) {
        size_t got = 0;
        while (got < sizeof random_pool) {
            ssize_t n = getrandom(random_pool + got, sizeof random_pool - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                fg_panic("getrandom failed: %s", strerror(errno));
            }
            got += (size_t)n;
        }
        random_left = sizeof random_pool;
    }
    unsigned char *from = random_pool + sizeof random_pool - random_left;
    memcpy(out, from, len);
    memset(from, 0, len);
    random_left -= len;
}

void fg_random_id(char out[33])
{
    unsigned char raw[16];
    random_bytes(raw, sizeof raw);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[32] = '\0';
}

static char hostname_buf[256];
static pthread_once_t hostname_once = PTHREAD_ONCE_INIT;

static void hostname_init(void)
{
    if (gethostname(hostname_buf, sizeof hostname_buf - 1) != 0 || !hostname_buf[0])
        strcpy(hostname_buf, "localhost");
    hostname_buf[sizeof hostname_buf - 1] = '\0';
}

const char *fg_hostname(void)
{
    pthread_once(&hostname_once, hostname_init);
    return hostname_buf;
}

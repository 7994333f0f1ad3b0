/* util: allocation wrappers that never return NULL, growable byte buffers and small string helpers.
 *
 * Failure policy (as Postfix): an allocation failure is an invariant break and aborts with a message;
 * environment failures (I/O, network) are returned to the caller, never aborted on.
 */
#ifndef FUGLU_UTIL_H
#define FUGLU_UTIL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdarg.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer; data is always NUL-terminated (not counted in len). */
typedef struct fg_buf {
    char *data;
    size_t len;
    size_t cap;
} fg_buf;

void fg_buf_init(fg_buf *b);
void fg_buf_reserve(fg_buf *b, size_t extra);
void fg_buf_append(fg_buf *b, const void *data, size_t n);
void fg_buf_puts(fg_buf *b, const char *s);
void fg_buf_printf(fg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fg_buf_clear(fg_buf *b);
void fg_buf_free(fg_buf *b);
/* Hands the data to the caller (who frees it) and resets the buffer. */
char *fg_buf_steal(fg_buf *b, size_t *len);

/* ASCII helpers, locale independent. */
bool fg_strcaseprefix(const char *s, const char *prefix);
char *fg_strtrim(char *s);          /* trims in place, returns s moved past leading blanks */
void fg_strlower(char *s);
/* The value of one hex digit (either case), -1 for any other character. */
int fg_hexval(char c);

/* Seconds since the epoch with microseconds, and a monotonic clock in seconds. */
double fg_now(void);
double fg_monotonic(void);

/* 32 lowercase hex characters from the kernel's random source, NUL-terminated (33 bytes). */
void fg_random_id(char out[33]);

/* The host name (gethostname), cached; never NULL. */
const char *fg_hostname(void);

#endif

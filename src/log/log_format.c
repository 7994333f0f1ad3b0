/* log_format: compiles and renders Python logging %-style formats. See log_format.h.
 *
 * Python applies `fmt % record.__dict__`; a field is %(key)[flags][width][.precision]conversion.
 * Text fields take s/r/a, numeric fields also take the integer and float conversions. The checks
 * Python would only hit at the first record (unknown key, bad conversion) are done at compile time,
 * so a broken formatter is a configuration error instead of a "--- Logging error ---" per record.
 */
#include "log/log_format.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum {
    FIELD_LITERAL,
    FIELD_ASCTIME, FIELD_NAME, FIELD_LEVELNAME, FIELD_MESSAGE, FIELD_THREADNAME, FIELD_MODULE,
    FIELD_FILENAME, FIELD_PATHNAME, FIELD_FUNCNAME, FIELD_PROCESSNAME,
    FIELD_PROCESS, FIELD_THREAD, FIELD_LINENO, FIELD_LEVELNO,
    FIELD_CREATED, FIELD_MSECS, FIELD_RELATIVE,
} format_field;

enum { KIND_TEXT, KIND_INT, KIND_FLOAT };

static const struct {
    const char *key;
    format_field field;
    int kind;
} format_keys[] = {
    {"asctime", FIELD_ASCTIME, KIND_TEXT},       {"name", FIELD_NAME, KIND_TEXT},
    {"levelname", FIELD_LEVELNAME, KIND_TEXT},   {"message", FIELD_MESSAGE, KIND_TEXT},
    {"threadName", FIELD_THREADNAME, KIND_TEXT}, {"module", FIELD_MODULE, KIND_TEXT},
    {"filename", FIELD_FILENAME, KIND_TEXT},     {"pathname", FIELD_PATHNAME, KIND_TEXT},
    {"funcName", FIELD_FUNCNAME, KIND_TEXT},     {"processName", FIELD_PROCESSNAME, KIND_TEXT},
    {"process", FIELD_PROCESS, KIND_INT},        {"thread", FIELD_THREAD, KIND_INT},
    {"lineno", FIELD_LINENO, KIND_INT},          {"levelno", FIELD_LEVELNO, KIND_INT},
    {"created", FIELD_CREATED, KIND_FLOAT},      {"msecs", FIELD_MSECS, KIND_FLOAT},
    {"relativeCreated", FIELD_RELATIVE, KIND_FLOAT},
};

typedef struct format_item {
    format_field field;
    int kind;
    char conversion;      /* s, r, a, d, i, u, o, x, X, e, E, f, F, g, G */
    char spec[32];        /* printf flags, width and precision, without '%' and conversion */
    char *literal;        /* FIELD_LITERAL only */
} format_item;

struct fg_log_format {
    format_item *items;
    size_t n;
    char *datefmt;        /* NULL = Python's default asctime */
};

/* The time the logging module was "loaded", for relativeCreated. */
static double format_start_time;

static void format_add(fg_log_format *f, format_item item)
{
    f->items = xrealloc(f->items, (f->n + 1) * sizeof *f->items);
    f->items[f->n++] = item;
}

static void format_add_literal(fg_log_format *f, fg_buf *lit)
{
    if (lit->len == 0)
        return;
    format_item item = {.field = FIELD_LITERAL};
    item.literal = fg_buf_steal(lit, NULL);
    format_add(f, item);
}

fg_log_format *fg_log_format_compile(const char *fmt, const char *datefmt, char **err)
{
    if (format_start_time == 0)
        format_start_time = fg_now();
    if (!fmt)
        fmt = "%(message)s";
    fg_log_format *f = xcalloc(1, sizeof *f);
    f->datefmt = datefmt && *datefmt ? xstrdup(datefmt) : NULL;
    fg_buf lit;
    fg_buf_init(&lit);
    for (const char *p = fmt; *p;) {
        if (*p != '%') {
            fg_buf_append(&lit, p++, 1);
            continue;
        }
        if (p[1] == '%') {
            fg_buf_append(&lit, "%", 1);
            p += 2;
            continue;
        }
        if (p[1] != '(') {
            *err = xasprintf("'%%%.1s' at offset %d has no field name (write %%(message)s or %%%% for a "
                             "literal %%)", p + 1, (int)(p - fmt));
            goto fail;
        }
        const char *key = p + 2, *close = strchr(key, ')');
        if (!close) {
            *err = xasprintf("unclosed '%%(' at offset %d", (int)(p - fmt));
            goto fail;
        }
        size_t keylen = (size_t)(close - key);
        format_item item = {.field = FIELD_LITERAL};
        for (size_t i = 0; i < sizeof format_keys / sizeof format_keys[0]; i++)
            if (strlen(format_keys[i].key) == keylen && memcmp(format_keys[i].key, key, keylen) == 0) {
                item.field = format_keys[i].field;
                item.kind = format_keys[i].kind;
            }
        if (item.field == FIELD_LITERAL) {
            *err = xasprintf("unknown field %%(%.*s) (known: asctime, name, levelname, levelno, message, "
                             "process, processName, thread, threadName, module, filename, pathname, "
                             "lineno, funcName, created, msecs, relativeCreated)", (int)keylen, key);
            goto fail;
        }
        const char *q = close + 1;
        size_t speclen = strspn(q, "#0- +");
        speclen += strspn(q + speclen, "0123456789");
        if (q[speclen] == '.') {
            speclen++;
            speclen += strspn(q + speclen, "0123456789");
        }
        char conv = q[speclen];
        if (speclen >= sizeof item.spec || !conv || !strchr("sradiuoxXeEfFgG", conv)) {
            *err = xasprintf("field %%(%.*s) has no valid conversion (as %%(%.*s)s)", (int)keylen, key,
                             (int)keylen, key);
            goto fail;
        }
        if (item.kind == KIND_TEXT && !strchr("sra", conv)) {
            *err = xasprintf("field %%(%.*s) is text: '%c' needs a number (use s)", (int)keylen, key, conv);
            goto fail;
        }
        memcpy(item.spec, q, speclen);
        item.spec[speclen] = '\0';
        item.conversion = conv;
        format_add_literal(f, &lit);
        format_add(f, item);
        p = q + speclen + 1;
    }
    format_add_literal(f, &lit);
    fg_buf_free(&lit);
    return f;
fail:
    fg_buf_free(&lit);
    fg_log_format_free(f);
    return NULL;
}

void fg_log_format_free(fg_log_format *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++)
        free(f->items[i].literal);
    free(f->items);
    free(f->datefmt);
    free(f);
}

const char *fg_log_format_levelname(int level, char buf[24])
{
    switch (level) {
    case FG_DEBUG: return "DEBUG";
    case FG_INFO: return "INFO";
    case FG_WARNING: return "WARNING";
    case FG_ERROR: return "ERROR";
    case FG_CRITICAL: return "CRITICAL";
    case 0: return "NOTSET";
    default: snprintf(buf, 24, "Level %d", level); return buf;
    }
}

/* The text value of a field; numbers are turned into text as Python's str() would (close enough
 * for floats: six decimals). */
static const char *format_text(const format_item *it, const fg_log_record *r, const fg_log_format *f,
                               char *buf, size_t size)
{
    const char *s;
    switch (it->field) {
    case FIELD_ASCTIME: {
        /* localtime_r() and strftime() once per second and thread: the text of the last second
         * is kept with the format it was made with. */
        static _Thread_local time_t last_secs = (time_t)-1;
        static _Thread_local char last_fmt[64];
        static _Thread_local char last_text[128];
        time_t secs = (time_t)r->created;
        const char *datefmt = f->datefmt ? f->datefmt : "%Y-%m-%d %H:%M:%S";
        bool cacheable = strlen(datefmt) < sizeof last_fmt;
        if (!cacheable || secs != last_secs || strcmp(datefmt, last_fmt) != 0) {
            struct tm tm;
            localtime_r(&secs, &tm);
            if (strftime(last_text, sizeof last_text, datefmt, &tm) == 0)
                last_text[0] = '\0';
            last_secs = cacheable ? secs : (time_t)-1;
            snprintf(last_fmt, sizeof last_fmt, "%s", cacheable ? datefmt : "");
        }
        if (f->datefmt)
            snprintf(buf, size, "%s", last_text);
        else
            snprintf(buf, size, "%s,%03d", last_text, (int)((r->created - (double)secs) * 1000));
        return buf;
    }
    case FIELD_NAME: return r->name;
    case FIELD_LEVELNAME: return fg_log_format_levelname(r->level, buf);
    case FIELD_MESSAGE: return r->message;
    case FIELD_THREADNAME: return r->thread_name ? r->thread_name : "MainThread";
    case FIELD_PATHNAME: return r->pathname;
    case FIELD_FUNCNAME: return r->func;
    case FIELD_PROCESSNAME: return "MainProcess";
    case FIELD_FILENAME:
    case FIELD_MODULE:
        s = strrchr(r->pathname, '/');
        s = s ? s + 1 : r->pathname;
        if (it->field == FIELD_FILENAME)
            return s;
        snprintf(buf, size, "%s", s);
        if (strchr(buf, '.') && buf[0] != '(')
            *strrchr(buf, '.') = '\0';
        return buf;
    default: break;
    }
    return "";
}

static double format_number(const format_item *it, const fg_log_record *r)
{
    switch (it->field) {
    case FIELD_PROCESS: return (double)r->process;
    case FIELD_THREAD: return (double)r->thread;
    case FIELD_LINENO: return r->lineno;
    case FIELD_LEVELNO: return r->level;
    case FIELD_CREATED: return r->created;
    case FIELD_MSECS: return (double)(long long)((r->created - (double)(long long)r->created) * 1000);
    case FIELD_RELATIVE: return (r->created - format_start_time) * 1000;
    default: return 0;
    }
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
/* Appends one printf conversion built from the compiled spec. */
static void format_append(fg_buf *out, const char *spec, const char *lenmod, char conv, ...)
{
    char pf[48];
    snprintf(pf, sizeof pf, "%%%s%s%c", spec, lenmod, conv);
    va_list ap, ap2;
    va_start(ap, conv);
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, pf, ap);
    if (n >= 0 && (size_t)n < sizeof small) {
        fg_buf_append(out, small, (size_t)n);
    } else if (n > 0) {
        fg_buf_reserve(out, (size_t)n + 1);
        vsnprintf(out->data + out->len, (size_t)n + 1, pf, ap2);
        out->len += (size_t)n;
    }
    va_end(ap2);
    va_end(ap);
}

void fg_log_format_render(const fg_log_format *f, const fg_log_record *r, fg_buf *out)
{
    char buf[256];
    for (size_t i = 0; i < f->n; i++) {
        const format_item *it = &f->items[i];
        if (it->field == FIELD_LITERAL) {
            fg_buf_puts(out, it->literal);
            continue;
        }
        char conv = it->conversion;
        if (conv == 's' || conv == 'r' || conv == 'a') {
            const char *s;
            if (it->kind == KIND_TEXT) {
                s = format_text(it, r, f, buf, sizeof buf);
            } else if (it->kind == KIND_INT) {
                snprintf(buf, sizeof buf, "%lld", (long long)format_number(it, r));
                s = buf;
            } else {
                snprintf(buf, sizeof buf, "%.6f", format_number(it, r));
                s = buf;
            }
            if (conv != 's') {
                char *quoted = xasprintf("'%s'", s);
                format_append(out, it->spec, "", 's', quoted);
                free(quoted);
            } else if (it->spec[0] == '\0') {
                fg_buf_puts(out, s);
            } else {
                format_append(out, it->spec, "", 's', s);
            }
        } else if (strchr("diuoxX", conv)) {
            format_append(out, it->spec, "ll", conv == 'i' || conv == 'u' ? 'd' : conv,
                          (long long)format_number(it, r));
        } else {
            format_append(out, it->spec, "", conv, format_number(it, r));
        }
    }
}
#pragma GCC diagnostic pop

/* log_args: a small recursive-descent parser of Python literals for logging.conf args.
 * See log_args.h. The text is never evaluated; unknown names are errors.
 */
#include "log/log_args.h"
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct args_parser {
    const char *text;
    const char *p;
    char *err;
    int depth;
} args_parser;

static const struct {
    const char *name;
    int value;
} syslog_constants[] = {
    {"LOG_EMERG", 0},    {"LOG_ALERT", 1},     {"LOG_CRIT", 2},      {"LOG_ERR", 3},
    {"LOG_WARNING", 4},  {"LOG_NOTICE", 5},    {"LOG_INFO", 6},      {"LOG_DEBUG", 7},
    {"LOG_KERN", 0},     {"LOG_USER", 1},      {"LOG_MAIL", 2},      {"LOG_DAEMON", 3},
    {"LOG_AUTH", 4},     {"LOG_SYSLOG", 5},    {"LOG_LPR", 6},       {"LOG_NEWS", 7},
    {"LOG_UUCP", 8},     {"LOG_CRON", 9},      {"LOG_AUTHPRIV", 10}, {"LOG_FTP", 11},
    {"LOG_NTP", 12},     {"LOG_SECURITY", 13}, {"LOG_CONSOLE", 14},  {"LOG_SOLCRON", 15},
    {"LOG_LOCAL0", 16},  {"LOG_LOCAL1", 17},   {"LOG_LOCAL2", 18},   {"LOG_LOCAL3", 19},
    {"LOG_LOCAL4", 20},  {"LOG_LOCAL5", 21},   {"LOG_LOCAL6", 22},   {"LOG_LOCAL7", 23},
};

static const struct {
    const char *name;
    int value;
} facility_names[] = {
    {"kern", 0},  {"user", 1},      {"mail", 2},    {"daemon", 3},   {"auth", 4},    {"syslog", 5},
    {"lpr", 6},   {"news", 7},      {"uucp", 8},    {"cron", 9},     {"authpriv", 10}, {"ftp", 11},
    {"ntp", 12},  {"security", 4},  {"console", 14}, {"solaris-cron", 15},
    {"local0", 16}, {"local1", 17}, {"local2", 18}, {"local3", 19}, {"local4", 20}, {"local5", 21},
    {"local6", 22}, {"local7", 23},
};

int fg_log_syslog_constant(const char *name)
{
    static const char *const prefixes[] = {"logging.handlers.SysLogHandler.", "handlers.SysLogHandler.",
                                           "SysLogHandler.", ""};
    for (size_t k = 0; k < sizeof prefixes / sizeof prefixes[0]; k++) {
        size_t n = strlen(prefixes[k]);
        if (strncmp(name, prefixes[k], n) != 0)
            continue;
        for (size_t i = 0; i < sizeof syslog_constants / sizeof syslog_constants[0]; i++)
            if (strcmp(name + n, syslog_constants[i].name) == 0)
                return syslog_constants[i].value;
    }
    return -1;
}

int fg_log_syslog_facility_name(const char *name)
{
    for (size_t i = 0; i < sizeof facility_names / sizeof facility_names[0]; i++)
        if (strcmp(name, facility_names[i].name) == 0)
            return facility_names[i].value;
    return -1;
}

const char *fg_log_value_type_name(fg_log_value_type t)
{
    switch (t) {
    case FG_LOGV_NONE: return "None";
    case FG_LOGV_BOOL: return "a boolean";
    case FG_LOGV_INT: return "an int";
    case FG_LOGV_FLOAT: return "a float";
    case FG_LOGV_STR: return "a string";
    case FG_LOGV_TUPLE: return "a tuple";
    case FG_LOGV_DICT: return "a dict";
    case FG_LOGV_STDOUT: return "sys.stdout";
    case FG_LOGV_STDERR: return "sys.stderr";
    }
    return "?";
}

void fg_log_value_clear(fg_log_value *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n; i++) {
        fg_log_value_clear(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    memset(v, 0, sizeof *v);
}

static int args_fail(args_parser *ps, const char *what)
{
    if (!ps->err)
        ps->err = xasprintf("column %d: %s", (int)(ps->p - ps->text) + 1, what);
    return -1;
}

static void args_skip_blanks(args_parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

/* One quoted string (after an optional r/u/b prefix) appended to out. */
static int args_string(args_parser *ps, fg_buf *out)
{
    bool raw = false;
    while (*ps->p == 'r' || *ps->p == 'R' || *ps->p == 'u' || *ps->p == 'U' || *ps->p == 'b' || *ps->p == 'B') {
        if (*ps->p == 'r' || *ps->p == 'R')
            raw = true;
        ps->p++;
    }
    char quote = *ps->p++;
    for (;;) {
        char c = *ps->p;
        if (c == '\0' || c == '\n')
            return args_fail(ps, "string not closed");
        ps->p++;
        if (c == quote)
            return 0;
        if (c != '\\' || raw) {
            fg_buf_append(out, &c, 1);
            continue;
        }
        char e = *ps->p++;
        switch (e) {
        case 'n': fg_buf_append(out, "\n", 1); break;
        case 't': fg_buf_append(out, "\t", 1); break;
        case 'r': fg_buf_append(out, "\r", 1); break;
        case '0': fg_buf_append(out, "", 1); break;
        case '\\': case '\'': case '"': fg_buf_append(out, &e, 1); break;
        case '\0': ps->p--; return args_fail(ps, "string not closed");
        default: {
            char two[2] = {'\\', e};
            fg_buf_append(out, two, 2);
        }
        }
    }
}

static bool args_starts_string(const char *p)
{
    while (strchr("rRuUbB", *p) && *p)
        p++;
    return *p == '\'' || *p == '"';
}

static int args_value(args_parser *ps, fg_log_value *out);

/* A tuple, list or parenthesised value; `close` is ')' or ']'. */
static int args_sequence(args_parser *ps, fg_log_value *out, char close)
{
    ps->p++;
    out->type = FG_LOGV_TUPLE;
    bool comma_seen = close == ']';
    for (;;) {
        args_skip_blanks(ps);
        if (*ps->p == close) {
            ps->p++;
            break;
        }
        out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
        memset(&out->items[out->n], 0, sizeof *out->items);
        out->n++;
        if (args_value(ps, &out->items[out->n - 1]) != 0)
            return -1;
        args_skip_blanks(ps);
        if (*ps->p == ',') {
            comma_seen = true;
            ps->p++;
        } else if (*ps->p != close) {
            return args_fail(ps, close == ')' ? "expected ',' or ')'" : "expected ',' or ']'");
        }
    }
    if (!comma_seen && out->n == 1) {
        /* (x) is just x in Python */
        fg_log_value inner = out->items[0];
        free(out->items);
        *out = inner;
    }
    return 0;
}

static int args_dict(args_parser *ps, fg_log_value *out)
{
    ps->p++;
    out->type = FG_LOGV_DICT;
    for (;;) {
        args_skip_blanks(ps);
        if (*ps->p == '}') {
            ps->p++;
            return 0;
        }
        if (!args_starts_string(ps->p))
            return args_fail(ps, "dict keys must be strings");
        fg_buf key;
        fg_buf_init(&key);
        if (args_string(ps, &key) != 0) {
            fg_buf_free(&key);
            return -1;
        }
        out->keys = xrealloc(out->keys, (out->n + 1) * sizeof *out->keys);
        out->items = xrealloc(out->items, (out->n + 1) * sizeof *out->items);
        out->keys[out->n] = fg_buf_steal(&key, NULL);
        memset(&out->items[out->n], 0, sizeof *out->items);
        out->n++;
        args_skip_blanks(ps);
        if (*ps->p != ':')
            return args_fail(ps, "expected ':' after a dict key");
        ps->p++;
        if (args_value(ps, &out->items[out->n - 1]) != 0)
            return -1;
        args_skip_blanks(ps);
        if (*ps->p == ',')
            ps->p++;
        else if (*ps->p != '}')
            return args_fail(ps, "expected ',' or '}'");
    }
}

static int args_number(args_parser *ps, fg_log_value *out)
{
    const char *start = ps->p;
    const char *q = ps->p;
    if (*q == '-' || *q == '+')
        q++;
    int base = 10;
    if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
        base = 16;
    else if (q[0] == '0' && (q[1] == 'o' || q[1] == 'O'))
        base = 8;
    else if (q[0] == '0' && (q[1] == 'b' || q[1] == 'B'))
        base = 2;
    size_t len = strspn(q, "0123456789abcdefABCDEFxXoO.+-_");
    char *num = xstrndup(start, (size_t)(q - start) + len);
    /* Python allows '_' between digits */
    char *w = num;
    for (char *r = num; *r; r++)
        if (*r != '_')
            *w++ = *r;
    *w = '\0';
    char *end;
    errno = 0;
    bool is_float = base == 10 && strpbrk(num, ".eE") != NULL;
    if (is_float) {
        out->type = FG_LOGV_FLOAT;
        out->f = strtod(num, &end);
    } else {
        out->type = FG_LOGV_INT;
        char *digits = num;
        bool neg = false;
        if (*digits == '-' || *digits == '+')
            neg = *digits++ == '-';
        if (base != 10)
            digits += 2;
        else if (digits[0] == '0' && digits[1] != '\0')
            *digits = 'x';    /* Python 3 rejects 010: force the error below */
        out->i = strtoll(digits, &end, base);
        if (neg)
            out->i = -out->i;
        if (end == digits)
            end = num;
    }
    bool bad = *end != '\0' || errno != 0 || end == num;
    free(num);
    if (bad)
        return args_fail(ps, "not a valid number");
    ps->p = q + len;
    return 0;
}

static int args_name(args_parser *ps, fg_log_value *out)
{
    const char *start = ps->p;
    while (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '.')
        ps->p++;
    size_t n = (size_t)(ps->p - start);
    const char *after = ps->p;
    args_skip_blanks(ps);
    if (*ps->p == '(') {
        ps->p = start;
        return args_fail(ps, "calls are not allowed: args is read as a literal, never evaluated");
    }
    ps->p = after;
    char *name = xstrndup(start, n);
    int rc = 0;
    if (strcmp(name, "None") == 0) {
        out->type = FG_LOGV_NONE;
    } else if (strcmp(name, "True") == 0 || strcmp(name, "False") == 0) {
        out->type = FG_LOGV_BOOL;
        out->i = name[0] == 'T';
    } else if (strcmp(name, "sys.stdout") == 0) {
        out->type = FG_LOGV_STDOUT;
    } else if (strcmp(name, "sys.stderr") == 0) {
        out->type = FG_LOGV_STDERR;
    } else if (fg_log_syslog_constant(name) >= 0) {
        out->type = FG_LOGV_INT;
        out->i = fg_log_syslog_constant(name);
    } else {
        ps->p = start;
        char *what = xasprintf("'%s' is not a literal (allowed: strings, numbers, tuples, None, True, "
                               "False, sys.stdout, sys.stderr, SysLogHandler.LOG_* constants)", name);
        rc = args_fail(ps, what);
        free(what);
    }
    free(name);
    return rc;
}

static int args_value(args_parser *ps, fg_log_value *out)
{
    args_skip_blanks(ps);
    if (++ps->depth > 16)
        return args_fail(ps, "nested too deeply");
    int rc;
    char c = *ps->p;
    if (c == '(' || c == '[') {
        rc = args_sequence(ps, out, c == '(' ? ')' : ']');
    } else if (c == '{') {
        rc = args_dict(ps, out);
    } else if (args_starts_string(ps->p)) {
        fg_buf s;
        fg_buf_init(&s);
        rc = 0;
        while (rc == 0 && args_starts_string(ps->p)) {
            rc = args_string(ps, &s);
            args_skip_blanks(ps);
        }
        out->type = FG_LOGV_STR;
        out->s = fg_buf_steal(&s, NULL);
    } else if (isdigit((unsigned char)c) || ((c == '-' || c == '+' || c == '.') && ps->p[1] &&
                                            (isdigit((unsigned char)ps->p[1]) || ps->p[1] == '.'))) {
        rc = args_number(ps, out);
    } else if (isalpha((unsigned char)c) || c == '_') {
        rc = args_name(ps, out);
    } else if (c == '\0') {
        rc = args_fail(ps, "a value is missing");
    } else {
        char what[48];
        snprintf(what, sizeof what, "unexpected '%c'", c);
        rc = args_fail(ps, what);
    }
    ps->depth--;
    return rc;
}

int fg_log_args_parse(const char *text, fg_log_value *out, char **err)
{
    args_parser ps = {.text = text, .p = text};
    memset(out, 0, sizeof *out);
    int rc = args_value(&ps, out);
    if (rc == 0) {
        args_skip_blanks(&ps);
        if (*ps.p)
            rc = args_fail(&ps, "unexpected text after the value (an operator or a second value?)");
    }
    if (rc != 0) {
        fg_log_value_clear(out);
        *err = ps.err;
        return -1;
    }
    return 0;
}

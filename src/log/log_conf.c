/* log_conf: reads logging.conf like Python's logging.config.fileConfig. See log_conf.h.
 *
 * Order and requirements as fileConfig: [formatters] keys, then [handlers] keys, then [loggers] keys
 * (which must list root, with a [logger_root] section); every listed key needs its section, every
 * handler a class, every non-root logger a qualname, every logger a handlers option (may be empty).
 */
#include "log/log_conf.h"
#include "log/log.h"
#include "log/log_args.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct conf_ctx {
    const fg_config *cfg;
    char *err;
    char **formatter_keys;
    size_t n_formatters;
} conf_ctx;

/* Sets the error once: "ORIGIN: [section] option: what" (origin of the option, else of fallback). */
static int conf_fail(conf_ctx *cx, const char *section, const char *option, const char *fallback_section,
                     const char *fallback_option, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int conf_fail(conf_ctx *cx, const char *section, const char *option, const char *fallback_section,
                     const char *fallback_option, const char *fmt, ...)
{
    if (cx->err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char what[1024];
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *origin = option ? fg_config_origin(cx->cfg, section, option) : NULL;
    if (!origin && fallback_section)
        origin = fg_config_origin(cx->cfg, fallback_section, fallback_option);
    if (option && fg_config_get(cx->cfg, section, option))
        cx->err = xasprintf("%s: [%s] %s: %s", origin ? origin : "logging.conf", section, option, what);
    else
        cx->err = xasprintf("%s: %s", origin ? origin : "logging.conf", what);
    return -1;
}

/* Splits "a, b ,c" into trimmed, non-empty keys (Python: split(",") then strip). */
static char **conf_split_keys(const char *value, size_t *n)
{
    char **keys = NULL;
    *n = 0;
    char *copy = xstrdup(value ? value : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = fg_strtrim(tok);
        if (!*tok)
            continue;
        keys = xrealloc(keys, (*n + 1) * sizeof *keys);
        keys[(*n)++] = xstrdup(tok);
    }
    free(copy);
    return keys;
}

static void conf_free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

/* A section [prefix_key] that must exist: the error points at the keys option listing it. */
static char *conf_section(conf_ctx *cx, const char *prefix, const char *key, const char *list_section)
{
    char *section = xasprintf("%s_%s", prefix, key);
    if (!fg_config_has_section(cx->cfg, section)) {
        conf_fail(cx, list_section, "keys", NULL, NULL,
                  "[%s] keys lists '%s' but there is no section [%s]", list_section, key, section);
        free(section);
        return NULL;
    }
    return section;
}

static int conf_level(conf_ctx *cx, const char *section, int *level)
{
    const char *v = fg_config_get(cx->cfg, section, "level");
    if (!v)
        return 0;
    char *t = fg_strtrim(xstrdup(v));
    int l = fg_log_level_from_name(t);
    free(t);
    if (l < 0)
        return conf_fail(cx, section, "level", NULL, NULL,
                         "unknown level '%s' (DEBUG, INFO, WARNING, ERROR, CRITICAL or NOTSET)", v);
    *level = l;
    return 0;
}

static int conf_formatters(conf_ctx *cx)
{
    if (!fg_config_has_section(cx->cfg, "formatters") || !fg_config_get(cx->cfg, "formatters", "keys"))
        return conf_fail(cx, "formatters", NULL, "loggers", "keys",
                         "a [formatters] section with a keys option is required (keys may be empty)");
    char **keys = conf_split_keys(fg_config_get(cx->cfg, "formatters", "keys"), &cx->n_formatters);
    cx->formatter_keys = keys;
    for (size_t i = 0; i < cx->n_formatters; i++) {
        char *section = conf_section(cx, "formatter", keys[i], "formatters");
        if (!section)
            return -1;
        const char *style = fg_config_get(cx->cfg, section, "style");
        const char *klass = fg_config_get(cx->cfg, section, "class");
        if (style && strcmp(style, "%") != 0)
            conf_fail(cx, section, "style", NULL, NULL, "only the '%%' style is supported");
        else if (klass && strcmp(klass, "logging.Formatter") != 0)
            conf_fail(cx, section, "class", NULL, NULL, "only logging.Formatter is supported");
        char *ferr = NULL;
        if (!cx->err)
            fg_log_format_free(fg_log_format_compile(fg_config_get(cx->cfg, section, "format"),
                                                     fg_config_get(cx->cfg, section, "datefmt"), &ferr));
        if (ferr) {
            conf_fail(cx, section, "format", NULL, NULL, "%s", ferr);
            free(ferr);
        }
        free(section);
        if (cx->err)
            return -1;
    }
    return 0;
}

static const struct {
    const char *name;
    fg_log_handler_kind kind;
    mode_t mode;
} conf_classes[] = {
    {"StreamHandler", FG_LOGH_STREAM, 0},
    {"FileHandler", FG_LOGH_FILE, 0},
    {"NullHandler", FG_LOGH_NULL, 0},
    {"handlers.WatchedFileHandler", FG_LOGH_WATCHED, 0},
    {"handlers.RotatingFileHandler", FG_LOGH_ROTATING, 0},
    {"handlers.TimedRotatingFileHandler", FG_LOGH_TIMED, 0},
    {"handlers.SysLogHandler", FG_LOGH_SYSLOG, 0},
    {"custom_handlers.GroupReadableRotatingFileHandler", FG_LOGH_ROTATING, 0640},
    {"custom_handlers.GroupWritableRotatingFileHandler", FG_LOGH_ROTATING, 0660},
    {"custom_handlers.GroupReadableTimedRotatingFileHandler", FG_LOGH_TIMED, 0640},
    {"custom_handlers.GroupWritableTimedRotatingFileHandler", FG_LOGH_TIMED, 0660},
};

/* Parameter names of each constructor, as Python's signatures. */
static const char *const *conf_params(fg_log_handler_kind kind)
{
    static const char *const stream[] = {"stream", NULL};
    static const char *const none[] = {NULL};
    static const char *const file[] = {"filename", "mode", "encoding", "delay", "errors", NULL};
    static const char *const rotating[] = {"filename", "mode", "maxBytes", "backupCount", "encoding",
                                           "delay", "errors", NULL};
    static const char *const timed[] = {"filename", "when", "interval", "backupCount", "encoding",
                                        "delay", "utc", "atTime", "errors", NULL};
    static const char *const syslog[] = {"address", "facility", "socktype", NULL};
    switch (kind) {
    case FG_LOGH_STREAM: return stream;
    case FG_LOGH_FILE:
    case FG_LOGH_WATCHED: return file;
    case FG_LOGH_ROTATING: return rotating;
    case FG_LOGH_TIMED: return timed;
    case FG_LOGH_SYSLOG: return syslog;
    default: return none;
    }
}

typedef struct conf_handler_ctx {
    conf_ctx *cx;
    const char *section;
    const char *class_name;
    const char *const *params;
    const fg_log_value *slots[12];
} conf_handler_ctx;

static int conf_arg_fail(conf_handler_ctx *hc, const char *param, const char *want, const fg_log_value *v)
{
    return conf_fail(hc->cx, hc->section, "args", hc->section, "class", "%s: %s must be %s, not %s",
                     hc->class_name, param, want, fg_log_value_type_name(v->type));
}

static const fg_log_value *conf_slot(conf_handler_ctx *hc, const char *param)
{
    for (size_t i = 0; hc->params[i]; i++)
        if (strcmp(hc->params[i], param) == 0)
            return hc->slots[i];
    return NULL;
}

static int conf_arg_str(conf_handler_ctx *hc, const char *param, const char **out, bool none_ok)
{
    const fg_log_value *v = conf_slot(hc, param);
    if (!v || (none_ok && v->type == FG_LOGV_NONE))
        return 0;
    if (v->type != FG_LOGV_STR)
        return conf_arg_fail(hc, param, "a string", v);
    *out = v->s;
    return 0;
}

static int conf_arg_int(conf_handler_ctx *hc, const char *param, long long *out)
{
    const fg_log_value *v = conf_slot(hc, param);
    if (!v)
        return 0;
    if (v->type != FG_LOGV_INT && v->type != FG_LOGV_BOOL)
        return conf_arg_fail(hc, param, "an int", v);
    *out = v->i;
    return 0;
}

static int conf_arg_bool(conf_handler_ctx *hc, const char *param, bool *out)
{
    const fg_log_value *v = conf_slot(hc, param);
    if (!v || v->type == FG_LOGV_NONE)
        return 0;
    if (v->type != FG_LOGV_INT && v->type != FG_LOGV_BOOL)
        return conf_arg_fail(hc, param, "True or False", v);
    *out = v->i != 0;
    return 0;
}

/* Binds args (a tuple) and kwargs (a dict) to the constructor's parameters. */
static int conf_bind(conf_handler_ctx *hc, const fg_log_value *args, const fg_log_value *kwargs)
{
    size_t nparams = 0;
    while (hc->params[nparams])
        nparams++;
    if (args->type != FG_LOGV_TUPLE)
        return conf_fail(hc->cx, hc->section, "args", NULL, NULL,
                         "must be a tuple, not %s (one value needs a trailing comma: ('x',))",
                         fg_log_value_type_name(args->type));
    if (args->n > nparams)
        return conf_fail(hc->cx, hc->section, "args", NULL, NULL, "%s takes at most %zu arguments, %zu given",
                         hc->class_name, nparams, args->n);
    for (size_t i = 0; i < args->n; i++)
        hc->slots[i] = &args->items[i];
    if (kwargs->type != FG_LOGV_DICT)
        return conf_fail(hc->cx, hc->section, "kwargs", NULL, NULL, "must be a dict, as {'maxBytes': 1024}");
    for (size_t k = 0; k < kwargs->n; k++) {
        size_t i = 0;
        while (i < nparams && strcmp(hc->params[i], kwargs->keys[k]) != 0)
            i++;
        if (i == nparams)
            return conf_fail(hc->cx, hc->section, "kwargs", NULL, NULL, "%s has no argument '%s'",
                             hc->class_name, kwargs->keys[k]);
        if (hc->slots[i])
            return conf_fail(hc->cx, hc->section, "kwargs", NULL, NULL, "%s: '%s' given twice",
                             hc->class_name, kwargs->keys[k]);
        hc->slots[i] = &kwargs->items[k];
    }
    return 0;
}

/* Turns a relative file name into an absolute one, as Python's os.path.abspath. */
static char *conf_abspath(const char *name)
{
    if (name[0] == '/')
        return xstrdup(name);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return xstrdup(name);
    return xasprintf("%s/%s", cwd, name);
}

static int conf_file_args(conf_handler_ctx *hc, fg_log_handler *h)
{
    const char *filename = NULL, *mode = "a", *ignored = NULL;
    if (conf_arg_str(hc, "filename", &filename, false) || conf_arg_str(hc, "mode", &mode, false) ||
        conf_arg_str(hc, "encoding", &ignored, true) || conf_arg_str(hc, "errors", &ignored, true) ||
        conf_arg_bool(hc, "delay", &h->delay))
        return -1;
    if (!filename)
        return conf_fail(hc->cx, hc->section, "args", hc->section, "class", "%s needs a file name, as "
                         "args=('/var/log/fuglu/fuglu.log',)", hc->class_name);
    if (mode[0] != 'a' && mode[0] != 'w')
        return conf_fail(hc->cx, hc->section, "args", NULL, NULL, "mode must be 'a' or 'w', not '%s'", mode);
    h->truncate = mode[0] == 'w';
    h->filename = conf_abspath(filename);
    if (h->kind == FG_LOGH_ROTATING) {
        long long max_bytes = 0, backups = 0;
        if (conf_arg_int(hc, "maxBytes", &max_bytes) || conf_arg_int(hc, "backupCount", &backups))
            return -1;
        h->max_bytes = max_bytes;
        h->backup_count = (int)(backups < 0 ? 0 : backups > 100000 ? 100000 : backups);
        if (max_bytes > 0)
            h->truncate = false;
    }
    if (h->kind == FG_LOGH_TIMED) {
        const char *when = "h";
        long long interval = 1, backups = 0;
        const fg_log_value *at = conf_slot(hc, "atTime");
        if (conf_arg_str(hc, "when", &when, false) || conf_arg_int(hc, "interval", &interval) ||
            conf_arg_int(hc, "backupCount", &backups) || conf_arg_bool(hc, "utc", &h->utc))
            return -1;
        if (at && at->type != FG_LOGV_NONE)
            return conf_fail(hc->cx, hc->section, "args", NULL, NULL, "atTime is not supported (use None)");
        snprintf(h->when, sizeof h->when, "%s", when);
        for (char *p = h->when; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 'a' + 'A');
        long long unit;
        if (strcmp(h->when, "S") == 0)
            unit = 1;
        else if (strcmp(h->when, "M") == 0)
            unit = 60;
        else if (strcmp(h->when, "H") == 0)
            unit = 3600;
        else if (strcmp(h->when, "D") == 0 || strcmp(h->when, "MIDNIGHT") == 0)
            unit = 86400;
        else if (h->when[0] == 'W' && h->when[1] >= '0' && h->when[1] <= '6' && h->when[2] == '\0')
            unit = 7 * 86400;
        else
            return conf_fail(hc->cx, hc->section, "args", NULL, NULL, "invalid rollover interval '%s' (S, M, "
                             "H, D, midnight or W0-W6 with 0 = Monday)", when);
        if (interval < 1 || interval > 1000000)
            return conf_fail(hc->cx, hc->section, "args", NULL, NULL, "interval must be at least 1");
        h->weekday = h->when[0] == 'W' ? h->when[1] - '0' : 0;
        h->interval = unit * interval;
        h->backup_count = (int)(backups < 0 ? 0 : backups > 100000 ? 100000 : backups);
    }
    return 0;
}

static int conf_syslog_args(conf_handler_ctx *hc, fg_log_handler *h)
{
    const fg_log_value *addr = conf_slot(hc, "address"), *fac = conf_slot(hc, "facility");
    const fg_log_value *socktype = conf_slot(hc, "socktype");
    if (!addr) {
        h->host = xstrdup("localhost");
        h->port = 514;
    } else if (addr->type == FG_LOGV_STR) {
        h->sock_path = xstrdup(addr->s);
    } else if (addr->type == FG_LOGV_TUPLE && addr->n == 2 && addr->items[0].type == FG_LOGV_STR &&
               addr->items[1].type == FG_LOGV_INT && addr->items[1].i > 0 && addr->items[1].i < 65536) {
        h->host = xstrdup(addr->items[0].s);
        h->port = (int)addr->items[1].i;
    } else {
        return conf_fail(hc->cx, hc->section, "args", NULL, NULL,
                         "SysLogHandler address must be a socket path ('/dev/log') or (host, port)");
    }
    if (fac && fac->type == FG_LOGV_INT && fac->i >= 0 && fac->i <= 23) {
        h->facility = (int)fac->i;
    } else if (fac && fac->type == FG_LOGV_STR && fg_log_syslog_facility_name(fac->s) >= 0) {
        h->facility = fg_log_syslog_facility_name(fac->s);
    } else if (fac) {
        return conf_fail(hc->cx, hc->section, "args", NULL, NULL,
                         "unknown syslog facility (use handlers.SysLogHandler.LOG_MAIL or 'mail')");
    }
    if (socktype && socktype->type != FG_LOGV_NONE)
        return conf_fail(hc->cx, hc->section, "args", NULL, NULL, "socktype is not supported (use None)");
    return 0;
}

static fg_log_handler *conf_handler(conf_ctx *cx, const char *key)
{
    char *section = conf_section(cx, "handler", key, "handlers");
    if (!section)
        return NULL;
    fg_log_handler *h = NULL;
    fg_log_value args = {0}, kwargs = {0};
    const char *klass = fg_config_get(cx->cfg, section, "class");
    if (!klass) {
        conf_fail(cx, section, NULL, "handlers", "keys", "[%s] has no class option", section);
        goto out;
    }
    const char *name = fg_strcaseprefix(klass, "logging.") ? klass + 8 : klass;
    size_t c = 0;
    while (c < sizeof conf_classes / sizeof conf_classes[0] && strcmp(conf_classes[c].name, name) != 0)
        c++;
    if (c == sizeof conf_classes / sizeof conf_classes[0]) {
        conf_fail(cx, section, "class", NULL, NULL, "handler class '%s' is not supported (StreamHandler, "
                  "FileHandler, NullHandler, handlers.WatchedFileHandler, handlers.RotatingFileHandler, "
                  "handlers.TimedRotatingFileHandler, handlers.SysLogHandler, custom_handlers.Group"
                  "{Readable,Writable}[Timed]RotatingFileHandler)", klass);
        goto out;
    }
    h = fg_log_handler_new(key, conf_classes[c].kind);
    h->create_mode = conf_classes[c].mode;
    const char *origin = fg_config_origin(cx->cfg, section, "args");
    if (!origin)
        origin = fg_config_origin(cx->cfg, section, "class");
    h->origin = origin ? xstrdup(origin) : NULL;
    if (conf_level(cx, section, &h->level) != 0)
        goto out;
    const char *fmt = fg_config_get(cx->cfg, section, "formatter");
    if (fmt && *fmt) {
        size_t i = 0;
        while (i < cx->n_formatters && strcmp(cx->formatter_keys[i], fmt) != 0)
            i++;
        if (i == cx->n_formatters) {
            conf_fail(cx, section, "formatter", NULL, NULL, "no formatter '%s' in [formatters] keys", fmt);
            goto out;
        }
        char *fsection = xasprintf("formatter_%s", fmt);
        char *ferr = NULL;
        h->format = fg_log_format_compile(fg_config_get(cx->cfg, fsection, "format"),
                                          fg_config_get(cx->cfg, fsection, "datefmt"), &ferr);
        free(ferr);    /* checked in conf_formatters already */
        free(fsection);
    }
    if (!h->format) {
        char *ferr = NULL;
        h->format = fg_log_format_compile(NULL, NULL, &ferr);
    }
    char *perr = NULL;
    const char *args_text = fg_config_get(cx->cfg, section, "args");
    const char *kwargs_text = fg_config_get(cx->cfg, section, "kwargs");
    if (fg_log_args_parse(args_text ? args_text : "()", &args, &perr) != 0) {
        conf_fail(cx, section, "args", NULL, NULL, "%s", perr);
        free(perr);
        goto out;
    }
    if (fg_log_args_parse(kwargs_text ? kwargs_text : "{}", &kwargs, &perr) != 0) {
        conf_fail(cx, section, "kwargs", NULL, NULL, "%s", perr);
        free(perr);
        goto out;
    }
    conf_handler_ctx hc = {.cx = cx, .section = section, .class_name = klass, .params = conf_params(h->kind)};
    if (conf_bind(&hc, &args, &kwargs) != 0)
        goto out;
    if (h->kind == FG_LOGH_STREAM) {
        const fg_log_value *s = conf_slot(&hc, "stream");
        if (s && s->type == FG_LOGV_STDOUT)
            h->stream_fd = 1;
        else if (s && s->type != FG_LOGV_STDERR && s->type != FG_LOGV_NONE)
            conf_arg_fail(&hc, "stream", "sys.stdout or sys.stderr", s);
    } else if (h->kind == FG_LOGH_SYSLOG) {
        conf_syslog_args(&hc, h);
    } else if (h->kind != FG_LOGH_NULL) {
        conf_file_args(&hc, h);
    }
out:
    fg_log_value_clear(&args);
    fg_log_value_clear(&kwargs);
    free(section);
    if (cx->err && h) {
        fg_log_handler_free(h);
        h = NULL;
    }
    return h;
}

static void conf_logger_clear(fg_log_logger *l)
{
    free(l->name);
    free(l->handlers);
}

/* Reads [logger_key] into l: level, handlers (required, may be empty), propagate, qualname. */
static int conf_logger(conf_ctx *cx, fg_log_conf *c, const char *key, fg_log_logger *l)
{
    char *section = conf_section(cx, "logger", key, "loggers");
    if (!section)
        return -1;
    bool root = strcmp(key, "root") == 0;
    l->propagate = true;
    l->level = root ? FG_WARNING : 0;
    const char *qualname = fg_config_get(cx->cfg, section, "qualname");
    if (root) {
        l->name = xstrdup("");
    } else if (!qualname) {
        conf_fail(cx, section, NULL, "loggers", "keys", "[%s] has no qualname option (the logger name, "
                  "as qualname=fuglu.plugin.SAPlugin)", section);
        goto out;
    } else {
        char *t = xstrdup(qualname);
        l->name = xstrdup(fg_strtrim(t));
        free(t);
    }
    if (conf_level(cx, section, &l->level) != 0)
        goto out;
    const char *prop = fg_config_get(cx->cfg, section, "propagate");
    if (prop && !root) {
        char *end;
        long v = strtol(prop, &end, 10);
        if (end == prop || *fg_strtrim(end)) {
            conf_fail(cx, section, "propagate", NULL, NULL, "'%s' is not an integer (0 or 1)", prop);
            goto out;
        }
        l->propagate = v != 0;
    }
    const char *hlist = fg_config_get(cx->cfg, section, "handlers");
    if (!hlist) {
        conf_fail(cx, section, NULL, "loggers", "keys", "[%s] has no handlers option (write handlers= for "
                  "none)", section);
        goto out;
    }
    size_t n;
    char **names = conf_split_keys(hlist, &n);
    l->handlers = xcalloc(n + 1, sizeof *l->handlers);
    for (size_t i = 0; i < n && !cx->err; i++) {
        size_t j = 0;
        while (j < c->n_handlers && strcmp(c->handlers[j]->key, names[i]) != 0)
            j++;
        if (j == c->n_handlers)
            conf_fail(cx, section, "handlers", NULL, NULL, "no handler '%s' in [handlers] keys", names[i]);
        else
            l->handlers[l->n_handlers++] = j;
    }
    conf_free_keys(names, n);
out:
    free(section);
    return cx->err ? -1 : 0;
}

fg_log_conf *fg_log_conf_from_config(const fg_config *cfg, char **err)
{
    conf_ctx cx = {.cfg = cfg};
    fg_log_conf *c = xcalloc(1, sizeof *c);
    char **hkeys = NULL, **lkeys = NULL;
    size_t nh = 0, nl = 0;
    if (!fg_config_has_section(cfg, "loggers") || !fg_config_get(cfg, "loggers", "keys")) {
        conf_fail(&cx, "loggers", NULL, "formatters", "keys",
                  "a [loggers] section with keys=root,... is required");
        goto out;
    }
    if (conf_formatters(&cx) != 0)
        goto out;
    if (!fg_config_has_section(cfg, "handlers") || !fg_config_get(cfg, "handlers", "keys")) {
        conf_fail(&cx, "handlers", NULL, "loggers", "keys", "a [handlers] section with a keys option is required");
        goto out;
    }
    hkeys = conf_split_keys(fg_config_get(cfg, "handlers", "keys"), &nh);
    c->handlers = xcalloc(nh + 1, sizeof *c->handlers);
    for (size_t i = 0; i < nh; i++) {
        fg_log_handler *h = conf_handler(&cx, hkeys[i]);
        if (!h)
            goto out;
        c->handlers[c->n_handlers++] = h;
    }
    lkeys = conf_split_keys(fg_config_get(cfg, "loggers", "keys"), &nl);
    size_t root = 0;
    while (root < nl && strcmp(lkeys[root], "root") != 0)
        root++;
    if (root == nl) {
        conf_fail(&cx, "loggers", "keys", NULL, NULL, "must list root (keys=root,...)");
        goto out;
    }
    c->loggers = xcalloc(nl, sizeof *c->loggers);
    if (conf_logger(&cx, c, "root", &c->loggers[0]) != 0) {
        c->n_loggers = 1;
        goto out;
    }
    c->n_loggers = 1;
    for (size_t i = 0; i < nl; i++) {
        if (i == root)
            continue;
        fg_log_logger l = {0};
        if (conf_logger(&cx, c, lkeys[i], &l) != 0) {
            conf_logger_clear(&l);
            goto out;
        }
        /* a second section with the same qualname reconfigures the same logger, as in Python */
        size_t j = 1;
        while (j < c->n_loggers && strcmp(c->loggers[j].name, l.name) != 0)
            j++;
        if (j < c->n_loggers)
            conf_logger_clear(&c->loggers[j]);
        else
            c->n_loggers++;
        c->loggers[j] = l;
    }
out:
    conf_free_keys(hkeys, nh);
    conf_free_keys(lkeys, nl);
    conf_free_keys(cx.formatter_keys, cx.n_formatters);
    if (cx.err) {
        fg_log_conf_free(c);
        *err = cx.err;
        return NULL;
    }
    return c;
}

fg_log_conf *fg_log_conf_read_file(const char *path, char **err)
{
    fg_config *cfg = fg_config_new();
    fg_log_conf *c = NULL;
    if (fg_config_read_file(cfg, path, err) == 0)
        c = fg_log_conf_from_config(cfg, err);
    fg_config_free(cfg);
    return c;
}

fg_log_conf *fg_log_conf_read_string(const char *text, const char *name, char **err)
{
    fg_config *cfg = fg_config_new();
    fg_log_conf *c = NULL;
    if (fg_config_read_string(cfg, text, name, err) == 0)
        c = fg_log_conf_from_config(cfg, err);
    fg_config_free(cfg);
    return c;
}

fg_log_conf *fg_log_conf_simple(int root_level, const char *path)
{
    fg_log_conf *c = xcalloc(1, sizeof *c);
    fg_log_handler *h = fg_log_handler_new(path ? "logfile" : "stderr", path ? FG_LOGH_FILE : FG_LOGH_STREAM);
    char *err = NULL;
    h->format = fg_log_format_compile(FG_LOG_DEFAULT_FORMAT, NULL, &err);
    if (path)
        h->filename = conf_abspath(path);
    c->handlers = xcalloc(1, sizeof *c->handlers);
    c->handlers[0] = h;
    c->n_handlers = 1;
    c->loggers = xcalloc(1, sizeof *c->loggers);
    c->loggers[0].name = xstrdup("");
    c->loggers[0].level = root_level;
    c->loggers[0].propagate = true;
    c->loggers[0].handlers = xcalloc(1, sizeof(size_t));
    c->loggers[0].n_handlers = 1;
    c->n_loggers = 1;
    return c;
}

int fg_log_conf_open(fg_log_conf *c, char **err)
{
    for (size_t i = 0; i < c->n_handlers; i++) {
        char *herr = NULL;
        if (fg_log_handler_open(c->handlers[i], &herr) != 0) {
            *err = xasprintf("%s%s[handler_%s] %s", c->handlers[i]->origin ? c->handlers[i]->origin : "",
                             c->handlers[i]->origin ? ": " : "", c->handlers[i]->key, herr);
            free(herr);
            for (size_t j = 0; j <= i; j++) {
                fg_log_handler *h = c->handlers[j];
                if (h->fd >= 0 && h->kind != FG_LOGH_STREAM)
                    close(h->fd);
                h->fd = -1;
            }
            return -1;
        }
    }
    return 0;
}

void fg_log_conf_free(fg_log_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_handlers; i++)
        fg_log_handler_free(c->handlers[i]);
    free(c->handlers);
    for (size_t i = 0; i < c->n_loggers; i++)
        conf_logger_clear(&c->loggers[i]);
    free(c->loggers);
    free(c);
}

const fg_log_logger *fg_log_conf_logger(const fg_log_conf *c, const char *name)
{
    for (size_t i = 0; i < c->n_loggers; i++)
        if (strcmp(c->loggers[i].name, name) == 0)
            return &c->loggers[i];
    return NULL;
}

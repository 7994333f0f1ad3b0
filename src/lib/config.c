/* config: fuglu.conf reader with the semantics of Python's RawConfigParser as Fuglu uses it.
 *
 * A config is an ordered list of sections, each an ordered list of options. Option names are
 * stored lower-cased; section names are kept as written. Every option read from a file remembers
 * its origin "FILE:LINE" so that later errors can point at the line that set it.
 *
 * Parsing follows Python 3's configparser (strict mode, no interpolation, no inline comments):
 * - '#' or ';' as the first non-blank character makes a comment line;
 * - a line indented deeper than the option line above it continues that option's value (joined
 *   with "\n"); blank lines inside such a value are kept, comment lines are skipped;
 * - "key = value" and "key: value" split at the first '=' or ':';
 * - the same section or option twice in ONE file is an error (Python's strict mode); a later file
 *   overrides an earlier one option by option.
 * A source is parsed into a scratch config first and merged only when it parsed completely, so a
 * broken file never leaves half of itself behind.
 *
 * Lookups are linear scans: a config has a few hundred options and is read rarely.
 * The table of core defaults (Fuglu's Appendix A plus this engine's additions) ends the file.
 */
#include "lib/config.h"
#include "lib/io.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct config_option {
    char *name;   /* lower-cased */
    char *value;
    char *origin; /* "FILE:LINE", NULL when set by code or defaults */
    long line;    /* line in its file, 0 when set by code */
} config_option;

typedef struct config_section {
    char *name;
    long line; /* line of the header in the scratch config, for duplicate errors */
    config_option *options;
    size_t count, cap;
} config_section;

struct fg_config {
    config_section *sections;
    size_t count, cap;
};

/* Case-insensitive ASCII comparison, independent of the locale. */
static bool config_name_equal(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char ca = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char cb = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;
        if (ca != cb)
            return false;
    }
    return *a == *b;
}

fg_config *fg_config_new(void)
{
    return xcalloc(1, sizeof(fg_config));
}

static void config_option_clear(config_option *o)
{
    free(o->name);
    free(o->value);
    free(o->origin);
}

void fg_config_free(fg_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->count; i++) {
        config_section *s = &cfg->sections[i];
        for (size_t j = 0; j < s->count; j++)
            config_option_clear(&s->options[j]);
        free(s->options);
        free(s->name);
    }
    free(cfg->sections);
    free(cfg);
}

static config_section *config_find_section(const fg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->count; i++)
        if (strcmp(cfg->sections[i].name, name) == 0)
            return &cfg->sections[i];
    return NULL;
}

static config_section *config_add_section(fg_config *cfg, const char *name)
{
    config_section *s = config_find_section(cfg, name);
    if (s)
        return s;
    if (cfg->count == cfg->cap) {
        cfg->cap = cfg->cap ? cfg->cap * 2 : 16;
        cfg->sections = xrealloc(cfg->sections, cfg->cap * sizeof(config_section));
    }
    s = &cfg->sections[cfg->count++];
    memset(s, 0, sizeof(*s));
    s->name = xstrdup(name);
    return s;
}

static config_option *config_find_option(const config_section *s, const char *name)
{
    for (size_t j = 0; j < s->count; j++)
        if (config_name_equal(s->options[j].name, name))
            return &s->options[j];
    return NULL;
}

/* Looks an option up; like RawConfigParser, a section's missing option falls back to [DEFAULT]. */
static const config_option *config_lookup(const fg_config *cfg, const char *section, const char *option)
{
    const config_section *s = config_find_section(cfg, section);
    if (!s)
        return NULL;
    const config_option *o = config_find_option(s, option);
    if (o || strcmp(section, "DEFAULT") == 0)
        return o;
    const config_section *d = config_find_section(cfg, "DEFAULT");
    return d ? config_find_option(d, option) : NULL;
}

/* Sets an option, taking ownership of value and origin. */
static void config_put(fg_config *cfg, const char *section, const char *option, char *value,
                       char *origin, long line)
{
    config_section *s = config_add_section(cfg, section);
    config_option *o = config_find_option(s, option);
    if (!o) {
        if (s->count == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 16;
            s->options = xrealloc(s->options, s->cap * sizeof(config_option));
        }
        o = &s->options[s->count++];
        o->name = xstrdup(option);
        fg_strlower(o->name);
    } else {
        free(o->value);
        free(o->origin);
    }
    o->value = value;
    o->origin = origin;
    o->line = line;
}

void fg_config_set(fg_config *cfg, const char *section, const char *option, const char *value)
{
    config_put(cfg, section, option, xstrdup(value ? value : ""), NULL, 0);
}

void fg_config_set_default(fg_config *cfg, const char *section, const char *option, const char *value)
{
    if (config_lookup(cfg, section, option))
        return;
    fg_config_set(cfg, section, option, value);
}

const char *fg_config_get(const fg_config *cfg, const char *section, const char *option)
{
    const config_option *o = config_lookup(cfg, section, option);
    return o ? o->value : NULL;
}

bool fg_config_has_section(const fg_config *cfg, const char *section)
{
    return config_find_section(cfg, section) != NULL;
}

long fg_config_section_index(const fg_config *cfg, const char *section)
{
    for (size_t i = 0; i < fg_config_section_count(cfg); i++)
        if (strcmp(fg_config_section_name(cfg, i), section) == 0)
            return (long)i;
    return -1;
}

const char *fg_config_origin(const fg_config *cfg, const char *section, const char *option)
{
    const config_option *o = config_lookup(cfg, section, option);
    return o ? o->origin : NULL;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* State of one source being parsed into a scratch config. */
typedef struct config_parser {
    fg_config *scratch;
    const char *name;
    config_section *section; /* current section, NULL before the first header */
    config_option *option;   /* option whose value may still continue, or NULL */
    size_t indent;           /* indentation of the current section or option line */
    fg_buf value;            /* the current option's value being assembled */
    char **err;
} config_parser;

static bool config_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static int config_fail(config_parser *p, long line, const char *fmt, const char *text)
{
    if (p->err) {
        char *what = xasprintf(fmt, text);
        *p->err = xasprintf("%s:%ld: %s", p->name, line, what);
        free(what);
    }
    return -1;
}

/* Stores the assembled value of the current option (trimmed) and forgets the option. */
static void config_finish_option(config_parser *p)
{
    if (!p->option)
        return;
    free(p->option->value);
    p->option->value = xstrdup(p->value.data ? fg_strtrim(p->value.data) : "");
    fg_buf_clear(&p->value);
    p->option = NULL;
}

/* Handles "[name]" (text is the trimmed line starting with '['). */
static int config_parse_header(config_parser *p, char *text, long line)
{
    char *close = strrchr(text, ']');
    if (!close)
        return config_fail(p, line, "unterminated section header '%s': expected ']' at the end", text);
    char *rest = fg_strtrim(close + 1);
    if (*rest && *rest != '#' && *rest != ';')
        return config_fail(p, line, "unexpected text after section header '%s'", text);
    *close = '\0';
    const char *name = text + 1;
    if (!*name)
        return config_fail(p, line, "empty section name '%s]'", text);
    config_section *existing = config_find_section(p->scratch, name);
    if (existing) {
        char *what = xasprintf("section [%s] appears twice in this file (first at line %ld)", name,
                               existing->line);
        int rc = config_fail(p, line, "%s", what);
        free(what);
        return rc;
    }
    p->section = config_add_section(p->scratch, name);
    p->section->line = line;
    return 0;
}

/* Handles "key = value" / "key: value" (text is the trimmed line). */
static int config_parse_option(config_parser *p, char *text, long line)
{
    size_t at = strcspn(text, "=:");
    if (!text[at])
        return config_fail(p, line, "expected '[section]', 'option = value' or a comment, got '%s'", text);
    if (!p->section)
        return config_fail(p, line, "option outside any [section]: '%s' (add a header such as [main] above it)",
                           text);
    char *value = fg_strtrim(text + at + 1);
    text[at] = '\0';
    char *key = fg_strtrim(text);
    if (!*key)
        return config_fail(p, line, "missing option name before '%s'", value);
    fg_strlower(key);
    config_option *existing = config_find_option(p->section, key);
    if (existing) {
        char *what = xasprintf("option '%s' appears twice in section [%s] of this file (first at line %ld)",
                               key, p->section->name, existing->line);
        int rc = config_fail(p, line, "%s", what);
        free(what);
        return rc;
    }
    config_put(p->scratch, p->section->name, key, xstrdup(""), xasprintf("%s:%ld", p->name, line), line);
    /* config_put may have moved the section's option array; look the option up again. */
    p->option = config_find_option(p->section, key);
    fg_buf_puts(&p->value, value);
    return 0;
}

/* Handles one line (without its "\n"); the line is modified in place. */
static int config_parse_line(config_parser *p, char *raw, long line)
{
    size_t indent = 0;
    while (raw[indent] && config_is_space(raw[indent]))
        indent++;
    char *text = fg_strtrim(raw);
    if (*text == '#' || *text == ';')
        return 0;
    if (!*text) {
        /* A blank line is kept inside a value when more continuation lines follow. */
        if (p->option)
            fg_buf_puts(&p->value, "\n");
        return 0;
    }
    if (p->option && indent > p->indent) {
        fg_buf_puts(&p->value, "\n");
        fg_buf_puts(&p->value, text);
        return 0;
    }
    config_finish_option(p);
    p->indent = indent;
    if (*text == '[')
        return config_parse_header(p, text, line);
    return config_parse_option(p, text, line);
}

/* Moves every option of the scratch config into cfg, overriding what is there. */
static void config_merge(fg_config *cfg, fg_config *scratch)
{
    for (size_t i = 0; i < scratch->count; i++) {
        config_section *s = &scratch->sections[i];
        config_add_section(cfg, s->name);
        for (size_t j = 0; j < s->count; j++) {
            config_option *o = &s->options[j];
            config_put(cfg, s->name, o->name, o->value, o->origin, o->line);
            o->value = NULL;
            o->origin = NULL;
        }
    }
}

int fg_config_read_string(fg_config *cfg, const char *text, const char *name, char **err)
{
    if (err)
        *err = NULL;
    config_parser p = { .scratch = fg_config_new(), .name = name ? name : "<string>", .err = err };
    fg_buf_init(&p.value);
    char *copy = xstrdup(text ? text : "");
    char *cursor = copy;
    if ((unsigned char)cursor[0] == 0xEF && (unsigned char)cursor[1] == 0xBB && (unsigned char)cursor[2] == 0xBF)
        cursor += 3; /* a UTF-8 byte order mark */
    int rc = 0;
    for (long line = 1; cursor && rc == 0; line++) {
        char *nl = strchr(cursor, '\n');
        if (nl)
            *nl = '\0';
        rc = config_parse_line(&p, cursor, line);
        cursor = nl ? nl + 1 : NULL;
    }
    if (rc == 0) {
        config_finish_option(&p);
        config_merge(cfg, p.scratch);
    }
    free(copy);
    fg_buf_free(&p.value);
    fg_config_free(p.scratch);
    return rc;
}

int fg_config_read_file(fg_config *cfg, const char *path, char **err)
{
    if (err)
        *err = NULL;
    size_t len = 0;
    char *text = fg_read_file(path, (size_t)-1, &len, err);
    if (!text)
        return -1;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        long line = 1;
        for (const char *c = text; c < nul; c++)
            line += *c == '\n';
        if (err)
            *err = xasprintf("%s:%ld: contains a NUL byte; is this a text file?", path, line);
        free(text);
        return -1;
    }
    int rc = fg_config_read_string(cfg, text, path, err);
    free(text);
    return rc;
}

static int config_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fg_config_load(fg_config *cfg, const char *path, bool with_confd, char **err)
{
    if (fg_config_read_file(cfg, path, err) != 0)
        return -1;
    if (!with_confd)
        return 0;
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash)
        dir = xstrdup("conf.d");
    else if (slash == path)
        dir = xstrdup("/conf.d");
    else
        dir = xasprintf("%.*s/conf.d", (int)(slash - path), path);
    DIR *d = opendir(dir);
    if (!d) {
        int rc = 0;
        if (errno != ENOENT && errno != ENOTDIR) {
            if (err)
                *err = xasprintf("%s: cannot open directory: %s", dir, strerror(errno));
            rc = -1;
        }
        free(dir);
        return rc;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        /* Like glob("*.conf"): hidden files do not match. */
        if (e->d_name[0] == '.' || len < 5 || strcmp(e->d_name + len - 5, ".conf") != 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof(char *));
        }
        names[count++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof(char *), config_strcmp);
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        char *file = xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        /* Directories and other non-files named *.conf are skipped, as Python's read() would. */
        if (rc == 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode))
            rc = fg_config_read_file(cfg, file, err);
        free(file);
        free(names[i]);
    }
    free(names);
    free(dir);
    return rc;
}

/* ---- typed getters ---------------------------------------------------------------------- */

int fg_parse_bool(const char *s, bool *out)
{
    static const char *const truthy[] = { "1", "yes", "true", "on" };
    static const char *const falsy[] = { "0", "no", "false", "off" };
    if (!s)
        return -1;
    while (config_is_space(*s) || *s == '\n')
        s++;
    size_t len = strlen(s);
    while (len && (config_is_space(s[len - 1]) || s[len - 1] == '\n'))
        len--;
    char word[8];
    if (len == 0 || len >= sizeof(word))
        return -1;
    memcpy(word, s, len);
    word[len] = '\0';
    for (size_t i = 0; i < 4; i++) {
        if (config_name_equal(word, truthy[i])) {
            *out = true;
            return 0;
        }
        if (config_name_equal(word, falsy[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int config_type_error(const config_option *o, const char *section, const char *option,
                             const char *what, char **err)
{
    if (err) {
        if (o->origin)
            *err = xasprintf("%s: [%s] %s: '%s' is not %s", o->origin, section, option, o->value, what);
        else
            *err = xasprintf("[%s] %s: '%s' is not %s", section, option, o->value, what);
    }
    return -1;
}

int fg_config_get_int(const fg_config *cfg, const char *section, const char *option, long def, long *out,
                      char **err)
{
    *out = def;
    const config_option *o = config_lookup(cfg, section, option);
    if (!o)
        return 0;
    char *copy = xstrdup(o->value);
    char *text = fg_strtrim(copy);
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    bool ok = *text && end && *end == '\0' && errno == 0;
    free(copy);
    if (!ok)
        return config_type_error(o, section, option, "an integer", err);
    *out = v;
    return 0;
}

int fg_config_get_bool(const fg_config *cfg, const char *section, const char *option, bool def, bool *out,
                       char **err)
{
    *out = def;
    const config_option *o = config_lookup(cfg, section, option);
    if (!o)
        return 0;
    bool v;
    if (fg_parse_bool(o->value, &v) != 0)
        return config_type_error(o, section, option, "a boolean (use 1/yes/true/on or 0/no/false/off)", err);
    *out = v;
    return 0;
}

int fg_config_get_double(const fg_config *cfg, const char *section, const char *option, double def,
                         double *out, char **err)
{
    *out = def;
    const config_option *o = config_lookup(cfg, section, option);
    if (!o)
        return 0;
    char *copy = xstrdup(o->value);
    char *text = fg_strtrim(copy);
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    /* strtod also takes hex ("0x1p3"), which Python's float() does not. */
    bool ok = *text && end && *end == '\0' && errno != ERANGE && !strpbrk(text, "xX");
    free(copy);
    if (!ok)
        return config_type_error(o, section, option, "a number", err);
    *out = v;
    return 0;
}

/* ---- iteration -------------------------------------------------------------------------- */

size_t fg_config_section_count(const fg_config *cfg)
{
    return cfg->count;
}

const char *fg_config_section_name(const fg_config *cfg, size_t i)
{
    return i < cfg->count ? cfg->sections[i].name : NULL;
}

size_t fg_config_option_count(const fg_config *cfg, size_t section_index)
{
    return section_index < cfg->count ? cfg->sections[section_index].count : 0;
}

const char *fg_config_option_name(const fg_config *cfg, size_t section_index, size_t j)
{
    if (section_index >= cfg->count || j >= cfg->sections[section_index].count)
        return NULL;
    return cfg->sections[section_index].options[j].name;
}

const char *fg_config_option_value(const fg_config *cfg, size_t section_index, size_t j)
{
    if (section_index >= cfg->count || j >= cfg->sections[section_index].count)
        return NULL;
    return cfg->sections[section_index].options[j].value;
}

/* ---- core defaults and lint ------------------------------------------------------------- */

void fg_config_apply_core_defaults(fg_config *cfg)
{
    for (const fg_config_default *d = fg_core_defaults; d->section; d++)
        fg_config_set_default(cfg, d->section, d->option, d->value);
}

const fg_config_default *fg_core_option(const char *section, const char *option)
{
    for (const fg_config_default *d = fg_core_defaults; d->section; d++)
        if (strcmp(d->section, section) == 0 && strcmp(d->option, option) == 0)
            return d;
    return NULL;
}

static const fg_config_default *config_core_typed(const char *section, const char *option, fg_opt_type type)
{
    const fg_config_default *d = fg_core_option(section, option);
    if (!d)
        fg_panic("[%s] %s is read as a core option but is not in the table of core options (config.c)", section,
                 option);
    if (d->type != type)
        fg_panic("[%s] %s is read with the wrong type (config.c's table says otherwise)", section, option);
    return d;
}

const char *fg_core_str(const fg_config *cfg, const char *section, const char *option)
{
    const fg_config_default *d = config_core_typed(section, option, FG_OPT_STRING);
    const char *v = fg_config_get(cfg, section, option);
    return v ? v : d->value;
}

/* The checked value, or the table's default when the configured one is unusable (fg_config_check_core
 * reports that: at start-up and on reload the configuration is refused before this runs). */
long fg_core_int(const fg_config *cfg, const char *section, const char *option)
{
    const fg_config_default *d = config_core_typed(section, option, FG_OPT_INT);
    long def = strtol(d->value, NULL, 10), v;
    if (fg_config_get_int(cfg, section, option, def, &v, NULL) != 0 || v < d->min || v > d->max)
        return def;
    return v;
}

double fg_core_double(const fg_config *cfg, const char *section, const char *option)
{
    const fg_config_default *d = config_core_typed(section, option, FG_OPT_DOUBLE);
    double def = strtod(d->value, NULL), v;
    if (fg_config_get_double(cfg, section, option, def, &v, NULL) != 0 || v < d->min || v > d->max)
        return def;
    return v;
}

bool fg_core_bool(const fg_config *cfg, const char *section, const char *option)
{
    const fg_config_default *d = config_core_typed(section, option, FG_OPT_BOOL);
    bool def = false, v;
    fg_parse_bool(d->value, &def);
    if (fg_config_get_bool(cfg, section, option, def, &v, NULL) != 0)
        return def;
    return v;
}

static void config_bound_error(const fg_config *cfg, const fg_config_default *d, const char *value,
                               void (*report)(void *arg, const char *msg), void *arg)
{
    const char *origin = fg_config_origin(cfg, d->section, d->option);
    char *msg = xasprintf("%s%s[%s] %s: %s is out of range (%.15g to %.15g)", origin ? origin : "", origin ? ": " : "",
                          d->section, d->option, value, d->min, d->max);
    report(arg, msg);
    free(msg);
}

int fg_config_check_core(const fg_config *cfg, void (*report)(void *arg, const char *msg), void *arg)
{
    int errors = 0;
    for (const fg_config_default *d = fg_core_defaults; d->section; d++) {
        if (d->type == FG_OPT_STRING || !fg_config_get(cfg, d->section, d->option))
            continue;
        char *err = NULL;
        char number[64];
        if (d->type == FG_OPT_BOOL) {
            bool b;
            if (fg_config_get_bool(cfg, d->section, d->option, false, &b, &err) == 0)
                continue;
        } else if (d->type == FG_OPT_INT) {
            long v;
            if (fg_config_get_int(cfg, d->section, d->option, 0, &v, &err) == 0) {
                if (v >= d->min && v <= d->max)
                    continue;
                snprintf(number, sizeof number, "%ld", v);
                config_bound_error(cfg, d, number, report, arg);
                errors++;
                continue;
            }
        } else {
            double v;
            if (fg_config_get_double(cfg, d->section, d->option, 0, &v, &err) == 0) {
                if (v >= d->min && v <= d->max)
                    continue;
                snprintf(number, sizeof number, "%g", v);
                config_bound_error(cfg, d, number, report, arg);
                errors++;
                continue;
            }
        }
        report(arg, err);
        free(err);
        errors++;
    }
    return errors;
}

static const char *const config_core_sections[] = {
    "main", "performance", "spam", "virus", "smtpconnector", "esmtpconnector", "environment", "databaseconfig",
};

static bool config_is_core_option(const char *section, const char *option)
{
    return fg_core_option(section, option) != NULL;
}

int fg_config_lint_unknown(const fg_config *cfg, void (*warn)(void *arg, const char *msg), void *arg)
{
    int warnings = 0;
    for (size_t i = 0; i < cfg->count; i++) {
        const config_section *s = &cfg->sections[i];
        bool core = false;
        for (size_t k = 0; k < sizeof(config_core_sections) / sizeof(config_core_sections[0]); k++)
            core = core || strcmp(s->name, config_core_sections[k]) == 0;
        if (!core)
            continue;
        for (size_t j = 0; j < s->count; j++) {
            const config_option *o = &s->options[j];
            if (config_is_core_option(s->name, o->name))
                continue;
            const char *where = o->origin ? o->origin : "(set by code)";
            char *msg;
            if (strcmp(s->name, "main") == 0 && strcmp(o->name, "versioncheck") == 0)
                msg = xasprintf("%s: unknown option 'versioncheck' in section [main]: there is no version "
                                "check here (it would leak to DNS); remove the line", where);
            else
                msg = xasprintf("%s: unknown option '%s' in section [%s]", where, o->name, s->name);
            if (warn)
                warn(arg, msg);
            free(msg);
            warnings++;
        }
    }
    return warnings;
}

/* Fuglu's core options (MainController.requiredvars; versioncheck left out on purpose: it would
 * send a DNS query revealing the version) plus the options this engine adds to [main]. */
const fg_config_default fg_core_defaults[] = {
    { "main", "identifier", "dist",
      "A name for this installation, logged after a config reload.", FG_OPT_STRING, 0, 0 },
    { "main", "daemonize", "1",
      "1 runs in the background, 0 stays in the foreground (--foreground overrides it).", FG_OPT_BOOL, 0, 1 },
    { "main", "user", "nobody",
      "User to switch to after startup when started as root.", FG_OPT_STRING, 0, 0 },
    { "main", "group", "nobody",
      "Group to switch to after startup when started as root.", FG_OPT_STRING, 0, 0 },
    { "main", "plugindir", "",
      "Comma-separated extra directories searched for plugins before the built-in ones.", FG_OPT_STRING, 0, 0 },
    { "main", "plugins", "archive,attachment,clamav,spamassassin",
      "Comma-separated scanner plugins run in this order; name(section) runs a plugin with another config section.", FG_OPT_STRING, 0, 0 },
    { "main", "prependers", "debug,skip",
      "Comma-separated prepender plugins, run before the scanners and able to change which scanners run.", FG_OPT_STRING, 0, 0 },
    { "main", "appenders", "",
      "Comma-separated appender plugins, run after the MTA has been answered.", FG_OPT_STRING, 0, 0 },
    { "main", "bindaddress", "127.0.0.1",
      "Address the listeners bind to unless an incomingport entry names its own.", FG_OPT_STRING, 0, 0 },
    { "main", "incomingport", "10025,10099,10888",
      "Comma-separated listeners: PORT, PROTO:PORT, PROTO:ADDR:PORT or PROTO:[IPV6]:PORT, PROTO being smtp, esmtp, milter or netcat.", FG_OPT_STRING, 0, 0 },
    { "main", "outgoinghost", "127.0.0.1",
      "Host scanned mail is re-injected to; ${injecthost} means the host the message came from.", FG_OPT_STRING, 0, 0 },
    { "main", "outgoingport", "10026",
      "Port scanned mail is re-injected to.", FG_OPT_INT, 1, 65535 },
    { "main", "outgoinghelo", "",
      "HELO name used when re-injecting; empty means this host's name.", FG_OPT_STRING, 0, 0 },
    { "main", "tempdir", "/tmp",
      "Directory for temporary message files.", FG_OPT_STRING, 0, 0 },
    { "main", "prependaddedheaders", "X-Fuglu-",
      "Prefix of the headers the core adds (Spamstatus, Suspect, Debuginfo).", FG_OPT_STRING, 0, 0 },
    { "main", "trashdir", "",
      "If set, a copy of every deleted message is kept in this directory.", FG_OPT_STRING, 0, 0 },
    { "main", "trashlog", "0",
      "1 also logs every message kept in trashdir to trashdir/00-fuglutrash.log.", FG_OPT_BOOL, 0, 1 },
    { "main", "disablebounces", "0",
      "1 never sends bounces (for example for blocked attachments).", FG_OPT_BOOL, 0, 1 },
    { "main", "debuginfoheader", "0",
      "1 adds a Debuginfo header with the scan summary of the message.", FG_OPT_BOOL, 0, 1 },
    { "main", "spamstatusheader", "1",
      "1 adds a Spamstatus header saying YES or NO.", FG_OPT_BOOL, 0, 1 },
    { "main", "suspectidheader", "1",
      "1 adds a Suspect header with the message's id.", FG_OPT_BOOL, 0, 1 },
    { "main", "mrtgdir", "",
      "If set to an existing directory, MRTG statistics files are written there every 30 seconds.", FG_OPT_STRING, 0, 0 },
    { "main", "mrtg_interval", "30",
      "Seconds between two writes of the MRTG files.", FG_OPT_INT, 1, 86400 },
    { "main", "controlport", "/tmp/fuglu_control.sock",
      "Control server (fuglu_control): a port number (TCP on 127.0.0.1) or the path of a unix socket (mode 0600); empty disables it.", FG_OPT_STRING, 0, 0 },
    { "main", "nameservers", "",
      "DNS servers for plugins' lookups: IP[:port] or [IPv6]:port, comma separated; empty uses /etc/resolv.conf.", FG_OPT_STRING, 0, 0 },
    { "main", "dnstimeout", "3",
      "Seconds to wait for one DNS answer before the next try.", FG_OPT_DOUBLE, 0.01, 60 },
    { "main", "dnsattempts", "2",
      "Tries of each DNS query (over all nameservers).", FG_OPT_INT, 1, 10 },
    { "main", "dnscachesize", "4m",
      "Size of the DNS cache shared by all workers (e.g. 4m); 0 disables it.", FG_OPT_STRING, 0, 0 },
    { "main", "metricsport", "",
      "If set, a port on 127.0.0.1 serving Prometheus metrics (/metrics) and a status page (/); empty disables it.", FG_OPT_STRING, 0, 0 },
    { "main", "netconsole", "0",
      "1 allows `fuglu_control netconsole` to start a token-protected Lua console (off by default).", FG_OPT_BOOL, 0, 1 },
    { "main", "controlport_allow_netconsole", "0",
      "1 lets a TCP controlport start the netconsole too (any local user can reach a TCP port: keep 0 and use a unix socket, whose mode decides who may).", FG_OPT_BOOL, 0, 1 },
    { "main", "netconsole_allow_remote", "0",
      "1 lets the netconsole bind to a non-loopback address (unauthenticated networks: keep 0).", FG_OPT_BOOL, 0, 1 },
    { "main", "logtemplate",
      "Suspect ${id} from=${from_address} to=${to_address} size=${size} spam=${spam} virus=${virus} "
      "modified=${modified} decision=${decision}",
      "Summary line logged for every message (a template); empty disables it.", FG_OPT_STRING, 0, 0 },
    { "main", "address_compliance_checker", "Default",
      "Sender and recipient address check: Default (exactly one @) or LazyLocalPart (also quoted local parts).", FG_OPT_STRING, 0, 0 },
    { "main", "address_compliance_fail_action", "defer",
      "What happens to a message whose addresses fail the check: defer, reject or discard.", FG_OPT_STRING, 0, 0 },
    { "main", "address_compliance_fail_message", "invalid sender or recipient address",
      "Reply text used when addresses fail the check.", FG_OPT_STRING, 0, 0 },
    { "main", "remove_tmpfiles_on_error", "1",
      "1 removes a message's temporary files when processing it fails.", FG_OPT_BOOL, 0, 1 },
    { "main", "maxmessagesize", "52428800",
      "Largest message accepted, in bytes; larger messages are refused with 552.", FG_OPT_INT, 1, 9.2e18 },
    { "main", "spill_threshold", "1048576",
      "Bytes of a message kept in memory before it is spilled to a file in tempdir.", FG_OPT_INT, 0, 9.2e18 },
    { "main", "smtp_timeout", "300",
      "Seconds a client may take for one command line (in all, and between two reads) before the session is closed.", FG_OPT_INT, 1, 86400 },
    { "main", "data_timeout", "600",
      "Seconds allowed for receiving a message's data (in all, and between two reads) before the session is closed.", FG_OPT_INT, 1, 86400 },
    { "main", "maxconnections", "2000",
      "Client connections served at once on all incoming ports; more are answered 421 and closed.", FG_OPT_INT, 1, 1000000 },
    { "main", "maxconnections_per_client", "0",
      "Connections one client address may hold at once (0: only maxconnections applies; the MTA of an after-queue filter is one client).", FG_OPT_INT, 0, 1000000 },
    { "main", "scan_timeout", "300",
      "Seconds a message may take to be scanned and re-injected; then the client is answered 451 and the message is not delivered (a process worker is also killed and replaced). Once the end of data went downstream the engine waits for the downstream's answer instead: keep scan_timeout + reinject_timeout below Postfix's smtp_data_done_timeout (600).", FG_OPT_INT, 0, 86400 },
    { "main", "reinject_timeout", "60",
      "Seconds to wait for the outgoing host at each step of re-injection (the answer to the end of data included).", FG_OPT_DOUBLE, 0.001, 86400 },
    { "main", "logfile", "",
      "File to log to; empty logs to stderr (temporary until logging.conf is supported).", FG_OPT_STRING, 0, 0 },
    { "performance", "minthreads", "2",
      "Minimum number of worker threads.", FG_OPT_INT, 1, 10000 },
    { "performance", "maxthreads", "40",
      "Maximum number of worker threads.", FG_OPT_INT, 1, 10000 },
    { "performance", "backend", "thread",
      "Worker pool type: thread or process.", FG_OPT_STRING, 0, 0 },
    { "performance", "initialprocs", "0",
      "Number of worker processes of the process backend; 0 means twice the number of CPUs.", FG_OPT_INT, 0, 10000 },
    { "performance", "att_mgr_cachesize", "50000000",
      "Bytes of decoded attachment data cached per message.", FG_OPT_INT, 0, 9.2e18 },
    { "performance", "luamemlimit", "0",
      "Bytes of memory each worker's Lua state may hold while plugins run; a message whose scan needs more is deferred with 451 and not delivered; 0 means no limit.", FG_OPT_INT, 0, 9.2e18 },
    { "spam", "defaultlowspamaction", "DUNNO",
      "Action for spam unless a plugin says otherwise: DUNNO, ACCEPT, DELETE, REJECT or DEFER.", FG_OPT_STRING, 0, 0 },
    { "spam", "defaulthighspamaction", "DUNNO",
      "Action for high-scoring spam unless a plugin says otherwise: DUNNO, ACCEPT, DELETE, REJECT or DEFER.", FG_OPT_STRING, 0, 0 },
    { "virus", "defaultvirusaction", "DELETE",
      "Action for infected messages unless a plugin says otherwise: DUNNO, ACCEPT, DELETE, REJECT or DEFER.", FG_OPT_STRING, 0, 0 },
    { "smtpconnector", "requeuetemplate", "FUGLU REQUEUE(${id}): ${injectanswer}",
      "Text of the 250 reply after re-injection in after-queue mode; ${injectanswer} is the outgoing host's reply.", FG_OPT_STRING, 0, 0 },
    { "esmtpconnector", "queuetemplate", "${injectanswer}",
      "Text of the 250 reply after re-injection in before-queue mode; ${injectanswer} is the outgoing host's reply.", FG_OPT_STRING, 0, 0 },
    { "esmtpconnector", "ignore_multiple_recipients", "0",
      "1 answers every recipient after the first locally with 250 and does not forward it (spam traps).", FG_OPT_BOOL, 0, 1 },
    { "databaseconfig", "dbconnectstring", "",
      "Database URL for per-recipient config overrides; empty disables them (confidential: contains a password).", FG_OPT_STRING, 0, 0 },
    { "databaseconfig", "sql",
      "SELECT value FROM fugluconfig WHERE section=:section AND option=:option AND scope IN "
      "('$GLOBAL',CONCAT('%',:to_domain),:to_address) ORDER BY scope DESC",
      "Query returning an override value; the first column of the first row wins.", FG_OPT_STRING, 0, 0 },
    { "environment", "boundarydistance", "0",
      "Number of Received headers added by your own hosts, skipped when looking for the client.", FG_OPT_INT, 0, 1000 },
    { "environment", "trustedhostsregex", "",
      "Regular expression of trusted hosts (ip, rdns or helo) skipped when looking for the client.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "debug", "debug", "Prepender that logs a message's details to a debug file.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "skip", "skip", "Prepender that skips plugins by rule file.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "fraction", "fraction", "Prepender that runs plugins on a fraction of the messages only.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "archive", "archive", "Scanner that archives messages by rule file.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "attachment", "attachment", "Scanner that blocks attachments by name and type.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "clamav", "clamav", "Scanner that asks clamd about viruses.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "spamassassin", "spamassassin", "Scanner that asks spamd about spam.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "vacation", "vacation", "Scanner that sends vacation replies (needs SQL).", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "actionoverride", "actionoverride", "Scanner that forces an action by rule file.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "icap", "icap", "Scanner that asks an ICAP virus scanner.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "sssp", "sssp", "Scanner that asks Sophos SAVDI over SSSP.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "fprot", "fprot", "Scanner that asks the F-Prot daemon.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "scriptfilter", "scriptfilter", "Scanner that runs script files on each message.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "dkimsign", "dkimsign", "Appender that signs messages with DKIM.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "dkimverify", "dkimverify", "Scanner that verifies DKIM signatures.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "spf", "spf", "Scanner that checks the sender's SPF record.", FG_OPT_STRING, 0, 0 },
    { "PluginAlias", "killer", "killer", "Scanner that deletes every message (for spam traps).", FG_OPT_STRING, 0, 0 },
    { NULL, NULL, NULL, NULL, FG_OPT_STRING, 0, 0 },
};

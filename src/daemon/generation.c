/* generation: a config snapshot, its plugins and its scan pool. See generation.h. */
#include "daemon/generation.h"
#include "log/log.h"
#include "pool/procpool.h"
#include "pool/threadpool.h"

#include <dirent.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct fg_generation {
    int number;
    fg_config *cfg;
    char *fingerprint;
    fg_lua_scanner scanner;      /* what the thread workers run (the process workers build their own) */
    fg_pool *pool;
};

fg_config *fg_generation_load_config(const char *config_path, char **err)
{
    fg_config *cfg = fg_config_new();
    if (fg_config_load(cfg, config_path, true, err) != 0) {
        fg_config_free(cfg);
        return NULL;
    }
    fg_config_apply_core_defaults(cfg);
    return cfg;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds every regular file of dir whose name ends in suffix, in sorted order, name and content. */
static void checksum_dir(GChecksum *sum, const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < sl || strcmp(e->d_name + l - sl, suffix) != 0)
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        gchar *content = NULL;
        gsize len = 0;
        g_checksum_update(sum, (const guchar *)path, (gssize)strlen(path) + 1);
        if (g_file_get_contents(path, &content, &len, NULL)) {
            g_checksum_update(sum, (const guchar *)content, (gssize)len);
            g_free(content);
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

/* Adds a file's content if path names a readable regular file of reasonable size (rule files,
 * script files, templates named by plugin options). */
static void checksum_file_if_any(GChecksum *sum, const char *path)
{
    struct stat st;
    if (!path || !*path || strlen(path) > 4096 || stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > 16 * 1024 * 1024)
        return;
    gchar *content = NULL;
    gsize len = 0;
    if (g_file_get_contents(path, &content, &len, NULL)) {
        g_checksum_update(sum, (const guchar *)path, (gssize)strlen(path) + 1);
        g_checksum_update(sum, (const guchar *)content, (gssize)len);
        g_free(content);
    }
}

/* The fingerprint has three parts, so a reload can say what changed: the parsed configuration; the
 * files its option values name (rule files, scripts, templates); the Lua code (framework, built-in
 * plugins, [main] plugindir). Each is a SHA-256 in hex; the fingerprint is "config-files-lua". */
static const char *const fingerprint_parts[] = {"configuration", "rule/script files", "Lua plugins"};
#define FINGERPRINT_PARTS 3

char *fg_generation_fingerprint(const fg_config *cfg, const char *config_path, const char *luadir)
{
    (void)config_path;
    GChecksum *sums[FINGERPRINT_PARTS];
    for (int i = 0; i < FINGERPRINT_PARTS; i++)
        sums[i] = g_checksum_new(G_CHECKSUM_SHA256);
    /* The parsed configuration, not the bytes of the files: a comment or blank line is no change.
     * Every option value that names a file (rule files, scripts, templates) brings that file in. */
    size_t ns = fg_config_section_count(cfg);
    for (size_t i = 0; i < ns; i++) {
        const char *section = fg_config_section_name(cfg, i);
        g_checksum_update(sums[0], (const guchar *)section, (gssize)strlen(section) + 1);
        size_t no = fg_config_option_count(cfg, i);
        for (size_t j = 0; j < no; j++) {
            const char *name = fg_config_option_name(cfg, i, j);
            const char *value = fg_config_option_value(cfg, i, j);
            g_checksum_update(sums[0], (const guchar *)name, (gssize)strlen(name) + 1);
            g_checksum_update(sums[0], (const guchar *)value, (gssize)strlen(value) + 1);
            checksum_file_if_any(sums[1], value);
        }
    }
    char *fw = xasprintf("%s/fuglu", luadir);
    char *plugins = xasprintf("%s/plugins", luadir);
    checksum_dir(sums[2], fw, ".lua");
    checksum_dir(sums[2], plugins, ".lua");
    free(fw);
    free(plugins);
    const char *plugindir = fg_core_str(cfg, "main", "plugindir");
    if (plugindir && *plugindir) {
        char *copy = xstrdup(plugindir);
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *d = fg_strtrim(tok);
            if (*d)
                checksum_dir(sums[2], d, ".lua");
        }
        free(copy);
    }
    fg_buf b;
    fg_buf_init(&b);
    for (int i = 0; i < FINGERPRINT_PARTS; i++) {
        fg_buf_printf(&b, "%s%s", i ? "-" : "", g_checksum_get_string(sums[i]));
        g_checksum_free(sums[i]);
    }
    return fg_buf_steal(&b, NULL);
}

char *fg_generation_fingerprint_diff(const char *old, const char *new)
{
    fg_buf b;
    fg_buf_init(&b);
    for (int i = 0; i < FINGERPRINT_PARTS; i++) {
        const char *o = old, *n = new;
        for (int k = 0; k < i && o && n; k++) {
            o = strchr(o, '-');
            n = strchr(n, '-');
            o = o ? o + 1 : NULL;
            n = n ? n + 1 : NULL;
        }
        size_t ol = o ? strcspn(o, "-") : 0, nl = n ? strcspn(n, "-") : 0;
        if (!o || !n || ol != nl || memcmp(o, n, ol) != 0)
            fg_buf_printf(&b, "%s%s", b.len ? ", " : "", fingerprint_parts[i]);
    }
    if (!b.len)
        fg_buf_puts(&b, "nothing");
    return fg_buf_steal(&b, NULL);
}

static void add_error(void *arg, const char *msg)
{
    fg_findings_add_located(arg, FG_FINDING_ERROR, msg);
}

fg_generation *fg_generation_new(const fg_generation_env *env, fg_config *cfg, char *fingerprint, int number,
                                 int check, fg_findings *findings)
{
    size_t errors_before = findings->errors;
    const char *backend = fg_core_str(cfg, "performance", "backend");
    int process = strcasecmp(backend, "process") == 0;
    if (!process && strcasecmp(backend, "thread") != 0) {
        const char *origin = fg_config_origin(cfg, "performance", "backend");
        char *msg = xasprintf("[performance] backend: '%s' is neither thread nor process", backend);
        fg_findings_add(findings, FG_FINDING_ERROR, origin, msg);
        free(msg);
    }
    fg_config_check_core(cfg, add_error, findings);
    if (findings->errors == errors_before && check && fg_lua_lint(cfg, &env->lua, findings, true) > 0
        && findings->errors == errors_before)
        fg_findings_add(findings, FG_FINDING_ERROR, NULL, "plugin lint failed");
    if (findings->errors > errors_before) {
        fg_config_free(cfg);
        free(fingerprint);
        return NULL;
    }
    long minthreads = fg_core_int(cfg, "performance", "minthreads");
    long maxthreads = fg_core_int(cfg, "performance", "maxthreads");
    long initialprocs = fg_core_int(cfg, "performance", "initialprocs");
    long scan_timeout = fg_core_int(cfg, "main", "scan_timeout");
    fg_generation *g = xcalloc(1, sizeof *g);
    g->number = number;
    g->cfg = cfg;
    g->fingerprint = fingerprint;
    g->scanner = (fg_lua_scanner){.cfg = cfg, .env = env->lua};
    fg_scanner scanner = fg_lua_scanner_of(&g->scanner);
    char *err = NULL;
    if (process) {
        /* A plugin that does not load should stop the start-up here, not in every child. */
        void *probe = scanner.open(scanner.arg, "probe", &err);
        if (probe) {
            scanner.close(probe);
            fg_procpool_opts po = {
                .cfg = cfg,
                .stats = env->stats,
                .dicts = env->lua.dicts,
                .luadir = env->lua.luadir,
                .nprocs = (int)initialprocs,
                .base = env->base,
                .done = env->done,
                .done_arg = env->done_arg,
                .exe_path = env->exe_path,
                .logging_conf = env->logging_conf,
                .scan_timeout = (int)scan_timeout,
            };
            g->pool = fg_procpool_new(&po, &err);
        }
    } else {
        fg_threadpool_opts po = {
            .scanner = scanner,
            .stats = env->stats,
            .minthreads = (int)minthreads,
            .maxthreads = (int)maxthreads,
            .base = env->base,
            .done = env->done,
            .done_arg = env->done_arg,
        };
        g->pool = fg_threadpool_new(&po, &err);
    }
    if (!g->pool) {
        fg_findings_add_located(findings, FG_FINDING_ERROR, err ? err : "the worker pool could not be started");
        free(err);
        fg_config_free(cfg);
        free(fingerprint);
        free(g);
        return NULL;
    }
    return g;
}

int fg_generation_submit(fg_generation *g, fg_job *job)
{
    return fg_pool_submit(g->pool, job);
}

fg_job *fg_generation_retire(fg_generation *g)
{
    return fg_pool_take_queued(g->pool);
}

void fg_generation_stop(fg_generation *g, int code, const char *text)
{
    fg_pool_stop(g->pool, code, text);
}

size_t fg_generation_pending(fg_generation *g)
{
    return fg_pool_pending(g->pool);
}

size_t fg_generation_queued(fg_generation *g)
{
    return fg_pool_queued(g->pool);
}

int fg_generation_workers(fg_generation *g)
{
    return fg_pool_workers(g->pool);
}

char *fg_generation_describe(fg_generation *g)
{
    return fg_pool_describe(g->pool);
}

int fg_generation_finished(fg_generation *g)
{
    return fg_pool_pending(g->pool) == 0 && fg_pool_workers(g->pool) == 0;
}

int fg_generation_number(const fg_generation *g)
{
    return g->number;
}

const char *fg_generation_backend(const fg_generation *g)
{
    return fg_pool_backend(g->pool);
}

const char *fg_generation_fingerprint_of(const fg_generation *g)
{
    return g->fingerprint;
}

const fg_config *fg_generation_config(const fg_generation *g)
{
    return g->cfg;
}

void fg_generation_free(fg_generation *g)
{
    if (!g)
        return;
    fg_pool_free(g->pool);
    fg_config_free(g->cfg);
    free(g->fingerprint);
    free(g);
}

/* log: minimal named-logger implementation (stderr or one file). See log.h. */
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define MAX_OVERRIDES 64

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int root_level = FG_INFO;
static FILE *log_target; /* NULL = stderr */
static struct {
    char *name;
    int level;
} overrides[MAX_OVERRIDES];
static int n_overrides;

int fg_log_configure(int level, const char *path)
{
    FILE *f = NULL;
    if (path && *path) {
        f = fopen(path, "a");
        if (!f)
            return -1;
        setvbuf(f, NULL, _IOLBF, 0);
    }
    pthread_mutex_lock(&log_lock);
    if (log_target)
        fclose(log_target);
    log_target = f;
    root_level = level;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void fg_log_set_level(const char *logger, int level)
{
    pthread_mutex_lock(&log_lock);
    for (int i = 0; i < n_overrides; i++)
        if (strcmp(overrides[i].name, logger) == 0) {
            overrides[i].level = level;
            pthread_mutex_unlock(&log_lock);
            return;
        }
    if (n_overrides < MAX_OVERRIDES) {
        overrides[n_overrides].name = xstrdup(logger);
        overrides[n_overrides].level = level;
        n_overrides++;
    }
    pthread_mutex_unlock(&log_lock);
}

/* The effective level: the longest override that is the logger itself or a dotted ancestor. */
static int effective_level(const char *logger)
{
    int best_len = -1, level = root_level;
    for (int i = 0; i < n_overrides; i++) {
        size_t n = strlen(overrides[i].name);
        if (strncmp(logger, overrides[i].name, n) == 0 && (logger[n] == '\0' || logger[n] == '.') &&
            (int)n > best_len) {
            best_len = (int)n;
            level = overrides[i].level;
        }
    }
    return level;
}

bool fg_log_enabled(const char *logger, int level)
{
    if (n_overrides == 0)
        return level >= root_level;
    pthread_mutex_lock(&log_lock);
    int eff = effective_level(logger);
    pthread_mutex_unlock(&log_lock);
    return level >= eff;
}

const char *fg_log_level_name(int level)
{
    switch (level) {
    case FG_DEBUG: return "DEBUG";
    case FG_INFO: return "INFO";
    case FG_WARNING: return "WARNING";
    case FG_ERROR: return "ERROR";
    case FG_CRITICAL: return "CRITICAL";
    default: return "Level";
    }
}

int fg_log_level_from_name(const char *name)
{
    static const struct { const char *n; int l; } names[] = {
        {"DEBUG", FG_DEBUG}, {"INFO", FG_INFO}, {"WARNING", FG_WARNING}, {"WARN", FG_WARNING},
        {"ERROR", FG_ERROR}, {"CRITICAL", FG_CRITICAL}, {"FATAL", FG_CRITICAL}, {"NOTSET", 0},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].n) == 0)
            return names[i].l;
    return -1;
}

void fg_logv(const char *logger, int level, const char *fmt, va_list ap)
{
    if (!fg_log_enabled(logger, level))
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    char msg[8192];
    vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&log_lock);
    FILE *out = log_target ? log_target : stderr;
    fprintf(out, "%s,%03d %-12s: %s %s\n", when, (int)(tv.tv_usec / 1000), logger, fg_log_level_name(level), msg);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
}

void fg_log(const char *logger, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fg_logv(logger, level, fmt, ap);
    va_end(ap);
}

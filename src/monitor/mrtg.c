/* mrtg: the five MRTG files from the stats counters. See mrtg.h. */
#include "monitor/mrtg.h"
#include "lib/io.h"
#include "log/log.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MRTG_LOGGER "fuglu.stats"

struct fg_mrtg {
    fg_stats *stats;
    char *dir;
    struct event *timer;
};

int fg_mrtg_write_file(const char *dir, const char *name, const char *value1, const char *value2,
                       const char *uptime)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *tmp = xasprintf("%s/.%s.tmp", dir, name);
    /* Fuglu writes "0" for a false second value (0, 0.0, empty) */
    int zero = !value2 || !*value2 || strtod(value2, NULL) == 0;
    char *text = xasprintf("%s\n%s\n%s\nFuGLU\n", value1, zero ? "0" : value2, uptime);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        int ok = fg_write_all(fd, text, strlen(text)) == 0;
        if (close(fd) != 0)
            ok = 0;
        if (ok && rename(tmp, path) == 0)
            rc = 0;
        else
            unlink(tmp);
    }
    if (rc != 0)
        fg_log(MRTG_LOGGER, FG_ERROR, "cannot write the MRTG file %s: %s", path, strerror(errno));
    free(text);
    free(tmp);
    free(path);
    return rc;
}

int fg_mrtg_write(fg_mrtg *m)
{
    fg_stats_snapshot snap;
    fg_stats_snapshot_take(m->stats, &snap);
    fg_buf uptime;
    fg_buf_init(&uptime);
    fg_stats_format_uptime_words(&uptime, snap.uptime);
    char in[32], out[32], ham[32], spam[32], threads[32], virus[32];
    /* inout as Python's str(float(count)): "1234.0" */
    snprintf(in, sizeof in, "%llu.0", (unsigned long long)snap.in);
    snprintf(out, sizeof out, "%llu.0", (unsigned long long)snap.out);
    snprintf(ham, sizeof ham, "%llu", (unsigned long long)snap.ham);
    snprintf(spam, sizeof spam, "%llu", (unsigned long long)snap.spam);
    snprintf(threads, sizeof threads, "%d", fg_stats_thread_count(m->stats));
    snprintf(virus, sizeof virus, "%llu", (unsigned long long)snap.virus);
    int rc = 0;
    rc |= fg_mrtg_write_file(m->dir, "inout", in, out, uptime.data);
    rc |= fg_mrtg_write_file(m->dir, "hamspam", ham, spam, uptime.data);
    rc |= fg_mrtg_write_file(m->dir, "threads", threads, "0", uptime.data);
    rc |= fg_mrtg_write_file(m->dir, "virus", virus, "0", uptime.data);
    rc |= fg_mrtg_write_file(m->dir, "scantime", snap.avg_scantime, "0", uptime.data);
    fg_buf_free(&uptime);
    fg_stats_snapshot_free(&snap);
    return rc ? -1 : 0;
}

static void mrtg_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_mrtg_write(arg);
}

fg_mrtg *fg_mrtg_new(struct event_base *base, fg_stats *s, const char *dir, double interval)
{
    if (!dir || !*dir)
        return NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fg_log(MRTG_LOGGER, FG_ERROR, "MRTG directory %s does not exist: MRTG statistics are disabled", dir);
        return NULL;
    }
    if (interval <= 0)
        interval = 30;
    fg_mrtg *m = xcalloc(1, sizeof *m);
    m->stats = s;
    m->dir = xstrdup(dir);
    m->timer = event_new(base, -1, EV_PERSIST, mrtg_tick, m);
    struct timeval tv = {(time_t)interval, (suseconds_t)((interval - (double)(time_t)interval) * 1e6)};
    event_add(m->timer, &tv);
    fg_log(MRTG_LOGGER, FG_INFO, "writing MRTG statistics to %s every %g seconds", dir, interval);
    return m;
}

void fg_mrtg_free(fg_mrtg *m)
{
    if (!m)
        return;
    event_free(m->timer);
    free(m->dir);
    free(m);
}

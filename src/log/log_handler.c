/* log_handler: StreamHandler, FileHandler, WatchedFileHandler, RotatingFileHandler,
 * TimedRotatingFileHandler, SysLogHandler and Fuglu's group-readable/-writable variants.
 * See log_handler.h. File names of backups and the rollover times follow Python's logging.handlers.
 */
#include "log/log_handler.h"
#include "lib/io.h"
#include "log/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

fg_log_handler *fg_log_handler_new(const char *key, fg_log_handler_kind kind)
{
    fg_log_handler *h = xcalloc(1, sizeof *h);
    h->key = xstrdup(key);
    h->kind = kind;
    h->stream_fd = 2;
    h->fd = -1;
    h->facility = 1;
    h->interval = 1;
    strcpy(h->when, "H");
    fg_buf_init(&h->pending);
    return h;
}

void fg_log_handler_free(fg_log_handler *h)
{
    if (!h)
        return;
    fg_log_handler_flush(h);
    fg_buf_free(&h->pending);
    if (h->fd >= 0 && h->kind != FG_LOGH_STREAM)
        close(h->fd);
    fg_log_format_free(h->format);
    free(h->key);
    free(h->origin);
    free(h->filename);
    free(h->sock_path);
    free(h->host);
    free(h);
}

/* Python prints "--- Logging error ---" per failed record; one line per handler is enough here. */
static void handler_complain(fg_log_handler *h, const char *what)
{
    if (h->complained)
        return;
    h->complained = true;
    char line[512];
    int n = snprintf(line, sizeof line, "fuglu: log handler %s: %s: %s\n", h->key, what, strerror(errno));
    if (n > 0)
        fg_write_all(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Opens the handler's file: created with create_mode exactly (fchmod, since the umask is process
 * wide and cannot be changed from one thread), appended to, or truncated for mode 'w'. */
static int handler_open_file(fg_log_handler *h, bool truncate)
{
    int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | (truncate ? O_TRUNC : 0);
    int fd = -1;
    for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
        if (h->create_mode) {
            fd = open(h->filename, flags | O_CREAT | O_EXCL, h->create_mode);
            if (fd >= 0) {
                if (fchmod(fd, h->create_mode) != 0) {
                    close(fd);
                    return -1;
                }
                break;
            }
            if (errno != EEXIST)
                return -1;
            fd = open(h->filename, flags);
            if (fd < 0 && errno != ENOENT)
                return -1;
        } else {
            /* not 0666 as Python's: a mail log names senders and recipients, so others may not
             * read it (0640 under the usual umask 022) */
            fd = open(h->filename, flags | O_CREAT, 0640);
            if (fd < 0)
                return -1;
        }
    }
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    if (h->fd >= 0)
        close(h->fd);
    h->fd = fd;
    h->size = (long long)st.st_size;
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    return 0;
}

/* ---- syslog ---- */

static int handler_syslog_connect(fg_log_handler *h)
{
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    int fd = -1;
    if (h->sock_path) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(h->sock_path) >= sizeof sun.sun_path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(sun.sun_path, h->sock_path);
        int types[2] = {SOCK_DGRAM, SOCK_STREAM};
        for (int i = 0; i < 2 && fd < 0; i++) {
            fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
            if (fd < 0)
                return -1;
            if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
                int e = errno;
                close(fd);
                fd = -1;
                errno = e;
                if (e != EPROTOTYPE)
                    return -1;
            } else {
                h->sock_type = types[i];
            }
        }
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *res = NULL;
        char port[16];
        snprintf(port, sizeof port, "%d", h->port);
        int rc = getaddrinfo(h->host, port, &hints, &res);
        if (rc != 0) {
            errno = EHOSTUNREACH;
            return -1;
        }
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
        h->sock_type = SOCK_DGRAM;
    }
    if (fd < 0)
        return -1;
    /* a stuck syslog daemon must not hold the writer forever: the queue then drops and counts */
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    h->fd = fd;
    return 0;
}

/* Python's SysLogHandler.mapPriority by level name; others are "warning". */
static int handler_syslog_severity(int level)
{
    switch (level) {
    case FG_DEBUG: return 7;
    case FG_INFO: return 6;
    case FG_ERROR: return 3;
    case FG_CRITICAL: return 2;
    default: return 4;
    }
}

static void handler_syslog_emit(fg_log_handler *h, int level, fg_buf *msg)
{
    /* "<PRI>message\0" as Python sends it (append_nul) */
    char pri[16];
    int n = snprintf(pri, sizeof pri, "<%d>", h->facility * 8 + handler_syslog_severity(level));
    fg_buf packet;
    fg_buf_init(&packet);
    fg_buf_append(&packet, pri, (size_t)n);
    fg_buf_append(&packet, msg->data, msg->len);
    fg_buf_append(&packet, "", 1);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (h->fd < 0 && handler_syslog_connect(h) != 0)
            continue;
        ssize_t sent = h->sock_type == SOCK_STREAM ? (fg_write_all(h->fd, packet.data, packet.len) == 0
                                                          ? (ssize_t)packet.len : -1)
                                                    : send(h->fd, packet.data, packet.len, MSG_NOSIGNAL);
        if (sent >= 0) {
            h->complained = false;
            fg_buf_free(&packet);
            return;
        }
        close(h->fd);   /* syslogd restarted: reconnect once, as Python does */
        h->fd = -1;
    }
    handler_complain(h, "cannot send to syslog");
    fg_buf_free(&packet);
}

/* ---- rotation ---- */

static bool handler_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* True when the path no longer names our open file: another process rotated it already. */
static bool handler_file_moved(const fg_log_handler *h)
{
    struct stat st;
    return stat(h->filename, &st) != 0 || st.st_ino != h->ino || st.st_dev != h->dev;
}

/* RotatingFileHandler.doRollover: base.(i) -> base.(i+1), base -> base.1, reopen. */
static void handler_rotate_by_size(fg_log_handler *h)
{
    flock(h->fd, LOCK_EX);
    if (!handler_file_moved(h)) {
        size_t len = strlen(h->filename) + 24;
        char *src = xmalloc(len), *dst = xmalloc(len);
        for (int i = h->backup_count - 1; i > 0; i--) {
            snprintf(src, len, "%s.%d", h->filename, i);
            snprintf(dst, len, "%s.%d", h->filename, i + 1);
            if (handler_exists(src)) {
                unlink(dst);
                rename(src, dst);
            }
        }
        snprintf(dst, len, "%s.1", h->filename);
        unlink(dst);
        rename(h->filename, dst);
        free(src);
        free(dst);
    }
    flock(h->fd, LOCK_UN);
    if (handler_open_file(h, false) != 0)
        handler_complain(h, "cannot reopen after rotation");
}

/* strftime suffix and the shape of backup suffixes ('d' = a digit) per `when`. */
static void handler_timed_suffix(const fg_log_handler *h, const char **fmt, const char **shape)
{
    if (strcmp(h->when, "S") == 0) {
        *fmt = "%Y-%m-%d_%H-%M-%S";
        *shape = "dddd-dd-dd_dd-dd-dd";
    } else if (strcmp(h->when, "M") == 0) {
        *fmt = "%Y-%m-%d_%H-%M";
        *shape = "dddd-dd-dd_dd-dd";
    } else if (strcmp(h->when, "H") == 0) {
        *fmt = "%Y-%m-%d_%H";
        *shape = "dddd-dd-dd_dd";
    } else {
        *fmt = "%Y-%m-%d";
        *shape = "dddd-dd-dd";
    }
}

/* A backup suffix as Python's extMatch: the shape, optionally followed by ".word". */
static bool handler_suffix_matches(const char *s, const char *shape)
{
    for (; *shape; shape++, s++) {
        if (*shape == 'd' ? !(*s >= '0' && *s <= '9') : *s != *shape)
            return false;
    }
    if (*s == '\0')
        return true;
    if (*s++ != '.' || *s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
            return false;
    return true;
}

static int handler_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the oldest backups beyond backup_count (getFilesToDelete). */
static void handler_delete_old_backups(const fg_log_handler *h, const char *shape)
{
    char *dir = xstrdup(h->filename);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : h->filename;
    if (slash)
        slash == dir ? (void)(slash[1] = '\0') : (void)(*slash = '\0');
    else
        strcpy(dir, ".");
    size_t baselen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, base, baselen) == 0 && e->d_name[baselen] == '.' &&
            handler_suffix_matches(e->d_name + baselen + 1, shape)) {
            names = xrealloc(names, (n + 1) * sizeof *names);
            names[n++] = xasprintf("%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof *names, handler_cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (n > (size_t)h->backup_count && i < n - (size_t)h->backup_count)
            unlink(names[i]);
        free(names[i]);
    }
    free(names);
    free(dir);
}

static void handler_localtime(const fg_log_handler *h, time_t t, struct tm *tm)
{
    if (h->utc)
        gmtime_r(&t, tm);
    else
        localtime_r(&t, tm);
}

time_t fg_log_handler_next_rollover(const fg_log_handler *h, time_t now)
{
    if (strcmp(h->when, "MIDNIGHT") != 0 && h->when[0] != 'W')
        return now + (time_t)h->interval;
    struct tm tm;
    handler_localtime(h, now, &tm);
    int weekday = (tm.tm_wday + 6) % 7;   /* Python: Monday = 0 */
    int days = 1;
    if (h->when[0] == 'W')
        days += (h->weekday - weekday + 7) % 7;
    tm.tm_mday += days;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return h->utc ? timegm(&tm) : mktime(&tm);
}

/* TimedRotatingFileHandler.doRollover. */
static void handler_rotate_by_time(fg_log_handler *h, time_t now)
{
    const char *fmt, *shape;
    handler_timed_suffix(h, &fmt, &shape);
    struct tm then, cur;
    handler_localtime(h, h->rollover_at - (time_t)h->interval, &then);
    handler_localtime(h, now, &cur);
    if (!h->utc && then.tm_isdst != cur.tm_isdst) {
        time_t t = h->rollover_at - (time_t)h->interval + (cur.tm_isdst ? 3600 : -3600);
        handler_localtime(h, t, &then);
    }
    char suffix[64];
    strftime(suffix, sizeof suffix, fmt, &then);
    flock(h->fd, LOCK_EX);
    if (!handler_file_moved(h)) {
        char *dst = xasprintf("%s.%s", h->filename, suffix);
        unlink(dst);
        rename(h->filename, dst);
        free(dst);
        if (h->backup_count > 0)
            handler_delete_old_backups(h, shape);
    }
    flock(h->fd, LOCK_UN);
    if (handler_open_file(h, false) != 0)
        handler_complain(h, "cannot reopen after rotation");
    time_t next = fg_log_handler_next_rollover(h, now);
    while (next <= now)
        next += (time_t)h->interval;
    h->rollover_at = next;
}

int fg_log_handler_open(fg_log_handler *h, char **err)
{
    switch (h->kind) {
    case FG_LOGH_NULL:
    case FG_LOGH_STREAM:
        h->fd = h->kind == FG_LOGH_STREAM ? h->stream_fd : -1;
        return 0;
    case FG_LOGH_SYSLOG:
        /* a missing syslog daemon is not fatal: the handler reconnects at each record */
        if (handler_syslog_connect(h) != 0)
            handler_complain(h, h->sock_path ? "cannot connect to the syslog socket (will retry)"
                                             : "cannot reach the syslog host (will retry)");
        return 0;
    case FG_LOGH_TIMED: {
        struct stat st;
        time_t start = stat(h->filename, &st) == 0 ? st.st_mtime : time(NULL);
        h->rollover_at = fg_log_handler_next_rollover(h, start);
    }
        /* fall through */
    default:
        if (h->delay)
            return 0;
        if (handler_open_file(h, h->truncate) != 0) {
            *err = xasprintf("cannot open log file %s: %s", h->filename, strerror(errno));
            return -1;
        }
        return 0;
    }
}

void fg_log_handler_emit(fg_log_handler *h, const fg_log_record *r, fg_buf *scratch)
{
    if (r->level < h->level || h->kind == FG_LOGH_NULL)
        return;
    fg_buf_clear(scratch);
    fg_log_format_render(h->format, r, scratch);
    if (h->kind == FG_LOGH_SYSLOG) {
        handler_syslog_emit(h, r->level, scratch);
        return;
    }
    fg_buf_append(scratch, "\n", 1);
    if (h->kind == FG_LOGH_STREAM) {
        fg_buf_append(&h->pending, scratch->data, scratch->len);
        return;
    }
    if (h->fd < 0 && handler_open_file(h, h->truncate) != 0) {
        handler_complain(h, "cannot open the log file");
        return;
    }
    /* WatchedFileHandler: a moved file is noticed by the next flush, before it writes */
    if (h->kind == FG_LOGH_ROTATING && h->max_bytes > 0 && h->backup_count > 0 &&
        h->size + (long long)h->pending.len + (long long)scratch->len >= h->max_bytes) {
        fg_log_handler_flush(h);
        handler_rotate_by_size(h);
    }
    if (h->kind == FG_LOGH_TIMED) {
        time_t now = time(NULL);
        if (now >= h->rollover_at) {
            fg_log_handler_flush(h);
            handler_rotate_by_time(h, now);
        }
    }
    if (h->fd < 0)
        return;
    fg_buf_append(&h->pending, scratch->data, scratch->len);
}

void fg_log_handler_flush(fg_log_handler *h)
{
    if (!h || h->pending.len == 0)
        return;
    if (h->kind == FG_LOGH_STREAM) {
        fg_write_all(h->fd, h->pending.data, h->pending.len);
        fg_buf_clear(&h->pending);
        return;
    }
    if (h->kind == FG_LOGH_WATCHED && h->fd >= 0 && handler_file_moved(h) && handler_open_file(h, false) != 0)
        handler_complain(h, "cannot reopen the moved log file");
    if (h->fd >= 0) {
        if (fg_write_all(h->fd, h->pending.data, h->pending.len) != 0)
            handler_complain(h, "cannot write the log file");
        else
            h->size += (long long)h->pending.len;
    }
    fg_buf_clear(&h->pending);
}

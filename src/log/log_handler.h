/* log_handler: the logging.conf handlers (where records go) and their file rotation.
 *
 * A handler is built from its [handler_x] section by log_conf, opened by fg_log_handler_open (files
 * are created and connected there, so a bad path is a configuration error) and afterwards used by
 * one thread at a time: the log writer thread, or the caller under log.c's emit lock before the
 * writer runs. Rotation therefore happens in one place; across processes it is serialised with
 * flock() on the old file and skipped when another process already renamed it.
 */
#ifndef FUGLU_LOG_HANDLER_H
#define FUGLU_LOG_HANDLER_H

#include "log/log_format.h"

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

typedef enum {
    FG_LOGH_NULL, FG_LOGH_STREAM, FG_LOGH_FILE, FG_LOGH_WATCHED, FG_LOGH_ROTATING, FG_LOGH_TIMED,
    FG_LOGH_SYSLOG,
} fg_log_handler_kind;

typedef struct fg_log_handler {
    char *key;                 /* the [handlers] key */
    char *origin;              /* "FILE:LINE" of its args (or class) option, for open errors; may be NULL */
    fg_log_handler_kind kind;
    int level;                 /* 0 = NOTSET */
    fg_log_format *format;     /* owned */

    int stream_fd;             /* STREAM: 1 or 2 */
    char *filename;            /* file handlers: absolute or relative path */
    bool truncate;             /* mode 'w' */
    bool delay;                /* open at the first record */
    mode_t create_mode;        /* 0 = 0666 minus the umask; else exactly this (group handlers) */
    long long max_bytes;       /* ROTATING */
    int backup_count;          /* ROTATING, TIMED */
    char when[16];             /* TIMED: S, M, H, D, MIDNIGHT, W0..W6 */
    long long interval;        /* TIMED: seconds */
    int weekday;               /* TIMED W: 0 = Monday */
    bool utc;

    char *sock_path;           /* SYSLOG unix socket, or NULL for host/port */
    char *host;
    int port;
    int facility;              /* LOG_MAIL = 2 */

    /* runtime state, owned by the emitting thread */
    int fd;
    long long size;
    dev_t dev;
    ino_t ino;
    time_t rollover_at;
    int sock_type;
    bool complained;
    fg_buf pending;            /* formatted lines not written yet (see fg_log_handler_flush) */
} fg_log_handler;

fg_log_handler *fg_log_handler_new(const char *key, fg_log_handler_kind kind);
/* Opens files / sockets (files only when not delayed). -1 with *err = "what failed" (caller frees). */
int fg_log_handler_open(fg_log_handler *h, char **err);
/* Formats r with the handler's formatter if r->level passes the handler's level. Stream and file
 * handlers only collect the line: fg_log_handler_flush() writes what was collected with one
 * write() (the writer thread flushes after each batch of records, the synchronous path after each
 * record). Rotation decisions count collected lines as written, so files rotate where Python's
 * handlers would. scratch is a buffer the caller reuses between records. */
void fg_log_handler_emit(fg_log_handler *h, const fg_log_record *r, fg_buf *scratch);
void fg_log_handler_flush(fg_log_handler *h);
void fg_log_handler_free(fg_log_handler *h);   /* closes what is open */

/* TimedRotatingFileHandler: the next rollover time after `now` (Python's computeRollover). */
time_t fg_log_handler_next_rollover(const fg_log_handler *h, time_t now);

#endif

/* log: named loggers with Python logging's levels, so Fuglu's logger names and levels carry over.
 *
 * fg_log("fuglu.SessionHandler", FG_INFO, "...") formats only when the level is enabled for that
 * name. The configuration is Fuglu's logging.conf (Python fileConfig format, see log_conf.h and
 * doc/logging.md): dotted logger hierarchy, level inheritance, propagation, file, rotating, syslog
 * and stream handlers.
 *
 * Threads: fg_log_enabled takes no lock (an immutable configuration snapshot swapped atomically,
 * with a per-logger-name cache). Once fg_log_load_config has started the writer thread, fg_log
 * only formats the message and pushes the record onto a bounded queue; the writer thread formats
 * lines and does all I/O and rotation. A full queue drops records, counts them and the writer logs
 * "N log records dropped" when room returns. Before the writer runs (early startup, --lint, tools,
 * tests) records are written synchronously, by default to stderr in Fuglu's default format
 * "%(asctime)s %(name)-12s: %(levelname)s %(message)s" at INFO.
 * Call fg_log_load_config (or fg_log_start_writer) after any fork (daemonizing): a forked child
 * falls back to synchronous writing. The writer gathers records for a few milliseconds after a
 * wake-up and writes each handler's lines with one write(): under load a line reaches its file up
 * to 5 ms after it was logged, and no thread that scans mail waits for log I/O.
 */
#ifndef FUGLU_LOG_H
#define FUGLU_LOG_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>

enum { FG_DEBUG = 10, FG_INFO = 20, FG_WARNING = 30, FG_ERROR = 40, FG_CRITICAL = 50 };

/* Sets the root level (default INFO) and an optional file (NULL = stderr). Returns -1 if the file
 * cannot be opened (errno set), leaving the previous target in place. */
int fg_log_configure(int root_level, const char *path);
/* Per-logger level override ("fuglu.plugin.SAPlugin" = DEBUG); children inherit by dotted name. */
void fg_log_set_level(const char *logger, int level);
bool fg_log_enabled(const char *logger, int level);
void fg_log(const char *logger, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fg_logv(const char *logger, int level, const char *fmt, va_list ap);
/* Level name -> number ("DEBUG" -> 10); unknown names give -1 (number -> name: fg_log_format_levelname). */
int fg_log_level_from_name(const char *name);

/* Source location for %(filename)s, %(module)s, %(lineno)d, %(funcName)s; fg_log leaves them
 * "(unknown file)", 0, "(unknown function)" as Python does when it cannot tell. */
void fg_log_src(const char *logger, int level, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
void fg_logv_src(const char *logger, int level, const char *file, int line, const char *func, const char *fmt,
                 va_list ap);
#define FG_LOG(logger, level, ...) fg_log_src((logger), (level), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Reads logging.conf, opens its handlers and makes it the configuration, starting the writer thread
 * if it is not running. On error returns -1 with *err = "FILE:LINE: what is wrong" (caller frees)
 * and the previous configuration stays. Loggers set by fg_log_set_level keep their level. */
int fg_log_load_config(const char *path, char **err);
/* Starts the writer thread for the current configuration (stderr, or the file of
 * fg_log_configure) when no logging.conf does it; nothing if it runs already. */
void fg_log_start_writer(void);
/* Parses logging.conf without applying it or opening anything (for --lint and before a reload). */
int fg_log_check_config(const char *path, char **err);
/* True when path is not the file last loaded by fg_log_load_config or its content (hash) differs,
 * including when it cannot be read now. For SIGHUP: reload only when this says so. */
bool fg_log_config_changed(const char *path);
/* Writes what is queued, stops and joins the writer thread, closes all handlers and frees the
 * configuration; afterwards fg_log writes to stderr synchronously again. Call when other threads
 * no longer log. */
void fg_log_shutdown(void);
/* Records dropped because the queue was full, since the start of the process. */
unsigned long fg_log_dropped(void);
/* Queue capacity in records for the next writer start (default 65536; rounded up to a power of 2). */
void fg_log_set_queue_capacity(size_t records);
/* %(threadName)s of the calling thread (default "MainThread" for the main thread, else the kernel
 * thread name). Copied; at most 63 bytes kept. */
void fg_log_set_thread_name(const char *name);

#endif

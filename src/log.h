/* log: named loggers with Python logging's levels, so Fuglu's logger names and levels carry over.
 *
 * fg_log("fuglu.SessionHandler", FG_INFO, "...") formats only when the level is enabled for that
 * name. This module is the seam the logging.conf implementation plugs into: until then records go to
 * stderr (or a file) in Fuglu's default format "%(asctime)s %(name)-12s: %(levelname)s %(message)s".
 * Thread-safe.
 */
#ifndef FUGLU_LOG_H
#define FUGLU_LOG_H

#include <stdbool.h>
#include <stdarg.h>

enum { FG_DEBUG = 10, FG_INFO = 20, FG_WARNING = 30, FG_ERROR = 40, FG_CRITICAL = 50 };

/* Sets the root level (default INFO) and an optional file (NULL = stderr). Returns -1 if the file
 * cannot be opened (errno set), leaving the previous target in place. */
int fg_log_configure(int root_level, const char *path);
/* Per-logger level override ("fuglu.plugin.SAPlugin" = DEBUG); children inherit by dotted name. */
void fg_log_set_level(const char *logger, int level);
bool fg_log_enabled(const char *logger, int level);
void fg_log(const char *logger, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void fg_logv(const char *logger, int level, const char *fmt, va_list ap);
/* Level name <-> number ("DEBUG" -> 10); unknown names give -1. */
int fg_log_level_from_name(const char *name);
const char *fg_log_level_name(int level);

#endif

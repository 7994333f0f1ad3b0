/* log_conf: logging.conf (Python's logging.config.fileConfig format) read into loggers, handlers
 * and formatters.
 *
 * The INI layer is config.h (so errors carry FILE:LINE); this module checks every section the way
 * fileConfig would fail on it, reads args/kwargs as literals (log_args.h) and builds unopened
 * handlers (log_handler.h). The result is immutable once opened; log.c shares it between threads.
 */
#ifndef FUGLU_LOG_CONF_H
#define FUGLU_LOG_CONF_H

#include "lib/config.h"
#include "log/log_handler.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct fg_log_logger {
    char *name;             /* qualname; "" for the root logger */
    int level;              /* 0 = NOTSET: inherit from the parent */
    bool propagate;
    size_t *handlers;       /* indexes into fg_log_conf.handlers */
    size_t n_handlers;
} fg_log_logger;

typedef struct fg_log_conf {
    fg_log_logger *loggers; /* [0] is the root logger */
    size_t n_loggers;
    fg_log_handler **handlers;
    size_t n_handlers;
} fg_log_conf;

/* Builds the configuration from parsed INI sections. NULL with *err = "FILE:LINE: ..." (caller
 * frees) on the first problem. Relative file names are made absolute against the current directory,
 * as Python does. Nothing is opened. */
fg_log_conf *fg_log_conf_from_config(const fg_config *cfg, char **err);
fg_log_conf *fg_log_conf_read_file(const char *path, char **err);
fg_log_conf *fg_log_conf_read_string(const char *text, const char *name, char **err);
/* root_level on one handler: a FileHandler on path, or stderr when path is NULL. Default format. */
fg_log_conf *fg_log_conf_simple(int root_level, const char *path);
/* Opens every handler; -1 with *err = "[handler_x]: what failed" and everything closed again. */
int fg_log_conf_open(fg_log_conf *c, char **err);
void fg_log_conf_free(fg_log_conf *c);
/* The logger with this exact qualname ("" = root), or NULL. */
const fg_log_logger *fg_log_conf_logger(const fg_log_conf *c, const char *name);

#endif

/* log_format: Python logging's record and %-style Formatter, compiled once per [formatter_x].
 *
 * A format such as "%(asctime)s %(name)-12s: %(levelname)s %(message)s" is compiled into literal and
 * field items (flags, width, precision and conversion kept), so rendering a record is a walk over
 * the items without parsing. datefmt goes to strftime; without it asctime is Python's default
 * "2009-04-08 17:11:07,693". Compiled formats are immutable and may be shared by threads.
 */
#ifndef FUGLU_LOG_FORMAT_H
#define FUGLU_LOG_FORMAT_H

#include "lib/util.h"

/* One log record, as the caller of fg_log captured it. Strings are borrowed. */
typedef struct fg_log_record {
    const char *name;        /* logger name ("fuglu.SessionHandler") */
    int level;
    const char *message;
    double created;          /* seconds since the epoch */
    long process;
    unsigned long thread;
    const char *thread_name;
    const char *pathname;    /* source file as given, "(unknown file)" when not known */
    const char *func;        /* "(unknown function)" when not known */
    int lineno;
} fg_log_record;

typedef struct fg_log_format fg_log_format;

/* The default format of the engine (and of Fuglu's logging.conf.dist). */
#define FG_LOG_DEFAULT_FORMAT "%(asctime)s %(name)-12s: %(levelname)s %(message)s"

/* Compiles fmt (NULL = Python's default "%(message)s") with an optional datefmt. Returns NULL with
 * *err = "what is wrong" (caller frees) for an unknown field, a missing conversion, a numeric
 * conversion of a text field or a '%' without a field name. */
fg_log_format *fg_log_format_compile(const char *fmt, const char *datefmt, char **err);
void fg_log_format_free(fg_log_format *f);
/* Appends the rendered record (no line terminator) to out. */
void fg_log_format_render(const fg_log_format *f, const fg_log_record *r, fg_buf *out);
/* Python's levelname: "DEBUG"... or "Level N" for other numbers; buf needs 24 bytes. */
const char *fg_log_format_levelname(int level, char buf[24]);

#endif

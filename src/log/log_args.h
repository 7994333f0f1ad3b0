/* log_args: the literal Python values of logging.conf's `args` and `kwargs`, parsed, never evaluated.
 *
 * Accepted: tuples and lists, dicts with string keys, strings ('..' or "..", with escapes, r'' raw
 * strings, adjacent strings joined), ints (decimal, 0x, 0o, 0b), floats, None, True, False,
 * sys.stdout, sys.stderr and the SysLogHandler constants (LOG_MAIL, SysLogHandler.LOG_MAIL,
 * handlers.SysLogHandler.LOG_MAIL, logging.handlers.SysLogHandler.LOG_MAIL; facilities and
 * priorities). Anything else (calls, names, operators) is an error naming the column.
 */
#ifndef FUGLU_LOG_ARGS_H
#define FUGLU_LOG_ARGS_H

#include <stddef.h>

typedef enum {
    FG_LOGV_NONE, FG_LOGV_BOOL, FG_LOGV_INT, FG_LOGV_FLOAT, FG_LOGV_STR, FG_LOGV_TUPLE, FG_LOGV_DICT,
    FG_LOGV_STDOUT, FG_LOGV_STDERR,
} fg_log_value_type;

typedef struct fg_log_value {
    fg_log_value_type type;
    long long i;                 /* BOOL, INT */
    double f;                    /* FLOAT */
    char *s;                     /* STR */
    struct fg_log_value *items;  /* TUPLE items, DICT values */
    char **keys;                 /* DICT keys */
    size_t n;
} fg_log_value;

/* Parses one value filling the whole text. Returns 0, or -1 with *err = "column N: what" (caller
 * frees) and *out left empty. */
int fg_log_args_parse(const char *text, fg_log_value *out, char **err);
void fg_log_value_clear(fg_log_value *v);
/* "a string", "an int"... for error messages. */
const char *fg_log_value_type_name(fg_log_value_type t);
/* Syslog facility and priority names (LOG_MAIL -> 2, LOG_ERR -> 3); -1 if unknown. */
int fg_log_syslog_constant(const char *name);
/* Lower-case facility names as SysLogHandler accepts them as strings ("mail" -> 2); -1 if unknown. */
int fg_log_syslog_facility_name(const char *name);

#endif

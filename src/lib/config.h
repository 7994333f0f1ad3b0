/* config: fuglu.conf with Python RawConfigParser semantics, as Fuglu reads it.
 *
 * [section] headers (names case-sensitive), "key = value" or "key: value" (option names
 * case-insensitive, stored lower-cased), '#' and ';' comment lines, continuation lines (leading
 * whitespace) appended with "\n", no interpolation. Later files override earlier ones option by
 * option (conf.d/NAME.conf in sorted order after the main file). Every option remembers the file and
 * line it came from so errors can say where. Sections and options keep their first-seen order.
 */
#ifndef FUGLU_CONFIG_H
#define FUGLU_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fg_config fg_config;

fg_config *fg_config_new(void);
void fg_config_free(fg_config *cfg);

/* Reads one file on top of what is loaded. Returns 0, or -1 with *err = "FILE:LINE: what is wrong"
 * (caller frees); a file that does not exist is an error too. */
int fg_config_read_file(fg_config *cfg, const char *path, char **err);
/* Reads the main file, then, if with_confd, DIR/conf.d/NAME.conf of the main file's directory in
 * sorted order (a missing conf.d is fine). */
int fg_config_load(fg_config *cfg, const char *path, bool with_confd, char **err);
/* Parses text as if it were a file named `name` (for tests and defaults). */
int fg_config_read_string(fg_config *cfg, const char *text, const char *name, char **err);

/* NULL if the section or option is missing. Option lookup is case-insensitive. */
const char *fg_config_get(const fg_config *cfg, const char *section, const char *option);
bool fg_config_has_section(const fg_config *cfg, const char *section);
/* The index of a section for fg_config_option_count/name/value, or -1 when there is none. */
long fg_config_section_index(const fg_config *cfg, const char *section);
/* Origin of an option as "FILE:LINE" (static storage owned by cfg) or NULL for defaults/missing. */
const char *fg_config_origin(const fg_config *cfg, const char *section, const char *option);
void fg_config_set(fg_config *cfg, const char *section, const char *option, const char *value);
/* Sets only if the option is missing (creating the section). */
void fg_config_set_default(fg_config *cfg, const char *section, const char *option, const char *value);

/* Typed getters: the default is returned when the option is missing. A value that does not parse
 * returns -1 from the _checked forms with *err set ("FILE:LINE: [sec] opt: 'x' is not a boolean"). */
int fg_config_get_int(const fg_config *cfg, const char *section, const char *option, long def, long *out, char **err);
int fg_config_get_bool(const fg_config *cfg, const char *section, const char *option, bool def, bool *out, char **err);
int fg_config_get_double(const fg_config *cfg, const char *section, const char *option, double def, double *out, char **err);
/* RawConfigParser booleans: 1/yes/true/on and 0/no/false/off, case-insensitive. -1 if neither. */
int fg_parse_bool(const char *s, bool *out);

/* Iteration in first-seen order. */
size_t fg_config_section_count(const fg_config *cfg);
const char *fg_config_section_name(const fg_config *cfg, size_t i);
size_t fg_config_option_count(const fg_config *cfg, size_t section_index);
const char *fg_config_option_name(const fg_config *cfg, size_t section_index, size_t j);
const char *fg_config_option_value(const fg_config *cfg, size_t section_index, size_t j);

/* The core options: Fuglu's Appendix A (versioncheck excluded) and this engine's own, each with its
 * default, a description (conf/fuglu.conf.dist has the same text), its type and bounds. This table
 * is the only source of the core defaults: C reads them with fg_core_*, Lua gets the table
 * (fuglu_config.core_options, lua/fuglu/config.lua), and fg_config_apply_core_defaults fills them in. */
typedef enum { FG_OPT_STRING = 0, FG_OPT_INT, FG_OPT_BOOL, FG_OPT_DOUBLE } fg_opt_type;
typedef struct fg_config_default {
    const char *section;
    const char *option;
    const char *value;
    const char *description;
    fg_opt_type type;
    double min, max;            /* FG_OPT_INT and FG_OPT_DOUBLE: inclusive bounds */
} fg_config_default;
extern const fg_config_default fg_core_defaults[]; /* terminated by a {NULL} entry */
/* The table entry, or NULL. */
const fg_config_default *fg_core_option(const char *section, const char *option);
/* A core option's value. Reading an option that is not in the table, or with another type than the
 * table's, is a programming error: fg_panic. A value fg_config_check_core would refuse reads as the
 * default. */
const char *fg_core_str(const fg_config *cfg, const char *section, const char *option);
long fg_core_int(const fg_config *cfg, const char *section, const char *option);
double fg_core_double(const fg_config *cfg, const char *section, const char *option);
bool fg_core_bool(const fg_config *cfg, const char *section, const char *option);
/* Checks every typed core option that is set: its type and bounds. Calls report with
 * "FILE:LINE: [main] scan_timeout: 'x' is not an integer" or "...: 0 is out of range (1 to 86400)"
 * per problem; returns their number. */
int fg_config_check_core(const fg_config *cfg, void (*report)(void *arg, const char *msg), void *arg);
void fg_config_apply_core_defaults(fg_config *cfg);
/* Calls warn(msg) for every option in a core section ([main], [performance], [spam], [virus],
 * [smtpconnector], [esmtpconnector], [environment], [databaseconfig]) that is not a known core
 * option, as "FILE:LINE: unknown option 'x' in section [main]". Returns the number of warnings. */
int fg_config_lint_unknown(const fg_config *cfg, void (*warn)(void *arg, const char *msg), void *arg);

#endif

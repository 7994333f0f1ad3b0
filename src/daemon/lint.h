/* lint: what `fuglu --lint` and a reload find wrong with a configuration, as a list of findings.
 *
 * A finding has a severity, where it is (FILE:LINE when known) and a message. INFO findings are the
 * transcript's progress lines ("Linting main configuration", "OK", Fuglu's plugin lines), so the
 * list in order is the --lint printout; a reload reports the warnings and errors only. Plugins print
 * their own lint lines (Fuglu's convention): "ERROR: ..." and "WARNING: ..." lines become findings
 * of that severity.
 */
#ifndef FUGLU_LINT_H
#define FUGLU_LINT_H

#include <stddef.h>
#include <stdio.h>
#include "lib/config.h"
#include "lib/util.h"

typedef enum { FG_FINDING_INFO = 0, FG_FINDING_WARNING, FG_FINDING_ERROR } fg_severity;

typedef struct fg_finding {
    fg_severity severity;
    char *where;                /* "FILE:LINE", or NULL */
    char *message;
    char *line;                 /* the transcript line when it differs from the message, or NULL */
} fg_finding;

typedef struct fg_findings {
    fg_finding *items;
    size_t count;
    size_t errors;              /* findings of severity ERROR */
} fg_findings;

void fg_findings_add(fg_findings *f, fg_severity severity, const char *where, const char *message);
/* A message that may start with "FILE:LINE: " (the config parser's errors): the location is split off. */
void fg_findings_add_located(fg_findings *f, fg_severity severity, const char *message);
/* A finding with its own transcript line (Fuglu's plugin output, printed as the plugin wrote it). */
void fg_findings_add_transcript(fg_findings *f, fg_severity severity, const char *message, const char *line);
/* One line as a plugin's lint prints it: "ERROR: x" -> error, "WARNING: x" -> warning, else info. */
void fg_findings_add_line(fg_findings *f, const char *line);
/* The --lint transcript: INFO as is, others "ERROR: [where: ]message". */
void fg_findings_print(const fg_findings *f, FILE *out);
/* The warnings and errors, one per line with prefix ("ERROR: ", "WARNING: "), for a reload report. */
void fg_findings_report(const fg_findings *f, fg_buf *out);
void fg_findings_free(fg_findings *f);

/* The core part of the lint: unknown options, types and bounds, ports, directories, the timeouts'
 * sum against Postfix's. */
void fg_lint_core(const fg_config *cfg, fg_findings *f);
/* logging.conf: present (a warning if not) and loadable. */
void fg_lint_logging(const char *logging_conf, fg_findings *f);

#endif

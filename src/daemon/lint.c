/* lint: findings and the core configuration checks. See lint.h. */
#include "daemon/lint.h"
#include "log/log.h"
#include "smtp/portspec.h"
#include "pool/shdict.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fg_findings_add(fg_findings *f, fg_severity severity, const char *where, const char *message)
{
    f->items = xrealloc(f->items, (f->count + 1) * sizeof *f->items);
    f->items[f->count++] = (fg_finding){severity, where ? xstrdup(where) : NULL, xstrdup(message), NULL};
    if (severity == FG_FINDING_ERROR)
        f->errors++;
}

void fg_findings_add_transcript(fg_findings *f, fg_severity severity, const char *message, const char *line)
{
    fg_findings_add_located(f, severity, message ? message : line);
    fg_finding *x = &f->items[f->count - 1];
    if (line && strcmp(line, message ? message : line) != 0)
        x->line = xstrdup(line);
}

/* Length of a leading "FILE:LINE" before the first ": " (0 if there is none). */
static size_t location_length(const char *m)
{
    const char *colon = strstr(m, ": ");
    if (!colon)
        return 0;
    const char *d = colon;
    while (d > m && isdigit((unsigned char)d[-1]))
        d--;
    return d < colon && d > m + 1 && d[-1] == ':' ? (size_t)(colon - m) : 0;
}

void fg_findings_add_located(fg_findings *f, fg_severity severity, const char *message)
{
    size_t n = location_length(message);
    if (!n) {
        fg_findings_add(f, severity, NULL, message);
        return;
    }
    char *where = xstrndup(message, n);
    fg_findings_add(f, severity, where, message + n + 2);
    free(where);
}

void fg_findings_add_line(fg_findings *f, const char *line)
{
    if (strncmp(line, "ERROR: ", 7) == 0)
        fg_findings_add_located(f, FG_FINDING_ERROR, line + 7);
    else if (strncmp(line, "WARNING: ", 9) == 0)
        fg_findings_add_located(f, FG_FINDING_WARNING, line + 9);
    else
        fg_findings_add(f, FG_FINDING_INFO, NULL, line);
}

static const char *severity_prefix(fg_severity s)
{
    return s == FG_FINDING_ERROR ? "ERROR: " : s == FG_FINDING_WARNING ? "WARNING: " : "";
}

void fg_findings_print(const fg_findings *f, FILE *out)
{
    for (size_t i = 0; i < f->count; i++) {
        const fg_finding *x = &f->items[i];
        if (x->line) {
            fprintf(out, "%s\n", x->line);
            continue;
        }
        fprintf(out, "%s%s%s%s\n", severity_prefix(x->severity), x->where ? x->where : "", x->where ? ": " : "",
                x->message);
    }
}

void fg_findings_report(const fg_findings *f, fg_buf *out)
{
    for (size_t i = 0; i < f->count; i++) {
        const fg_finding *x = &f->items[i];
        if (x->severity != FG_FINDING_INFO)
            fg_buf_printf(out, "%s%s%s%s\n", severity_prefix(x->severity), x->where ? x->where : "",
                          x->where ? ": " : "", x->message);
    }
}

void fg_findings_free(fg_findings *f)
{
    for (size_t i = 0; i < f->count; i++) {
        free(f->items[i].where);
        free(f->items[i].message);
        free(f->items[i].line);
    }
    free(f->items);
    *f = (fg_findings){0};
}

/* ---- the core checks ---- */

static void add_warning(void *arg, const char *msg)
{
    fg_findings_add_located(arg, FG_FINDING_WARNING, msg);
}

static void add_error(void *arg, const char *msg)
{
    fg_findings_add_located(arg, FG_FINDING_ERROR, msg);
}

void fg_lint_core(const fg_config *cfg, fg_findings *f)
{
    size_t errors_before = f->errors;
    fg_findings_add(f, FG_FINDING_INFO, NULL, "Linting main configuration");
    fg_config_lint_unknown(cfg, add_warning, f);
    fg_portspec *specs = NULL;
    size_t nspecs = 0;
    char *err = NULL;
    if (fg_portspec_parse_list(fg_core_str(cfg, "main", "incomingport"), fg_core_str(cfg, "main", "bindaddress"),
                               &specs, &nspecs, &err) != 0) {
        add_error(f, err);
        free(err);
    } else {
        for (size_t i = 0; i < nspecs; i++)
            if (specs[i].proto != FG_PROTO_SMTP) {
                char *msg = xasprintf("incomingport %s:%d: protocol %s is not supported yet", specs[i].addr,
                                      specs[i].port, fg_proto_name(specs[i].proto));
                fg_findings_add(f, FG_FINDING_WARNING, NULL, msg);
                free(msg);
            }
        free(specs);
    }
    fg_config_check_core(cfg, add_error, f);
    const char *dnscache = fg_core_str(cfg, "main", "dnscachesize");
    size_t dnssize = fg_shdict_parse_size(dnscache);
    if (strcmp(dnscache, "0") != 0 && (dnssize < FG_SHDICT_MIN_SIZE || dnssize > FG_SHDICT_MAX_SIZE)) {
        char *msg = xasprintf("[main] dnscachesize = %s: not a size from 64k to 16g, or 0 (no cache)", dnscache);
        fg_findings_add(f, FG_FINDING_ERROR, fg_config_origin(cfg, "main", "dnscachesize"), msg);
        free(msg);
    }
    /* the netconsole runs Lua as the daemon's user: on a TCP control port any local user can ask */
    const char *cport = fg_core_str(cfg, "main", "controlport");
    bool tcp = *cport && strspn(cport, "0123456789") == strlen(cport);
    if (tcp && fg_core_bool(cfg, "main", "netconsole")) {
        const char *msg = fg_core_bool(cfg, "main", "controlport_allow_netconsole")
            ? "controlport is a TCP port and controlport_allow_netconsole=1: any local user can start a netconsole "
              "and run Lua as the daemon's user; prefer a unix socket controlport"
            : "netconsole=1 with a TCP controlport: the netconsole command is refused there "
              "(controlport_allow_netconsole=0); use a unix socket controlport to reach it";
        fg_findings_add(f, FG_FINDING_WARNING, fg_config_origin(cfg, "main", "controlport"), msg);
    }
    /* [shared] NAME = SIZE: the shared dictionaries (pool/shdict.h) */
    long shared = fg_config_section_index(cfg, "shared");
    for (size_t j = 0; shared >= 0 && j < fg_config_option_count(cfg, (size_t)shared); j++) {
        const char *name = fg_config_option_name(cfg, (size_t)shared, j);
        char *msg = NULL;
        if (!fg_shdict_check_spec(name, fg_config_option_value(cfg, (size_t)shared, j), &msg)) {
            fg_findings_add(f, FG_FINDING_ERROR, fg_config_origin(cfg, "shared", name), msg);
            free(msg);
        }
    }
    /* A message whose end of data went downstream is never answered 451 (its delivery is under
     * way); the client then waits up to scan_timeout + reinject_timeout. Postfix gives up on the
     * answer to the end of data after smtp_data_done_timeout (600 s) and retries: a duplicate. */
    long scan_to = fg_core_int(cfg, "main", "scan_timeout");
    double reinject_to = fg_core_double(cfg, "main", "reinject_timeout");
    if (scan_to + reinject_to >= 600) {
        char *msg = xasprintf("scan_timeout (%ld) + reinject_timeout (%g) is %g s: at 600 s or more a message "
                              "delivered at the last moment outlives Postfix's smtp_data_done_timeout (600 s) and "
                              "the MTA's retry delivers it twice",
                              scan_to, reinject_to, scan_to + reinject_to);
        fg_findings_add(f, FG_FINDING_WARNING, NULL, msg);
        free(msg);
    }
    const char *trashdir = fg_core_str(cfg, "main", "trashdir");
    struct stat st;
    if (*trashdir && (stat(trashdir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        char *msg = xasprintf("Trashdir %s does not exist", trashdir);
        fg_findings_add(f, FG_FINDING_ERROR, NULL, msg);
        free(msg);
    }
    const char *tempdir = fg_core_str(cfg, "main", "tempdir");
    if (*tempdir && access(tempdir, W_OK | X_OK) != 0) {
        char *msg = xasprintf("tempdir %s is not a writable directory", tempdir);
        fg_findings_add(f, FG_FINDING_ERROR, NULL, msg);
        free(msg);
    }
    fg_findings_add(f, FG_FINDING_INFO, NULL, f->errors > errors_before ? "ERROR" : "OK");
}

void fg_lint_logging(const char *logging_conf, fg_findings *f)
{
    char *err = NULL;
    fg_findings_add(f, FG_FINDING_INFO, NULL, "Checking logging configuration....");
    if (access(logging_conf, F_OK) != 0) {
        char *msg = xasprintf("%s not found: the engine will log INFO to stderr", logging_conf);
        fg_findings_add(f, FG_FINDING_WARNING, NULL, msg);
        free(msg);
    } else if (fg_log_check_config(logging_conf, &err) != 0) {
        fg_findings_add(f, FG_FINDING_INFO, NULL, "NOT OK");
        fg_findings_add_located(f, FG_FINDING_ERROR, err);
        char *msg = xasprintf("Please check your logging configuration (%s, Python logging fileConfig format)",
                              logging_conf);
        fg_findings_add(f, FG_FINDING_INFO, NULL, msg);
        free(msg);
        free(err);
    } else {
        fg_findings_add(f, FG_FINDING_INFO, NULL, "OK");
    }
}

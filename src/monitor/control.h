/* control: the control server (Fuglu's ControlServer), served by the main event loop.
 *
 * [main] controlport is a unix socket path (created mode 0600; an old file there is removed first)
 * or a TCP port number, bound to 127.0.0.1 only since there is no authentication. Any number of
 * clients at once; each sends one command line (lower-cased, first word the command, the rest its
 * arguments) and gets the whole answer, of any length, then the connection is closed. The answers
 * are Fuglu's (see stats.h renderings and doc/monitoring.md); an unknown command gets
 * "ERR no such command: <cmd>".
 */
#ifndef FUGLU_CONTROL_H
#define FUGLU_CONTROL_H

#include <event2/event.h>
#include "monitor/stats.h"
#include "lib/util.h"

typedef struct fg_control fg_control;

/* What the commands reach: the counters, the daemon's reload, the console (for netconsole). */
struct fg_console;
typedef struct fg_control_env {
    fg_stats *stats;
    /* The daemon's reload (fg_controller_reload): appends "OK: ..." or "ERROR: ..." lines. NULL:
     * the command answers that reload is not available. */
    int (*reload)(void *arg, fg_buf *out);
    void *reload_arg;
    struct fg_console *console; /* may be NULL */
    bool allow_tcp_netconsole;  /* [main] controlport_allow_netconsole */
    bool tcp;                   /* set by fg_control_new: the control port is TCP, reachable by any local user */
} fg_control_env;

/* One command: its name, a one-line help (also what `fuglu_control` lists) and the answer. */
typedef struct fg_control_command {
    const char *name;
    const char *help;
    void (*run)(const fg_control_env *env, fg_buf *out, const char *args);
} fg_control_command;

/* NULL-terminated. */
extern const fg_control_command fg_control_commands[];

/* Answers one request line (as received) into out. */
void fg_control_answer(const fg_control_env *env, const char *request, fg_buf *out);

/* spec: the controlport value. Returns NULL and *err (caller frees) if it cannot listen. */
fg_control *fg_control_new(struct event_base *base, const fg_control_env *env, const char *spec, char **err);
/* Closes the listener and every client; removes the unix socket file. */
void fg_control_free(fg_control *c);

#endif

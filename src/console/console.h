/* console: the controller Lua state with `mc`, the interactive terminal console (`fuglu --console`)
 * and the evaluation both consoles share (the netconsole is netconsole.h).
 *
 * The controller state is a Lua state of its own on the main thread (lua/fuglu/controller.lua loads
 * every plugin into it; lua/fuglu/console.lua is the read-eval-print logic). The JIT is off in it and
 * every input runs under an instruction and time budget (a count hook), so `while true do end` ends
 * with an error instead of stopping the event loop. The terminal is read by a thread of its own
 * (libedit's line editing and history, loaded at run time; plain line reading without it), which
 * hands each line to the main thread and waits for it to be evaluated and printed.
 */
#ifndef FUGLU_CONSOLE_H
#define FUGLU_CONSOLE_H

#include <event2/event.h>
#include "lib/config.h"
#include "daemon/generation.h"
#include "lib/util.h"

typedef struct fg_console fg_console;

/* Per input: wall clock seconds and VM instructions. */
#define FG_CONSOLE_BUDGET_SECONDS 2.0
#define FG_CONSOLE_BUDGET_INSTRUCTIONS 200000000L

typedef struct fg_console_opts {
    struct event_base *base;
    const fg_config *cfg;       /* must outlive the console */
    const char *luadir;
    fg_stats *stats;            /* for mc:stats() and mc:workers() (NULL: none) */
    const fg_shdict_list *dicts; /* [shared], for fuglu_shared in the console (NULL: none) */
} fg_console_opts;

/* Remembers the options; the controller state is made when first needed. */
fg_console *fg_console_new(const fg_console_opts *opts);
/* The generation in service, for mc:workers() (set on start and on every swap). */
void fg_console_set_generation_in_service(fg_console *c, fg_generation *g);
fg_generation *fg_console_generation_in_service(fg_console *c);
fg_stats *fg_console_stats(fg_console *c);
/* The generation the workers now run (mc.generation). mc's own config and plugins stay the ones the
 * controller state was made with. */
void fg_console_set_generation(fg_console *c, int generation);
/* Creates the controller state if needed; -1 with *err (plugin load errors) otherwise 0. */
int fg_console_controller(fg_console *c, char **err);
/* Starts the terminal prompt (--console). End of input on the terminal (Ctrl-D) stops the daemon
 * (SIGTERM to itself). -1 with *err when the controller cannot be made. */
int fg_console_start_terminal(fg_console *c, char **err);
/* Stops the terminal thread (restoring the terminal) and the netconsole, frees the state. */
void fg_console_free(fg_console *c);

/* A console session (one per terminal or network client) and one input line for it: the status
 * ("ok", "more" for an incomplete chunk, "error") is returned, the output appended to out. */
int fg_console_session_new(fg_console *c);
void fg_console_session_free(fg_console *c, int session);
const char *fg_console_eval(fg_console *c, int session, const char *line, fg_buf *out);

const fg_config *fg_console_config(fg_console *c);
struct event_base *fg_console_base(fg_console *c);

#endif

/* console: the controller Lua state, the budgeted evaluation and the terminal console. See console.h.
 * The functions mc calls into the engine are src/lua/lua_console.c.
 */
#include "console/console.h"
#include "log/log.h"
#include "lua/lua_console.h"
#include "lua/lua_core.h"
#include "lua/lua_worker.h"
#include "console/netconsole.h"

#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define CONSOLE_LOGGER "fuglu.console"
#define CONSOLE_HOOK_COUNT 1000
#define CONSOLE_PROMPT "fuglu> "
#define CONSOLE_PROMPT_MORE "  ...> "
#define CONSOLE_HISTORY ".fuglu_console_history"

/* libedit's readline interface, loaded at run time (lib NULL: not available). */
typedef struct console_edit {
    void *lib;
    char *(*readline)(const char *prompt);
    int (*add_history)(const char *line);
    void (*using_history)(void);
    int (*read_history)(const char *path);
    int (*write_history)(const char *path);
} console_edit;

struct fg_console {
    struct event_base *base;
    const fg_config *cfg;
    char *luadir;
    fg_stats *stats;
    const fg_shdict_list *dicts;
    fg_generation *gen;
    lua_State *L;
    int module_ref;         /* fuglu.console */
    int generation;
    int mc_ref;

    /* terminal */
    int tty_started;
    int tty_session;
    pthread_t tty_thread;
    struct event *tty_event;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *tty_line;         /* handed to the main thread; NULL line + tty_eof at end of input */
    int tty_pending;
    int tty_eof;
    int tty_more;           /* the last input was incomplete: continuation prompt */
    int stopping;
    int tty_saved;          /* termios saved at start, restored at the end */
    struct termios tty_mode;
    console_edit edit;
    char *history;
};

/* The hook state: only the main thread evaluates, one input at a time. */
static double budget_deadline;
static long budget_used;

const fg_config *fg_console_config(fg_console *c)
{
    return c->cfg;
}

struct event_base *fg_console_base(fg_console *c)
{
    return c->base;
}

fg_console *fg_console_new(const fg_console_opts *opts)
{
    fg_console *c = xcalloc(1, sizeof *c);
    c->base = opts->base;
    c->cfg = opts->cfg;
    c->luadir = xstrdup(opts->luadir);
    c->stats = opts->stats;
    c->dicts = opts->dicts;
    c->module_ref = LUA_NOREF;
    c->mc_ref = LUA_NOREF;
    c->generation = 1;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

void fg_console_set_generation_in_service(fg_console *c, fg_generation *g)
{
    c->gen = g;
}

fg_generation *fg_console_generation_in_service(fg_console *c)
{
    return c->gen;
}

fg_stats *fg_console_stats(fg_console *c)
{
    return c->stats;
}

static void console_push_generation(fg_console *c)
{
    if (!c->L || c->mc_ref == LUA_NOREF)
        return;
    lua_rawgeti(c->L, LUA_REGISTRYINDEX, c->mc_ref);
    lua_pushinteger(c->L, c->generation);
    lua_setfield(c->L, -2, "generation");
    lua_pop(c->L, 1);
}

void fg_console_set_generation(fg_console *c, int generation)
{
    c->generation = generation;
    console_push_generation(c);
}

/* ---- the controller state ---- */

int fg_console_controller(fg_console *c, char **err)
{
    if (c->L)
        return 0;
    fg_lua_env env = {.luadir = c->luadir, .dicts = c->dicts};
    lua_State *L = fg_lua_new_state(&env);
    /* Count hooks do not run inside compiled traces: the interpreter only. */
    lua_getglobal(L, "jit");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "off");
        lua_call(L, 0, 0);
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, fg_lua_traceback);
    int tb = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "fuglu.console");
    if (lua_pcall(L, 1, 1, tb) != 0) {
        *err = xasprintf("cannot load fuglu.console: %s", lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    c->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getglobal(L, "require");
    lua_pushstring(L, "fuglu.controller");
    if (lua_pcall(L, 1, 1, tb) != 0) {
        *err = xasprintf("cannot load fuglu.controller: %s", lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    lua_getfield(L, -1, "new");
    fg_lua_push_config(L, c->cfg);
    lua_newtable(L);
    lua_pushstring(L, c->luadir);
    lua_setfield(L, -2, "luadir");
    lua_pushstring(L, "console");
    lua_setfield(L, -2, "worker_name");
    fg_lua_console_push_host(L, c);
    if (lua_pcall(L, 3, 2, tb) != 0) {
        *err = xasprintf("%s", lua_tostring(L, -1));
        lua_close(L);
        return -1;
    }
    if (lua_isnil(L, -2)) {
        *err = fg_lua_collect_errors(L, -1, "the controller could not be created");
        lua_close(L);
        return -1;
    }
    lua_pop(L, 1);
    c->mc_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    c->L = L;
    console_push_generation(c);
    fg_log(CONSOLE_LOGGER, FG_INFO, "controller Lua state ready (mc)");
    return 0;
}

int fg_console_session_new(fg_console *c)
{
    lua_State *L = c->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->module_ref);
    lua_getfield(L, -1, "session");
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->mc_ref);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        fg_log(CONSOLE_LOGGER, FG_ERROR, "cannot create a console session: %s", lua_tostring(L, -1));
        lua_settop(L, 0);
        return LUA_NOREF;
    }
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    return ref;
}

void fg_console_session_free(fg_console *c, int session)
{
    if (c->L && session != LUA_NOREF) {
        luaL_unref(c->L, LUA_REGISTRYINDEX, session);
        lua_gc(c->L, LUA_GCCOLLECT, 0);
    }
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    budget_used += CONSOLE_HOOK_COUNT;
    if (fg_monotonic() > budget_deadline || budget_used > FG_CONSOLE_BUDGET_INSTRUCTIONS) {
        /* From now on every instruction fails, so a pcall in the input cannot swallow the stop. */
        lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
        budget_used = FG_CONSOLE_BUDGET_INSTRUCTIONS + 1;
        budget_deadline = 0;
        luaL_error(L, "evaluation stopped: over the console budget (%d s or %d million instructions)",
                   (int)FG_CONSOLE_BUDGET_SECONDS, (int)(FG_CONSOLE_BUDGET_INSTRUCTIONS / 1000000));
    }
}

const char *fg_console_eval(fg_console *c, int session, const char *line, fg_buf *out)
{
    lua_State *L = c->L;
    if (!L || session == LUA_NOREF) {
        fg_buf_puts(out, "error: no console session\n");
        return "error";
    }
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, session);
    lua_getfield(L, -1, "eval");
    lua_pushvalue(L, -2);
    lua_pushstring(L, line);
    budget_deadline = fg_monotonic() + FG_CONSOLE_BUDGET_SECONDS;
    budget_used = 0;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, CONSOLE_HOOK_COUNT);
    int rc = lua_pcall(L, 2, 2, 0);
    lua_sethook(L, NULL, 0, 0);
    const char *status;
    if (rc != 0) {
        fg_buf_printf(out, "error: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "(unknown error)");
        status = "error";
    } else {
        const char *st = lua_tostring(L, -2);
        size_t len = 0;
        const char *text = lua_tolstring(L, -1, &len);
        status = st && strcmp(st, "more") == 0 ? "more" : st && strcmp(st, "error") == 0 ? "error" : "ok";
        if (text && len) {
            fg_buf_append(out, text, len);
            if (text[len - 1] != '\n')
                fg_buf_append(out, "\n", 1);
        }
    }
    lua_settop(L, 0);
    /* Whatever the input allocated should not wait for the next input to be collected. */
    lua_gc(L, LUA_GCSTEP, 0);
    return status;
}

/* ---- the terminal ---- */

static void edit_load(console_edit *e)
{
    memset(e, 0, sizeof *e);
    e->lib = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!e->lib)
        return;
    /* POSIX dlsym returns void *; the conversion to function pointers goes through memcpy. */
    struct { const char *name; void *dst; size_t size; } syms[] = {
        {"readline", &e->readline, sizeof e->readline},
        {"add_history", &e->add_history, sizeof e->add_history},
        {"using_history", &e->using_history, sizeof e->using_history},
        {"read_history", &e->read_history, sizeof e->read_history},
        {"write_history", &e->write_history, sizeof e->write_history},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *p = dlsym(e->lib, syms[i].name);
        if (!p) {
            dlclose(e->lib);
            memset(e, 0, sizeof *e);
            return;
        }
        memcpy(syms[i].dst, &p, syms[i].size);
    }
}

/* Runs on the main thread: evaluates the line the terminal thread handed over and prints. */
static void on_tty_line(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fg_console *c = arg;
    pthread_mutex_lock(&c->mu);
    char *line = c->tty_line;
    int eof = c->tty_eof;
    c->tty_line = NULL;
    pthread_mutex_unlock(&c->mu);
    if (eof) {
        fputs("\nconsole closed: stopping fuglu\n", stdout);
        fflush(stdout);
        fg_log(CONSOLE_LOGGER, FG_INFO, "end of console input: shutting down");
        kill(getpid(), SIGTERM);
    } else if (line) {
        fg_buf out;
        fg_buf_init(&out);
        const char *status = fg_console_eval(c, c->tty_session, line, &out);
        if (out.len)
            fwrite(out.data, 1, out.len, stdout);
        fflush(stdout);
        fg_buf_free(&out);
        pthread_mutex_lock(&c->mu);
        c->tty_more = strcmp(status, "more") == 0;
        pthread_mutex_unlock(&c->mu);
    }
    free(line);
    pthread_mutex_lock(&c->mu);
    c->tty_pending = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Terminal thread: gives one line (NULL: end of input) to the main thread and waits until it was
 * evaluated and printed. Returns 0, or -1 when the console is stopping. */
static int tty_hand_over(fg_console *c, char *line)
{
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        free(line);
        return -1;
    }
    c->tty_line = line;
    c->tty_eof = line == NULL;
    c->tty_pending = 1;
    event_active(c->tty_event, EV_READ, 0);
    while (c->tty_pending && !c->stopping)
        pthread_cond_wait(&c->cv, &c->mu);
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    return stopping ? -1 : 0;
}

static const char *tty_prompt(fg_console *c)
{
    pthread_mutex_lock(&c->mu);
    int more = c->tty_more;
    pthread_mutex_unlock(&c->mu);
    return more ? CONSOLE_PROMPT_MORE : CONSOLE_PROMPT;
}

/* Without libedit: the prompt, then a line from stdin (NULL at the end of input). */
static char *tty_plain_readline(const char *prompt)
{
    fputs(prompt, stdout);
    fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

/* The terminal thread blocks in readline(); at shutdown it is left blocked there (the process is
 * about to exit) and the terminal mode saved at the start is put back by the main thread. */
static void *tty_main(void *arg)
{
    fg_console *c = arg;
    if (c->edit.lib) {
        c->edit.using_history();
        if (c->history)
            c->edit.read_history(c->history);
    }
    for (;;) {
        const char *prompt = tty_prompt(c);
        char *line = c->edit.lib ? c->edit.readline(prompt) : tty_plain_readline(prompt);
        if (line && *line && c->edit.lib) {
            c->edit.add_history(line);
            if (c->history)
                c->edit.write_history(c->history);
        }
        int eof = line == NULL;
        /* libedit allocates with malloc: hand over our own copy */
        char *copy = line ? xstrdup(line) : NULL;
        free(line);
        if (tty_hand_over(c, copy) != 0 || eof)
            break;
    }
    return NULL;
}

int fg_console_start_terminal(fg_console *c, char **err)
{
    if (c->tty_started)
        return 0;
    if (fg_console_controller(c, err) != 0)
        return -1;
    c->tty_session = fg_console_session_new(c);
    if (c->tty_session == LUA_NOREF) {
        *err = xstrdup("cannot create the console session");
        return -1;
    }
    c->tty_event = event_new(c->base, -1, 0, on_tty_line, c);
    c->tty_saved = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &c->tty_mode) == 0;
    edit_load(&c->edit);
    const char *home = getenv("HOME");
    if (home && *home)
        c->history = xasprintf("%s/%s", home, CONSOLE_HISTORY);
    printf("Fuglu Lua Shell - MainController available as 'mc' (mc:help() lists what it offers;\n"
           "Ctrl-D stops fuglu)%s\n", c->edit.lib ? "" : " [no line editing: libedit.so.2 not found]");
    fflush(stdout);
    if (pthread_create(&c->tty_thread, NULL, tty_main, c) != 0) {
        *err = xstrdup("cannot start the console thread");
        return -1;
    }
    pthread_detach(c->tty_thread);
    c->tty_started = 1;
    return 0;
}

void fg_console_free(fg_console *c)
{
    if (!c)
        return;
    fg_netconsole_stop();
    if (c->L)
        lua_close(c->L);
    c->L = NULL;
    if (c->tty_started) {
        /* The terminal thread may still sit in readline(): once it sees `stopping` (under the
         * mutex) it touches nothing but c's mutex and ends, so the event can go, but c itself stays
         * allocated (the process is exiting). */
        pthread_mutex_lock(&c->mu);
        c->stopping = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        event_free(c->tty_event);
        c->tty_event = NULL;
        if (c->tty_saved)
            tcsetattr(STDIN_FILENO, TCSANOW, &c->tty_mode);
        fputs("\n", stdout);
        fflush(stdout);
        return;
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->history);
    free(c->luadir);
    free(c);
}

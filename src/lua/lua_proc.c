/* lua_proc: the Lua module `fuglu_proc`: run a program (clamscan as a fallback, external tools).
 *
 *   local proc = require "fuglu_proc"
 *   local r, err = proc.run{ "/usr/bin/clamscan", "--no-summary", "-",
 *                            input = suspect.message,   -- or a string; default: nothing (EOF)
 *                            timeout = 30000,           -- ms (default 30000), and never past the
 *                                                       -- message's scan_timeout
 *                            maxoutput = 1048576 }      -- bytes kept of stdout and of stderr each
 *   r = { status = 0..255 or nil, signal = n or nil, stdout = "...", stderr = "...",
 *         timedout = bool, truncated = bool }
 *
 * No shell: argv[1] is the program (a path; it is not searched in PATH), the other array items its
 * arguments. The child gets /dev/null or the input on stdin, pipes for stdout and stderr, and a
 * process group of its own: at the timeout the whole group is killed (SIGKILL) and r.timedout is
 * true. Output past maxoutput is read and dropped (the child never blocks on a full pipe) and
 * r.truncated says so. A message's bytes are written from C, never copied into Lua.
 * `nil, err` only when the program cannot be started ("cannot run /usr/bin/x: No such file...").
 */
#include "lua/lua_core.h"
#include "lua/lua_message.h"
#include "pool/job.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PROC_DEFAULT_MS 30000
#define PROC_DEFAULT_MAXOUT (1u << 20)
#define PROC_MAX_ARGS 256

typedef struct proc_out {
    int fd;
    fg_buf buf;
    size_t max;
    bool truncated;
} proc_out;

/* Reads what is there; false at end of file or error (then fd is closed and -1). */
static bool proc_read(proc_out *o)
{
    char chunk[16384];
    ssize_t n = read(o->fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0) {
        close(o->fd);
        o->fd = -1;
        return false;
    }
    size_t room = o->buf.len < o->max ? o->max - o->buf.len : 0;
    size_t keep = (size_t)n < room ? (size_t)n : room;
    fg_buf_append(&o->buf, chunk, keep);
    if (keep < (size_t)n)
        o->truncated = true;
    return true;
}

static void proc_set_field(lua_State *L, const char *key, const fg_buf *b)
{
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    lua_setfield(L, -2, key);
}

static int l_proc_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    size_t argc = lua_objlen(L, 1);
    luaL_argcheck(L, argc >= 1 && argc <= PROC_MAX_ARGS, 1, "{program, arguments...} (1 to 256 items)");
    const char *argv[PROC_MAX_ARGS + 1];
    for (size_t i = 0; i < argc; i++) {
        lua_rawgeti(L, 1, (int)i + 1);
        argv[i] = lua_tostring(L, -1);
        if (!argv[i])
            return luaL_argerror(L, 1, "every argument must be a string");
        lua_pop(L, 1);   /* the table keeps it */
    }
    argv[argc] = NULL;
    lua_getfield(L, 1, "timeout");
    lua_Integer timeout_ms = luaL_optinteger(L, -1, PROC_DEFAULT_MS);
    lua_getfield(L, 1, "maxoutput");
    lua_Integer maxout = luaL_optinteger(L, -1, PROC_DEFAULT_MAXOUT);
    lua_pop(L, 2);
    luaL_argcheck(L, timeout_ms > 0, 1, "timeout in milliseconds");
    luaL_argcheck(L, maxout >= 0, 1, "maxoutput in bytes");
    size_t input_len = 0;
    lua_getfield(L, 1, "input");
    const char *input = fg_lua_bytes(L, -1, &input_len, "input");   /* stays on the stack */

    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if ((input && pipe2(in, O_CLOEXEC) != 0) || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        int fds[6] = {in[0], in[1], out[0], out[1], err[0], err[1]};
        for (int i = 0; i < 6; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot run %s: pipe: %s", argv[0], strerror(e));
        return 2;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (input)
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);        /* a worker thread's blocked signals stay here */
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (input)
        close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        if (input)
            close(in[1]);
        close(out[0]);
        close(err[0]);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot run %s: %s", argv[0], strerror(rc));
        return 2;
    }

    proc_out o[2] = {{.fd = out[0], .max = (size_t)maxout}, {.fd = err[0], .max = (size_t)maxout}};
    fg_buf_init(&o[0].buf);
    fg_buf_init(&o[1].buf);
    int wfd = input ? in[1] : -1;
    if (wfd >= 0)
        fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
    size_t written = 0;
    double until = fg_monotonic() + (double)timeout_ms / 1000.0;
    double deadline = fg_job_deadline_current();
    if (deadline > 0 && deadline < until)
        until = deadline;
    bool timedout = false;
    while (o[0].fd >= 0 || o[1].fd >= 0 || wfd >= 0) {
        if (wfd >= 0 && written == input_len) {
            close(wfd);
            wfd = -1;
            continue;
        }
        double left = (until - fg_monotonic()) * 1000.0;
        if (left <= 0) {
            timedout = true;
            break;
        }
        struct pollfd p[3];
        int n = 0;
        for (int i = 0; i < 2; i++)
            if (o[i].fd >= 0)
                p[n++] = (struct pollfd){.fd = o[i].fd, .events = POLLIN};
        if (wfd >= 0)
            p[n++] = (struct pollfd){.fd = wfd, .events = POLLOUT};
        int r = poll(p, (nfds_t)n, left > 2e9 ? 2000000000 : (int)left + 1);
        if (r < 0 && errno != EINTR)
            break;
        for (int k = 0; r > 0 && k < n; k++) {
            if (!p[k].revents)
                continue;
            if (p[k].fd == wfd) {
                ssize_t w = write(wfd, input + written, input_len - written);
                if (w > 0)
                    written += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EINTR) {   /* EPIPE: it stopped reading */
                    close(wfd);
                    wfd = -1;
                }
            } else {
                proc_read(p[k].fd == o[0].fd ? &o[0] : &o[1]);
            }
        }
    }
    if (timedout)
        kill(-pid, SIGKILL);
    if (wfd >= 0)
        close(wfd);
    for (int i = 0; i < 2; i++)
        if (o[i].fd >= 0)
            close(o[i].fd);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;

    lua_createtable(L, 0, 6);
    if (WIFEXITED(status)) {
        lua_pushinteger(L, WEXITSTATUS(status));
        lua_setfield(L, -2, "status");
    } else if (WIFSIGNALED(status)) {
        lua_pushinteger(L, WTERMSIG(status));
        lua_setfield(L, -2, "signal");
    }
    proc_set_field(L, "stdout", &o[0].buf);
    proc_set_field(L, "stderr", &o[1].buf);
    lua_pushboolean(L, timedout);
    lua_setfield(L, -2, "timedout");
    lua_pushboolean(L, o[0].truncated || o[1].truncated);
    lua_setfield(L, -2, "truncated");
    fg_buf_free(&o[0].buf);
    fg_buf_free(&o[1].buf);
    return 1;
}

static const luaL_Reg proc_functions[] = {
    {"run", l_proc_run},
    {NULL, NULL},
};

int luaopen_fuglu_proc(lua_State *L)
{
    return fg_lua_new_module(L, proc_functions);
}

/* test_lua_job: the job object Lua sees (src/lua/lua_job.c): every field read from the one fg_job,
 * tables made once, read-only, and unusable once handed back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "pool/job.h"
#include "lua/lua_core.h"
#include "lua/lua_job.h"
#include "lib/util.h"

/* Runs chunk with the job object as global `job`; returns its string result or the error. */
static char *run(lua_State *L, const char *chunk)
{
    if (luaL_loadstring(L, chunk) != 0)
        return xstrdup(lua_tostring(L, -1));
    int rc = lua_pcall(L, 0, 1, 0);
    char *out = xstrdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "(nil)");
    lua_pop(L, 1);
    (void)rc;
    return out;
}

static void test_job_object(void **state)
{
    (void)state;
    fg_job *job = fg_job_new(FG_PROTO_SMTP);
    job->local_port = 10025;
    job->peer_addr = xstrdup("192.0.2.7");
    job->helo = xstrdup("mx.example.org");
    job->mail_from = xstrdup("a@example.org");
    job->mail_params = xstrdup("SIZE=10");
    fg_job_add_rcpt(job, "b@example.net", "NOTIFY=NEVER");
    fg_job_add_rcpt(job, "c@example.net", NULL);
    job->msg = fg_msg_from_bytes("Subject: x\r\n\r\ny\r\n", 17);

    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    fg_lua_preload(L);
    fg_lua_job_push(L, job);
    lua_setglobal(L, "job");

    char *s = run(L, "return table.concat({job.id, job.protocol, job.from, job.mail_params, job.helo, "
                     "job.peer_addr, tostring(job.local_port), job.rcpts[2], job.rcpt_params[1], "
                     "job.rcpt_params[2] == '' and 'empty' or 'x', tostring(job.xforward), "
                     "tostring(job.nothing)}, ' ')");
    char *want = xasprintf("%s smtp a@example.org SIZE=10 mx.example.org 192.0.2.7 10025 c@example.net "
                           "NOTIFY=NEVER empty nil nil", job->id);
    assert_string_equal(s, want);
    free(s);
    free(want);
    s = run(L, "return tostring(job.rcpts == job.rcpts and job.message == job.message) .. ' ' .. job.message:size()");
    assert_string_equal(s, "true 17");
    free(s);
    s = run(L, "job.from = 'x'");
    assert_non_null(strstr(s, "read-only"));
    free(s);

    job->has_xforward = 1;
    job->xforward.addr = xstrdup("198.51.100.1");
    fg_lua_job_push(L, job);   /* a fresh object reads the XFORWARD the session saw */
    lua_setglobal(L, "job2");
    s = run(L, "return job2.xforward.addr .. ' ' .. tostring(job2.xforward.name)");
    assert_string_equal(s, "198.51.100.1 nil");
    free(s);

    lua_getglobal(L, "job");
    fg_lua_job_detach(L, -1);
    lua_pop(L, 1);
    s = run(L, "local t = {} t[job] = 1 return tostring(t[job]) .. ' ' .. select(2, pcall(function() return job.id end))");
    assert_non_null(strstr(s, "1 "));
    assert_non_null(strstr(s, "handed back"));
    free(s);
    s = run(L, "return select(2, pcall(require('fuglu_job').reinject, {host='127.0.0.1', port=25, rcpts={'a@b'}, source=''}, {}))");
    assert_non_null(strstr(s, "job expected"));
    free(s);
    lua_close(L);
    fg_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* lua_job: the job object Lua sees while a worker handles a job (lua_job.c). */
#ifndef FUGLU_LUA_JOB_H
#define FUGLU_LUA_JOB_H

#include <lua.h>
#include "pool/job.h"

/* Pushes the job object for job, valid until fg_lua_job_detach. */
void fg_lua_job_push(lua_State *L, fg_job *job);
/* The job goes back to its session: the object at idx answers every field with an error from now
 * on (it may still be used as a table key). */
void fg_lua_job_detach(lua_State *L, int idx);
/* Unmaps the message object the job handed out (if Lua asked for it), once the appenders are done. */
void fg_lua_job_release_message(lua_State *L, int idx);
/* The fg_job of the object at idx; raises when it is not a job or was handed back. */
fg_job *fg_lua_job_check(lua_State *L, int idx);

#endif

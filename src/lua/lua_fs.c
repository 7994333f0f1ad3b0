/* lua_fs: the Lua module `fuglu_fs`: the few file-system calls the plugins need beyond io.open.
 *
 *   local fs = require "fuglu_fs"
 *   fs.stat(path)              -> {type=, size=, mtime=, ctime=, mode=, ino=} (follows links)
 *   fs.realpath(path)          -> absolute path without links
 *   fs.mkdir(path[, mode])     -> true (EEXIST is reported: the caller decides)
 *   fs.chmod(path, mode), fs.chown(path, user, group)   (user/group: name, number, or nil to keep)
 *   fs.listdir(path)           -> sorted array of entry names (without . and ..)
 * Failures return nil, "what path: strerror", errno (chown with an unknown name: nil, error).
 */
#include "lua/lua_core.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>

static int fs_push_errno(lua_State *L, const char *what, const char *path)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(e));
    lua_pushinteger(L, e);
    return 3;
}

static double fs_time(struct timespec ts)
{
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* stat(path) -> {type=, size=, mtime=, ctime=, mode=} | nil, error, errno (follows links) */
static int l_fs_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return fs_push_errno(L, "cannot stat", path);
    lua_createtable(L, 0, 5);
    const char *type = S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other";
    lua_pushstring(L, type);
    lua_setfield(L, -2, "type");
    lua_pushnumber(L, (lua_Number)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushnumber(L, fs_time(st.st_mtim));
    lua_setfield(L, -2, "mtime");
    lua_pushnumber(L, fs_time(st.st_ctim));
    lua_setfield(L, -2, "ctime");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushnumber(L, (lua_Number)st.st_ino);
    lua_setfield(L, -2, "ino");
    return 1;
}

static int l_fs_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char buf[PATH_MAX];
    if (!realpath(path, buf))
        return fs_push_errno(L, "cannot resolve", path);
    lua_pushstring(L, buf);
    return 1;
}

/* mkdir(path, mode) -> true | nil, error, errno (EEXIST is reported, the caller decides) */
static int l_fs_mkdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0755);
    if (mkdir(path, mode) != 0)
        return fs_push_errno(L, "cannot create directory", path);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_fs_chmod(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_checkinteger(L, 2);
    if (chmod(path, mode) != 0)
        return fs_push_errno(L, "cannot chmod", path);
    lua_pushboolean(L, 1);
    return 1;
}

/* A user or group given as a name or a number; -1 for nil/"". Returns 0 on failure (name unknown). */
static int fs_id(lua_State *L, int idx, int group, long *out)
{
    *out = -1;
    if (lua_isnoneornil(L, idx))
        return 1;
    const char *s = luaL_checkstring(L, idx);
    if (*s == '\0')
        return 1;
    char *end;
    long n = strtol(s, &end, 10);
    if (*end == '\0' && n >= 0) {
        *out = n;
        return 1;
    }
    if (group) {
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(s, &gr, buf, sizeof buf, &res) != 0 || !res)
            return 0;
        *out = (long)res->gr_gid;
    } else {
        struct passwd pw, *res = NULL;
        char buf[4096];
        if (getpwnam_r(s, &pw, buf, sizeof buf, &res) != 0 || !res)
            return 0;
        *out = (long)res->pw_uid;
    }
    return 1;
}

/* chown(path, user, group) -> true | nil, error (user/group: name, number, or nil to keep) */
static int l_fs_chown(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    long uid, gid;
    if (!fs_id(L, 2, 0, &uid)) {
        lua_pushnil(L);
        lua_pushfstring(L, "unknown user '%s'", lua_tostring(L, 2));
        return 2;
    }
    if (!fs_id(L, 3, 1, &gid)) {
        lua_pushnil(L);
        lua_pushfstring(L, "unknown group '%s'", lua_tostring(L, 3));
        return 2;
    }
    if (chown(path, (uid_t)uid, (gid_t)gid) != 0)
        return fs_push_errno(L, "cannot chown", path);
    lua_pushboolean(L, 1);
    return 1;
}

/* listdir(path) -> sorted array of entry names (without . and ..) | nil, error */
static int l_fs_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *dir = opendir(path);
    if (!dir)
        return fs_push_errno(L, "cannot open directory", path);
    lua_newtable(L);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        lua_pushstring(L, de->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(dir);
    /* sort with Lua's table.sort to keep C allocations out of code that may raise */
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, -3);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return 1;
}

static const luaL_Reg fs_functions[] = {
    {"stat", l_fs_stat},
    {"realpath", l_fs_realpath},
    {"mkdir", l_fs_mkdir},
    {"chmod", l_fs_chmod},
    {"chown", l_fs_chown},
    {"listdir", l_fs_listdir},
    {NULL, NULL},
};

int luaopen_fuglu_fs(lua_State *L)
{
    return fg_lua_new_module(L, fs_functions);
}

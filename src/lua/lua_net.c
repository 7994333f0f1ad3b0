/* lua_net: the Lua module `fuglu_net`: network calls for plugins. For now one datagram:
 *
 *   local net = require "fuglu_net"
 *   net.udp_send(host, port, payload)   -> true | nil, error   (statsd)
 *
 * udp_send takes a numeric address or "localhost" only: no name is ever looked up in the DNS (a
 * resolver that blocks a worker is for a later, asynchronous net API).
 */
#include "lua/lua_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <lauxlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int l_net_udp_send(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    size_t len;
    const char *payload = luaL_checklstring(L, 3, &len);
    if (port < 1 || port > 65535) {
        lua_pushnil(L);
        lua_pushfstring(L, "invalid port %d", (int)port);
        return 2;
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sslen;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sslen = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sslen = sizeof *sin6;
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "host %s is not a numeric address (names are not looked up)", host);
        return 2;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    ssize_t n = sendto(fd, payload, len, 0, (struct sockaddr *)&ss, sslen);
    int saved = errno;
    close(fd);
    if (n != (ssize_t)len) {
        lua_pushnil(L);
        lua_pushstring(L, n < 0 ? strerror(saved) : "short send");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg net_functions[] = {
    {"udp_send", l_net_udp_send},
    {NULL, NULL},
};

int luaopen_fuglu_net(lua_State *L)
{
    return fg_lua_new_module(L, net_functions);
}

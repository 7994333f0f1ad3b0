/* lua_hash: the Lua module `fuglu_hash`: digests, HMAC and random bytes (OpenSSL's libcrypto).
 *
 *   local hash = require "fuglu_hash"
 *   hash.md5(data), hash.sha1(data), hash.sha256(data), hash.sha512(data)  -- lowercase hex
 *   hash.digest(alg, data [, "raw"])     -- alg: "md5", "sha1", "sha256", "sha512"
 *   hash.hmac(alg, key, data [, "raw"])
 *   hash.random_bytes(n)                 -- n bytes from the system's CSPRNG (1 to 1048576)
 *
 * data is a string or a message object (suspect.message): a message's bytes are hashed where they
 * are, never copied into Lua. An unknown algorithm raises (it is a programming error).
 */
#include "lua/lua_core.h"
#include "lua/lua_message.h"

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

static const EVP_MD *hash_algorithm(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    if (strcmp(name, "md5") == 0)
        return EVP_md5();
    if (strcmp(name, "sha1") == 0)
        return EVP_sha1();
    if (strcmp(name, "sha256") == 0)
        return EVP_sha256();
    if (strcmp(name, "sha512") == 0)
        return EVP_sha512();
    luaL_argerror(L, idx, "md5, sha1, sha256 or sha512");
    return NULL;
}

static const char *hash_data(lua_State *L, int idx, size_t *len)
{
    const char *data = fg_lua_bytes(L, idx, len, "the data");
    if (!data)
        luaL_argerror(L, idx, "a string or a message object");
    return data;
}

static int hash_push(lua_State *L, const unsigned char *md, unsigned int n, int raw_idx)
{
    const char *how = luaL_optstring(L, raw_idx, "hex");
    if (strcmp(how, "raw") == 0) {
        lua_pushlstring(L, (const char *)md, n);
        return 1;
    }
    luaL_argcheck(L, strcmp(how, "hex") == 0, raw_idx, "\"hex\" or \"raw\"");
    static const char digits[] = "0123456789abcdef";
    char hex[2 * EVP_MAX_MD_SIZE];
    for (unsigned int i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    lua_pushlstring(L, hex, 2 * (size_t)n);
    return 1;
}

static int hash_run(lua_State *L, const EVP_MD *md, int data_idx, int raw_idx)
{
    size_t len;
    const char *data = hash_data(L, data_idx, &len);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, md, NULL))
        return luaL_error(L, "hash: the digest failed");
    return hash_push(L, out, n, raw_idx);
}

static int l_hash_digest(lua_State *L) { return hash_run(L, hash_algorithm(L, 1), 2, 3); }
static int l_hash_md5(lua_State *L) { return hash_run(L, EVP_md5(), 1, 2); }
static int l_hash_sha1(lua_State *L) { return hash_run(L, EVP_sha1(), 1, 2); }
static int l_hash_sha256(lua_State *L) { return hash_run(L, EVP_sha256(), 1, 2); }
static int l_hash_sha512(lua_State *L) { return hash_run(L, EVP_sha512(), 1, 2); }

static int l_hash_hmac(lua_State *L)
{
    const EVP_MD *md = hash_algorithm(L, 1);
    size_t klen, len;
    const char *key = luaL_checklstring(L, 2, &klen);
    const char *data = hash_data(L, 3, &len);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(md, key, (int)klen, (const unsigned char *)data, len, out, &n))
        return luaL_error(L, "hash: HMAC failed");
    return hash_push(L, out, n, 4);
}

static int l_hash_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 1048576, 1, "1 to 1048576 bytes");
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    unsigned char chunk[256];
    for (lua_Integer left = n; left > 0;) {
        int k = left < (lua_Integer)sizeof chunk ? (int)left : (int)sizeof chunk;
        if (RAND_bytes(chunk, k) != 1)
            return luaL_error(L, "hash: the random generator failed");
        luaL_addlstring(&b, (const char *)chunk, (size_t)k);
        left -= k;
    }
    luaL_pushresult(&b);
    return 1;
}

static const luaL_Reg hash_functions[] = {
    {"digest", l_hash_digest},
    {"md5", l_hash_md5},
    {"sha1", l_hash_sha1},
    {"sha256", l_hash_sha256},
    {"sha512", l_hash_sha512},
    {"hmac", l_hash_hmac},
    {"random_bytes", l_hash_random_bytes},
    {NULL, NULL},
};

int luaopen_fuglu_hash(lua_State *L)
{
    return fg_lua_new_module(L, hash_functions);
}

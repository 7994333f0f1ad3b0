-- lua_profile: the Lua side of one message (worker:handle + worker:after) in a loop, without
-- sockets, threads or the SMTP server, to see what the Lua framework and plugins cost per message
-- and, under LuaJIT's sampling profiler, where that time goes. Re-injection is a stub answering
-- 250. Run from the repository root after `make all`:
--
--   luajit tools/bench/lua_profile.lua FILE.eml [COUNT] [plugins=a,b] [prependers=x]
--          [plugindir=DIR] [Section.option=value ...]
--   luajit -jp=Fl tools/bench/lua_profile.lua ...      (hot functions / lines; -jp=2 for depth)
--
-- FUGLU_LUADIR=DIR uses another copy of lua/ (to try a change before making it).
-- Prints "N messages, X us CPU per message (Lua side; wall W us), GC heap Y KB" on stdout. Log records go to
-- stderr (redirect them). Every loop is bounded by COUNT (at most 1,000,000).

local luadir = os.getenv("FUGLU_LUADIR") or "lua"
package.path = luadir .. "/?.lua;" .. luadir .. "/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
require "fuglu_core"   -- preloads every C module of build/fuglu_core.so
local message_lib = require "fuglu_message"
local sys = require "fuglu_sys"
local worker = require "fuglu.worker"

local path = arg[1]
if not path then
    io.stderr:write("usage: luajit tools/bench/lua_profile.lua FILE.eml [COUNT] [key=value ...]\n")
    os.exit(2)
end
local count = math.min(tonumber(arg[2]) or 2000, 1000000)

local config = {
    main = {
        plugins = "", prependers = "", appenders = "", plugindir = "",
        outgoinghost = "127.0.0.1", outgoingport = "10026", tempdir = "/tmp",
    },
}
for i = 3, #arg do
    local key, value = arg[i]:match("^([^=]+)=(.*)$")
    if not key then
        io.stderr:write("lua_profile: expected key=value, got " .. arg[i] .. "\n")
        os.exit(2)
    end
    local section, option = key:match("^([^.]+)%.(.+)$")
    if not section then section, option = "main", key end
    config[section] = config[section] or {}
    config[section][option] = value
end

local function reinject_stub()
    return true, 250, "2.0.0 Ok: queued as BENCH", false
end

local w, errors = worker.new(config, { luadir = luadir, worker_name = "bench", reinject = reinject_stub })
if not w then
    io.stderr:write("lua_profile: cannot create the worker:\n" .. table.concat(errors, "\n") .. "\n")
    os.exit(1)
end

local f = assert(io.open(path, "rb"))
local source = f:read("*a")
f:close()
source = source:gsub("\r?\n", "\r\n")

local function job_for(i)
    return {
        id = string.format("%032x", i), protocol = "smtp", from = "bench@example.org",
        mail_params = "", helo = "bench.example.org", peer_addr = "127.0.0.1", local_port = 10025,
        rcpts = { "user@example.net" }, rcpt_params = { "" },
        message = assert(message_lib.from_string(source)),
    }
end

-- warm up (JIT traces, plugin caches)
for i = 1, math.min(200, count) do
    local job = job_for(i)
    w:handle(job)
    w:after(job)
end
collectgarbage("collect")

local started, cpu_started = sys.monotonic(), os.clock()
local codes = {}
for i = 1, count do
    local job = job_for(i)
    local result = w:handle(job)
    w:after(job)
    codes[result.code] = (codes[result.code] or 0) + 1
end
local seconds, cpu_seconds = sys.monotonic() - started, os.clock() - cpu_started
local summary = {}
for code, n in pairs(codes) do summary[#summary + 1] = code .. "x" .. n end
print(string.format("%d messages, %.1f us CPU per message (Lua side; wall %.1f us), GC heap %d KB, replies %s",
    count, cpu_seconds * 1e6 / count, seconds * 1e6 / count, collectgarbage("count"),
    table.concat(summary, " ")))

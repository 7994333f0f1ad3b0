-- instream.lua: clamd's INSTREAM path of ClamavPlugin alone (bench scenario 7c).
--
--   luajit tools/bench/instream.lua FILE PORT COUNT
--
-- Scans the message FILE COUNT times in sequence with ClamavPlugin:scan() against clamd at
-- 127.0.0.1:PORT (the bytes go from C in frames, as in the engine) and prints one JSON line:
-- {"scans":N, "wall_s":..., "msgs_s":..., "clean":N}. The SMTP receive and re-injection are not
-- in it: that is row 3's cost, measured there.

local luadir = os.getenv("FUGLU_LUADIR") or "lua"
package.path = luadir .. "/?.lua;" .. luadir .. "/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
require "fuglu_core"
local message_lib = require "fuglu_message"
local sys = require "fuglu_sys"
local config_module = require "fuglu.config"
local plugin = require "fuglu.plugin"

local file, port, count = arg[1], tonumber(arg[2]), tonumber(arg[3] or "10")
assert(file and port, "usage: instream.lua FILE PORT COUNT")
local msg = assert(message_lib.from_file(file))
local ClamavPlugin = dofile(luadir .. "/plugins/clamav.lua")
local config = config_module.new({ ClamavPlugin = { host = "127.0.0.1", port = tostring(port) } })
plugin.fill_defaults(ClamavPlugin, config)
local p = ClamavPlugin(config)
local clean = 0
local t0 = sys.now()
for _ = 1, count do
    local viruses, err = p:scan(msg)
    assert(viruses, err)
    if next(viruses) == nil then clean = clean + 1 end
end
local wall = sys.now() - t0
print(string.format('{"scans": %d, "wall_s": %.4f, "msgs_s": %.2f, "clean": %d}', count, wall, count / wall, clean))

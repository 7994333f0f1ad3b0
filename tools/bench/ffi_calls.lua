-- ffi_calls: what a hot call from Lua costs as a Lua C function (how the modules export it) and
-- as an FFI call of the same C function, for fuglu_sys.monotonic and fuglu_log.enabled
-- (doc/performance.md, "FFI for the hot calls"). Run from the repository root after `make all`:
--
--   luajit tools/bench/ffi_calls.lua [N]          (JIT on, as in the workers)
--   luajit -joff tools/bench/ffi_calls.lua [N]    (interpreter, as in the console's controller)
--
-- Each loop runs N calls (default 5,000,000, at most 100,000,000); the best of 5 rounds is printed
-- in ns per call.

package.cpath = "build/?.so;" .. package.cpath
require "fuglu_core"
local ffi = require "ffi"
ffi.cdef [[
double fg_monotonic(void);
bool fg_log_enabled(const char *logger, int level);
]]
local lib = ffi.load("./build/fuglu_core.so")
local sys, clog = require "fuglu_sys", require "fuglu_log"

local N = math.min(tonumber(arg[1]) or 5000000, 100000000)

local function bench(name, loop)
    local best = math.huge
    for _ = 1, 5 do
        local started = os.clock()
        loop()
        best = math.min(best, os.clock() - started)
    end
    print(string.format("%-26s %6.1f ns/call", name, best / N * 1e9))
end

local monotonic, ffi_monotonic = sys.monotonic, lib.fg_monotonic
local enabled, ffi_enabled = clog.enabled, lib.fg_log_enabled
local logger = "fuglu.plugin.Example"

bench("monotonic, C function", function()
    local s = 0
    for _ = 1, N do s = s + monotonic() end
    return s
end)
bench("monotonic, FFI", function()
    local s = 0
    for _ = 1, N do s = s + ffi_monotonic() end
    return s
end)
bench("log enabled, C function", function()
    local n = 0
    for _ = 1, N do if enabled(logger, 10) then n = n + 1 end end
    return n
end)
bench("log enabled, FFI", function()
    local n = 0
    for _ = 1, N do if ffi_enabled(logger, 10) then n = n + 1 end end
    return n
end)
bench("empty loop", function()
    local s = 0
    for i = 1, N do s = s + i end
    return s
end)

-- TestActionPlugin: a scanner driven by headers of the message, for specs and integration tests.
--
--   X-Test-Action: <ACTION> [message]   return that action (DUNNO when absent)
--   X-Test-Sleep: <seconds>             sleep first (at most 30 s)
--   X-Test-Exec: <seconds>              run the program `sleep` that long through os.execute (at
--                                       most 30 s): what it inherits is what a plugin's programs get
--   X-Test-Error: yes                   raise an error
--   X-Test-Loop: yes                    spin in a compiled Lua loop (a plugin that never returns;
--                                       bounded by its count, far beyond any test's life)
--   X-Test-Tag: name=value              set suspect.tags[name] = value (several headers allowed)

local ffi = require "ffi"
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

pcall(ffi.cdef, "int poll(void *fds, unsigned long nfds, int timeout);")

local TestActionPlugin = plugin.scanner{
    name = "TestActionPlugin",
    description = "returns the action named in the X-Test-Action header",
}

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

function TestActionPlugin:examine(suspect)
    local msg = suspect:get_message_rep()
    for _, value in ipairs(msg:header("X-Test-Tag")) do
        local name, tagvalue = trim(value):match("^([^=]+)=(.*)$")
        if name then suspect.tags[trim(name)] = trim(tagvalue) end
    end
    local sleep = tonumber(trim(msg:header("X-Test-Sleep")[1] or ""))
    if sleep and sleep > 0 then ffi.C.poll(nil, 0, math.floor(math.min(sleep, 30) * 1000)) end
    local exec = tonumber(trim(msg:header("X-Test-Exec")[1] or ""))
    if exec and exec > 0 then os.execute(string.format("sleep %d", math.floor(math.min(exec, 30)))) end
    if trim(msg:header("X-Test-Loop")[1] or ""):lower() == "yes" then
        local x = 0
        for i = 1, 1e13 do x = (x + i) % 7 end
        return x
    end
    if trim(msg:header("X-Test-Error")[1] or ""):lower() == "yes" then
        error("TestActionPlugin: error requested by X-Test-Error")
    end
    local value = msg:header("X-Test-Action")[1]
    if value == nil then return actions.DUNNO end
    local word, message = trim(value):match("^(%S+)%s*(.*)$")
    local code = actions.string_to_actioncode(word or "", self.config)
    if code == nil then return 99, "unknown action " .. tostring(word) end
    if message == "" then return code end
    return code, message
end

return TestActionPlugin

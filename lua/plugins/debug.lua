-- MessageDebugger (alias `debug`, section [debug]): traces messages that arrive on the debug port.
--
--   [main]
--   prependers = debug, ...           -- first, so the whole chain is traced
--   incomingport = 10025,10888        -- the debug port must be listened on
--   [debug]
--   debugport = 10888
--   debugfile = /tmp/fuglu_debug.log
--   nobounce = 1
--   noreinject = 1
--   noappender = 1
--
-- For a message whose incoming port is debugport it sets the tags nobounce, noreinject and
-- noappenders (the name the core checks; Fuglu set `noappender`, so its appenders still ran) as
-- configured, and opens the message's own trace file <debugfile>.<suspect id>, so concurrent debug
-- messages never share a file. One line "<time> <id> <trace file>" is appended to debugfile itself,
-- so `tail debugfile` tells where the latest traces are. The trace (fuglu.trace) has every plugin,
-- its decision and time, rule matches and the plugins' suspect:debug() lines, the headers that
-- would be added and the final suspect line.

local plugin = require "fuglu.plugin"
local trace = require "fuglu.trace"
local sys = require "fuglu_sys"

local MessageDebugger = plugin.prepender{
    name = "MessageDebugger",
    description = "trace messages received on the debug port",
    options = {
        debugport = { default = "10888", section = "debug", description = "messages to this port are debugged" },
        debugfile = { default = "/tmp/fuglu_debug.log", section = "debug",
            description = "index of the traces; each message's trace is written to <debugfile>.<id>" },
        nobounce = { default = "1", section = "debug", description = "never bounce debugged messages" },
        noreinject = { default = "1", section = "debug", description = "do not re-inject debugged messages" },
        noappender = { default = "1", section = "debug", description = "do not run appenders for debugged messages" },
    },
}

MessageDebugger.__tostring = function() return "Debugger" end

function MessageDebugger:init()
    -- Fuglu renamed the section: the options live in [debug] whatever the entry says.
    if self.section == self.name then self.section = "debug" end
end

-- The per-message trace file for suspect id.
function MessageDebugger.trace_path(debugfile, id)
    return debugfile .. "." .. id
end

-- The port numbers of an incomingport value ("10025, smtp:127.0.0.1:10888, [::1]:10099").
function MessageDebugger.incoming_ports(value)
    local ports = {}
    for item in tostring(value or ""):gmatch("[^,]+") do
        local port = item:match("(%d+)%s*$")
        if port then ports[#ports + 1] = tonumber(port) end
    end
    return ports
end

local function append_index(path, line)
    local f = io.open(path, "ab")
    if not f then return false end
    f:write(line, "\n")
    f:close()
    return true
end

function MessageDebugger:pluginlist(suspect)
    local port = tonumber(suspect.tags.incomingport)
    if port == nil or port ~= self:getint("debugport") then return nil end
    local tags = suspect.tags
    if self:getboolean("nobounce") then tags.nobounce = true end
    if self:getboolean("noreinject") then tags.noreinject = true end
    if self:getboolean("noappender") then
        tags.noappenders = true
        tags.noappender = true
    end
    local debugfile = self:get("debugfile")
    local path = MessageDebugger.trace_path(debugfile, suspect.id)
    local file, err = trace.open(suspect, path)
    if not file then
        tags.debug = true
        self.logger:error("%s: cannot open the debug trace %s: %s", suspect.id, path, tostring(err))
        return nil
    end
    local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(sys.now()))
    if not append_index(debugfile, stamp .. " " .. suspect.id .. " " .. path) then
        self.logger:warning("cannot append to the debug index %s", debugfile)
    end
    suspect:debug(string.format("Tags set by %s: nobounce=%s noreinject=%s noappenders=%s", tostring(self),
        tostring(tags.nobounce == true), tostring(tags.noreinject == true), tostring(tags.noappenders == true)))
    self.logger:info("%s: debug trace in %s", suspect.id, path)
    return nil
end

function MessageDebugger:lint()
    if not plugin.check_config(self) then return false end
    local port = tonumber(self:get("debugport"))
    if port == nil then
        print(string.format("[debug] debugport '%s' is not a port number", self:get("debugport")))
        return false
    end
    local incoming = self.config:get("main", "incomingport", "")
    for _, p in ipairs(MessageDebugger.incoming_ports(incoming)) do
        if p == port then return true end
    end
    print(string.format("Debug port %d not specified in [main]::incomingport (%s)", port, incoming))
    return false
end

return MessageDebugger

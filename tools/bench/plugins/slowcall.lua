-- SlowCallPlugin: a benchmark-only scanner that makes one round trip per message to a TCP service
-- (tools/bench/slowservice.py, which answers after 50 ms), keeping its connection in the worker's
-- keepalive pool: `make bench` scenario 6a, a plugin that waits on a network service.
--
--   [SlowCallPlugin]
--   port = 12345

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local socket = require "fuglu_socket"

local SlowCallPlugin = plugin.scanner{
    name = "SlowCallPlugin",
    description = "benchmark: one round trip to a slow TCP service per message",
    options = { port = { default = "0", description = "the service's port on 127.0.0.1" } },
}

function SlowCallPlugin:examine(suspect)
    local s = socket.tcp()
    s:settimeout(5000)
    local ok, err = s:connect("127.0.0.1", tonumber(self:get("port")))
    if ok then ok, err = s:send("SCAN " .. suspect.id .. "\n") end
    local line
    if ok then line, err = s:receive() end
    if not line then
        s:close()
        self.logger:error("%s: service: %s", suspect.id, err)
        return actions.DEFER, "service problem"
    end
    s:setkeepalive(60000, 4)
    suspect.tags["SlowCall.reply"] = line
    return actions.DUNNO
end

return SlowCallPlugin

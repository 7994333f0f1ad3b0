-- PluginTime: sends each scanner's run time to statsd (Fuglu's a_statsd.PluginTime).
--
-- One UDP datagram per message to [PluginTime] host:port with one line per plugin run:
--   <node>.fuglu.plugin.<section>:<milliseconds>|ms
--
--   [main]
--   appenders = statsd_plugintime
--   [PluginTime]
--   host = 127.0.0.1   ; numeric address or localhost
--   port = 8125

local plugin = require "fuglu.plugin"
local statsd = require "fuglu.statsd"

local PluginTime = plugin.appender{
    name = "PluginTime",
    description = "EXPERIMENTAL: send plugin execution time to a statsd server",
    options = statsd.OPTIONS,
}

function PluginTime:process(suspect)
    local node = statsd.node()
    local lines = {}
    for _, entry in ipairs(suspect.tags.scantimes or {}) do
        lines[#lines + 1] = string.format("%s.fuglu.plugin.%s:%d|ms\n", node, tostring(entry[1]),
            math.floor(entry[2] * 1000))
    end
    local ok, err = statsd.send(self, table.concat(lines))
    if not ok then self.logger:warning("%s: statsd: %s", suspect.id, tostring(err)) end
end

PluginTime.lint = statsd.lint

return PluginTime

-- MessageStatus: sends each message's decision and class to statsd (Fuglu's a_statsd.MessageStatus).
--
-- One UDP datagram per message to [MessageStatus] host:port:
--   <node>.fuglu.decision.<DUNNO|ACCEPT|DELETE|REJECT|DEFER>:1|c
--   <node>.fuglu.message.<virus|highspam|spam|clean>:1|c
--
--   [main]
--   appenders = statsd_messagestatus
--   [MessageStatus]
--   host = 127.0.0.1   ; numeric address or localhost
--   port = 8125

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local statsd = require "fuglu.statsd"

local MessageStatus = plugin.appender{
    name = "MessageStatus",
    description = "EXPERIMENTAL: send message status to a statsd server",
    options = statsd.OPTIONS,
}

function MessageStatus:process(suspect, decision)
    local node = statsd.node()
    local payload = string.format("%s.fuglu.decision.%s:1|c\n%s.fuglu.message.%s:1|c\n", node,
        tostring(actions.actioncode_to_string(decision)), node, statsd.message_class(suspect))
    local ok, err = statsd.send(self, payload)
    if not ok then self.logger:warning("%s: statsd: %s", suspect.id, tostring(err)) end
end

MessageStatus.lint = statsd.lint

return MessageStatus

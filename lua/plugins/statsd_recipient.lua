-- MessageStatusPerRecipient: sends each message's class per recipient to statsd (Fuglu's
-- a_statsd.MessageStatusPerRecipient).
--
-- One UDP datagram per message to [MessageStatusPerRecipient] host:port, one line per recipient:
--   <node>.fuglu.recipient.<rcpt>.<virus|highspam|spam|clean>:1|c
-- <rcpt> is the recipient's domain (level = domain) or address (level = email), with "." replaced
-- by "-" and "@" by "--".
--
--   [main]
--   appenders = statsd_recipient
--   [MessageStatusPerRecipient]
--   host = 127.0.0.1   ; numeric address or localhost
--   port = 8125
--   level = domain

local plugin = require "fuglu.plugin"
local statsd = require "fuglu.statsd"

local options = { level = { default = "domain", description = "domain: per recipient domain, email: per address" } }
for name, spec in pairs(statsd.OPTIONS) do options[name] = spec end

local MessageStatusPerRecipient = plugin.appender{
    name = "MessageStatusPerRecipient",
    description = "EXPERIMENTAL: send message status per recipient to a statsd server",
    options = options,
}

function MessageStatusPerRecipient:process(suspect)
    local node = statsd.node()
    local class = statsd.message_class(suspect)
    local per_email = self:get("level") == "email"
    local lines = {}
    for _, rcpt in ipairs(suspect.recipients) do
        local name = per_email and rcpt or (rcpt:match("@([^@]*)$") or rcpt)
        name = name:gsub("%.", "-"):gsub("@", "--")
        lines[#lines + 1] = string.format("%s.fuglu.recipient.%s.%s:1|c\n", node, name, class)
    end
    local ok, err = statsd.send(self, table.concat(lines))
    if not ok then self.logger:warning("%s: statsd: %s", suspect.id, tostring(err)) end
end

function MessageStatusPerRecipient:lint()
    if not statsd.lint(self) then return false end
    local level = self:get("level")
    if level ~= "domain" and level ~= "email" then
        print("level must be domain or email, not '" .. tostring(level) .. "'")
        return false
    end
    return true
end

return MessageStatusPerRecipient

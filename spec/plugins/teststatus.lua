-- TestStatusPlugin: marks a message spam / highspam / virus / blocked from headers, for the
-- monitoring integration tests (the counters of `fuglu_control stats`, MRTG, metrics, statsd).
--
--   X-Test-Spam: yes       suspect.tags.spam.TestStatusPlugin = true
--   X-Test-Highspam: yes   suspect.tags.highspam.TestStatusPlugin = true
--   X-Test-Virus: yes      suspect.tags.virus.TestStatusPlugin = true
--   X-Test-Blocked: yes    suspect.tags.blocked.TestStatusPlugin = true
-- Always returns DUNNO.

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"

local TestStatusPlugin = plugin.scanner{
    name = "TestStatusPlugin",
    description = "sets the spam/virus/blocked verdict named in X-Test-* headers",
}

local TAGS = { spam = "X-Test-Spam", highspam = "X-Test-Highspam", virus = "X-Test-Virus", blocked = "X-Test-Blocked" }

function TestStatusPlugin:examine(suspect)
    local msg = suspect:get_message_rep()
    for tag, header in pairs(TAGS) do
        local value = msg:header(header)[1]
        if value and value:match("^%s*[Yy][Ee][Ss]%s*$") then suspect.tags[tag][self.name] = true end
    end
    return actions.DUNNO
end

return TestStatusPlugin

-- Dnsbl10Plugin: a benchmark-only scanner that asks 10 DNS blocklist zones about a client address
-- per message, all at once (fuglu.dns.dnsbl): `make bench` scenario 6b. The address is made from
-- the message's id, so no two messages ask the same names (no cache hits).
--
--   [main]
--   nameservers = 127.0.0.1:PORT        (tools/bench/run starts unbound with the zones)

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local dns = require "fuglu.dns"

local Dnsbl10Plugin = plugin.scanner{
    name = "Dnsbl10Plugin",
    description = "benchmark: 10 DNSBL zones per message",
}

local ZONES = {}
for i = 0, 9 do ZONES[#ZONES + 1] = "bl" .. i .. ".bench" end

function Dnsbl10Plugin:examine(suspect)
    local id = suspect.id
    local ip = string.format("10.%d.%d.%d", tonumber(id:sub(1, 2), 16), tonumber(id:sub(3, 4), 16),
        tonumber(id:sub(5, 6), 16))
    local listed = dns.dnsbl(ip, ZONES)
    if next(listed.errors) then
        self.logger:error("%s: %s", suspect.id, select(2, next(listed.errors)))
        return actions.DEFER, "dns problem"
    end
    for _, zone in ipairs(ZONES) do
        if listed[zone] then suspect.tags.spam[self.section] = true end
    end
    return actions.DUNNO
end

return Dnsbl10Plugin

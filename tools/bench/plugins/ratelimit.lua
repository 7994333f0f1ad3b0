-- SharedRateLimitPlugin: a benchmark-only rate limiter on a shared dictionary (one atomic incr per
-- message, shared by every worker): `make bench` scenario 6c, to be compared with row 1.
--
--   [shared]
--   ratelimit = 16m

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local shared = require "fuglu_shared"

local SharedRateLimitPlugin = plugin.scanner{
    name = "SharedRateLimitPlugin",
    description = "benchmark: per-sender counter in a shared dictionary",
    options = { limit = { default = "1000000000", description = "messages per sender and hour" } },
}

function SharedRateLimitPlugin:examine(suspect)
    local d = assert(shared.dict("ratelimit"))
    local n = d:incr("from:" .. suspect.from_address, 1, 0, 3600)
    if n and n > tonumber(self:get("limit")) then return actions.DEFER, "rate limit" end
    return actions.DUNNO
end

return SharedRateLimitPlugin

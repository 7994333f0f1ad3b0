-- probe_support: the part every integration-test probe plugin shares (spec/integration/test_socket,
-- test_dns, test_redis, test_http). The message's X-Probe header names a scenario; the scenario
-- fills a result table r (string values) and may return an action and a text; r goes back to the
-- test as an X-Probe-Result header: base64 of sorted "key=value" lines (harness.send_probe).
--
--   local ProbePlugin = plugin.scanner{ ... }
--   ProbePlugin.examine = require("probe_support").examine(scenarios, function(suspect, msg)
--       return msg:header("X-Probe-Peer")[1] or ""    -- extra arguments after r (optional)
--   end)

local actions = require "fuglu.actions"
local codec = require "fuglu_codec"

local probe = {}

function probe.examine(scenarios, extra)
    return function(_, suspect)
        local msg = suspect:get_message_rep()
        local name = msg:header("X-Probe")[1]
        if not name then return actions.DUNNO end
        local r = {}
        local action, text
        if extra then
            action, text = scenarios[name](r, extra(suspect, msg), suspect)
        else
            action, text = scenarios[name](r, suspect)
        end
        if action then return action, text end
        local lines = {}
        for k, v in pairs(r) do lines[#lines + 1] = k .. "=" .. tostring(v):gsub("\n", " ") end
        table.sort(lines)
        suspect:add_header("X-Probe-Result", codec.b64encode(table.concat(lines, "\n")))
        return actions.DUNNO
    end
end

return probe

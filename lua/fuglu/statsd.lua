-- fuglu.statsd: what the three statsd appenders share (Fuglu's a_statsd.py).
--
--   statsd.node()                       this host's name up to the first dot
--   statsd.message_class(suspect)       "virus", "highspam", "spam" or "clean" (first match wins)
--   statsd.send(plugin, payload)        one UDP datagram to the plugin's host:port; false + error
--   statsd.check_host(host)             nil, or why host cannot be used (lint)
--
-- The host must be a numeric IPv4/IPv6 address or "localhost": no name is looked up in the DNS.
-- Sending goes through the C module fuglu_net.

local net = require "fuglu_net"
local sys = require "fuglu_sys"
local plugin_module = require "fuglu.plugin"

local statsd = {}

statsd.OPTIONS = {
    host = { default = "127.0.0.1", description = "statsd host: a numeric address or localhost (no DNS lookup)" },
    port = { default = "8125", description = "statsd UDP port" },
}

function statsd.node()
    return (tostring(sys.hostname()):match("^[^.]*"))
end

function statsd.message_class(suspect)
    if suspect:is_virus() then return "virus" end
    if suspect:is_highspam() then return "highspam" end
    if suspect:is_spam() then return "spam" end
    return "clean"
end

function statsd.check_host(host)
    if host == "localhost" or host:match("^%d+%.%d+%.%d+%.%d+$") or (host:find(":", 1, true) and host:match("^[%x:.]+$")) then
        return nil
    end
    return string.format("host '%s' is not a numeric address or localhost (names are not looked up)", host)
end

function statsd.send(plugin, payload)
    if payload == "" then return true end
    local host, port = plugin:get("host"), tonumber(plugin:get("port"))
    local problem = statsd.check_host(host)
    if problem then return false, problem end
    if not port then return false, "port '" .. tostring(plugin:get("port")) .. "' is not a number" end
    local ok, err = net.udp_send(host, port, payload)
    if not ok then return false, err end
    return true
end

-- The lint shared by the appenders: options present and usable.
function statsd.lint(plugin)
    if not plugin_module.check_config(plugin) then return false end
    local problem = statsd.check_host(plugin:get("host"))
    if problem then print(problem) return false end
    if not tonumber(plugin:get("port")) then print("port must be a number") return false end
    return true
end

return statsd

-- fuglu.dns: DNS lookups for plugins, through the engine's resolver ([main] nameservers,
-- dnstimeout, dnsattempts) and the DNS cache shared by all workers ([main] dnscachesize).
--
--   local dns = require "fuglu.dns"
--   local addrs, err, detail = dns.query("mx1.example.org", "A")     -- {"192.0.2.1", ttl = 300}
--   local mx = dns.query("example.org", "MX")                         -- {{preference=, exchange=}, ...}
--   local results = dns.query_many{ {"a.example", "A"}, {"b.example", "TXT"} }   -- in parallel
--   local listed = dns.dnsbl("192.0.2.7", { "zen.example", "bl.example" })
--       -- {["zen.example"] = {"127.0.0.2"}}, plus errors: listed.errors = {zone = detail}
--   dns.reverse_name("192.0.2.7")     -- "7.2.0.192.in-addr.arpa" (IPv6: the ip6.arpa nibbles)
--
-- err is one of "NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "TIMEOUT", "ERROR"; detail names the
-- query. Every call blocks the worker until the answer, the timeout or the message's deadline.

local cdns = require "fuglu_dns"

local dns = {}

local settings = { nameservers = "", timeout = 3000, attempts = 2, cache = true }
local default

-- Takes the resolver settings from a config (the worker does this once); returns true or nil, err.
function dns.configure(config)
    settings = {
        nameservers = config:get("main", "nameservers", ""),
        timeout = math.floor(config:getfloat("main", "dnstimeout", 3) * 1000 + 0.5),
        attempts = config:getint("main", "dnsattempts", 2),
        cache = config:get("main", "dnscachesize", "4m") ~= "0",
    }
    default = nil
    local r, err = cdns.resolver(settings)
    if not r then return nil, "[main] " .. err end
    default = r
    return true
end

-- The worker's resolver (made on first use with the configured settings).
function dns.resolver()
    if default == nil then default = assert(cdns.resolver(settings)) end
    return default
end

function dns.query(name, qtype)
    return dns.resolver():query(name, qtype or "A")
end

function dns.query_many(list)
    return dns.resolver():query_many(list)
end

-- The name of the reverse (PTR) or DNSBL lookup for an address, without a zone suffix for DNSBLs:
-- reverse_name(ip) is "d.c.b.a.in-addr.arpa"; reverse_name(ip, "") is "d.c.b.a".
function dns.reverse_name(ip, suffix)
    local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if a then
        for _, octet in ipairs({ a, b, c, d }) do
            if tonumber(octet) > 255 then return nil, "not an IP address: " .. ip end
        end
        return table.concat({ d, c, b, a }, ".") .. (suffix or ".in-addr.arpa")
    end
    if not ip:find(":", 1, true) or ip:find("[^%x:]") or select(2, ip:gsub("::", "")) > 1 or ip:find(":::", 1, true) then
        return nil, "not an IP address: " .. ip
    end
    -- expand "::" into the missing groups
    local head, tail = ip:match("^(.-)::(.*)$")
    local groups = {}
    local function add(part)
        for g in part:gmatch("[^:]+") do groups[#groups + 1] = g end
    end
    if head then
        local left, right = {}, {}
        for g in head:gmatch("[^:]+") do left[#left + 1] = g end
        for g in tail:gmatch("[^:]+") do right[#right + 1] = g end
        if #left + #right > 7 then return nil, "not an IP address: " .. ip end
        for _, g in ipairs(left) do groups[#groups + 1] = g end
        for _ = 1, 8 - #left - #right do groups[#groups + 1] = "0" end
        for _, g in ipairs(right) do groups[#groups + 1] = g end
    else
        add(ip)
    end
    if #groups ~= 8 then return nil, "not an IP address: " .. ip end
    local nibbles = {}
    for i = 8, 1, -1 do
        local g = groups[i]
        if #g > 4 then return nil, "not an IP address: " .. ip end
        g = string.rep("0", 4 - #g) .. g:lower()
        for k = 4, 1, -1 do nibbles[#nibbles + 1] = g:sub(k, k) end
    end
    return table.concat(nibbles, ".") .. (suffix or ".ip6.arpa")
end

-- Asks every zone about ip at once. Returns a table: zone -> array of A answers for the zones
-- that list it, and .errors: zone -> detail for the zones that could not be asked (timeout,
-- SERVFAIL); zones answering NXDOMAIN or NODATA do not list the address.
function dns.dnsbl(ip, zones)
    local base, err = dns.reverse_name(ip, "")
    if not base then return nil, err end
    local queries = {}
    for i, zone in ipairs(zones) do queries[i] = { base .. "." .. zone, "A" } end
    local results = dns.query_many(queries)
    local listed = { errors = {} }
    for i, zone in ipairs(zones) do
        local records, code, detail = results[i][1], results[i][2], results[i][3]
        if records then
            listed[zone] = records
        elseif code ~= "NXDOMAIN" and code ~= "NODATA" then
            listed.errors[zone] = detail
        end
    end
    return listed
end

return dns

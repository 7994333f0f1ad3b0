-- fuglu.http: HTTP and HTTPS requests for plugins (fuglu_http, libcurl), with the URL's host name
-- looked up through the engine's resolver (fuglu.dns), never the system's.
--
--   local http = require "fuglu.http"
--   local res, err = http.request{ method = "POST", url = "https://scanner.example/scan",
--                                  headers = { ["Content-Type"] = "message/rfc822" },
--                                  body = suspect.message, timeout = 10000 }
--   res.status, res.headers["content-type"], res.body
--   http.get(url [, opts]), http.post(url, body [, opts])
--
-- Options as fuglu_http.request (doc/lua-core-api.md); `resolve` is filled in from DNS (A, else
-- AAAA) when the host is a name.

local chttp = require "fuglu_http"
local dns = require "fuglu.dns"

local http = {}

local function host_of(url)
    local rest = url:match("^%a[%w+.-]*://(.*)$")
    if not rest then return nil end
    rest = rest:gsub("^[^/@]*@", "")              -- user:password@
    local v6 = rest:match("^%[([^%]]+)%]")
    if v6 then return v6, true end
    return rest:match("^([^/:?#]+)"), false
end

local function is_address(host)
    return host == "localhost" or host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:find(":", 1, true) ~= nil
end

function http.request(t)
    if t.resolve == nil and type(t.url) == "string" then
        local host = host_of(t.url)
        if host and not is_address(host) then
            local addrs, _, detail = dns.query(host, "A")
            if not addrs then
                local v6, _, detail6 = dns.query(host, "AAAA")
                if not v6 then
                    return nil, string.format("http %s %s: cannot resolve %s: %s", t.method or "GET", t.url,
                        host, tostring(detail or detail6))
                end
                addrs = v6
            end
            local copy = {}
            for k, v in pairs(t) do copy[k] = v end
            copy.resolve = addrs[1]
            t = copy
        end
    end
    return chttp.request(t)
end

function http.get(url, opts)
    local t = {}
    for k, v in pairs(opts or {}) do t[k] = v end
    t.url, t.method = url, "GET"
    return http.request(t)
end

function http.post(url, body, opts)
    local t = {}
    for k, v in pairs(opts or {}) do t[k] = v end
    t.url, t.method, t.body = url, "POST", body
    return http.request(t)
end

return http

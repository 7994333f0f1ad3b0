-- fuglu.lists: lists and maps from files that reload themselves when the file changes, as Fuglu's
-- FileList and Rspamd's maps: no engine reload needed to add an address to a whitelist.
--
--   local lists = require "fuglu.lists"
--   local white = lists.open("/etc/fuglu/whitelist.txt")                  -- a set of strings
--   if white:contains(suspect.from_address) then ... end                 -- case-insensitive
--   local nets = lists.open("/etc/fuglu/trusted-nets.txt", { kind = "cidr" })
--   if nets:contains(ip) then ... end                                     -- IPv4 and IPv6 networks
--   local subjects = lists.open("/etc/fuglu/subjects.re", { kind = "regex" })
--   local pattern = subjects:match(subject)                               -- the first pattern that matches
--   local routes = lists.open("/etc/fuglu/routes.map", { kind = "map" })  -- "key value" lines
--   local value = routes:get(domain)
--
-- Options: kind ("set", default; "map", "regex", "cidr"), check (seconds between looks at the
-- file, default 10; 0 looks every time), lowercase (sets and map keys, default true).
-- File format: one entry per line, blanks around it ignored, "#" starts a comment (not in regex
-- lists, where "#" is a pattern character: only lines starting with "#" are comments there).
-- A file that cannot be read or has a bad line keeps serving the last good version; the problem
-- is logged once per change, with FILE:LINE. Objects are cached per path and kind in each worker.

local fs = require "fuglu_fs"
local sys = require "fuglu_sys"
local log = require "fuglu.log"
local regex = require "fuglu.regex"

local lists = {}
local logger = log.logger("fuglu.lists")

local List = {}
List.__index = List

local cache = {}

-- ---- CIDR ----------------------------------------------------------------------------------

-- An address as an array of 16 bytes (IPv4 mapped to ::ffff:a.b.c.d), or nil.
local function ip_bytes(text)
    local a, b, c, d = text:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if a then
        local t = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255 }
        for _, octet in ipairs({ a, b, c, d }) do
            local n = tonumber(octet)
            if n > 255 then return nil end
            t[#t + 1] = n
        end
        return t, true
    end
    if not text:find(":", 1, true) or text:find("[^%x:%.]") then return nil end
    local head, tail = text:match("^(.-)::(.*)$")
    local groups = {}
    local function split(s, out)
        for g in s:gmatch("[^:]+") do out[#out + 1] = g end
        return out
    end
    if head then
        local left, right = split(head, {}), split(tail, {})
        if #left + #right > 7 then return nil end
        for _, g in ipairs(left) do groups[#groups + 1] = g end
        for _ = 1, 8 - #left - #right do groups[#groups + 1] = "0" end
        for _, g in ipairs(right) do groups[#groups + 1] = g end
    else
        split(text, groups)
    end
    if #groups ~= 8 then return nil end
    local t = {}
    for _, g in ipairs(groups) do
        if #g > 4 or not g:match("^%x+$") then return nil end
        local n = tonumber(g, 16)
        t[#t + 1] = math.floor(n / 256)
        t[#t + 1] = n % 256
    end
    return t, false
end

local function parse_network(text)
    local addr, bits = text:match("^([^/]+)/(%d+)$")
    addr = addr or text
    local bytes, v4 = ip_bytes(addr)
    if not bytes then return nil end
    local prefix = bits and tonumber(bits) or (v4 and 32 or 128)
    if (v4 and prefix > 32) or prefix > 128 then return nil end
    if v4 then prefix = prefix + 96 end
    return { bytes = bytes, prefix = prefix }
end

local function in_network(net, bytes)
    local full, rest = math.floor(net.prefix / 8), net.prefix % 8
    for i = 1, full do
        if net.bytes[i] ~= bytes[i] then return false end
    end
    if rest == 0 then return true end
    local function masked(x) return x - x % 2 ^ (8 - rest) end
    return masked(net.bytes[full + 1]) == masked(bytes[full + 1])
end

-- ---- parsing -------------------------------------------------------------------------------

-- The entries of a file's text, or nil, "FILE:LINE: problem".
local function parse(path, text, kind, lowercase)
    local data = { set = {}, map = {}, patterns = {}, nets = {}, count = 0 }
    local n = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        line = line:gsub("\r$", "")
        if kind ~= "regex" then line = line:gsub("#.*$", "") end
        line = line:match("^%s*(.-)%s*$")
        if line ~= "" and not (kind == "regex" and line:sub(1, 1) == "#") then
            if kind == "set" then
                data.set[lowercase and line:lower() or line] = true
            elseif kind == "map" then
                local key, value = line:match("^(%S+)%s+(.-)$")
                if not key then key, value = line, "" end
                data.map[lowercase and key:lower() or key] = value
            elseif kind == "regex" then
                local re, err = regex.compile(line)
                if not re then return nil, string.format("%s:%d: bad regular expression: %s", path, n, err) end
                data.patterns[#data.patterns + 1] = { re = re, text = line }
            else
                local net = parse_network(line)
                if not net then return nil, string.format("%s:%d: not an IP address or network: %s", path, n, line) end
                data.nets[#data.nets + 1] = net
            end
            data.count = data.count + 1
        end
    end
    return data
end

-- Looks at the file when `check` seconds passed; reparses when it changed.
function List:refresh()
    local now = sys.monotonic()
    if self.data and now - self.checked < self.check then return end
    self.checked = now
    local st = fs.stat(self.path)
    local stamp = st and table.concat({ st.mtime, st.size, st.ino, st.ctime }, ":") or "missing"
    if stamp == self.stamp then return end
    self.stamp = stamp
    local data, err
    local f, ferr = io.open(self.path, "rb")
    if not f then
        err = string.format("%s: cannot read: %s", self.path, tostring(ferr))
    else
        local text = f:read("*a")
        f:close()
        data, err = parse(self.path, text, self.kind, self.lowercase)
    end
    if data then
        self.data = data
        self.loaded = sys.now()
        logger:info("%s: %d entries", self.path, data.count)
    else
        logger:error("%s%s", err, self.data and " (the last good version keeps serving)" or " (the list is empty)")
        self.data = self.data or { set = {}, map = {}, patterns = {}, nets = {}, count = 0 }
    end
end

function List:contains(value)
    self:refresh()
    if self.kind == "cidr" then
        local bytes = ip_bytes(tostring(value))
        if not bytes then return false end
        for _, net in ipairs(self.data.nets) do
            if in_network(net, bytes) then return true end
        end
        return false
    end
    value = tostring(value)
    return self.data.set[self.lowercase and value:lower() or value] == true
end

function List:get(key)
    self:refresh()
    key = tostring(key)
    return self.data.map[self.lowercase and key:lower() or key]
end

-- The first pattern (its text) that matches value, or nil.
function List:match(value)
    self:refresh()
    for _, p in ipairs(self.data.patterns) do
        if p.re:search(value) then return p.text end
    end
    return nil
end

function List:size()
    self:refresh()
    return self.data.count
end

function lists.open(path, options)
    options = options or {}
    local kind = options.kind or "set"
    assert(kind == "set" or kind == "map" or kind == "regex" or kind == "cidr",
        "fuglu.lists: kind must be set, map, regex or cidr")
    local key = kind .. "\0" .. path
    local l = cache[key]
    if l then
        l.check = options.check or l.check
        return l
    end
    l = setmetatable({
        path = path, kind = kind, check = options.check or 10, checked = 0,
        lowercase = options.lowercase ~= false,
    }, List)
    l:refresh()
    cache[key] = l
    return l
end

lists.parse_network = parse_network
lists.ip_bytes = ip_bytes
lists.in_network = in_network

return lists

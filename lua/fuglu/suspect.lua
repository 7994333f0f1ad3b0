-- fuglu.suspect: the Suspect, one message under scan (Fuglu's Suspect API).
--
-- The original bytes stay in a C message object (fuglu_message); a plugin that changes the message
-- stores the new source with set_source(). Headers a plugin wants added go to an ordered list that
-- the worker prepends at re-inject time (unlike Fuglu's dict, a name may be added twice).
--
--   suspect.id, from_address, from_localpart, from_domain, recipients, to_address, to_localpart,
--   to_domain, size, timestamp, tags, clientinfo ({helo=, ip=, rdns=} or nil)

local codec = require "fuglu_codec"
local message_lib = require "fuglu_message"
local sys = require "fuglu_sys"
local actions = require "fuglu.actions"
local addrcheck = require "fuglu.addrcheck"
local log = require "fuglu.log"
local repr = require "fuglu.repr"

local Suspect = {}
Suspect.__index = Suspect

local suspect = { Suspect = Suspect }

local HEADER_LIMIT = 1024 * 1024   -- get_headers() looks at the first MiB only, like Fuglu

local find, sub = string.find, string.sub

-- "local@domain" at the last "@" (the local part may contain quoted "@"s); no "@": address, "".
local function split_address(address)
    local at = find(address, "@", 1, true)
    if at == nil then return address, "" end
    local later = find(address, "@", at + 1, true)
    while later do
        at = later
        later = find(address, "@", at + 1, true)
    end
    return sub(address, 1, at - 1), sub(address, at + 1)
end

local function check_address(address, checker, what)
    if not checker(address) then
        addrcheck.raise(string.format("invalid %s address: '%s'", what, tostring(address)))
    end
end

-- Creates a Suspect. t: id, from (envelope sender, "" or nil for <>), recipients (array or one
-- string), message (C message object) or source (string), timestamp, clientinfo, checker (name
-- of the address compliance checker). Raises addrcheck.AddressError for a bad address.
function suspect.new(t)
    local checker = addrcheck.checker(t.checker)
    local from = t.from
    if from == nil then from = "" end
    if type(from) ~= "string" then addrcheck.raise("invalid sender address: " .. tostring(from)) end
    if from ~= "" then check_address(from, checker, "sender") end

    local recipients = t.recipients
    if type(recipients) == "string" then recipients = { recipients } end
    if type(recipients) ~= "table" or #recipients == 0 then
        addrcheck.raise("invalid recipient address: none given")
    end
    local copy = {}
    for i, rcpt in ipairs(recipients) do
        if type(rcpt) ~= "string" then addrcheck.raise("invalid recipient address: " .. tostring(rcpt)) end
        check_address(rcpt, checker, "recipient")
        copy[i] = rcpt
    end

    local message = t.message
    if message == nil then
        local err
        message, err = message_lib.from_string(t.source or "")
        if message == nil then error("cannot build the message: " .. tostring(err)) end
    end

    local self = setmetatable({
        id = t.id or sys.random_id(),
        timestamp = t.timestamp or sys.now(),
        message = message,          -- the original message (C object)
        source = nil,               -- the modified source, once set_source() was called
        added_headers = {},         -- ordered {name=, value=} list, applied at re-inject
        clientinfo = t.clientinfo,
        tags = {
            virus = {}, blocked = {}, spam = {}, highspam = {},
            decisions = {}, scantimes = {},
        },
    }, Suspect)
    self.size = message:size()
    self.from_address = from
    self.from_localpart, self.from_domain = split_address(from)
    self:set_recipients(copy)
    return self
end

-- Replaces the recipient list and the derived to_* fields (Fuglu's to_address setter).
function Suspect:set_recipients(list)
    self.recipients = list
    self.to_address = list[1] or ""
    self.to_localpart, self.to_domain = split_address(self.to_address)
end

------------------------------------------------------------------------------------------------
-- Source
------------------------------------------------------------------------------------------------

-- The bytes as received (at most maxbytes).
function Suspect:get_original_source(maxbytes)
    return self.message:bytes(maxbytes)
end

-- The current source: the modified one if set, else the original.
function Suspect:get_source(maxbytes)
    if self.source ~= nil then
        if maxbytes then return self.source:sub(1, maxbytes) end
        return self.source
    end
    return self.message:bytes(maxbytes)
end

function Suspect:set_source(s)
    self.source = tostring(s)
    self.message_rep = nil
end

function Suspect:is_modified()
    return self.source ~= nil
end

-- The header block of the current source (without the empty line that ends it).
function Suspect:get_headers()
    if self.source == nil then return self.message:header_block() end
    local text = self.source:sub(1, HEADER_LIMIT)
    local stop = text:find("\r?\n\r?\n")
    if stop then return text:sub(1, stop - 1) end
    if text:sub(1, 1) == "\n" or text:sub(1, 2) == "\r\n" then return "" end
    return text
end

-- A message object for the current source: msg:headers(), msg:header(name), msg:mime(), ...
function Suspect:get_message_rep()
    if self.source == nil then return self.message end
    if self.message_rep == nil then
        local msg, err = message_lib.from_string(self.source)
        if msg == nil then error("cannot parse the modified source: " .. tostring(err)) end
        self.message_rep = msg
    end
    return self.message_rep
end

-- Adds a header. By default it is prepended at re-inject time; with immediate=true it is
-- prepended to the source now, so plugins that run later see it.
function Suspect:add_header(name, value, immediate)
    value = tostring(value)
    if immediate then
        local line = name .. ": " .. codec.header_encode(name, value) .. "\r\n"
        self:set_source(line .. self:get_source())
    else
        self.added_headers[#self.added_headers + 1] = { name = name, value = value }
    end
end

------------------------------------------------------------------------------------------------
-- Header edits: recorded here, applied once when the message is re-injected (the body is sent
-- from the original bytes; only the header block is rebuilt)
------------------------------------------------------------------------------------------------

-- Removes the n-th field called name (1 = the first), or all of them without n.
function Suspect:remove_header(name, n)
    self.header_edits = self.header_edits or {}
    self.header_edits[#self.header_edits + 1] = { op = "remove", name = name:lower(), n = n }
end

-- Gives the n-th field called name the new value; without n the first keeps its place with the
-- value and the others go. No such field: it is added (after the added headers' position: on top).
function Suspect:replace_header(name, value, n)
    self.header_edits = self.header_edits or {}
    self.header_edits[#self.header_edits + 1] = { op = "replace", name = name, lname = name:lower(),
                                                  value = tostring(value), n = n }
end

-- The Subject, RFC 2047-encoded when it is not ASCII.
function Suspect:set_subject(text)
    self:replace_header("Subject", text)
end

function Suspect:has_header_edits()
    return self.header_edits ~= nil and #self.header_edits > 0
end

-- block (header fields, each ending with its line break) with the edits applied.
function Suspect:apply_header_edits(block)
    local fields = {}
    local pos = 1
    while pos <= #block do
        local stop = block:find("\n", pos, true) or #block
        -- continuation lines belong to the field before them
        while stop < #block and block:sub(stop + 1, stop + 1):match("[ \t]") do
            stop = block:find("\n", stop + 1, true) or #block
        end
        local raw = block:sub(pos, stop)
        local name = raw:match("^([^:%s]+)%s*:")
        fields[#fields + 1] = { raw = raw, lname = name and name:lower() }
        pos = stop + 1
    end
    local eol = block:find("\r\n", 1, true) and "\r\n" or (block:find("\n", 1, true) and "\n" or "\r\n")
    for _, e in ipairs(self.header_edits or {}) do
        local lname = e.lname or e.name
        local seen, placed = 0, false
        local kept = {}
        for _, f in ipairs(fields) do
            if f.lname == lname then
                seen = seen + 1
                if e.op == "replace" and ((e.n == nil and not placed) or e.n == seen) then
                    kept[#kept + 1] = { raw = e.name .. ": " .. codec.header_encode(e.name, e.value) .. eol, lname = lname }
                    placed = true
                elseif e.op == "replace" and e.n ~= nil then
                    kept[#kept + 1] = f
                elseif e.op == "remove" and e.n ~= nil and e.n ~= seen then
                    kept[#kept + 1] = f
                end
            else
                kept[#kept + 1] = f
            end
        end
        if e.op == "replace" and not placed and e.n == nil then
            table.insert(kept, 1, { raw = e.name .. ": " .. codec.header_encode(e.name, e.value) .. eol, lname = lname })
        end
        fields = kept
    end
    local out = {}
    for i, f in ipairs(fields) do out[i] = f.raw end
    return table.concat(out)
end

-- The pending headers as "Name: value\r\n" lines in insertion order (RFC 2047 encoded, folded).
function Suspect:added_header_lines()
    local lines = {}
    for i, h in ipairs(self.added_headers) do
        lines[i] = h.name .. ": " .. codec.header_encode(h.name, h.value) .. "\r\n"
    end
    return table.concat(lines)
end

------------------------------------------------------------------------------------------------
-- Verdict helpers
------------------------------------------------------------------------------------------------

local function any_true(dict)
    if type(dict) ~= "table" then return false end
    for _, v in pairs(dict) do
        if v then return true end
    end
    return false
end

function Suspect:is_spam() return any_true(self.tags.spam) end
function Suspect:is_highspam() return any_true(self.tags.highspam) end
function Suspect:is_virus() return any_true(self.tags.virus) end
function Suspect:is_blocked() return any_true(self.tags.blocked) end

function Suspect:is_ham()
    return not (self:is_spam() or self:is_highspam() or self:is_virus() or self:is_blocked())
end

-- The code of the last decision entry, DUNNO if no plugin decided yet.
function Suspect:get_current_decision_code()
    local decisions = self.tags.decisions
    local last = decisions[#decisions]
    if last == nil then return actions.DUNNO end
    return last[2]
end

-- Writes "<iso time> text" to tags.debugfile (a file handle) if tags.debug is set.
function Suspect:debug(text)
    if not self.tags.debug then return end
    local file = self.tags.debugfile
    if file == nil then return end
    local now = sys.now()
    local stamp = os.date("%Y-%m-%dT%H:%M:%S", math.floor(now)) .. string.format(".%06d", math.floor((now % 1) * 1e6))
    file:write(stamp, " ", tostring(text), "\n")
    if file.flush then file:flush() end
end

------------------------------------------------------------------------------------------------
-- Client info
------------------------------------------------------------------------------------------------

local function is_ipv4(s)
    return s:match("^%d%d?%d?%.%d%d?%d?%.%d%d?%d?%.%d%d?%d?$") ~= nil
end

-- Parses a Postfix style Received value "from HELO (RDNS [IP])..." (Fuglu's regex
-- ^from\s(\S+)\s\((\S+)\s\[(?:IPv6:)?(ip4|[0-9a-f:]{3,40})\]\)). Returns helo, rdns, ip or nil.
function suspect.parse_received(value)
    local helo, rdns, ip = value:match("^from%s(%S+)%s%((%S+)%s%[([^%]]*)%]%)")
    if helo == nil then return nil end
    if ip:sub(1, 5) == "IPv6:" then ip = ip:sub(6) end
    if is_ipv4(ip) then return helo, rdns, ip end
    if #ip >= 3 and #ip <= 40 and not ip:find("[^0-9a-f:]") then return helo, rdns, ip end
    return nil
end

local regex_module   -- false: looked for, absent
local warned_no_regex = false

local function load_regex()
    if regex_module == nil then
        local ok, mod = pcall(require, "fuglu.regex")
        regex_module = ok and mod or false
    end
    return regex_module
end

-- Whether a trusted-hosts regex matches any of the values (needs the module fuglu.regex with
-- search(pattern, subject); without it the regex is not applied).
local function trusted(pattern, helo, rdns, ip)
    if pattern == nil or pattern == "" then return false end
    local regex = load_regex()
    if not regex then
        if not warned_no_regex then
            warned_no_regex = true
            log.logger("fuglu.suspect"):warning("[environment] trustedhostsregex is set, but no regex module (fuglu.regex) is available: ignored")
        end
        return false
    end
    return regex.search(pattern, ip) or regex.search(pattern, rdns) or regex.search(pattern, helo) or false
end

-- From the Received headers: skip `skip` headers, then the ones matching trustedregex; the first
-- remaining one must parse, else nil.
function Suspect:client_info_from_received(trustedregex, skip)
    local received = self:get_message_rep():header("Received")
    for i = (skip or 0) + 1, #received do
        local helo, rdns, ip = suspect.parse_received(received[i])
        if helo == nil then return nil end
        if not trusted(trustedregex, helo, rdns, ip) then
            return { helo = helo, ip = ip, rdns = rdns }
        end
    end
    return nil
end

-- clientinfo ({helo=, ip=, rdns=}) from XFORWARD if known, else from the Received headers
-- honouring [environment] boundarydistance and trustedhostsregex. The result is cached.
function Suspect:get_client_info(config)
    if self.clientinfo then return self.clientinfo end
    local skip, regex = 0, nil
    if config then
        skip = config:getint("environment", "boundarydistance")
        regex = config:get("environment", "trustedhostsregex")
    end
    self.clientinfo = self:client_info_from_received(regex, skip)
    return self.clientinfo
end

------------------------------------------------------------------------------------------------
-- Display
------------------------------------------------------------------------------------------------

local function yesno(b) return b and "yes" or "no" end

-- The values Fuglu's logtemplate and str(suspect) use besides the template built-ins.
-- The repr of the tags is costly and the default logtemplate does not use it: computed on demand.
local lazy_log_values = {
    tags = function(s) return repr.short_tags(s.tags) end,
    fulltags = function(s) return repr.value(s.tags) end,
}

function Suspect:log_values()
    local suspect = self
    return setmetatable({
        size = tostring(self.size),
        spam = yesno(self:is_spam()),
        highspam = yesno(self:is_highspam()),
        blocked = yesno(self:is_blocked()),
        virus = yesno(self:is_virus()),
        modified = yesno(self:is_modified()),
        decision = actions.actioncode_to_string(self:get_current_decision_code()),
    }, {
        __index = function(t, key)
            local make = lazy_log_values[key]
            if not make then return nil end
            local v = make(suspect)
            rawset(t, key, v)
            return v
        end,
    })
end

Suspect.__tostring = function(self)
    local v = self:log_values()
    return string.format("Suspect %s: from=%s to=%s size=%s spam=%s blocked=%s virus=%s modified=%s decision=%s tags=%s",
        self.id, self.from_address, self.to_address, v.size, v.spam, v.blocked, v.virus,
        v.modified, v.decision, v.tags)
end

return suspect

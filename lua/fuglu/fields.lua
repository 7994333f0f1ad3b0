-- fuglu.fields: the values of a rule-file field for a suspect (Fuglu's SuspectFilter.get_field).
--
--   local values = require("fuglu.fields").get(suspect, "mime:Content-Type")   -- array of strings
--
-- Fields (names of the built-ins are case-insensitive):
--   envelope_from, from_address     the envelope sender
--   envelope_to, to_address         every recipient
--   from_domain, to_domain          sender domain, first recipient's domain
--   clientip, clienthostname, clienthelo   from get_client_info() (XFORWARD or the Received headers)
--   @tag                            the tag's value; list tags give every element; missing -> none
--   body:full                       the whole original source, undecoded
--   body:raw                        the decoded text of every leaf text/* part (UTF-8)
--   body, body:stripped             the same parts with line breaks as spaces and HTML stripped
--   mime:Header                     that header's values in every MIME part, the root included
--   header:Name                     the message header Name (raw: encoded words and folding kept)
--   header:decoded:Name             the same, RFC 2047-decoded to UTF-8 (an extension to Fuglu)
--   anything else                   the message header of that name; "*" is a wildcard
--                                   (matched from the start of the header name, case-insensitive)
-- The header and MIME lookups use the current source (a plugin's set_source included). Body, header
-- and mime: values are cached per message object (shared arrays: do not modify them).

local codec = require "fuglu_codec"
local htmlstrip = require "fuglu.htmlstrip"

local fields = {}

local function scalar_list(v)
    if v == nil then return {} end
    return { tostring(v) }
end

local function client(suspect, key)
    local info = suspect:get_client_info()
    if info == nil or info[key] == nil or info[key] == "" then return {} end
    return { tostring(info[key]) }
end

-- Memoised per suspect and source: the decoded text parts, raw and stripped.
local function body_cache(suspect)
    local msg = suspect:get_message_rep()
    local cache = suspect._field_cache
    if cache == nil or cache.msg ~= msg then
        cache = { msg = msg }
        suspect._field_cache = cache
    end
    return cache, msg
end

-- The decoded text of every non-multipart text/* part (named text attachments included).
function fields.text_parts(suspect)
    local cache, msg = body_cache(suspect)
    if cache.raw == nil then
        local texts = {}
        for _, part in ipairs(msg:mime()) do
            if not part.is_multipart and not part.is_message
                and tostring(part.content_type or ""):sub(1, 5) == "text/" then
                local text = msg:part_text(part.index)
                if text ~= nil then texts[#texts + 1] = text end
            end
        end
        cache.raw = texts
    end
    return cache.raw
end

function fields.stripped_parts(suspect)
    local cache = body_cache(suspect)
    if cache.stripped == nil then
        local out = {}
        for i, text in ipairs(fields.text_parts(suspect)) do out[i] = htmlstrip.strip(text) end
        cache.stripped = out
    end
    return cache.stripped
end

-- The values of header `name` in every MIME part, root first.
function fields.mime_header(suspect, name)
    local _, msg = body_cache(suspect)
    local lname = name:lower()
    local values = {}
    for _, part in ipairs(msg:mime()) do
        for _, h in ipairs(part.headers or {}) do
            if h.name:lower() == lname then values[#values + 1] = h.value end
        end
    end
    return values
end

-- A Lua pattern for a header-name glob: escaped, "*" -> ".*", anchored at the start only (Fuglu
-- uses re.match, so "X-Spam*" and "MI*ion" match a prefix of the name).
local function glob_pattern(name)
    local escaped = name:lower():gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0")
    return "^" .. escaped:gsub("%*", ".*")
end

-- The raw values of a message header; `name` may contain "*" wildcards.
function fields.header(suspect, name)
    local msg = suspect:get_message_rep()
    if not name:find("*", 1, true) then return msg:header(name) end
    local pattern = glob_pattern(name)
    local values = {}
    for _, h in ipairs(msg:headers()) do
        if h.name:lower():find(pattern) then values[#values + 1] = h.value end
    end
    return values
end

local function tag_values(suspect, name)
    local v = suspect.tags[name]
    if v == nil then return {} end
    if type(v) == "table" then
        if #v > 0 or next(v) == nil then
            local out = {}
            for i, item in ipairs(v) do out[i] = tostring(item) end
            return out
        end
        return { require("fuglu.repr").value(v) }
    end
    return { tostring(v) }
end

local builtin = {
    envelope_from = function(s) return { s.from_address } end,
    envelope_to = function(s)
        local out = {}
        for i, r in ipairs(s.recipients) do out[i] = r end
        return out
    end,
    from_domain = function(s) return scalar_list(s.from_domain) end,
    to_domain = function(s) return scalar_list(s.to_domain) end,
    clientip = function(s) return client(s, "ip") end,
    clienthostname = function(s) return client(s, "rdns") end,
    clienthelo = function(s) return client(s, "helo") end,
    ["body:full"] = function(s) return { s:get_original_source() } end,
    ["body:raw"] = function(s) return fields.text_parts(s) end,
    ["body"] = function(s) return fields.stripped_parts(s) end,
}
builtin.from_address = builtin.envelope_from
builtin.to_address = builtin.envelope_to
builtin["body:stripped"] = builtin.body

-- Whether a field name is one of the built-in names (not a header).
function fields.is_builtin(name)
    return builtin[name:lower()] ~= nil
end

-- The values of a header or mime: field, from the message (no cache).
local function message_field(suspect, name)
    local prefix, rest = name:match("^([%a]+):(.+)$")
    if prefix then
        prefix = prefix:lower()
        if prefix == "mime" then return fields.mime_header(suspect, rest) end
        if prefix == "header" then
            local decoded = rest:match("^[Dd][Ee][Cc][Oo][Dd][Ee][Dd]:(.+)$")
            if decoded then
                local out = {}
                for i, v in ipairs(fields.header(suspect, decoded)) do out[i] = codec.rfc2047_decode(v) end
                return out
            end
            return fields.header(suspect, rest)
        end
    end
    return fields.header(suspect, name)
end

-- The values of field `name` for the suspect, an array of strings (maybe empty). The body,
-- header and mime: fields depend only on the message object (which does not change; set_source
-- makes a new one), so they are computed once per message and shared by every rule file and
-- plugin: the caller must not modify the array.
function fields.get(suspect, name)
    local f = builtin[name:lower()]
    if f then return f(suspect) end
    if name:sub(1, 1) == "@" then return tag_values(suspect, name:sub(2)) end
    local cache = body_cache(suspect)
    local by_name = cache.fields
    if by_name == nil then
        by_name = {}
        cache.fields = by_name
    end
    local values = by_name[name]
    if values == nil then
        values = message_field(suspect, name)
        by_name[name] = values
    end
    return values
end

return fields

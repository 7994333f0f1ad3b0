-- fuglu.regex: PCRE2 regular expressions (JIT, match limits) for rule files and plugins.
--
--   local regex = require "fuglu.regex"
--   local re, err = regex.compile("(?P<word>\\w+)@example\\.com", "i")
--   if re:search(value) then ... end          -- start, end | false | nil, error (limit hit)
--   local m = re:exec(value)                   -- {[0]=..., [1]=..., word=...} or false
--   regex.search(pattern, subject[, flags])    -- compiled once and cached; true/false
--   regex.escape(s)                            -- s with every regex metacharacter escaped
--   regex.literal_set(literals, ids, nids)     -- the rule files' multi-literal prefilter (C)
--
-- Python-regex constructs work as PCRE2 supports them: (?P<n>...), (?P=n), \d \w \s \b,
-- lookarounds, inline flags. Python's \Z (end of subject) is translated to PCRE2's \z.
-- The C side is the module fuglu_regex (src/lua/lua_regex.c, lua_litset.c).

local regex = {}

local present, lib = pcall(require, "fuglu_regex")
if not present then error("fuglu.regex: the PCRE2 module fuglu_regex is not available: " .. tostring(lib)) end

regex.MATCH_LIMIT = lib.match_limit
regex.literal_set = lib.literal_set

-- Python spellings PCRE2 reads differently: \Z (Python: end of subject only) -> \z.
function regex.translate(pattern)
    if not pattern:find("\\Z", 1, true) then return pattern end
    return (pattern:gsub("(\\+)Z", function(slashes)
        if #slashes % 2 == 1 then return slashes .. "z" end
        return slashes .. "Z"
    end))
end

-- Compiles a pattern. flags: string of i (ignore case), m (multiline), s (dot matches newline),
-- x (extended), u (Unicode \w \d \b). limits: {match_limit=, depth_limit=, heap_limit_kib=}.
-- Returns the regex object, or nil, "error text at offset N".
function regex.compile(pattern, flags, limits)
    local re, err, offset = lib.compile(regex.translate(pattern), flags or "", limits)
    if re == nil then
        return nil, string.format("%s at offset %d", tostring(err), offset or 0)
    end
    return re
end

local META = "[%^%$%(%)%%%.%[%]%*%+%-%?%{%}|\\/#%s&~]"

-- The text with every character that has a meaning in a regex backslash-escaped.
function regex.escape(s)
    return (tostring(s):gsub(META, function(c)
        if c == "\n" then return "\\n" end
        if c == "\r" then return "\\r" end
        if c == "\t" then return "\\t" end
        return "\\" .. c
    end))
end

local cache, cache_size = {}, 0
local CACHE_MAX = 256

-- Whether pattern matches anywhere in subject (compiled once and cached). A pattern that does not
-- compile raises; a match that hits a limit is false.
function regex.search(pattern, subject, flags)
    local key = (flags or "") .. "\0" .. pattern
    local re = cache[key]
    if re == nil then
        local err
        re, err = regex.compile(pattern, flags)
        if re == nil then error("invalid regex '" .. pattern .. "': " .. err, 2) end
        if cache_size >= CACHE_MAX then cache, cache_size = {}, 0 end
        cache[key] = re
        cache_size = cache_size + 1
    end
    if subject == nil then return false end
    return re:search(tostring(subject)) and true or false
end

return regex

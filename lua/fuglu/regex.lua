-- fuglu.regex: PCRE2 regular expressions (JIT, match limits) for rule files and plugins.
--
--   local regex = require "fuglu.regex"
--   local re, err = regex.compile("(?P<word>\\w+)@example\\.com", "i")
--   if re:search(value) then ... end          -- start, end | false | nil, error (limit hit)
--   local m = re:exec(value)                   -- {[0]=..., [1]=..., word=...} or false
--   regex.search(pattern, subject[, flags])    -- compiled once and cached; true/false
--   regex.escape(s)                            -- s with every regex metacharacter escaped
--
-- Python-regex constructs work as PCRE2 supports them: (?P<n>...), (?P=n), \d \w \s \b,
-- lookarounds, inline flags. Python's \Z (end of subject) is translated to PCRE2's \z.
-- The C side (src/lua/lua_regex.c) also carries a few file-system helpers: regex.fs.stat,
-- realpath, mkdir, chmod, chown, listdir.

local regex = {}

local function load_lib()
    local ok, core = pcall(require, "fuglu_core")
    if ok and type(core) == "table" and type(core.regex_lib) == "function" then
        return core.regex_lib()
    end
    local ok2, lib = pcall(require, "fuglu_regex")
    if ok2 and type(lib) == "table" then return lib end
    -- busted: fuglu_core.so holds every core object, luaopen_fuglu_regex included
    local path = package.searchpath and package.searchpath("fuglu_core", package.cpath)
    if path then
        local open = package.loadlib(path, "luaopen_fuglu_regex")
        if open then return open() end
    end
    error("fuglu.regex: the PCRE2 module (luaopen_fuglu_regex) is not available")
end

local lib = load_lib()
regex.fs = lib
regex.MATCH_LIMIT = lib.match_limit

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

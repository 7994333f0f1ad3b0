-- fuglu.suspectfilter: rule files (Fuglu's SuspectFilter) on PCRE2, and rules written in Lua.
--
--   local suspectfilter = require "fuglu.suspectfilter"
--   local sf = suspectfilter.new("/etc/fuglu/actionrules.regex")
--   local ok, arg, info = sf:matches(suspect)     -- first matching rule in file order
--   local ok, info = sf:matches(suspect, true)    -- Fuglu's extended form
--   local args = sf:get_args(suspect)             -- every matching rule's argument (false if none),
--                                                 -- one entry per matching value
--   local infos = sf:get_args(suspect, true)      -- the same as info tables
--   sf:lint()                                     -- prints every bad line with file:line
-- info = {field=, value=, arg=, regex= (the pattern), flags=, file=, line=}.
--
-- File syntax (doc/rules.md): one rule per line, blank lines and "#" comments skipped.
--   FIELD REGEX [ARGS...]          simple: case-insensitive, "." matches newlines
--   FIELD /REGEX/FLAGS [ARGS...]   perl style: flags i and m; case-sensitive without i
-- A trailing ":" on FIELD is ignored. Unlike Fuglu the perl style also works for @tag and
-- wildcard fields. A file whose name ends in ".lua" returns an array of rules instead: functions
-- of the suspect (a true or string result is a match: the string is the matched value and a
-- second result the argument), {field=, regex=, flags=, args=} tables, or {match=fn, args=}.
--
-- Rules of a field are matched in one pass: the combinable regexes (no back references, named
-- groups or verbs) of one field form one PCRE2 alternation; only values it matches are checked
-- rule by rule. A match that hits the PCRE2 limits counts as no match and is logged.
--
-- The file is checked for changes at most every `check_interval` seconds (default 5) and then
-- reloaded whole. A file that disappears or a Lua rule file that fails to load keeps the last
-- good rules (logged); bad regex lines are logged with file:line and skipped, the rest work.

local fields = require "fuglu.fields"
local log = require "fuglu.log"
local regex = require "fuglu.regex"

local suspectfilter = {}

local SuspectFilter = {}
SuspectFilter.__index = SuspectFilter

local logger = log.logger("fuglu.suspectfilter")

local DEFAULT_CHECK_INTERVAL = 5

local function now()
    return require("fuglu_core").monotonic()
end

local function trim(s)
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

------------------------------------------------------------------------------------------------
-- Parsing
------------------------------------------------------------------------------------------------

-- Perl style: FIELD[:] /REGEX/FLAGS [ARGS]. Returns field, regex, flags, args or nil.
local function parse_perl(line)
    local field, pos = line:match("^([%w%-%._:@%*]+)%s+()/")
    if field == nil then return nil end
    local i, n = pos + 1, #line
    local parts = {}
    while i <= n do
        local c = line:sub(i, i)
        if c == "\\" then
            if i == n then return nil end
            parts[#parts + 1] = line:sub(i, i + 1)
            i = i + 2
        elseif c == "/" then
            break
        else
            parts[#parts + 1] = c
            i = i + 1
        end
    end
    if i > n then return nil end
    local flags, rest = line:match("^([IiMm]*)(.*)$", i + 1)
    local args
    if rest == "" then
        args = nil
    else
        args = rest:match("^%s+(.*)$")
        if args == nil then return nil end
        if args == "" then args = nil end
    end
    return field, table.concat(parts), flags:lower(), args
end

-- Parses one stripped, non-comment line. Returns a rule table or nil and an error text.
function suspectfilter.parse_line(line)
    local field, pattern, flags, args = parse_perl(line)
    local style = "perl"
    if field == nil then
        style = "simple"
        field, pattern, args = line:match("^(%S+)%s+(%S+)%s*(.*)$")
        if field == nil then return nil, "Invalid line (need FIELD REGEX [ARGS])" end
        flags = "is"
        if args == "" then args = nil end
    end
    field = field:gsub(":$", "")
    if field == "" then return nil, "Invalid line (empty field name)" end
    local re, err = regex.compile(pattern, flags)
    if re == nil then return nil, "invalid regex '" .. pattern .. "': " .. err end
    return { kind = "regex", style = style, field = field, pattern = pattern, flags = flags,
             args = args, re = re }
end

-- Patterns that can safely be wrapped in (?flags:...) and joined with others.
local UNSAFE = { "\\Q", "\\[1-9]", "\\g", "\\k", "%(%?P?[=>]", "%(%?P?<[%a_]", "%(%?'", "%(%?%(",
                 "%(%?R", "%(%?&", "%(%?[%d+-]", "%(%?|", "%(%*", "%(%?%a*x", "%(%?%a*%-%a*x" }

local function combinable(pattern)
    for _, p in ipairs(UNSAFE) do
        if pattern:find(p) then return false end
    end
    return true
end

local function wrap(rule)
    if rule.flags == "" then return "(?:" .. rule.pattern .. ")" end
    return "(?" .. rule.flags .. ":" .. rule.pattern .. ")"
end

-- Groups the regex rules by field and builds each group's combined prefilter.
local function build_groups(rules)
    local groups, by_field = {}, {}
    for _, rule in ipairs(rules) do
        if rule.kind == "regex" then
            local g = by_field[rule.field]
            if g == nil then
                g = { field = rule.field, combined_rules = {}, single_rules = {} }
                by_field[rule.field] = g
                groups[#groups + 1] = g
            end
            rule.group = g
            if combinable(rule.pattern) then
                g.combined_rules[#g.combined_rules + 1] = rule
            else
                g.single_rules[#g.single_rules + 1] = rule
            end
        end
    end
    for _, g in ipairs(groups) do
        if #g.combined_rules > 1 then
            local parts = {}
            for i, rule in ipairs(g.combined_rules) do parts[i] = wrap(rule) end
            g.combined = regex.compile(regex.translate(table.concat(parts, "|")), "")
        end
        if g.combined == nil then
            -- one rule, or the alternation did not compile: check each rule by itself
            for _, rule in ipairs(g.combined_rules) do g.single_rules[#g.single_rules + 1] = rule end
            g.combined_rules = {}
        end
    end
    return groups
end

local function lua_rule(entry, index, path)
    if type(entry) == "function" then entry = { match = entry } end
    if type(entry) ~= "table" then
        return nil, string.format("rule #%d: expected a function or a table, got %s", index, type(entry))
    end
    local args = entry.args
    if args ~= nil then args = tostring(args) end
    local fn = entry.match or entry.fn
    if fn ~= nil then
        if type(fn) ~= "function" then return nil, string.format("rule #%d: 'match' must be a function", index) end
        local info = debug.getinfo(fn, "S")
        local line = info and info.linedefined or 0
        return { kind = "lua", fn = fn, args = args, line = line,
                 field = entry.name or entry.field or string.format("lua:%s:%d", path, line),
                 pattern = entry.name or "(lua function)" }
    end
    if type(entry.field) ~= "string" or type(entry.regex) ~= "string" then
        return nil, string.format("rule #%d: a table rule needs field= and regex= (or match=)", index)
    end
    local flags = entry.flags
    if flags == nil then flags = "is" end
    local re, err = regex.compile(entry.regex, tostring(flags))
    if re == nil then
        return nil, string.format("rule #%d: invalid regex '%s': %s", index, entry.regex, err)
    end
    return { kind = "regex", style = "lua", field = entry.field:gsub(":$", ""), pattern = entry.regex,
             flags = tostring(flags), args = args, re = re, line = entry.line or index }
end

-- Loads a .lua rule file. Returns rules, errors or nil, fatal error.
local function load_lua_file(path)
    local env = setmetatable({}, { __index = _G })
    local chunk, err = loadfile(path)
    if chunk == nil then return nil, err end
    setfenv(chunk, env)
    local ok, result = pcall(chunk)
    if not ok then return nil, tostring(result) end
    if type(result) ~= "table" then
        return nil, path .. ": a Lua rule file must return an array of rules"
    end
    local rules, errors = {}, {}
    for i, entry in ipairs(result) do
        local rule, rerr = lua_rule(entry, i, path)
        if rule then
            rule.file = path
            rules[#rules + 1] = rule
        else
            errors[#errors + 1] = { line = i, text = tostring(entry), error = rerr }
        end
    end
    return rules, errors
end

-- Parses rule text. Returns rules and an array of {line=, text=, error=}.
function suspectfilter.parse(text, path)
    local rules, errors = {}, {}
    local lineno = 0
    for raw in (text .. "\n"):gmatch("([^\n]*)\n") do
        lineno = lineno + 1
        local line = trim(raw)
        if line ~= "" and line:sub(1, 1) ~= "#" then
            local rule, err = suspectfilter.parse_line(line)
            if rule then
                rule.line = lineno
                rule.file = path
                rules[#rules + 1] = rule
            else
                errors[#errors + 1] = { line = lineno, text = line, error = err }
            end
        end
    end
    return rules, errors
end

-- Reads and parses a rule file. Returns rules, errors or nil, fatal error text.
function suspectfilter.load_file(path)
    if path:match("%.lua$") then return load_lua_file(path) end
    local f, err = io.open(path, "rb")
    if f == nil then return nil, err end
    local text = f:read("*a")
    f:close()
    if text == nil then return nil, "cannot read " .. path end
    return suspectfilter.parse(text, path)
end

------------------------------------------------------------------------------------------------
-- The filter object
------------------------------------------------------------------------------------------------

-- new(path, {check_interval=seconds}) loads the file now (a missing file gives no rules, logged).
function suspectfilter.new(path, options)
    options = options or {}
    local self = setmetatable({
        filename = path,
        rules = {},
        groups = {},
        errors = {},
        check_interval = options.check_interval or DEFAULT_CHECK_INTERVAL,
        last_check = nil,
        stamp = nil,
        trace = options.trace,      -- function(rule, value, matched) for every rule/value tried
    }, SuspectFilter)
    self:reload()
    return self
end

-- Rules from text (no file, no reload); name is used in error messages.
function suspectfilter.from_string(text, name)
    local self = setmetatable({ filename = name or "(string)", rules = {}, groups = {}, errors = {},
        check_interval = math.huge, static = true }, SuspectFilter)
    local rules, errors = suspectfilter.parse(text, self.filename)
    self.rules, self.errors, self.groups = rules, errors, build_groups(rules)
    return self
end

local function file_stamp(path)
    local st = regex.fs.stat(path)
    if st == nil then return nil end
    return string.format("%.9f/%.9f/%d/%d", st.mtime, st.ctime, st.size, st.ino)
end

-- Reads the file again. Returns true when new rules are in place.
function SuspectFilter:reload()
    self.last_check = now()
    local stamp = file_stamp(self.filename)
    if stamp == nil then
        if self.stamp ~= nil or #self.rules == 0 then
            logger:warning("SuspectFilter file not found: %s (keeping %d rules)", self.filename, #self.rules)
        end
        self.stamp = nil
        return false
    end
    logger:info("Reloading Rulefile %s", self.filename)
    local rules, errors = suspectfilter.load_file(self.filename)
    if rules == nil then
        logger:error("Rule file %s cannot be loaded, keeping the last good rules (%d): %s",
            self.filename, #self.rules, tostring(errors))
        self.stamp = stamp
        self.load_error = errors
        return false
    end
    for _, e in ipairs(errors) do
        logger:error("%s:%d: %s (line skipped: %s)", self.filename, e.line, e.error, e.text)
    end
    self.rules, self.errors, self.groups = rules, errors, build_groups(rules)
    self.stamp = stamp
    self.load_error = nil
    return true
end

-- Reloads if the check interval passed and the file changed.
function SuspectFilter:check_reload()
    if self.static then return end
    local t = now()
    if self.last_check ~= nil and t - self.last_check < self.check_interval then return end
    self.last_check = t
    local stamp = file_stamp(self.filename)
    if stamp == self.stamp then return end
    if stamp == nil then
        logger:warning("SuspectFilter file %s disappeared, keeping %d rules", self.filename, #self.rules)
        self.stamp = nil
        return
    end
    self:reload()
end

function SuspectFilter:count()
    return #self.rules
end

------------------------------------------------------------------------------------------------
-- Matching
------------------------------------------------------------------------------------------------

-- Fuglu reports the pattern itself (no slashes or flags, as compiled).
local function regex_source(rule)
    return rule.pattern
end

local function report_limit(rule, err, suspect)
    logger:warning("%s:%s: regex '%s' on field %s gave up (%s), counted as no match (suspect %s)",
        tostring(rule.file), tostring(rule.line), rule.pattern, rule.field, tostring(err),
        tostring(suspect and suspect.id))
end

-- Whether one rule matches one value (limits reported).
local function rule_matches(self, rule, value, suspect)
    local s, err = rule.re:search(value)
    if s == nil then report_limit(rule, err, suspect) end
    local matched = s and true or false
    if self.trace then self.trace(rule, value, matched) end
    return matched
end

-- The values of every field this call needs, fetched once.
local function field_values(cache, suspect, field)
    local v = cache[field]
    if v == nil then
        v = fields.get(suspect, field)
        cache[field] = v
    end
    return v
end

-- For one group: rule -> array of the values it matches.
local function group_hits(self, group, suspect, cache)
    local hits = {}
    local values = field_values(cache, suspect, group.field)
    local function add(rule, value)
        local list = hits[rule]
        if list == nil then
            list = {}
            hits[rule] = list
        end
        list[#list + 1] = value
    end
    for _, value in ipairs(values) do
        value = tostring(value)
        local check_combined = #group.combined_rules > 0
        if check_combined and not self.trace then
            local s = group.combined:search(value)
            check_combined = s ~= false
        end
        if check_combined then
            for _, rule in ipairs(group.combined_rules) do
                if rule_matches(self, rule, value, suspect) then add(rule, value) end
            end
        end
        for _, rule in ipairs(group.single_rules) do
            if rule_matches(self, rule, value, suspect) then add(rule, value) end
        end
    end
    return hits
end

-- Calls a Lua function rule: returns the matched value (a string) or nil.
local function lua_hit(self, rule, suspect)
    local ok, result, arg = pcall(rule.fn, suspect)
    if not ok then
        logger:error("%s:%d: Lua rule failed: %s", tostring(rule.file), rule.line or 0, tostring(result))
        return nil
    end
    local matched = result ~= nil and result ~= false
    if self.trace then self.trace(rule, "(lua)", matched) end
    if not matched then return nil end
    return type(result) == "string" and result or tostring(result), arg
end

local function info_of(rule, value, arg)
    if arg == nil then arg = rule.args end
    return { field = rule.field, value = value, arg = arg, regex = regex_source(rule),
             flags = rule.flags, file = rule.file, line = rule.line }
end

-- Walks the rules in file order; calls on_hit(info) per match until it returns true.
function SuspectFilter:walk(suspect, on_hit)
    self:check_reload()
    local cache, computed = {}, {}
    for _, rule in ipairs(self.rules) do
        if rule.kind == "lua" then
            local value, arg = lua_hit(self, rule, suspect)
            if value ~= nil and on_hit(info_of(rule, value, arg)) then return end
        else
            local hits = computed[rule.group]
            if hits == nil then
                hits = group_hits(self, rule.group, suspect, cache)
                computed[rule.group] = hits
            end
            for _, value in ipairs(hits[rule] or {}) do
                if on_hit(info_of(rule, value)) then return end
            end
        end
    end
end

local function debug_hit(suspect, info)
    if suspect.tags and suspect.tags.debug and suspect.debug then
        suspect:debug(string.format("rule %s:%s matched: %s %s (arg %s)", tostring(info.file),
            tostring(info.line), info.field, info.regex, tostring(info.arg)))
    end
end

-- (true, arg, info) for the first matching rule, (false, nil); extended: (true, info).
function SuspectFilter:matches(suspect, extended)
    local found
    self:walk(suspect, function(info)
        found = info
        return true
    end)
    if found == nil then return false, nil end
    debug_hit(suspect, found)
    if extended then return true, found end
    return true, found.arg, found
end

-- Every matching rule's argument (false for a rule without one), or info tables if extended.
function SuspectFilter:get_args(suspect, extended)
    local list = {}
    self:walk(suspect, function(info)
        debug_hit(suspect, info)
        if extended then
            list[#list + 1] = info
        else
            local arg = info.arg
            if arg == nil then arg = false end
            list[#list + 1] = arg
        end
        return false
    end)
    return list
end

-- Prints every problem (file:line) and returns true when the file is fine.
function SuspectFilter:lint()
    local st = regex.fs.stat(self.filename)
    if st == nil then
        print("SuspectFilter file not found: " .. tostring(self.filename))
        return false
    end
    local rules, errors = suspectfilter.load_file(self.filename)
    if rules == nil then
        print(string.format("Error in SuspectFilter file '%s': %s", self.filename, tostring(errors)))
        return false
    end
    for _, e in ipairs(errors) do
        print(string.format("Error in SuspectFilter file '%s', lineno %d , line '%s' : %s",
            self.filename, e.line, e.text, e.error))
    end
    return #errors == 0
end

return suspectfilter

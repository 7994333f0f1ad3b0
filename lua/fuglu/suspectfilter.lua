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
-- Rules of a field are matched in one pass: from each rule's regex the literal text every match
-- needs is extracted (required_literals; per top-level alternative), and one scan of a value
-- (fuglu_regex.literal_set, C) tells which rules' literals occur; only those rules and the rules
-- without a literal run their regex. The combinable regexes (no back references, named groups or
-- verbs) of one field also form PCRE2 alternations: the rules without a literal are prefiltered by
-- theirs, and when many literals occur the group's alternation of all rules decides first. The
-- results are those of checking every rule (first match in file order, every value). A match that
-- hits the PCRE2 limits counts as no match and is logged. With a trace function every rule is
-- tried on every value.
--
-- The file is checked for changes at most every `check_interval` seconds (default 5) and then
-- reloaded whole. A file that disappears or a Lua rule file that fails to load keeps the last
-- good rules (logged); bad regex lines are logged with file:line and skipped, the rest work.

local fs = require "fuglu_fs"
local fields = require "fuglu.fields"
local log = require "fuglu.log"
local regex = require "fuglu.regex"

local suspectfilter = {}

local SuspectFilter = {}
SuspectFilter.__index = SuspectFilter

local logger = log.logger("fuglu.suspectfilter")

local DEFAULT_CHECK_INTERVAL = 5

local now = require("fuglu_sys").monotonic

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

------------------------------------------------------------------------------------------------
-- Required literals (the prefilter)
------------------------------------------------------------------------------------------------

-- Shortest literal the C prefilter takes (src/lua/lua_litset.c).
local MIN_LITERAL = 4

-- Escapes that match something other than one fixed ASCII character (classes, assertions,
-- control characters): they end a literal run. Any other escaped letter or digit (\x, \p, \1,
-- \Q, \N{...} ...) makes the pattern too hard to read: no literal then.
local NONLITERAL_ESCAPE = {}
for c in ("dDwWsShHvVRXNbBAzZGKtnrfea"):gmatch(".") do NONLITERAL_ESCAPE[c] = true end

-- The index after the character class starting at pattern[i] ("["), or nil.
local function skip_class(pattern, i)
    local n = #pattern
    local j = i + 1
    if pattern:sub(j, j) == "^" then j = j + 1 end
    if pattern:sub(j, j) == "]" then j = j + 1 end
    while j <= n do
        local c = pattern:sub(j, j)
        if c == "\\" then
            j = j + 2
        elseif c == "[" and pattern:sub(j + 1, j + 1):match("[:.=]") then
            local close = pattern:find(pattern:sub(j + 1, j + 1) .. "]", j + 2, true)
            if close == nil then return nil end
            j = close + 2
        elseif c == "]" then
            return j + 1
        else
            j = j + 1
        end
    end
    return nil
end

-- The index after the group starting at pattern[i] ("("), or nil.
local function skip_group(pattern, i)
    local n, depth, j = #pattern, 0, i
    while j <= n do
        local c = pattern:sub(j, j)
        if c == "\\" then
            j = j + 2
        elseif c == "[" then
            j = skip_class(pattern, j)
            if j == nil then return nil end
        else
            if c == "(" then
                depth = depth + 1
            elseif c == ")" then
                depth = depth - 1
                if depth == 0 then return j + 1 end
            end
            j = j + 1
        end
    end
    return nil
end

-- How rare a run is likely to be in mail text: common letters count 1, other letters 2, other
-- characters 3, digits 5 ("crypto16" and "diet75" are better filters than "filename=").
local function literal_score(text)
    local lower = text:lower()
    local common = select(2, lower:gsub("[etaoinshrdlu ]", ""))
    local letters = select(2, lower:gsub("%a", ""))
    local digits = select(2, lower:gsub("%d", ""))
    return common + 2 * (letters - common) + 5 * digits + 3 * (#text - letters - digits)
end

-- The literals (lower case, ASCII, at least MIN_LITERAL bytes) of which every match of the
-- pattern contains at least one: one per top-level alternative, the run of plain characters the
-- alternative needs that is likely rarest (literal_score). nil when some alternative has none or the pattern uses
-- syntax this reader does not follow (then the rule is always checked by its regex). Groups,
-- classes, escapes, anchors and optional characters end a run; the result errs towards shorter
-- runs, never towards text a match does not need.
function suspectfilter.required_literals(pattern, flags)
    if (flags or ""):find("[xX]") or pattern:find("\\Q", 1, true) or pattern:find("(*", 1, true)
        or pattern:find("(?#", 1, true) or pattern:find("%(%?[%a%-%^]*x") then
        return nil
    end
    local literals = {}
    local best, best_score, run, last_in_run = nil, 0, {}, false
    local function finish()
        if #run >= MIN_LITERAL then
            local text = table.concat(run)
            local score = literal_score(text)
            if score > best_score then best, best_score = text, score end
        end
        run, last_in_run = {}, false
    end
    local function end_branch()
        finish()
        if best == nil then return false end
        literals[#literals + 1] = best:lower()
        best, best_score = nil, 0
        return true
    end
    local i, n = 1, #pattern
    while i <= n do
        local c = pattern:sub(i, i)
        local b = c:byte()
        if c == "\\" then
            local d = pattern:sub(i + 1, i + 1)
            if d == "" then return nil end
            if d:match("%w") then
                if not NONLITERAL_ESCAPE[d] then return nil end
                finish()
            elseif d:byte() >= 128 then
                finish()
            else
                run[#run + 1] = d
                last_in_run = true
            end
            i = i + 2
        elseif c == "[" then
            finish()
            i = skip_class(pattern, i)
            if i == nil then return nil end
        elseif c == "(" then
            finish()
            i = skip_group(pattern, i)
            if i == nil then return nil end
        elseif c == ")" then
            return nil
        elseif c == "|" then
            if not end_branch() then return nil end
            i = i + 1
        elseif c == "?" or c == "*" or c == "+" or c == "{" then
            local min, after = 1, i + 1
            if c == "{" then
                local lo, comma, hi, e = pattern:match("^{(%d*)(,?)(%d*)}()", i)
                if e == nil or (lo == "" and (comma == "" or hi == "")) then return nil end
                min, after = tonumber(lo) or 0, e
            elseif c ~= "+" then
                min = 0
            end
            if min == 0 and last_in_run then run[#run] = nil end
            finish()
            local suffix = pattern:sub(after, after)
            if suffix == "?" or suffix == "+" then after = after + 1 end
            i = after
        elseif c == "." or c == "^" or c == "$" or b >= 128 then
            finish()
            i = i + 1
        else
            run[#run + 1] = c
            last_in_run = true
            i = i + 1
        end
    end
    if not end_branch() then return nil end
    return literals
end

-- Compiles the alternation of rules' patterns; nil if it does not compile.
local function combine(rules)
    local parts = {}
    for i, rule in ipairs(rules) do parts[i] = wrap(rule) end
    return regex.compile(regex.translate(table.concat(parts, "|")), "")
end

-- The literal prefilter of a group: g.lit_rules (rules with required literals; their index is the
-- id the literal set reports), g.litset, and the rules without literals, g.nolit_combined_rules
-- (prefiltered by g.nolit_combined when there are several) and g.nolit_single_rules.
local function build_prefilter(g)
    local lits, ids = {}, {}
    g.lit_rules, g.nolit_combined_rules, g.nolit_single_rules = {}, {}, {}
    local rules = {}
    for _, rule in ipairs(g.combined_rules) do rule.combinable = true; rules[#rules + 1] = rule end
    for _, rule in ipairs(g.single_rules) do rule.combinable = false; rules[#rules + 1] = rule end
    for _, rule in ipairs(rules) do
        local literals = regex.literal_set and suspectfilter.required_literals(rule.pattern, rule.flags)
        rule.literals = literals
        if literals then
            g.lit_rules[#g.lit_rules + 1] = rule
            for _, lit in ipairs(literals) do
                lits[#lits + 1] = lit
                ids[#ids + 1] = #g.lit_rules
            end
        elseif rule.combinable then
            g.nolit_combined_rules[#g.nolit_combined_rules + 1] = rule
        else
            g.nolit_single_rules[#g.nolit_single_rules + 1] = rule
        end
    end
    if #g.lit_rules > 0 then g.litset = regex.literal_set(lits, ids, #g.lit_rules) end
    if #g.nolit_combined_rules > 1 then g.nolit_combined = combine(g.nolit_combined_rules) end
    if g.nolit_combined == nil then
        for _, rule in ipairs(g.nolit_combined_rules) do g.nolit_single_rules[#g.nolit_single_rules + 1] = rule end
        g.nolit_combined_rules = {}
    end
    g.found = {}
end

-- Groups the regex rules by field and builds each group's combined regex and literal prefilter.
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
        if #g.combined_rules > 1 then g.combined = combine(g.combined_rules) end
        if g.combined == nil then
            -- one rule, or the alternation did not compile: check each rule by itself
            for _, rule in ipairs(g.combined_rules) do g.single_rules[#g.single_rules + 1] = rule end
            g.combined_rules = {}
        end
        build_prefilter(g)
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
    local st = fs.stat(path)
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

local function add_hit(hits, rule, value)
    local list = hits[rule]
    if list == nil then
        hits[rule] = { value }
    else
        list[#list + 1] = value
    end
end

-- Checks every rule on the value, the combined regex first (trace: every rule and value tried).
local function value_hits_all(self, group, value, suspect, hits)
    local check_combined = #group.combined_rules > 0
    if check_combined and not self.trace then
        check_combined = group.combined:search(value) ~= false
    end
    if check_combined then
        for _, rule in ipairs(group.combined_rules) do
            if rule_matches(self, rule, value, suspect) then add_hit(hits, rule, value) end
        end
    end
    for _, rule in ipairs(group.single_rules) do
        if rule_matches(self, rule, value, suspect) then add_hit(hits, rule, value) end
    end
end

-- With at least this many rules whose literal occurs, the group's combined regex decides first
-- whether any of the combinable ones can match at all.
local GATE_CANDIDATES = 3

-- Checks only the rules that can match: those without a literal (their own combined regex first)
-- and those whose literal occurs in the value. A rule whose required literal is missing cannot
-- match, so the hits are those of value_hits_all.
local function value_hits(self, group, value, suspect, hits)
    local nolit = group.nolit_combined_rules
    if #nolit > 0 and group.nolit_combined:search(value) ~= false then
        for _, rule in ipairs(nolit) do
            if rule_matches(self, rule, value, suspect) then add_hit(hits, rule, value) end
        end
    end
    for _, rule in ipairs(group.nolit_single_rules) do
        if rule_matches(self, rule, value, suspect) then add_hit(hits, rule, value) end
    end
    local litset = group.litset
    if litset == nil then return end
    local found = group.found
    local k = litset:scan(value, found)
    if k == 0 then return end
    local gate = true
    if k >= GATE_CANDIDATES and group.combined then gate = group.combined:search(value) ~= false end
    local lit_rules = group.lit_rules
    for i = 1, k do
        local rule = lit_rules[found[i]]
        if (gate or not rule.combinable) and rule_matches(self, rule, value, suspect) then
            add_hit(hits, rule, value)
        end
    end
end

-- For one group: rule -> array of the values it matches (in value order).
local function group_hits(self, group, suspect, cache)
    local hits = {}
    local values = field_values(cache, suspect, group.field)
    for _, value in ipairs(values) do
        value = tostring(value)
        if self.trace then
            value_hits_all(self, group, value, suspect, hits)
        else
            value_hits(self, group, value, suspect, hits)
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
    local st = fs.stat(self.filename)
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

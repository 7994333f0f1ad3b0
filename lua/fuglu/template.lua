-- fuglu.template: Fuglu's message templates ($name, ${name}, $$).
--
--   template.apply("Mail from ${from_address}: ${subject}", suspect, {reason = "..."})
--
-- Names follow @?[a-z][_a-z0-9.:]* (case-insensitive). Lookup order: the caller's values, the
-- built-ins (id, timestamp, from_address, to_address, from_domain, to_domain, subject, date, time),
-- then template.field_lookup: every rule-file field of fuglu.fields (header:Name, @tag, mime:...,
-- clientip, body). A valid name without a value gives ""; anything that is not a valid
-- placeholder stays as written. Lists give their first element.

local template = {}

local function first(v)
    if type(v) == "table" then v = v[1] end
    if v == nil then return nil end
    return tostring(v)
end

-- The built-in values of a suspect (computed lazily: subject needs the headers).
local builtins = {
    id = function(s) return s.id end,
    timestamp = function(s) return tostring(s.timestamp) end,
    from_address = function(s) return s.from_address end,
    to_address = function(s) return s.to_address end,
    from_domain = function(s) return s.from_domain end,
    to_domain = function(s) return s.to_domain end,
    subject = function(s) return s:get_message_rep():header("Subject")[1] or "" end,
    date = function() return os.date("%Y-%m-%d") end,
    time = function() return os.date("%X") end,
}

-- Values for names that are not built-ins: every rule-file field (fuglu.fields: header:Name,
-- header:decoded:Name, mime:Name, @tag, envelope_from, clientip, body, ...). Returns nil when the
-- field has no value. Replaceable.
function template.field_lookup(suspect, name)
    local values = require("fuglu.fields").get(suspect, name)
    if #values == 0 then return nil end
    return values
end

local function lookup(name, suspect, values, lname)
    lname = lname or name:lower()
    if values then
        local v = values[name]
        if v == nil then v = values[lname] end
        if v ~= nil then return first(v) end
    end
    if suspect then
        local builtin = builtins[lname]
        if builtin then return first(builtin(suspect)) end
        return first(template.field_lookup(suspect, name))
    end
    return nil
end

-- Splits a template into an array of literal strings and {name = placeholder} tables. "$$" is a
-- literal "$"; a "$" that starts no valid placeholder stays as written.
local function tokenize(text)
    local parts, literal = {}, {}
    local function flush()
        if #literal > 0 then
            parts[#parts + 1] = table.concat(literal)
            literal = {}
        end
    end
    local pos, len = 1, #text
    while pos <= len do
        local dollar = text:find("$", pos, true)
        if dollar == nil then
            literal[#literal + 1] = text:sub(pos)
            break
        end
        literal[#literal + 1] = text:sub(pos, dollar - 1)
        local rest = dollar + 1
        if text:sub(rest, rest) == "$" then
            literal[#literal + 1] = "$"
            pos = rest + 1
        else
            local stop
            local name = text:match("^@?[A-Za-z][_A-Za-z0-9.:]*", rest)
            if name then
                stop = rest + #name
            else
                name = text:match("^{(@?[A-Za-z][_A-Za-z0-9.:]*)}", rest)
                if name then stop = rest + #name + 2 end
            end
            if name then
                flush()
                parts[#parts + 1] = { name = name, lname = name:lower() }
                pos = stop
            else
                literal[#literal + 1] = "$"
                pos = rest
            end
        end
    end
    flush()
    return parts
end

-- Templates parsed once. The cache holds the few templates a config has (requeuetemplate,
-- logtemplate, plugin templates); it is emptied if it ever grows past a bound, so templates built
-- from message data cannot make it grow without limit.
local compiled, compiled_count = {}, 0

local function compile(text)
    local parts = compiled[text]
    if parts then return parts end
    parts = tokenize(text)
    if compiled_count >= 256 then compiled, compiled_count = {}, 0 end
    compiled[text] = parts
    compiled_count = compiled_count + 1
    return parts
end

-- Every placeholder name used in a template (each once, in order).
function template.names(text)
    local seen, names = {}, {}
    for _, part in ipairs(compile(text)) do
        if type(part) == "table" and not seen[part.name] then
            seen[part.name] = true
            names[#names + 1] = part.name
        end
    end
    return names
end

-- Fills in a template. values: extra name -> value (win over everything). valuesfunction(map):
-- receives the resolved name -> value map of this template and may edit it in place or return a
-- new one (used for escaping, e.g. SQL).
function template.apply(text, suspect, values, valuesfunction)
    local parts = compile(text)
    local resolved = {}
    for i = 1, #parts do
        local name = type(parts[i]) == "table" and parts[i].name
        if name and resolved[name] == nil then
            resolved[name] = lookup(name, suspect, values, parts[i].lname)
        end
    end
    if valuesfunction then
        resolved = valuesfunction(resolved) or resolved
    end
    local out = {}
    for i = 1, #parts do
        local part = parts[i]
        if type(part) == "string" then
            out[i] = part
        else
            local v = resolved[part.name]
            out[i] = v == nil and "" or tostring(v)
        end
    end
    return table.concat(out)
end

return template

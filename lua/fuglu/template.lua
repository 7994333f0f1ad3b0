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

local function lookup(name, suspect, values)
    if values then
        local v = values[name]
        if v == nil then v = values[name:lower()] end
        if v ~= nil then return first(v) end
    end
    if suspect then
        local builtin = builtins[name:lower()]
        if builtin then return first(builtin(suspect)) end
        return first(template.field_lookup(suspect, name))
    end
    return nil
end

-- Splits a template into literal text and placeholders. Calls on_name(name) for each
-- placeholder and returns the rebuilt string.
local function substitute(text, on_name)
    local out = {}
    local pos = 1
    local len = #text
    while pos <= len do
        local dollar = text:find("$", pos, true)
        if dollar == nil then
            out[#out + 1] = text:sub(pos)
            break
        end
        out[#out + 1] = text:sub(pos, dollar - 1)
        local rest = dollar + 1
        local name, stop
        if text:sub(rest, rest) == "$" then
            out[#out + 1] = "$"
            pos = rest + 1
        else
            name = text:match("^@?[A-Za-z][_A-Za-z0-9.:]*", rest)
            if name then
                stop = rest + #name
            else
                name = text:match("^{(@?[A-Za-z][_A-Za-z0-9.:]*)}", rest)
                if name then stop = rest + #name + 2 end
            end
            if name then
                out[#out + 1] = on_name(name)
                pos = stop
            else
                out[#out + 1] = "$"   -- not a placeholder: keep as written
                pos = rest
            end
        end
    end
    return table.concat(out)
end

-- Every placeholder name used in a template (each once, in order).
function template.names(text)
    local seen, names = {}, {}
    substitute(text, function(name)
        if not seen[name] then
            seen[name] = true
            names[#names + 1] = name
        end
        return ""
    end)
    return names
end

-- Fills in a template. values: extra name -> value (win over everything). valuesfunction(map):
-- receives the resolved name -> value map of this template and may edit it in place or return a
-- new one (used for escaping, e.g. SQL).
function template.apply(text, suspect, values, valuesfunction)
    local resolved = {}
    for _, name in ipairs(template.names(text)) do
        resolved[name] = lookup(name, suspect, values)
    end
    if valuesfunction then
        resolved = valuesfunction(resolved) or resolved
    end
    return substitute(text, function(name)
        local v = resolved[name]
        if v == nil then return "" end
        return tostring(v)
    end)
end

return template

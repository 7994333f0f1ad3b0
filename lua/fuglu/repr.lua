-- fuglu.repr: Python-like one-line renderings of Lua values, for log lines and ${tags}.
--
--   repr.value({virus={}, spam={SAPlugin=true}})  -> "{'spam': {'SAPlugin': True}, 'virus': {}}"
-- Keys are sorted so the same tags always give the same line.

local repr = {}

local function is_array(t)
    local n = #t
    if n == 0 then return false end   -- empty tables render as {}
    for k in pairs(t) do
        if type(k) ~= "number" or k < 1 or k > n or k ~= math.floor(k) then return false end
    end
    return true
end

local function quote(s)
    return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'"):gsub("\r", "\\r"):gsub("\n", "\\n") .. "'"
end

-- The keys of t in a stable order: by type, then by value (numbers and strings), else by tostring.
local function sorted_keys(t)
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b)
        local ta, tb = type(a), type(b)
        if ta ~= tb then return ta < tb end
        if ta == "number" or ta == "string" then return a < b end
        return tostring(a) < tostring(b)
    end)
    return keys
end

-- depth guards against cycles.
local function render(v, depth)
    local t = type(v)
    if t == "string" then return quote(v) end
    if t == "boolean" then return v and "True" or "False" end
    if t == "nil" then return "None" end
    if t == "number" then
        if v == math.floor(v) and v > -1e15 and v < 1e15 then return string.format("%d", v) end
        return tostring(v)
    end
    if t ~= "table" then return "<" .. tostring(v) .. ">" end
    if depth > 8 then return "{...}" end
    local parts = {}
    if is_array(v) then
        for i = 1, #v do parts[i] = render(v[i], depth + 1) end
        return "[" .. table.concat(parts, ", ") .. "]"
    end
    for _, k in ipairs(sorted_keys(v)) do
        parts[#parts + 1] = render(k, depth + 1) .. ": " .. render(v[k], depth + 1)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
end

repr.sorted_keys = sorted_keys

function repr.value(v)
    return render(v, 0)
end

local SKIPPED = { decisions = true, scantimes = true, debugfile = true }

-- Fuglu's short tag repr: no decisions/scantimes/debugfile, values cut to 100 characters + "...",
-- SAPlugin.spamscore as %.2f.
function repr.short_tags(tags)
    local parts = {}
    for _, k in ipairs(sorted_keys(tags)) do
        if not SKIPPED[k] then
            local v = tags[k]
            local text
            if k == "SAPlugin.spamscore" and tonumber(v) then
                text = string.format("'%.2f'", tonumber(v))
            else
                text = render(v, 1)
                if #text > 100 then text = text:sub(1, 100) .. "..." end
            end
            parts[#parts + 1] = render(k, 1) .. ": " .. text
        end
    end
    return "{" .. table.concat(parts, ", ") .. "}"
end

return repr

-- fuglu.actions: the action codes a scanner plugin returns, and their names.
--
-- DUNNO lets the next plugin look at the message; every other code ends the scan.
-- The numbers are Fuglu's, so configs and plugins written for Fuglu keep their meaning.

local actions = {
    DUNNO = 0,   -- no opinion: continue with the next plugin
    ACCEPT = 1,  -- stop scanning, deliver
    DELETE = 2,  -- stop scanning, drop the message but answer 250 (blackhole)
    REJECT = 3,  -- stop scanning, answer 550
    DEFER = 4,   -- stop scanning, answer 451 (try again later)
}
actions.DISCARD = actions.DELETE

local names = { [0] = "DUNNO", "ACCEPT", "DELETE", "REJECT", "DEFER" }

-- The config option each DEFAULT* keyword stands for, and its default.
local indirect = {
    DEFAULTVIRUSACTION = { "virus", "defaultvirusaction", "DELETE" },
    DEFAULTLOWSPAMACTION = { "spam", "defaultlowspamaction", "DUNNO" },
    DEFAULTHIGHSPAMACTION = { "spam", "defaulthighspamaction", "DUNNO" },
}

local function trim(s)
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Looks an option up in either a fuglu.config object or a plain {section={option=value}} table.
local function config_value(config, section, option)
    if config == nil then return nil end
    if type(config.get) == "function" then
        return config:get(section, option, false) or nil
    end
    local options = config[section]
    return options and options[option] or nil
end

-- "reject", " Discard ", "DEFAULTVIRUSACTION" -> a code; unknown words -> nil.
function actions.string_to_actioncode(s, config)
    if type(s) ~= "string" then return nil end
    local word = trim(s):upper()
    local via = indirect[word]
    if via then
        local value = config_value(config, via[1], via[2]) or via[3]
        word = trim(tostring(value)):upper()
        if indirect[word] then return nil end   -- no keyword loops
    end
    return actions[word]
end

-- 3 -> "REJECT"; unknown codes -> "INVALID ACTION CODE n"; nil -> "NULL ACTION CODE".
function actions.actioncode_to_string(code)
    if code == nil then return "NULL ACTION CODE" end
    return names[code] or ("INVALID ACTION CODE " .. tostring(code))
end

-- Whether code is one of the five valid codes.
function actions.is_valid(code)
    return type(code) == "number" and names[code] ~= nil
end

return actions

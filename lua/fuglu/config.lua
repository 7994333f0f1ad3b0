-- fuglu.config: typed access to the engine's configuration.
--
-- Wraps the {section = {option = "value"}} table the C core parsed (RawConfigParser semantics:
-- section names are case-sensitive, option names are not). One object is shared by all plugins of a
-- worker, so defaults a plugin declares are visible to everyone who reads that section.

local Config = {}
Config.__index = Config

local config = {}

local TRUE_WORDS = { ["1"] = true, yes = true, ["true"] = true, on = true }
local FALSE_WORDS = { ["0"] = true, no = true, ["false"] = true, off = true }

local SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }

local function trim(s)
    -- most values have nothing to trim: no pattern matching (and no new string) for them
    if not SPACE[s:byte(1)] and not SPACE[s:byte(-1)] then return s end
    return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Builds a config object from a plain table (copied; option names lower-cased).
function config.new(raw)
    local self = setmetatable({ sections = {} }, Config)
    for section, options in pairs(raw or {}) do
        local copy = {}
        for option, value in pairs(options) do
            copy[tostring(option):lower()] = value
        end
        self.sections[section] = copy
    end
    return self
end

-- Whether a value is already a config object.
function config.is_config(value)
    return getmetatable(value) == Config
end

function Config:has_section(section)
    return self.sections[section] ~= nil
end

function Config:has_option(section, option)
    local options = self.sections[section]
    return options ~= nil and options[option:lower()] ~= nil
end

-- The core options' table (src/lib/config.c, the one source of their defaults), loaded once.
local core_options
local function core_default(section, option)
    if core_options == nil then
        local ok, cconf = pcall(require, "fuglu_config")
        core_options = ok and type(cconf) == "table" and cconf.core_options() or {}
    end
    local s = core_options[section]
    local o = s and s[option]
    return o and o.default
end

-- The core options' table: {section = {option = {default, type, min, max, description}}}.
function config.core_options()
    core_default("main", "identifier")
    return core_options
end

-- The raw string value. A core option not set falls back to its default in the core table; any
-- other missing option without a default is an error, like Fuglu's NoOptionError; pass a default
-- (false counts) to get it back instead.
function Config:get(section, option, default)
    local options = self.sections[section]
    local value = options and options[option:lower()]
    if value == nil then
        if default ~= nil then return default end
        value = core_default(section, option:lower())
        if value ~= nil then return value end
        error(string.format("missing configuration value [%s] :: %s", tostring(section), option), 2)
    end
    return tostring(value)
end

function Config:getint(section, option, default)
    local value = self:get(section, option, default)
    if type(value) == "number" then return value end
    local n = tonumber(trim(value))
    if n == nil or n ~= math.floor(n) then
        error(string.format("[%s] %s: '%s' is not an integer", section, option, value), 2)
    end
    return n
end

function Config:getfloat(section, option, default)
    local value = self:get(section, option, default)
    if type(value) == "number" then return value end
    local n = tonumber(trim(value))
    if n == nil then
        error(string.format("[%s] %s: '%s' is not a number", section, option, value), 2)
    end
    return n
end

-- 1/yes/true/on and 0/no/false/off, case-insensitive.
function Config:getboolean(section, option, default)
    local value = self:get(section, option, default)
    if type(value) == "boolean" then return value end
    local word = trim(tostring(value)):lower()
    if TRUE_WORDS[word] then return true end
    if FALSE_WORDS[word] then return false end
    error(string.format("[%s] %s: '%s' is not a boolean (use 1/yes/true/on or 0/no/false/off)",
        section, option, tostring(value)), 2)
end

-- A comma separated list, items trimmed, empty items skipped.
function Config:getlist(section, option, default)
    local value = self:get(section, option, default)
    if type(value) == "table" then return value end
    local list = {}
    for item in tostring(value):gmatch("[^,]+") do
        item = trim(item)
        if item ~= "" then list[#list + 1] = item end
    end
    return list
end

function Config:set(section, option, value)
    local options = self.sections[section]
    if options == nil then
        options = {}
        self.sections[section] = options
    end
    options[option:lower()] = value
end

-- Sets the value only if the option is not configured yet.
function Config:set_default(section, option, value)
    if value ~= nil and not self:has_option(section, option) then
        self:set(section, option, value)
    end
end

-- The option names of a section (lower case, sorted), or {} if it does not exist.
function Config:options(section)
    local names = {}
    for name in pairs(self.sections[section] or {}) do names[#names + 1] = name end
    table.sort(names)
    return names
end

return config

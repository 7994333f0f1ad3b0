-- fuglu.plugin: the base "classes" every plugin is made from.
--
--   local plugin = require "fuglu.plugin"
--   local MyPlugin = plugin.scanner{
--       name = "MyPlugin",                       -- identity, logger fuglu.plugin.MyPlugin, section
--       description = "what it does",
--       options = { maxsize = { default = "100000", description = "..." } },
--   }
--   function MyPlugin:examine(suspect) return actions.DUNNO end
--   return MyPlugin
--
-- Kinds: scanner (examine(suspect) -> code[, message]), prepender (pluginlist(suspect, list) ->
-- new list or nil) and appender (process(suspect, decision)). An instance has self.section,
-- self.config (fuglu.config), self.logger; tostring(instance) is the name, or "Name(section)"
-- when the plugin runs with another config section.

local actions = require "fuglu.actions"
local log = require "fuglu.log"

local plugin = {}

-- Methods all kinds share.
local Base = {}

-- Fuglu's check_config: every declared option must be set (defaults count). Prints what is
-- missing and returns false then.
function Base:lint()
    local ok = true
    for _, option in ipairs(self:option_names()) do
        local spec = self.options[option]
        local section = spec.section or self.section
        if not self.config:has_section(section) then
            print(string.format("Missing configuration section [%s] :: %s", section, option))
            ok = false
        elseif not self.config:has_option(section, option) then
            print(string.format("Missing configuration value [%s] :: %s", section, option))
            ok = false
        end
    end
    return ok
end

-- Fuglu's name for the default check; a plugin with its own lint() can call it first.
plugin.check_config = Base.lint

-- Lint helper: each named option must hold an action word (DUNNO, REJECT, DEFAULTVIRUSACTION,
-- ...); prints the first that does not and returns false.
function plugin.check_actions(p, options)
    for _, option in ipairs(options) do
        if actions.string_to_actioncode(p:get(option), p.config) == nil then
            print(string.format("ERROR: [%s] %s: '%s' is not an action", p.section, option, p:get(option)))
            return false
        end
    end
    return true
end

-- A service plugin's peer from its host and port options: host and port as fuglu_socket takes
-- them (a port that is not a number is a unix socket path: "unix:PATH", nil) and how logs name it.
function Base:peer()
    local host, port = self:get("host"), self:get("port")
    local n = tonumber(port)
    if n == nil then return "unix:" .. port, nil, port end
    return host, n, (host:find(":", 1, true) and "[" .. host .. "]" or host) .. ":" .. port
end
plugin.peer = Base.peer   -- for a plugin that overrides peer() and builds on it

-- The action code an option names; one that names none is logged and counts as DUNNO.
function Base:action_option(option, suspect)
    local code = actions.string_to_actioncode(self:get(option), self.config)
    if code == nil then
        self.logger:error("%s: invalid %s '%s': DUNNO", suspect.id, option, self:get(option))
        return actions.DUNNO
    end
    return code
end

-- What a lint() returns when its service (clamd, spamd, a database) does not answer:
--   return self:service_problem("clamd at %s: %s", where, err)
-- `fuglu --lint` counts it as an error; a reload logs it as a WARNING and goes on, since a service
-- that is down now is no reason to keep the old configuration (the plugin's problem action
-- handles the messages meanwhile).
function Base:service_problem(fmt, ...)
    print("ERROR: " .. string.format(fmt, ...))
    return false, "service"
end

-- The declared option names, sorted.
function Base:option_names()
    local names = {}
    for name in pairs(self.options or {}) do names[#names + 1] = name end
    table.sort(names)
    return names
end

-- Shortcuts for the plugin's own section.
function Base:get(option, default) return self.config:get(self.section, option, default) end
function Base:getint(option, default) return self.config:getint(self.section, option, default) end
function Base:getfloat(option, default) return self.config:getfloat(self.section, option, default) end
function Base:getboolean(option, default) return self.config:getboolean(self.section, option, default) end
function Base:getlist(option, default) return self.config:getlist(self.section, option, default) end

local Scanner = setmetatable({ kind = "scanner" }, { __index = Base })
function Scanner:examine() return actions.DUNNO end

local Prepender = setmetatable({ kind = "prepender" }, { __index = Base })
function Prepender:pluginlist() return nil end

local Appender = setmetatable({ kind = "appender" }, { __index = Base })
function Appender:process() end

local kinds = { scanner = Scanner, prepender = Prepender, appender = Appender }

local function instance_tostring(self)
    if self.section ~= self.name then
        return self.name .. "(" .. self.section .. ")"
    end
    return self.name
end

-- Creates an instance. Options are expected in config already (the loader fills defaults first).
local function new_instance(class, config, section)
    local self = setmetatable({}, class)
    self.config = config
    self.section = section or class.name
    self.logger = log.logger("fuglu.plugin." .. class.name)
    if self.init then self:init() end
    return self
end

-- Fills the option defaults of a class into config (the section of the option, or `section`).
function plugin.fill_defaults(class, config, section)
    for name, spec in pairs(class.options or {}) do
        if spec.default ~= nil then
            config:set_default(spec.section or section or class.name, name, tostring(spec.default))
        end
    end
end

local function make_class(kind, spec)
    if type(spec) ~= "table" or type(spec.name) ~= "string" or not spec.name:match("^[%w_.-]+$") then
        error("plugin." .. kind .. "{...}: 'name' must be a word such as \"MyPlugin\"", 3)
    end
    for option, ospec in pairs(spec.options or {}) do
        if type(ospec) ~= "table" then
            error(string.format("plugin %s: option '%s' must be a table {default=, description=}",
                spec.name, tostring(option)), 3)
        end
    end
    local class = {
        name = spec.name,
        description = spec.description or "",
        options = spec.options or {},
    }
    class.__index = class
    class.__tostring = instance_tostring
    class.new = new_instance
    return setmetatable(class, {
        __index = kinds[kind],
        __call = new_instance,
        __tostring = function() return "plugin class " .. spec.name end,
    })
end

function plugin.scanner(spec) return make_class("scanner", spec) end
function plugin.prepender(spec) return make_class("prepender", spec) end
function plugin.appender(spec) return make_class("appender", spec) end

-- The kind ("scanner", "prepender", "appender") of a class or instance, or nil.
function plugin.kind_of(value)
    if type(value) ~= "table" then return nil end
    local kind = value.kind
    if kinds[kind] then return kind end
    return nil
end

return plugin

-- fuglu.loader: turns [main] plugins / prependers / appenders into plugin instances.
--
-- An entry is `name` or `name(section)` (characters A-Z a-z 0-9 . _ -; no spaces). The name is
-- resolved through [PluginAlias] (value: a plugin file name), then looked up as <dir>/<file>.lua
-- in each [main] plugindir entry first and then in <luadir>/plugins/. The file returns a plugin
-- class (fuglu.plugin); the class's option defaults are filled into its config section before the
-- instance is made.

local plugin = require "fuglu.plugin"

local loader = {}

local ENTRY_ALLOWED = "^[A-Za-z0-9._-]+$"

-- "a, b(sec)" -> { {name="a"}, {name="b", section="sec"} }; raises "Invalid Plugin Syntax: x".
function loader.parse_list(text)
    local entries = {}
    for raw in tostring(text or ""):gmatch("[^,]+") do
        local entry = raw:gsub("^%s+", ""):gsub("%s+$", "")
        if entry ~= "" then
            local name, section = entry:match("^([^()]+)%(([^()]+)%)$")
            if name == nil then name = entry end
            if not name:match(ENTRY_ALLOWED) or (section and not section:match(ENTRY_ALLOWED)) then
                error("Invalid Plugin Syntax: " .. entry, 0)
            end
            entries[#entries + 1] = { name = name, section = section }
        end
    end
    return entries
end

local function file_exists(path)
    local f = io.open(path, "r")
    if f then f:close() return true end
    return false
end

-- The directories searched, in order: options.plugindirs, [main] plugindir, <luadir>/plugins.
function loader.search_dirs(config, options)
    local dirs, seen = {}, {}
    local function add(dir)
        dir = dir:gsub("/+$", "")
        if dir ~= "" and not seen[dir] then
            seen[dir] = true
            dirs[#dirs + 1] = dir
        end
    end
    for _, dir in ipairs(options.plugindirs or {}) do add(dir) end
    for _, dir in ipairs(config:getlist("main", "plugindir", "")) do add(dir) end
    add((options.luadir or "lua") .. "/plugins")
    return dirs
end

-- Puts the plugin directories (except <luadir>/plugins, whose names would shadow nothing useful)
-- on package.path, first, so that a plugin can `require` its own helper modules that live beside
-- it: `require "myhelper"` finds <plugindir>/myhelper.lua. Each directory is added once.
function loader.add_module_path(config, options)
    local builtin = (options.luadir or "lua") .. "/plugins"
    local dirs = loader.search_dirs(config, options)
    for i = #dirs, 1, -1 do
        local dir = dirs[i]
        local entry = dir .. "/?.lua;" .. dir .. "/?/init.lua;"
        if dir ~= builtin and not package.path:find(entry, 1, true) then
            package.path = entry .. package.path
        end
    end
end

-- Fuglu plugins for scanners whose vendors ended them: named, instead of "not found".
loader.DISCONTINUED = {
    fprot = "F-Prot Antivirus was discontinued by its vendor (end of life July 2021)",
    fprotplugin = "F-Prot Antivirus was discontinued by its vendor (end of life July 2021)",
    drweb = "Fuglu's Dr.Web (drwebd) plugin was experimental and never worked on Python 3",
    drwebplugin = "Fuglu's Dr.Web (drwebd) plugin was experimental and never worked on Python 3",
}

-- The path of a plugin file, or nil and "plugin 'x' not found (looked in: ...)".
function loader.find(name, config, options)
    local file = config:get("PluginAlias", name, name)
    local dirs = loader.search_dirs(config, options)
    local tried = {}
    for _, dir in ipairs(dirs) do
        local path = dir .. "/" .. file .. ".lua"
        if file_exists(path) then return path end
        tried[#tried + 1] = path
    end
    local via = file ~= name and (" (alias of '" .. file .. "')") or ""
    local dead = loader.DISCONTINUED[file:lower()] or loader.DISCONTINUED[name:lower()]
    if dead then
        return nil, string.format("plugin '%s'%s: %s; no plugin for it is shipped (use clamav, icap or sssp)",
            name, via, dead)
    end
    return nil, string.format("plugin '%s'%s not found (looked in: %s)", name, via, table.concat(tried, ", "))
end

-- Loads (once per path and cache) the class a plugin file returns.
local function load_class(path, cache)
    if cache[path] then return cache[path] end
    local chunk, err = loadfile(path)
    if chunk == nil then return nil, err end
    local ok, class = xpcall(chunk, debug.traceback)
    if not ok then return nil, tostring(class) end
    if plugin.kind_of(class) == nil then
        return nil, path .. ": the file must return a plugin class (plugin.scanner{...}, plugin.prepender{...} or plugin.appender{...})"
    end
    cache[path] = class
    return class
end

-- One instance for an entry {name=, section=} of the given kind; nil, error on failure.
function loader.load_plugin(entry, kind, config, options, cache)
    cache = cache or {}
    local path, err = loader.find(entry.name, config, options)
    if path == nil then return nil, err end
    local class
    class, err = load_class(path, cache)
    if class == nil then return nil, err end
    if plugin.kind_of(class) ~= kind then
        return nil, string.format("%s: %s is a %s, but is listed where a %s is expected",
            path, class.name, plugin.kind_of(class), kind)
    end
    local section = entry.section or class.name
    plugin.fill_defaults(class, config, section)
    local ok, instance = xpcall(function() return class(config, section) end, debug.traceback)
    if not ok then return nil, path .. ": cannot create the plugin: " .. tostring(instance) end
    instance.entry = entry.name   -- as written in plugins= (an alias or a file name)
    return instance
end

local LISTS = {
    { option = "prependers", kind = "prepender", key = "prependers" },
    { option = "plugins", kind = "scanner", key = "scanners" },
    { option = "appenders", kind = "appender", key = "appenders" },
}

-- All three lists: returns {prependers=, scanners=, appenders=} and an array of error strings
-- (empty when everything loaded).
function loader.load_all(config, options)
    options = options or {}
    loader.add_module_path(config, options)
    local result = { prependers = {}, scanners = {}, appenders = {} }
    local errors = {}
    local cache = {}
    for _, list in ipairs(LISTS) do
        local ok, entries = pcall(loader.parse_list, config:get("main", list.option, ""))
        if not ok then
            errors[#errors + 1] = string.format("[main] %s: %s", list.option, tostring(entries))
        else
            for _, entry in ipairs(entries) do
                local instance, err = loader.load_plugin(entry, list.kind, config, options, cache)
                if instance then
                    local t = result[list.key]
                    t[#t + 1] = instance
                else
                    errors[#errors + 1] = err
                end
            end
        end
    end
    return result, errors
end

return loader

-- fuglu.controller: `mc`, the main controller object of the interactive consoles (--console and
-- the netconsole). It lives in the controller's own Lua state on the main thread.
--
--   local mc, errors = require("fuglu.controller").new(raw_config, options, host)
--
--   mc.config                    the configuration (fuglu.config: mc.config:get("main", "plugins"))
--   mc.plugins                   the loaded plugins by name ("debug", "TestActionPlugin", ...)
--   mc.chain                     {prependers=, scanners=, appenders=}
--   mc.generation                the plugin generation the workers run (1: no reload yet)
--   mc:stats()                   the counters (nil when the stats module is not running)
--   mc:workers()                 the worker threads and their states
--   mc:run(file[, from[, rcpt]]) the whole chain on a message file: {decision=, message=, tags=, ...}
--   mc:run_plugin(name, file[, from[, rcpt]])  one scanner or prepender on a message file
--   mc:help()                    this list
--
-- Nothing run from here re-injects, bounces or runs appenders: the result is only shown. host
-- holds the C side's functions (stats, workers, pool) and may be empty (specs).

local message_lib = require "fuglu_message"
local actions = require "fuglu.actions"
local config_module = require "fuglu.config"
local pipeline = require "fuglu.pipeline"
local suspect_module = require "fuglu.suspect"
local worker = require "fuglu.worker"

local controller = {}

local MC = {}
MC.__index = MC

local HELP = [==[
mc.config                          configuration: mc.config:get("main", "plugins")
mc.plugins                         the loaded plugins by name
mc.chain                           {prependers=, scanners=, appenders=}
mc.generation                      the current plugin generation
mc:stats()                         message counters and per-plugin numbers
mc:workers()                       worker threads and what they are doing
mc:run(file [, from [, rcpt]])     run the whole chain on a message file (no re-inject)
mc:run_plugin(name, file [, from [, rcpt]])   run one plugin on a message file
mc:help()                          this text]==]

-- Builds mc: loads every plugin like a worker does. Returns mc, or nil and the load errors.
function controller.new(raw_config, options, host)
    options = options or {}
    local w, errors = worker.new(raw_config, options)
    if w == nil then return nil, errors end
    local plugins = {}
    for _, key in ipairs({ "prependers", "scanners", "appenders" }) do
        for _, p in ipairs(w.chain[key]) do
            plugins[tostring(p)] = p
            if p.name and plugins[p.name] == nil then plugins[p.name] = p end
            if p.section and plugins[p.section] == nil then plugins[p.section] = p end
            if p.entry and plugins[p.entry] == nil then plugins[p.entry] = p end
        end
    end
    return setmetatable({
        config = w.config,
        chain = w.chain,
        plugins = plugins,
        generation = 1,
        host = host or {},
        worker = w,
    }, MC), {}
end

function MC:help()
    return HELP
end

function MC:stats()
    if self.host.stats then return self.host.stats() end
    return nil
end

function MC:workers()
    if self.host.workers then return self.host.workers() end
    return {}
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then error("cannot read " .. tostring(path) .. ": " .. tostring(err), 3) end
    local data = f:read("*a")
    f:close()
    return data
end

local function make_suspect(self, file, from, rcpt)
    local message, err = message_lib.from_string(read_file(file))
    if message == nil then error("cannot parse " .. file .. ": " .. tostring(err), 3) end
    local s = suspect_module.new{
        from = from or "sender@fuglu.local",
        recipients = { rcpt or "recipient@fuglu.local" },
        message = message,
        checker = self.config:get("main", "address_compliance_checker", "Default"),
    }
    s.tags.incomingport = 0
    s.tags.console = true
    return s
end

local function verdict(s, decision, message, decider)
    local headers = {}
    for i, h in ipairs(s.added_headers) do headers[i] = h.name .. ": " .. h.value end
    local tags = {}
    for k, v in pairs(s.tags) do
        if k ~= "debugfile" then tags[k] = v end
    end
    return {
        id = s.id,
        decision = actions.actioncode_to_string(decision),
        message = message,
        decided_by = decider and tostring(decider) or nil,
        tags = tags,
        added_headers = headers,
        modified = s:is_modified(),
        suspect = s,                 -- the Suspect object itself (its tags, headers, source)
    }
end

-- The whole chain (prependers, scanners, core headers) on a message file.
function MC:run(file, from, rcpt)
    local s = make_suspect(self, file, from, rcpt)
    local decision, message, decider = pipeline.scan(s, self.chain, self.config, nil)
    return verdict(s, decision, message, decider)
end

-- One plugin by name (see mc.plugins). A prepender shows the plugin list it would leave.
function MC:run_plugin(name, file, from, rcpt)
    local p = self.plugins[name]
    if p == nil then error("no plugin named '" .. tostring(name) .. "' (see mc.plugins)", 2) end
    local s = make_suspect(self, file, from, rcpt)
    if p.kind == "prepender" then
        local list = pipeline.run_prependers(s, { p }, self.chain.scanners, nil)
        local names = {}
        for i, q in ipairs(list) do names[i] = tostring(q) end
        local result = verdict(s, actions.DUNNO, nil, nil)
        result.plugins = names
        return result
    elseif p.kind == "appender" then
        error("'" .. name .. "' is an appender: appenders do not run from the console", 2)
    end
    local decision, message, decider = pipeline.run_scanners(s, { p }, nil)
    return verdict(s, decision, message, decider)
end

-- For specs and the C side: a config object from a raw table.
controller.config = config_module.new

return controller

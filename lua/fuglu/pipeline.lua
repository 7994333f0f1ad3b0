-- fuglu.pipeline: one message through the plugin chain (Fuglu's scansession).
--
--   prependers  each may return a new scanner list for this message
--   scanners    in order; the first code other than DUNNO ends the chain and is the decision
--   core headers  <prefix>Spamstatus, <prefix>Debuginfo, <prefix>Suspect; tag fuglu.scantime
--   log line    [main] logtemplate at INFO as fuglu.SessionHandler
--   appenders   later, after the reply (run_appenders)
--
-- A plugin error never stops the message: it is logged with its traceback, counted in
-- stats.plugin_errors, and the chain goes on (a failed scanner leaves no decisions entry).
-- Every plugin run is also reported to fuglu.monitor (workerlist, per-plugin counters, exceptionlist).

local sys = require "fuglu_sys"
local actions = require "fuglu.actions"
local log = require "fuglu.log"
local monitor = require "fuglu.monitor"
local template = require "fuglu.template"
local trace = require "fuglu.trace"

local pipeline = {}

local session_log = log.logger("fuglu.SessionHandler")

local function count_error(stats)
    if stats then stats.plugin_errors = (stats.plugin_errors or 0) + 1 end
end

local function names_of(list)
    local names = {}
    for i, p in ipairs(list) do names[i] = tostring(p) end
    return names
end

-- Logs which plugins a prepender added or removed (debug).
local function log_list_change(prepender, before, after)
    if not session_log:enabled(10) then return end
    local old, new = {}, {}
    for _, p in ipairs(before) do old[p] = true end
    for _, p in ipairs(after) do new[p] = true end
    for _, p in ipairs(after) do
        if not old[p] then session_log:debug("Prepender %s added plugin: %s", tostring(prepender), tostring(p)) end
    end
    for _, p in ipairs(before) do
        if not new[p] then session_log:debug("Prepender %s removed plugin: %s", tostring(prepender), tostring(p)) end
    end
end

-- Runs the prependers; returns the scanner list to use for this message.
function pipeline.run_prependers(suspect, prependers, scanners, stats)
    local list = {}
    for i, p in ipairs(scanners) do list[i] = p end
    for _, prepender in ipairs(prependers) do
        monitor.running(suspect, prepender)
        local ok, result = xpcall(prepender.pluginlist, debug.traceback, prepender, suspect, list)
        if not ok then
            count_error(stats)
            monitor.plugin_failed(prepender, suspect, result)
            session_log:error("Prepender %s failed: %s", tostring(prepender), tostring(result))
        elseif type(result) == "table" then
            log_list_change(prepender, list, result)
            trace.prepender_done(suspect, prepender, list, result)
            list = result
        elseif result ~= nil then
            session_log:error("Prepender %s returned %s instead of a plugin list; ignored",
                tostring(prepender), type(result))
        end
    end
    return list
end

-- Runs the scanners. Returns decision, message, the deciding plugin (or nil).
function pipeline.run_scanners(suspect, scanners, stats)
    for _, scanner in ipairs(scanners) do
        trace.plugin_start(suspect, scanner)
        monitor.running(suspect, scanner)
        local started = sys.monotonic()
        local ok, code, message = xpcall(scanner.examine, debug.traceback, scanner, suspect)
        local seconds = sys.monotonic() - started
        trace.plugin_done(suspect, scanner, ok, code, message, seconds)
        if not ok then
            count_error(stats)
            monitor.plugin_failed(scanner, suspect, code)
            session_log:error("Plugin %s failed: %s", tostring(scanner), tostring(code))
        else
            if code == nil then code = actions.DUNNO end
            monitor.plugin_done(scanner, seconds, code)
            local scantimes, decisions = suspect.tags.scantimes, suspect.tags.decisions
            scantimes[#scantimes + 1] = { scanner.section, seconds }
            decisions[#decisions + 1] = { scanner.section, code }
            if not actions.is_valid(code) then
                session_log:error("Plugin %s returned invalid message action code: %s. Using DUNNO",
                    tostring(scanner), tostring(code))
            elseif code ~= actions.DUNNO then
                session_log:debug("Plugin %s makes a decision: %s", tostring(scanner),
                    actions.actioncode_to_string(code))
                if message ~= nil then message = tostring(message) end
                return code, message, scanner
            end
        end
    end
    return actions.DUNNO, nil, nil
end

-- The headers the core adds after scanning, and the scan time tag.
function pipeline.add_core_headers(suspect, config, scantime)
    local prefix = config:get("main", "prependaddedheaders")
    if config:getboolean("main", "spamstatusheader") then
        suspect:add_header(prefix .. "Spamstatus", suspect:is_spam() and "YES" or "NO")
    end
    suspect.tags["fuglu.scantime"] = string.format("%.4f", scantime)
    if config:getboolean("main", "debuginfoheader") then
        suspect:add_header(prefix .. "Debuginfo", tostring(suspect))
    end
    if config:getboolean("main", "suspectidheader") then
        suspect:add_header(prefix .. "Suspect", suspect.id)
    end
end

-- The [main] logtemplate line (nil if the template is blank).
function pipeline.log_line(suspect, config)
    local text = config:get("main", "logtemplate")
    if text:match("^%s*$") then return nil end
    return template.apply(text, suspect, suspect:log_values())
end

-- Prependers, scanners, core headers and the log line. Returns decision, message, plugin.
function pipeline.scan(suspect, chain, config, stats)
    local scanners = pipeline.run_prependers(suspect, chain.prependers or {}, chain.scanners or {}, stats)
    trace.plugin_list(suspect, scanners)
    local started = sys.monotonic()
    local decision, message, decider = pipeline.run_scanners(suspect, scanners, stats)
    pipeline.add_core_headers(suspect, config, sys.monotonic() - started)
    trace.headers(suspect)
    local line = pipeline.log_line(suspect, config)
    if line then session_log:info("%s", line) end
    -- str(suspect) renders every tag: only worth it when a debug trace is being written.
    if suspect.tags.debug then suspect:debug(tostring(suspect)) end
    return decision, message, decider
end

-- Runs the appenders with the final decision; errors are logged and counted.
function pipeline.run_appenders(suspect, appenders, decision, stats)
    for _, appender in ipairs(appenders) do
        monitor.running(suspect, appender)
        local started = sys.monotonic()
        local ok, err = xpcall(appender.process, debug.traceback, appender, suspect, decision)
        trace.appender(suspect, appender, ok, err, sys.monotonic() - started)
        if not ok then
            count_error(stats)
            monitor.plugin_failed(appender, suspect, err)
            session_log:error("Appender %s failed: %s", tostring(appender), tostring(err))
        end
    end
end

return pipeline

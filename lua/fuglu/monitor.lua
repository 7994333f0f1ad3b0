-- fuglu.monitor: what the pipeline and the worker report to the daemon's statistics.
--
--   monitor.running(suspect, plugin)          workerlist: "<suspect> : Running Plugin <plugin>"
--   monitor.plugin_done(plugin, seconds, code) one plugin run (per-plugin counters and times)
--   monitor.plugin_failed(plugin, suspect, traceback)  counted, and kept for exceptionlist
--   monitor.core_error(id, traceback)         an unexpected error outside the plugins
--   monitor.message_done(result, suspect)     the message counters (stats, MRTG, metrics)
--   monitor.reinject_failed()                 the outgoing host did not take a message
--
-- All of it goes to the C module fuglu_stats, which records for the worker thread (or process) that
-- calls it and does nothing elsewhere (busted, tools, the main thread): whether a call counts is
-- decided when it is made, not when this module is loaded, because a state may be loaded on one
-- thread and run on another.

local actions = require "fuglu.actions"

local monitor = {}

local present, stats = pcall(require, "fuglu_stats")
if not present then stats = nil end

local function name_of(plugin) return tostring(plugin) end

function monitor.running(suspect, plugin)
    if stats then stats.running(tostring(suspect), name_of(plugin)) end
end

function monitor.plugin_done(plugin, seconds, code)
    if stats then stats.plugin_run(name_of(plugin), seconds, tonumber(code)) end
end

function monitor.plugin_failed(plugin, suspect, traceback)
    if not stats then return end
    local info = string.format("plugin %s, message %s", name_of(plugin), suspect and tostring(suspect.id) or "?")
    stats.plugin_error(name_of(plugin), info, tostring(traceback))
end

function monitor.core_error(id, traceback)
    if stats then stats.exception(string.format("message %s", tostring(id)), tostring(traceback)) end
end

function monitor.reinject_failed()
    if stats then stats.reinject_failed() end
end

-- result: the reply table of Worker:handle; suspect: nil when none was built.
function monitor.message_done(result, suspect)
    if not stats or not stats.enabled() then return end
    local action = result.action
    local t = {
        action = action,
        deferred = result.code == nil or result.code >= 400 and result.code < 500,
    }
    if suspect then
        t.spam = suspect:is_spam()
        t.highspam = suspect:is_highspam()
        t.virus = suspect:is_virus()
        t.blocked = suspect:is_blocked()
        t.scantime = tonumber(suspect.tags["fuglu.scantime"])
        t.reinjected = result.code == 250 and (action == actions.DUNNO or action == actions.ACCEPT)
            and not suspect.tags.noreinject
    end
    stats.message_done(t)
end

return monitor

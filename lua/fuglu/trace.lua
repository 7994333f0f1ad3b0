-- fuglu.trace: the debug trace of one message (the debug port, lua/plugins/debug.lua).
--
-- Every function is a no-op unless the message is being debugged (tags.debug and an open
-- tags.debugfile), so the pipeline calls them unconditionally at no real cost. Lines go through
-- suspect:debug(), which writes "<iso time> <text>" to the message's own trace file; plugins and
-- the rule file code add their own lines the same way.
--
--   trace.open(suspect, path)              opens the per-message trace file, starts tracing
--   trace.plugin_list(suspect, list)       "Will run plugins: [A, B]" (after the prependers)
--   trace.prepender_done(suspect, p, before, after)   list edits of a prepender
--   trace.plugin_start(suspect, plugin)    "Running plugin A"
--   trace.plugin_done(suspect, plugin, ok, code, message, seconds)
--   trace.headers(suspect)                 the headers that would be added
--   trace.reply(suspect, result, appenders_run)  the reply; closes unless appenders run later
--   trace.appender(suspect, appender, ok, err, seconds)
--   trace.close(suspect)

local actions = require "fuglu.actions"

local trace = {}

local function active(suspect)
    local tags = suspect and suspect.tags
    return tags ~= nil and tags.debug and tags.debugfile ~= nil
end
trace.active = active

local function names(list)
    local out = {}
    for i, p in ipairs(list or {}) do out[i] = tostring(p) end
    return "[" .. table.concat(out, ", ") .. "]"
end
trace.names = names

-- Opens path for this message's trace (never an existing file: ids are unique). Returns the
-- handle, or nil and the error.
function trace.open(suspect, path)
    local existing = io.open(path, "rb")
    if existing then
        existing:close()
        return nil, path .. ": exists already"
    end
    local file, err = io.open(path, "wb")
    if not file then return nil, err end
    suspect.tags.debug = true
    suspect.tags.debugfile = file
    suspect.tags.debugpath = path
    suspect:debug(string.format("Debug trace of message %s from=<%s> to=%s size=%s port=%s",
        suspect.id, suspect.from_address, table.concat(suspect.recipients, ","),
        tostring(suspect.size), tostring(suspect.tags.incomingport)))
    return file
end

function trace.plugin_list(suspect, list)
    if not active(suspect) then return end
    suspect:debug("Will run plugins: " .. names(list))
end

function trace.prepender_done(suspect, prepender, before, after)
    if not active(suspect) or after == nil or after == before then return end
    suspect:debug(string.format("Prepender %s changed the plugin list: %s -> %s", tostring(prepender),
        names(before), names(after)))
end

function trace.plugin_start(suspect, p)
    if not active(suspect) then return end
    suspect:debug("Running plugin " .. tostring(p))
end

-- ok false: code is the error text.
function trace.plugin_done(suspect, p, ok, code, message, seconds)
    if not active(suspect) then return end
    local took = string.format("(%.4fs)", seconds or 0)
    if not ok then
        suspect:debug(string.format("Plugin %s failed %s: %s", tostring(p), took, tostring(code)))
    elseif code == nil or code == actions.DUNNO then
        suspect:debug(string.format("Plugin %s makes no final decision %s", tostring(p), took))
    elseif not actions.is_valid(code) then
        suspect:debug(string.format("Plugin %s returned an invalid action code %s, using DUNNO %s",
            tostring(p), tostring(code), took))
    else
        suspect:debug(string.format("Plugin %s makes a decision: %s%s %s", tostring(p),
            actions.actioncode_to_string(code),
            message ~= nil and (" message=" .. tostring(message)) or "", took))
    end
end

function trace.headers(suspect)
    if not active(suspect) then return end
    local added = suspect.added_headers or {}
    if #added == 0 then
        suspect:debug("Headers that would be added: none")
        return
    end
    suspect:debug(string.format("Headers that would be added (%d):", #added))
    for _, h in ipairs(added) do suspect:debug("  " .. h.name .. ": " .. h.value) end
end

function trace.close(suspect)
    local tags = suspect and suspect.tags
    if not tags or not tags.debugfile then return end
    local file = tags.debugfile
    tags.debugfile = nil
    pcall(file.close, file)
end

-- The reply and what the tags prevented. Closes the trace unless appenders are still to run.
function trace.reply(suspect, result, appenders_run)
    if not active(suspect) then return end
    local tags = suspect.tags
    suspect:debug(string.format("Reply: %s %s", tostring(result.code), tostring(result.text)))
    if tags.noreinject then suspect:debug("Not re-injected (tag noreinject)") end
    if tags.nobounce then suspect:debug("No bounce will be sent (tag nobounce)") end
    if appenders_run then
        suspect:debug("Appenders will run")
    else
        suspect:debug(tags.noappenders and "Appenders will not run (tag noappenders)" or "No appenders run")
        trace.close(suspect)
    end
end

function trace.appender(suspect, appender, ok, err, seconds)
    if not active(suspect) then return end
    if ok then
        suspect:debug(string.format("Appender %s done (%.4fs)", tostring(appender), seconds or 0))
    else
        suspect:debug(string.format("Appender %s failed: %s", tostring(appender), tostring(err)))
    end
end

return trace

-- ScriptFilter (alias scriptfilter): runs the Lua scripts of scriptdir for every message.
--
-- Every *.lua file of scriptdir runs in alphabetical order. A script sees:
--   suspect, config            the message and the configuration
--   action, message            the verdict so far of this script (DUNNO, "")
--   stop(action, message)      ends the script at once with that verdict
--   debug(msg), info(msg), warn(msg)   logging (debug also goes to the suspect's debug file)
--   DUNNO ACCEPT DELETE REJECT DEFER   the action codes
-- The first script whose final action is not DUNNO decides; otherwise the last script's
-- (DUNNO, message) is returned. A script that fails is logged with file:line and counts as
-- DUNNO. Scripts are compiled once and again whenever the file changes.
--
--   [ScriptFilter]
--   scriptdir = /etc/fuglu/scriptfilter
--   # 10-reject.lua:
--   #   if suspect.from_domain == "spam.example" then stop(REJECT, "go away") end

local actions = require "fuglu.actions"
local plugin = require "fuglu.plugin"
local fs = require "fuglu_fs"

local ScriptFilter = plugin.scanner{
    name = "ScriptFilter",
    description = "This plugin executes scripts found in a specified directory",
    options = {
        scriptdir = { default = "/etc/fuglu/scriptfilter", description = "Dir that contains the scripts (*.lua files)" },
    },
}

local STOP = {}    -- marker of the error stop() raises

function ScriptFilter:init()
    self.compiled = {}    -- path -> {stamp=, chunk=} or {stamp=, err=}
end

-- The script file names of scriptdir, sorted.
function ScriptFilter:scripts()
    local dir = self:get("scriptdir")
    local names, err = fs.listdir(dir)
    if names == nil then return nil, err end
    local out = {}
    for _, name in ipairs(names) do
        if name:match("%.lua$") and name:sub(1, 1) ~= "." then out[#out + 1] = dir .. "/" .. name end
    end
    return out
end

local function stamp_of(path)
    local st = fs.stat(path)
    if st == nil then return nil end
    return string.format("%.9f/%.9f/%d", st.mtime, st.ctime, st.size)
end

-- The compiled chunk of a script (recompiled when it changed), or nil and the error.
function ScriptFilter:chunk(path)
    local stamp = stamp_of(path)
    local entry = self.compiled[path]
    if entry == nil or entry.stamp ~= stamp then
        local f, err = io.open(path, "rb")
        if f == nil then return nil, err end
        local code = f:read("*a")
        f:close()
        local chunk, cerr = loadstring(code, "@" .. path)
        entry = { stamp = stamp, chunk = chunk, err = cerr }
        self.compiled[path] = entry
        if chunk then self.logger:debug("compiled script %s", path) end
    end
    return entry.chunk, entry.err
end

-- Runs one script; returns action, message.
function ScriptFilter:run(path, chunk, suspect)
    local logger = self.logger
    local env
    env = setmetatable({
        suspect = suspect, config = self.config,
        action = actions.DUNNO, message = "",
        DUNNO = actions.DUNNO, ACCEPT = actions.ACCEPT, DELETE = actions.DELETE,
        REJECT = actions.REJECT, DEFER = actions.DEFER,
        stop = function(action, message)
            error({ [STOP] = true, action = action or actions.DUNNO, message = message or "" }, 0)
        end,
        debug = function(msg)
            logger:debug("%s", tostring(msg))
            suspect:debug(tostring(msg))
        end,
        info = function(msg) logger:info("%s", tostring(msg)) end,
        warn = function(msg) logger:warning("%s", tostring(msg)) end,
    }, { __index = _G })
    setfenv(chunk, env)
    local ok, err = pcall(chunk)
    if ok then return env.action, env.message end
    if type(err) == "table" and err[STOP] then return err.action, err.message end
    logger:error("%s: script failed: %s", suspect.id, tostring(err))
    return actions.DUNNO, ""
end

function ScriptFilter:examine(suspect)
    local scripts, err = self:scripts()
    if scripts == nil then
        self.logger:error("scriptdir: %s", tostring(err))
        return actions.DUNNO
    end
    local action, message = actions.DUNNO, ""
    for _, path in ipairs(scripts) do
        local chunk, cerr = self:chunk(path)
        if chunk == nil then
            self.logger:error("%s: script cannot be compiled: %s", suspect.id, tostring(cerr))
        else
            action, message = self:run(path, chunk, suspect)
            if not actions.is_valid(action) then
                self.logger:error("%s: %s set an invalid action %s, using DUNNO", suspect.id, path, tostring(action))
                action = actions.DUNNO
            end
            if action ~= actions.DUNNO then
                self.logger:debug("%s: %s decided %s", suspect.id, path, actions.actioncode_to_string(action))
                break
            end
        end
    end
    if message ~= nil then message = tostring(message) end
    if message == "" then message = nil end
    return action, message
end

function ScriptFilter:lint()
    if not plugin.check_config(self) then return false end
    local scripts, err = self:scripts()
    if scripts == nil then
        print("Script directory: " .. tostring(err))
        return false
    end
    local ok = true
    for _, path in ipairs(scripts) do
        local chunk, cerr = self:chunk(path)
        if chunk == nil then
            print("Script " .. path .. " has an error: " .. tostring(cerr))
            ok = false
        end
    end
    print(string.format("%d script(s) found in %s", #scripts, self:get("scriptdir")))
    return ok
end

return ScriptFilter

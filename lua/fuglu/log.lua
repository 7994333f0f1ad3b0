-- fuglu.log: named loggers on top of the engine's logging (fuglu_log) with Python logging's names
-- and levels.
--
--   local log = require("fuglu.log").logger("fuglu.plugin.MyPlugin")
--   log:info("scanned %s in %.2fs", suspect.id, seconds)
--
-- Arguments are formatted with string.format only when the level is enabled for the name, so debug
-- lines cost nothing in production. A message without arguments is written as it is (no % escaping).

local clog = require "fuglu_log"   -- read at each call: specs and tools replace its functions

local log = {
    DEBUG = 10, INFO = 20, WARNING = 30, ERROR = 40, CRITICAL = 50,
}

local Logger = {}
Logger.__index = Logger

local function format(fmt, ...)
    if select("#", ...) == 0 then return tostring(fmt) end
    if fmt == "%s" and select("#", ...) == 1 and type((...)) == "string" then return (...) end
    local ok, text = pcall(string.format, fmt, ...)
    if ok then return text end
    -- a broken format string must not turn a log call into an error
    local parts = { tostring(fmt) }
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    return table.concat(parts, " ")
end

function Logger:log(level, fmt, ...)
    if clog.enabled(self.name, level) then
        clog.write(self.name, level, format(fmt, ...))
    end
end

function Logger:enabled(level)
    return clog.enabled(self.name, level)
end

function Logger:debug(fmt, ...) self:log(10, fmt, ...) end
function Logger:info(fmt, ...) self:log(20, fmt, ...) end
function Logger:warning(fmt, ...) self:log(30, fmt, ...) end
function Logger:error(fmt, ...) self:log(40, fmt, ...) end
function Logger:critical(fmt, ...) self:log(50, fmt, ...) end

-- Logs at ERROR with a traceback: the error's own when an argument carries one (an error caught
-- with log.pcall, or xpcall(f, debug.traceback)), else the caller's.
--   local ok, err = log.pcall(risky, x)
--   if not ok then self.logger:exception("%s: lookup failed: %s", suspect.id, err) end
function Logger:exception(fmt, ...)
    if clog.enabled(self.name, 40) then
        local text = format(fmt, ...)
        for i = 1, select("#", ...) do
            local v = select(i, ...)
            if type(v) == "string" and v:find("\nstack traceback:", 1, true) then
                clog.write(self.name, 40, text)
                return
            end
        end
        clog.write(self.name, 40, text .. "\n" .. debug.traceback("", 2):gsub("^\n", ""))
    end
end

-- pcall that keeps the traceback of the error in the error text (for Logger:exception).
function log.pcall(f, ...)
    return xpcall(f, function(e) return debug.traceback(tostring(e), 2) end, ...)
end

local cache = {}

-- The logger for a dotted name ("fuglu.SessionHandler", "fuglu.plugin.KillerPlugin").
function log.logger(name)
    local logger = cache[name]
    if logger == nil then
        logger = setmetatable({ name = name }, Logger)
        cache[name] = logger
    end
    return logger
end

return log

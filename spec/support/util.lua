-- Shared spec helpers: fixtures, suspects, configs and log capture.

local clog = require "fuglu_log"
local message_lib = require "fuglu_message"
local suspect = require "fuglu.suspect"
local config = require "fuglu.config"

local util = {}

function util.read(path)
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    return data
end

function util.fixture(name)
    return util.read("spec/fixtures/" .. name)
end

-- A message object from a string (the real or the fake core).
function util.message(source)
    return assert(message_lib.from_string(source))
end

-- A suspect for hello.eml (or source) from sender@ to recipient@unittests.fuglu.org.
function util.suspect(source, from, rcpts)
    return suspect.new{
        from = from or "sender@unittests.fuglu.org",
        recipients = rcpts or { "recipient@unittests.fuglu.org" },
        message = util.message(source or util.fixture("hello.eml")),
    }
end

function util.config(raw)
    return config.new(raw or {})
end

-- Replaces fuglu_log.write / fuglu_log.enabled until restore() and collects {logger, level, text}.
function util.capture_logs()
    local records = {}
    local saved_write, saved_enabled = clog.write, clog.enabled
    clog.write = function(logger, level, text)
        records[#records + 1] = { logger = logger, level = level, text = text }
    end
    clog.enabled = function() return true end
    local capture = { records = records }
    function capture.restore()
        clog.write, clog.enabled = saved_write, saved_enabled
    end
    -- the first record whose text contains needle (plain find), or nil
    function capture.find(needle, level)
        for _, r in ipairs(records) do
            if r.text:find(needle, 1, true) and (level == nil or r.level == level) then return r end
        end
        return nil
    end
    return capture
end

-- A fresh temporary directory (removed by util.rmtree).
function util.tempdir()
    local path = os.tmpname()
    os.remove(path)
    assert(os.execute("mkdir -p '" .. path .. "'"))
    return path
end

function util.rmtree(path)
    if path and path:match("^/tmp/lua_") then os.execute("rm -rf '" .. path .. "'") end
end

function util.write(path, data)
    local f = assert(io.open(path, "wb"))
    f:write(data)
    f:close()
end

return util

-- fuglu.log: Logger:exception logs the traceback of the error it is given (log.pcall keeps it),
-- or the caller's when there is none.
local clog = require "fuglu_log"
local log = require "fuglu.log"

describe("fuglu.log", function()
    local written, orig_write, orig_enabled
    before_each(function()
        written = {}
        orig_write, orig_enabled = clog.write, clog.enabled
        clog.write = function(name, level, text) written[#written + 1] = { name, level, text } end
        clog.enabled = function() return true end
    end)
    after_each(function()
        clog.write, clog.enabled = orig_write, orig_enabled
    end)

    local function deep_failure() error("the lookup broke") end
    local function middle() deep_failure() end

    it("logs the traceback of an error caught with log.pcall", function()
        local ok, err = log.pcall(middle)
        assert.is_false(ok)
        log.logger("fuglu.plugin.X"):exception("failed: %s", err)
        assert.equal(1, #written)
        assert.equal(40, written[1][2])
        local text = written[1][3]
        assert.matches("failed: .*the lookup broke", text)
        assert.matches("stack traceback:", text)
        assert.matches("in function 'deep_failure'", text)   -- where it failed, not where it was logged
        local _, count = text:gsub("stack traceback:", "")
        assert.equal(1, count)
    end)

    it("passes arguments through log.pcall", function()
        assert.same({ true, 5 }, { log.pcall(function(a, b) return a + b end, 2, 3) })
    end)

    it("appends the caller's traceback without an error traceback", function()
        log.logger("fuglu.plugin.X"):exception("plain %d", 7)
        assert.matches("^plain 7\nstack traceback:", written[1][3])
    end)
end)

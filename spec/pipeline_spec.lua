-- fuglu.pipeline: order, early stop, prepender list edits, plugin errors, core headers, log line.

local pipeline = require "fuglu.pipeline"
local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local util = require "support.util"

-- A scanner class whose instances record their call in `calls` and return `result`.
local Recorder = plugin.scanner{ name = "Recorder" }
function Recorder:examine()
    local calls = self.calls
    calls[#calls + 1] = self.section
    if self.fail then error("boom in " .. self.section) end
    return self.code, self.message
end

local function recorder(section, calls, code, message, fail)
    local p = Recorder(util.config{}, section)
    p.calls, p.code, p.message, p.fail = calls, code, message, fail
    return p
end

describe("fuglu.pipeline", function()
    local logs
    before_each(function() logs = util.capture_logs() end)
    after_each(function() logs.restore() end)

    describe("scanners", function()
        it("runs in order and stops at the first decision", function()
            local calls = {}
            local s = util.suspect()
            local list = {
                recorder("A", calls, nil),
                recorder("B", calls, actions.DUNNO),
                recorder("C", calls, actions.REJECT, "go away"),
                recorder("D", calls, actions.ACCEPT),
            }
            local code, message, decider = pipeline.run_scanners(s, list, {})
            assert.same({ "A", "B", "C" }, calls)
            assert.equal(actions.REJECT, code)
            assert.equal("go away", message)
            assert.equal(list[3], decider)
            assert.same({ { "A", 0 }, { "B", 0 }, { "C", 3 } }, s.tags.decisions)
            assert.equal(3, #s.tags.scantimes)
            assert.equal("A", s.tags.scantimes[1][1])
            assert.is_true(s.tags.scantimes[1][2] >= 0)
        end)

        for _, name in ipairs({ "ACCEPT", "DELETE", "DEFER" }) do
            it("stops on " .. name, function()
                local calls = {}
                local code = pipeline.run_scanners(util.suspect(), {
                    recorder("A", calls, actions[name]), recorder("B", calls, actions.DUNNO) }, {})
                assert.same({ "A" }, calls)
                assert.equal(actions[name], code)
            end)
        end

        it("goes on after an error, without a decisions entry, and counts it", function()
            local calls, stats = {}, { plugin_errors = 0 }
            local s = util.suspect()
            local code = pipeline.run_scanners(s, {
                recorder("A", calls, nil, nil, true), recorder("B", calls, actions.DUNNO) }, stats)
            assert.same({ "A", "B" }, calls)
            assert.equal(actions.DUNNO, code)
            assert.same({ { "B", 0 } }, s.tags.decisions)
            assert.equal(1, stats.plugin_errors)
            local record = logs.find("Plugin Recorder(A) failed", 40)
            assert.truthy(record)
            assert.truthy(record.text:find("boom in A", 1, true))
            assert.truthy(record.text:find("stack traceback", 1, true))
        end)

        it("treats an invalid code as DUNNO and logs it", function()
            local calls = {}
            local code = pipeline.run_scanners(util.suspect(), {
                recorder("A", calls, 17), recorder("B", calls, actions.DUNNO) }, {})
            assert.same({ "A", "B" }, calls)
            assert.equal(actions.DUNNO, code)
            assert.truthy(logs.find("invalid message action code: 17. Using DUNNO"))
        end)
    end)

    describe("prependers", function()
        local function prepender(fn)
            local P = plugin.prepender{ name = "P" }
            P.pluginlist = fn
            return P(util.config{})
        end

        it("can remove and replace plugins; each sees the previous result", function()
            local calls = {}
            local a, b, c = recorder("A", calls), recorder("B", calls), recorder("C", calls)
            local seen
            local list = pipeline.run_prependers(util.suspect(), {
                prepender(function(_, _, l) return { l[1], l[3] } end),        -- remove B
                prepender(function(_, _, l) seen = #l; return nil end),         -- unchanged
                prepender(function(_, _, l) return { l[2], b } end),            -- replace A by B, reorder
            }, { a, b, c }, {})
            assert.equal(2, seen)
            assert.same({ c, b }, list)
        end)

        it("works on a copy of the configured list", function()
            local scanners = { recorder("A", {}) }
            pipeline.run_prependers(util.suspect(), {
                prepender(function(_, _, l) table.remove(l, 1); return l end) }, scanners, {})
            assert.equal(1, #scanners)
        end)

        it("goes on after an error and counts it", function()
            local stats = { plugin_errors = 0 }
            local a = recorder("A", {})
            local list = pipeline.run_prependers(util.suspect(), {
                prepender(function() error("prepender exploded") end),
                prepender(function(_, _, l) return { l[1], l[1] } end),
            }, { a }, stats)
            assert.same({ a, a }, list)
            assert.equal(1, stats.plugin_errors)
            assert.truthy(logs.find("prepender exploded", 40))
        end)
    end)

    describe("scan", function()
        it("adds the core headers in order and logs the summary line", function()
            local cfg = util.config{ main = {
                spamstatusheader = "1", debuginfoheader = "1", suspectidheader = "1",
                prependaddedheaders = "X-Test-",
                logtemplate = "Suspect ${id} spam=${spam} decision=${decision}",
            } }
            local s = util.suspect()
            s:add_header("X-Plugin", "first")
            s.tags.spam.X = true
            local code = pipeline.scan(s, { prependers = {}, scanners = { recorder("A", {}, actions.DUNNO) } }, cfg, {})
            assert.equal(actions.DUNNO, code)
            local names = {}
            for i, h in ipairs(s.added_headers) do names[i] = h.name end
            assert.same({ "X-Plugin", "X-Test-Spamstatus", "X-Test-Debuginfo", "X-Test-Suspect" }, names)
            assert.equal("YES", s.added_headers[2].value)
            assert.equal("Suspect " .. s.id .. ":", s.added_headers[3].value:sub(1, 41))
            assert.equal(s.id, s.added_headers[4].value)
            assert.matches("^%d+%.%d%d%d%d$", s.tags["fuglu.scantime"])
            local line = logs.find("Suspect " .. s.id .. " spam=yes decision=DUNNO", 20)
            assert.truthy(line)
            assert.equal("fuglu.SessionHandler", line.logger)
        end)

        it("adds no optional headers and no line when switched off", function()
            local cfg = util.config{ main = { spamstatusheader = "0", suspectidheader = "no", logtemplate = "  " } }
            local s = util.suspect()
            pipeline.scan(s, { scanners = {} }, cfg, {})
            assert.same({}, s.added_headers)
            assert.is_nil(logs.find("Suspect " .. s.id))
        end)
    end)

    describe("appenders", function()
        it("run in order with the decision; an error is logged and counted", function()
            local got = {}
            local A = plugin.appender{ name = "A" }
            function A:process(_, decision)
                got[#got + 1] = self.section .. ":" .. decision
                if self.section == "bad" then error("appender broke") end
            end
            local stats = { plugin_errors = 0 }
            pipeline.run_appenders(util.suspect(), { A(util.config{}, "bad"), A(util.config{}, "good") }, actions.DELETE, stats)
            assert.same({ "bad:2", "good:2" }, got)
            assert.equal(1, stats.plugin_errors)
            assert.truthy(logs.find("Appender A(bad) failed", 40))
        end)
    end)
end)

-- MessageDebugger (lua/plugins/debug.lua) and fuglu.trace: the debug port's per-message trace.

local worker = require "fuglu.worker"
local actions = require "fuglu.actions"
local trace = require "fuglu.trace"
local util = require "support.util"

local BASE = "From: a@example.org\r\nSubject: test\r\n"

local function make_worker(tmp, main, debug_options, reinject_calls)
    local raw = {
        main = { prependers = "debug", plugins = "testaction", appenders = "testappender",
            incomingport = "10025,10888" },
        debug = { debugfile = tmp .. "/fuglu_debug.log" },
        TestAppender = { outfile = tmp .. "/appender.log" },
    }
    for k, v in pairs(main or {}) do raw.main[k] = v end
    for k, v in pairs(debug_options or {}) do raw.debug[k] = v end
    local w, errors = worker.new(raw, {
        luadir = "lua", plugindirs = { "spec/plugins" },
        reinject = function(t)
            reinject_calls[#reinject_calls + 1] = t
            return true, 250, "2.0.0 Ok: queued"
        end,
    })
    assert(w, errors and table.concat(errors, "\n"))
    return w
end

local function job(id, port, headers)
    return {
        id = id, from = "sender@example.org", rcpts = { "rcpt@example.net" }, mail_params = "",
        rcpt_params = { "" }, helo = "client.example.org", peer_addr = "127.0.0.1", local_port = port,
        protocol = "smtp", message = util.message((headers or "") .. BASE .. "\r\nHello World!\r\n"),
    }
end

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
end

describe("MessageDebugger", function()
    local logs, tmp, calls
    before_each(function()
        logs = util.capture_logs()
        tmp = util.tempdir()
        calls = {}
    end)
    after_each(function()
        logs.restore()
        util.rmtree(tmp)
    end)

    it("traces a debug-port message, does not re-inject it and skips the appenders", function()
        local w = make_worker(tmp, nil, nil, calls)
        local id = string.rep("1a", 16)
        local j = job(id, 10888, "X-Test-Action: REJECT no thanks\r\n")
        local r = w:handle(j)
        w:after(j)
        assert.equal(550, r.code)
        local path = tmp .. "/fuglu_debug.log." .. id
        local text = util.read(path)
        assert.matches("Will run plugins: %[TestActionPlugin%]", text)
        assert.matches("Running plugin TestActionPlugin", text)
        assert.matches("Plugin TestActionPlugin makes a decision: REJECT message=no thanks %(%d+%.%d+s%)", text)
        assert.matches("Headers that would be added", text)
        assert.matches("X%-Fuglu%-Suspect: " .. id, text)
        assert.matches("Suspect " .. id .. ": from=sender@example.org", text)
        assert.matches("Reply: 550 no thanks", text)
        assert.matches("Appenders will not run %(tag noappenders%)", text)
        assert.is_false(exists(tmp .. "/appender.log"))
        assert.matches(id .. " " .. path, util.read(tmp .. "/fuglu_debug.log"))
    end)

    it("answers DUNNO without re-injecting (Fuglu's reply)", function()
        local w = make_worker(tmp, nil, nil, calls)
        local id = string.rep("2b", 16)
        local j = job(id, 10888)
        local r = w:handle(j)
        w:after(j)
        assert.same({ code = 250, action = actions.DUNNO, id = id,
            text = "FUGLU REQUEUE(" .. id .. "): message not re-injected by plugin request" }, r)
        assert.equal(0, #calls)
        local text = util.read(tmp .. "/fuglu_debug.log." .. id)
        assert.matches("Plugin TestActionPlugin makes no final decision", text)
        assert.matches("Not re%-injected %(tag noreinject%)", text)
        assert.is_false(exists(tmp .. "/appender.log"))
    end)

    it("leaves other ports alone", function()
        local w = make_worker(tmp, nil, nil, calls)
        local id = string.rep("3c", 16)
        local j = job(id, 10025)
        local r = w:handle(j)
        w:after(j)
        assert.equal(250, r.code)
        assert.equal(1, #calls)
        assert.is_false(exists(tmp .. "/fuglu_debug.log." .. id))
        assert.matches(id .. " DUNNO", util.read(tmp .. "/appender.log"))
    end)

    it("honours noreinject=0 and noappender=0, and traces the appenders", function()
        local w = make_worker(tmp, nil, { noreinject = "0", noappender = "0" }, calls)
        local id = string.rep("4d", 16)
        local j = job(id, 10888)
        local r = w:handle(j)
        w:after(j)
        assert.equal("FUGLU REQUEUE(" .. id .. "): 2.0.0 Ok: queued", r.text)
        assert.equal(1, #calls)
        assert.matches(id .. " DUNNO", util.read(tmp .. "/appender.log"))
        local text = util.read(tmp .. "/fuglu_debug.log." .. id)
        assert.matches("Appender TestAppender done", text)
    end)

    it("keeps traces of two messages apart", function()
        local w = make_worker(tmp, nil, nil, calls)
        local a, b = string.rep("5e", 16), string.rep("6f", 16)
        w:handle(job(a, 10888, "X-Test-Action: DELETE\r\n"))
        w:handle(job(b, 10888))
        local ta, tb = util.read(tmp .. "/fuglu_debug.log." .. a), util.read(tmp .. "/fuglu_debug.log." .. b)
        assert.matches("DELETE", ta)
        assert.is_nil(ta:find(b, 1, true))
        assert.is_nil(tb:find(a, 1, true))
        assert.matches("makes no final decision", tb)
    end)

    it("records a failing plugin in the trace", function()
        local w = make_worker(tmp, nil, nil, calls)
        local id = string.rep("7a", 16)
        w:handle(job(id, 10888, "X-Test-Error: yes\r\n"))
        assert.matches("Plugin TestActionPlugin failed %(%d+%.%d+s%): .*error requested by X%-Test%-Error",
            util.read(tmp .. "/fuglu_debug.log." .. id))
    end)

    it("includes the plugins' own suspect:debug() lines", function()
        local w = make_worker(tmp, nil, nil, calls)
        local id = string.rep("8b", 16)
        local j = job(id, 10888)
        local rawdebug = w.chain.scanners[1].examine
        w.chain.scanners[1].examine = function(self, s)
            s:debug("rule matched: field=Subject value=test regex=^test$")
            return rawdebug(self, s)
        end
        w:handle(j)
        assert.matches("rule matched: field=Subject value=test regex=%^test%$",
            util.read(tmp .. "/fuglu_debug.log." .. id))
    end)

    describe("lint", function()
        local function lint_output(incomingport)
            local w = make_worker(tmp, { incomingport = incomingport }, nil, calls)
            local printed = {}
            local saved = _G.print
            _G.print = function(...) printed[#printed + 1] = table.concat({ ... }, " ") end
            local ok, result = pcall(w.chain.prependers[1].lint, w.chain.prependers[1])
            _G.print = saved
            assert(ok, result)
            return result, table.concat(printed, "\n")
        end

        it("passes when debugport is among incomingport", function()
            assert.is_true(lint_output("smtp:127.0.0.1:10025, smtp:127.0.0.1:10888"))
        end)

        it("fails when debugport is not among incomingport", function()
            local ok, out = lint_output("10025,10099")
            assert.is_false(ok)
            assert.matches("Debug port 10888 not specified in %[main%]::incomingport", out)
        end)
    end)

    it("is called Debugger and reads [debug]", function()
        local w = make_worker(tmp, nil, nil, calls)
        local p = w.chain.prependers[1]
        assert.equal("Debugger", tostring(p))
        assert.equal("debug", p.section)
    end)
end)

describe("fuglu.trace", function()
    it("does nothing for a message that is not debugged", function()
        local s = util.suspect()
        trace.plugin_list(s, { "A" })
        trace.plugin_start(s, "A")
        trace.reply(s, { code = 250, text = "ok" }, false)
        assert.is_nil(s.tags.debug)
    end)

    it("refuses to reuse an existing file", function()
        local tmp = util.tempdir()
        local path = tmp .. "/trace"
        util.write(path, "old")
        local file, err = trace.open(util.suspect(), path)
        assert.is_nil(file)
        assert.matches("exists already", err)
        assert.equal("old", util.read(path))
        util.rmtree(tmp)
    end)
end)

describe("fuglu.console and fuglu.controller", function()
    local console = require "fuglu.console"
    local controller = require "fuglu.controller"
    local logs
    before_each(function() logs = util.capture_logs() end)
    after_each(function() logs.restore() end)

    local function make_mc()
        local mc, errors = controller.new({ main = { plugins = "testaction", prependers = "testprepender" } },
            { luadir = "lua", plugindirs = { "spec/plugins" } })
        assert(mc, errors and table.concat(errors, "\n"))
        return mc
    end

    it("evaluates expressions, statements, multi-line chunks and keeps errors inside", function()
        local s = console.session({ generation = 1 })
        assert.same({ "ok", "1" }, { s:eval("mc.generation") })
        assert.same({ "more", "" }, { s:eval("for i = 1, 2 do") })
        assert.same({ "ok", "1\n2" }, { s:eval("print(i) end") })
        assert.same({ "ok", "" }, { s:eval("x = 20") })
        assert.same({ "ok", "42" }, { s:eval("x * 2 + 2") })
        local status, out = s:eval("error('boom')")
        assert.equal("error", status)
        assert.matches("error: .*boom", out)
        status, out = s:eval("this is not lua")
        assert.equal("error", status)
        assert.is_nil(rawget(_G, "x"))
    end)

    it("expands tables readably", function()
        local text = console.pretty({ b = { 1, 2 }, a = "x", ["in"] = true })
        assert.equal('{\n  a = "x",\n  b = {\n    1,\n    2,\n  },\n  ["in"] = true,\n}', text)
        local t = {}
        t.self = t
        assert.matches("<cycle", console.pretty(t))
    end)

    it("lists the plugins by name and runs the chain or one plugin on a file", function()
        local mc = make_mc()
        assert.truthy(mc.plugins.TestActionPlugin)
        assert.truthy(mc.plugins.TestPrepender)
        local tmp = util.tempdir()
        local path = tmp .. "/m.eml"
        util.write(path, "X-Test-Action: REJECT not here\r\nSubject: x\r\n\r\nbody\r\n")
        local r = mc:run(path)
        assert.equal("REJECT", r.decision)
        assert.equal("not here", r.message)
        assert.equal("TestActionPlugin", r.decided_by)
        assert.equal("REJECT not here", r.suspect:get_message_rep():header("X-Test-Action")[1])   -- the object
        -- by its plugins= entry too, and the Suspect comes back
        local one = mc:run_plugin("testaction", path)
        assert.equal("REJECT", one.decision)
        assert.equal(mc.plugins.testaction, mc.plugins.TestActionPlugin)
        assert.is_true(type(one.suspect.tags) == "table")
        util.write(path, "X-Test-Skip: TestActionPlugin\r\nSubject: x\r\n\r\nbody\r\n")
        assert.same({}, mc:run_plugin("TestPrepender", path).plugins)
        assert.equal("DUNNO", mc:run(path).decision)
        assert.has_error(function() mc:run_plugin("nothere", path) end)
        assert.has_error(function() mc:run(tmp .. "/missing.eml") end)
        util.rmtree(tmp)
    end)
end)

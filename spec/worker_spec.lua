-- fuglu.worker: decisions to replies, re-inject requests, trash, compliance, appenders.

local worker = require "fuglu.worker"
local actions = require "fuglu.actions"
local util = require "support.util"

local BASE = "From: a@example.org\r\nSubject: test\r\n"

-- A fake fuglu_job.reinject that records its argument and answers as told.
local function fake_reinject(answer)
    local calls = {}
    local fn = function(t, j)
        t.job = j   -- the job itself: the envelope's parameters and XFORWARD come from it
        calls[#calls + 1] = t
        return answer[1], answer[2], answer[3], answer[4]
    end
    return fn, calls
end

local function make_worker(main, extra, reinject)
    local raw = { main = { plugins = "testaction", appenders = "testappender" } }
    for k, v in pairs(main or {}) do raw.main[k] = v end
    for section, values in pairs(extra or {}) do raw[section] = values end
    local w, errors = worker.new(raw, { luadir = "lua", plugindirs = { "spec/plugins" }, reinject = reinject })
    assert(w, errors and table.concat(errors, "\n"))
    return w
end

local function job(headers, fields)
    local j = {
        id = string.rep("ab", 16),
        from = "sender@example.org",
        rcpts = { "rcpt@example.net" },
        mail_params = "SIZE=100",
        rcpt_params = { "" },
        helo = "client.example.org",
        peer_addr = "192.0.2.7",
        local_port = 10025,
        protocol = "smtp",
        message = util.message((headers or "") .. BASE .. "\r\nHello World!\r\n"),
    }
    for k, v in pairs(fields or {}) do j[k] = v end
    return j
end

describe("fuglu.worker", function()
    local logs, outfile
    before_each(function()
        logs = util.capture_logs()
        outfile = os.tmpname()
    end)
    after_each(function()
        logs.restore()
        os.remove(outfile)
    end)

    it("reports plugin load errors instead of a worker", function()
        local w, errors = worker.new({ main = { plugins = "nothere" } }, { luadir = "lua" })
        assert.is_nil(w)
        assert.equal(1, #errors)
        assert.matches("plugin 'nothere' not found", errors[1])
    end)

    describe("DUNNO / ACCEPT", function()
        it("re-injects with the envelope from the job, the core headers, then answers 250", function()
            local reinject, calls = fake_reinject({ true, 250, "2.0.0 Ok: queued as ABC" })
            local w = make_worker({ outgoinghost = "127.0.0.1", outgoingport = "10026", outgoinghelo = "filter.test" },
                { TestAppender = { outfile = outfile } }, reinject)
            local j = job(nil, { rcpts = { "rcpt@example.net", "two@example.net" }, rcpt_params = { "", "NOTIFY=NEVER" } })
            local r = w:handle(j)
            assert.same({ code = 250, text = "FUGLU REQUEUE(" .. j.id .. "): 2.0.0 Ok: queued as ABC", action = actions.DUNNO, id = j.id }, r)
            assert.equal(1, #calls)
            local t = calls[1]
            assert.equal("127.0.0.1", t.host)
            assert.equal(10026, t.port)
            assert.equal("filter.test", t.helo)
            assert.equal(60, t.timeout)
            assert.equal("sender@example.org", t.from)
            assert.same({ "rcpt@example.net", "two@example.net" }, t.rcpts)
            assert.equal(j, t.job)
            -- not copied into the request: fuglu_job.reinject reads them from the job
            assert.is_nil(t.mail_params)
            assert.is_nil(t.rcpt_params)
            assert.is_nil(t.xforward)
            assert.equal(j.message, t.message)
            assert.is_nil(t.source)
            assert.equal("X-Fuglu-Spamstatus: NO\r\nX-Fuglu-Suspect: " .. j.id .. "\r\n", t.prefix)
            w:after(j)
            assert.equal(j.id .. " DUNNO\n", util.read(outfile))
        end)

        it("answers ACCEPT like DUNNO and hands the job (with the client's XFORWARD) to the re-injection", function()
            local reinject, calls = fake_reinject({ true, 250, "2.0.0 Ok" })
            local w = make_worker(nil, { TestAppender = { outfile = outfile } }, reinject)
            local xf = { name = "mx.example.org", addr = "198.51.100.1", helo = "mx", proto = "ESMTP" }
            local j = job("X-Test-Action: ACCEPT\r\n", { xforward = xf })
            local r = w:handle(j)
            assert.equal(250, r.code)
            assert.equal(actions.ACCEPT, r.action)
            assert.equal(xf, calls[1].job.xforward)
        end)

        it("sends the modified source and ${injecthost}", function()
            local reinject, calls = fake_reinject({ true, 250, "queued" })
            local w = make_worker({ outgoinghost = "${injecthost}", spamstatusheader = "0", suspectidheader = "0" },
                { TestAppender = { outfile = outfile } }, reinject)
            local Modifier = require("fuglu.plugin").scanner{ name = "Modifier" }
            function Modifier:examine(s) s:add_header("X-Added", "yes", true) s:add_header("X-Later", "1") end
            table.insert(w.chain.scanners, Modifier(w.config))
            local j = job()
            w:handle(j)
            assert.equal("192.0.2.7", calls[1].host)
            assert.is_nil(calls[1].message)
            assert.equal("X-Added: yes\r\n" .. j.message:bytes(), calls[1].source)
            assert.equal("X-Later: 1\r\n", calls[1].prefix)
        end)

        it("honours noreinject and reinjectoriginal", function()
            local reinject, calls = fake_reinject({ true, 250, "queued" })
            local w = make_worker(nil, { TestAppender = { outfile = outfile } }, reinject)
            local r = w:handle(job("X-Test-Tag: noreinject=1\r\n"))
            assert.equal(0, #calls)
            assert.equal(250, r.code)
            assert.matches("message not re%-injected by plugin request$", r.text)
            w:handle(job("X-Test-Tag: reinjectoriginal=1\r\n"))
            assert.equal(1, #calls)
            assert.equal("", calls[1].prefix)
            assert.truthy(calls[1].message)
        end)

        it("defers on a temporary re-inject failure and skips the appenders", function()
            local reinject = fake_reinject({ false, 421, "4.3.2 busy", true })
            local w = make_worker(nil, { TestAppender = { outfile = outfile } }, reinject)
            local j = job()
            local r = w:handle(j)
            assert.equal(451, r.code)
            assert.equal("4.3.0 internal problem - message deferred", r.text)
            w:after(j)
            assert.equal("", util.read(outfile))
            assert.truthy(logs.find("DEFERRED " .. j.id, 30))
        end)

        it("passes a permanent downstream rejection on, never 250", function()
            local reinject = fake_reinject({ false, 550, "5.7.1 no thanks", false })
            local w = make_worker(nil, { TestAppender = { outfile = outfile } }, reinject)
            local r = w:handle(job())
            assert.equal(554, r.code)
            assert.equal("5.7.1 no thanks", r.text)
        end)

        it("treats a connection failure without code as temporary", function()
            local reinject = fake_reinject({ false, nil, "connection refused" })
            local w = make_worker(nil, nil, reinject)
            assert.equal(451, w:handle(job()).code)
        end)
    end)

    describe("other decisions", function()
        local w, calls
        before_each(function()
            local reinject
            reinject, calls = fake_reinject({ true, 250, "queued" })
            w = make_worker(nil, { TestAppender = { outfile = outfile } }, reinject)
        end)

        local cases = {
            { "DELETE", 250, "OK: (" .. string.rep("ab", 16) .. ")" },
            { "DELETE gone", 250, "gone" },
            { "DISCARD", 250, "OK: (" .. string.rep("ab", 16) .. ")" },
            { "REJECT", 550, "Rejected by content scanner" },
            { "REJECT 5.7.1 go away now", 550, "5.7.1 go away now" },
            { "DEFER", 451, "internal problem - message deferred" },
            { "DEFER later please", 451, "later please" },
        }
        for _, case in ipairs(cases) do
            it("answers " .. case[1] .. " with " .. case[2], function()
                local r = w:handle(job("X-Test-Action: " .. case[1] .. "\r\n"))
                assert.equal(case[2], r.code)
                assert.equal(case[3], r.text)
                assert.equal(0, #calls)
            end)
        end

        it("runs the appenders after DELETE and REJECT but not after DEFER", function()
            local j1, j2, j3 = job("X-Test-Action: DELETE\r\n", { id = "id1" }),
                job("X-Test-Action: REJECT\r\n", { id = "id2" }), job("X-Test-Action: DEFER\r\n", { id = "id3" })
            for _, j in ipairs({ j1, j2, j3 }) do w:handle(j) w:after(j) end
            assert.equal("id1 DELETE\nid2 REJECT\n", util.read(outfile))
        end)

        it("skips the appenders for tag noappenders", function()
            local j = job("X-Test-Tag: noappenders=1\r\n")
            w:handle(j)
            w:after(j)
            assert.equal("", util.read(outfile))
        end)

        it("answers 451 for an invalid action from the plugin chain's result", function()
            local r = w:answer(job(), nil, 9, nil, nil)
            assert.equal(451, r.code)
            assert.truthy(logs.find("Invalid Message action Code: 9. Using DEFER"))
        end)
    end)

    describe("errors", function()
        it("a scanner error still delivers and counts", function()
            local reinject, calls = fake_reinject({ true, 250, "queued" })
            local w = make_worker(nil, { TestAppender = { outfile = outfile } }, reinject)
            local r = w:handle(job("X-Test-Error: yes\r\nX-Test-Action: REJECT\r\n"))
            assert.equal(250, r.code)
            assert.equal(1, #calls)
            assert.equal(1, w.stats.plugin_errors)
        end)

        it("an internal error answers 451 and never raises", function()
            local w = make_worker(nil, nil, function() error("reinject exploded") end)
            local r = w:handle(job())
            assert.equal(451, r.code)
            assert.equal("internal problem - message deferred", r.text)
            assert.truthy(logs.find("reinject exploded", 40))
            assert.equal(451, w:handle(nil).code)
            w:after(nil)
        end)

        it("an appender error is logged, not raised", function()
            local w = make_worker(nil, { TestAppender = { outfile = "/nonexistent/dir/file" } }, fake_reinject({ true, 250, "q" }))
            local j = job()
            w:handle(j)
            w:after(j)
            assert.truthy(logs.find("Appender TestAppender failed", 40))
        end)
    end)

    describe("address compliance", function()
        local cases = {
            { "defer", 451 }, { "reject", 550 }, { "discard", 250 },
        }
        for _, case in ipairs(cases) do
            it("answers a bad recipient with " .. case[1], function()
                local reinject, calls = fake_reinject({ true, 250, "q" })
                local w = make_worker({ address_compliance_fail_action = case[1] }, nil, reinject)
                local r = w:handle(job(nil, { rcpts = { "no-at-sign" } }))
                assert.equal(case[2], r.code)
                assert.equal("invalid sender or recipient address", r.text)
                assert.equal(0, #calls)
            end)
        end

        it("uses the configured message and accepts the null sender", function()
            local w = make_worker({ address_compliance_fail_message = "bad address" }, nil, fake_reinject({ true, 250, "q" }))
            assert.equal("bad address", w:handle(job(nil, { from = "a@b@c" })).text)
            assert.equal(250, w:handle(job(nil, { from = "" })).code)
        end)
    end)

    it("sets incomingport and logs multiple recipients at debug", function()
        local seen
        local w = make_worker(nil, nil, fake_reinject({ true, 250, "q" }))
        local Probe = require("fuglu.plugin").scanner{ name = "Probe" }
        function Probe:examine(s) seen = s.tags.incomingport end
        table.insert(w.chain.scanners, Probe(w.config))
        w:handle(job(nil, { rcpts = { "a@x.org", "b@x.org" } }))
        assert.equal(10025, seen)
        local record = logs.find("Message from sender@example.org has 2 recipients. Plugins supporting only one recipient will see: a@x.org")
        assert.equal(10, record.level)
    end)

    describe("trash", function()
        it("keeps a copy of deleted messages and logs it", function()
            local dir = util.tempdir()
            local w = make_worker({ trashdir = dir .. "/trash", trashlog = "1" }, nil, fake_reinject({ true, 250, "q" }))
            local j = job("X-Test-Action: DELETE\r\n")
            w:handle(j)
            local copy = util.read(dir .. "/trash/" .. j.id .. "-0001")
            assert.equal(j.message:bytes(), copy)
            local line = util.read(dir .. "/trash/00-fuglutrash.log")
            assert.matches("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d sender@example.org rcpt@example.net TestActionPlugin "
                .. (dir .. "/trash/" .. j.id .. "-0001"):gsub("%p", "%%%0") .. "\n$", line)
            w:handle(j)
            assert.truthy(util.read(dir .. "/trash/" .. j.id .. "-0002"))
            util.rmtree(dir)
        end)
    end)
end)

-- The scanner plugins' parsers and helpers without a service (the real clamd and spamd are in
-- spec/integration/test_clamav.py and test_spamassassin.py), and fuglu.bounce.

local util = require "support.util"
local config_module = require "fuglu.config"
local suspect_module = require "fuglu.suspect"
local actions = require "fuglu.actions"
local message = require "fuglu_message"

local logs
before_each(function() logs = util.capture_logs() end)
after_each(function() logs.restore() end)

local function config(t)
    local c = config_module.new(t or {})
    return c
end

local function suspect(source, from)
    return suspect_module.new{ from = from == nil and "sender@example.org" or from,
        recipients = { "rcpt@example.net" }, source = source or "Subject: x\r\n\r\nbody\r\n" }
end

describe("ClamavPlugin reply parsing", function()
    local ClamavPlugin = dofile("lua/plugins/clamav.lua")
    it("reads OK, FOUND and ERROR", function()
        assert.same({}, ClamavPlugin.parse_reply("stream: OK\0"))
        assert.same({ stream = "Eicar-Test-Signature" }, ClamavPlugin.parse_reply("stream: Eicar-Test-Signature FOUND\0"))
        local r, err = ClamavPlugin.parse_reply("INSTREAM size limit exceeded. ERROR\0")
        assert.is_nil(r)
        assert.matches("unexpected clamd reply", err)
        r, err = ClamavPlugin.parse_reply("stream: Can't allocate memory ERROR")
        assert.is_nil(r)
        assert.matches("clamd: stream: Can't allocate memory ERROR", err, 1, true)
        r, err = ClamavPlugin.parse_reply("UNKNOWN COMMAND")
        assert.is_nil(r)
        assert.matches("UNKNOWN COMMAND", err)
    end)
    it("keeps names with spaces and colons", function()
        assert.same({ stream = "Win.Test.EICAR_HDB-1 x:y" }, ClamavPlugin.parse_reply("stream: Win.Test.EICAR_HDB-1 x:y FOUND"))
    end)
end)

describe("fuglu.avscanner", function()
    local av = require "fuglu.avscanner"
    local plugin = require "fuglu.plugin"
    local P = plugin.scanner{ name = "TestAV", options = {
        maxsize = { default = "100" }, virusaction = { default = "DEFAULTVIRUSACTION" },
        problemaction = { default = "DEFER" }, rejectmessage = { default = "threat: ${virusname} in ${infectedfile}" } } }
    P.enginename = "TestEngine"
    local function instance(values)
        local c = config(values)
        plugin.fill_defaults(P, c)
        return P(c)
    end
    it("tags a hit and answers virusaction with the template", function()
        local p = instance({ virus = { defaultvirusaction = "REJECT" } })
        local s = suspect()
        local code, msg = av.report(p, s, { ["a.exe"] = "Bad.Thing" })
        assert.equal(actions.REJECT, code)
        assert.equal("threat: Bad.Thing in a.exe", msg)
        assert.is_true(s.tags.virus.TestEngine)
        assert.same({ ["a.exe"] = "Bad.Thing" }, s.tags["TestEngine.virus"])
        assert.same({ ["a.exe"] = "Bad.Thing" }, s.tags["TestAV.virus"])
        assert.is_true(s:is_virus())
    end)
    it("tags a clean message false", function()
        local s = suspect()
        assert.equal(actions.DUNNO, av.report(instance(), s, {}))
        assert.is_false(s.tags.virus.TestEngine)
        assert.is_false(s:is_virus())
    end)
    it("skips messages over maxsize and maps problemaction", function()
        local p = instance()
        assert.is_true(av.too_big(p, suspect("Subject: x\r\n\r\n" .. string.rep("y", 200))))
        assert.is_false(av.too_big(p, suspect()))
        assert.equal(actions.DEFER, (av.problem(p, suspect(), "down")))
        local p2 = instance({ TestAV = { problemaction = "nonsense" } })
        assert.equal(actions.DEFER, (av.problem(p2, suspect(), "down")))
    end)
    it("makes an EICAR message GMime can read", function()
        local msg = message.from_string(av.eicar_message())
        local found
        for _, part in ipairs(msg:mime()) do
            if part.filename == "eicar.com" then found = msg:part_payload(part.index) end
        end
        assert.equal(av.EICAR, found)
        assert.equal(68, #av.EICAR)
    end)
end)

describe("SAPlugin spamd replies", function()
    local SAPlugin = dofile("lua/plugins/spamassassin.lua")
    it("parses the status line and headers by name", function()
        local r = SAPlugin.parse_response("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 7.5 / 5.0\r\nContent-length: 4\r\n\r\nbody")
        assert.equal("SPAMD/1.1 0 EX_OK", r.status)
        assert.equal("True ; 7.5 / 5.0", r.headers.spam)
        assert.equal("4", r.headers["content-length"])
        assert.equal("body", r.body)
        -- order does not matter
        r = SAPlugin.parse_response("SPAMD/1.1 0 EX_OK\r\nContent-length: 4\r\nSpam: False ; 1.0 / 5.0\r\n\r\nbody")
        assert.equal("False ; 1.0 / 5.0", r.headers.spam)
    end)
    it("refuses an error status", function()
        local r, err = SAPlugin.parse_response("SPAMD/1.0 76 Bad header line: x\r\n\r\n")
        assert.is_nil(r)
        assert.matches("Bad header line", err)
        assert.is_nil((SAPlugin.parse_response("garbage")))
    end)
    it("reads the Spam line", function()
        local spam, score, req = SAPlugin.parse_spam_line("True ; 1000.0 / 5.0")
        assert.is_true(spam)
        assert.equal(1000, score)
        assert.equal(5, req)
        spam, score = SAPlugin.parse_spam_line("False ; -1.2 / 5.0")
        assert.is_false(spam)
        assert.equal(-1.2, score)
        assert.is_nil(SAPlugin.parse_spam_line("nonsense"))
    end)
    it("strips a message to its text parts, cut to maxsize", function()
        local src = "From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"X\"\r\n\r\n" ..
            "--X\r\nContent-Type: text/plain\r\n\r\nhello text\r\n" ..
            "--X\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nattached text\r\n" ..
            "--X\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" ..
            string.rep("QUJD", 500) .. "\r\n--X--\r\n"
        local out = SAPlugin.strip(message.from_string(src), 100000, "BND")
        assert.matches("Subject: s\r\n", out, 1, true)
        assert.matches("hello text", out, 1, true)
        assert.is_nil(out:find("attached text", 1, true))
        assert.is_nil(out:find("QUJD", 1, true))
        assert.matches('boundary="BND"', out, 1, true)
        assert.equal(1, select(2, out:gsub("Content%-Type: multipart", "")))
        assert.equal(49, #SAPlugin.strip(message.from_string(src), 50, "BND"))
    end)
end)

describe("fuglu.bounce", function()
    local bounce = require "fuglu.bounce"
    local sent, saved
    before_each(function()
        sent = {}
        saved = bounce.transport
        bounce.transport = function(t) sent[#sent + 1] = t return true, 250, "2.0.0 Ok" end
    end)
    after_each(function() bounce.transport = saved end)

    local function cfg(extra)
        local t = { main = { outgoinghost = "127.0.0.9", outgoingport = "10099", outgoinghelo = "me.test" } }
        for k, v in pairs(extra or {}) do t.main[k] = v end
        return config(t)
    end

    it("fills the template, adds the missing headers and sends from <>", function()
        local s = suspect()
        assert.is_true(bounce.send_template_string(cfg(), s, s.from_address,
            "To: ${from_address}\nSubject: Blocked attachment\n\nYour message to ${to_address}: ${blockinfo}\n",
            { blockinfo = "evil.exe" }))
        assert.equal(1, #sent)
        local t = sent[1]
        assert.equal("", t.from)
        assert.same({ "sender@example.org" }, t.rcpts)
        assert.equal("127.0.0.9", t.host)
        assert.equal(10099, t.port)
        assert.equal("me.test", t.helo)
        local head, body = t.source:match("^(.-)\r\n\r\n(.*)$")
        assert.matches("^To: sender@example.org\r\nSubject: Blocked attachment\r\n", head)
        assert.matches("\r\nFrom: <MAILER%-DAEMON@", head)
        assert.matches("\r\nAuto%-Submitted: auto%-generated\r\n", head)
        assert.matches("\r\nDate: %a%a%a, %d%d %a%a%a %d%d%d%d ", head)
        assert.matches("\r\nMessage%-ID: <.+@.+>", head)
        assert.matches("charset=utf%-8", head)
        assert.equal(1, select(2, ("\n" .. head):gsub("\nTo: ", "")))
        assert.equal("Your message to rcpt@example.net: evil.exe\r\n", body)
        assert.is_nil(t.source:find("[^\r]\n"))
    end)
    it("never bounces to the null sender, with nobounce or disablebounces", function()
        local s = suspect(nil, "")
        local ok, why = bounce.send_template_string(cfg(), s, "", "Subject: x\n\nbody", {})
        assert.is_nil(ok)
        assert.equal("empty sender", why)
        s = suspect()
        s.tags.nobounce = true
        ok, why = bounce.send_template_string(cfg(), s, s.from_address, "Subject: x\n\nbody", {})
        assert.equal("nobounce tag", why)
        ok, why = bounce.send_template_string(cfg({ disablebounces = "1" }), suspect(), "x@y.z", "Subject: x\n\nbody", {})
        assert.equal("disablebounces", why)
        assert.equal(0, #sent)
    end)
    it("reports a refusing downstream and a missing template", function()
        bounce.transport = function() return false, 550, "5.1.1 no such user" end
        local ok, err = bounce.send_template_string(cfg(), suspect(), "x@y.z", "Subject: x\n\nbody", {})
        assert.is_nil(ok)
        assert.matches("550 5.1.1 no such user", err, 1, true)
        ok, err = bounce.send_template_file(cfg(), suspect(), "x@y.z", "/nonexistent/tmpl", {})
        assert.is_nil(ok)
        assert.matches("cannot read the bounce template", err)
    end)
end)

describe("RspamdPlugin", function()
    local RspamdPlugin = dofile("lua/plugins/rspamd.lua")
    it("reads rspamd's /checkv2 answer", function()
        local r = RspamdPlugin.parse_result('{"is_skipped":false,"score":7.5,"required_score":15.0,"action":"add header",' ..
            '"symbols":{"A":{"name":"A","score":7.0},"B":{"name":"B","score":0.5}},"subject":"[SPAM] x",' ..
            '"messages":{"smtp_message":"go away"}}')
        assert.equal("add header", r.action)
        assert.equal(7.5, r.score)
        assert.equal(15, r.required)
        assert.same({ A = 7.0, B = 0.5 }, r.symbols)
        assert.equal("[SPAM] x", r.subject)
        assert.equal("go away", r.message)
    end)
    it("refuses what is not an answer", function()
        assert.matches("no JSON", select(2, RspamdPlugin.parse_result("<html>")))
        assert.matches("rspamd: bad request", select(2, RspamdPlugin.parse_result('{"error":"bad request"}')))
        assert.matches("no action or score", select(2, RspamdPlugin.parse_result('{"score":1}')))
    end)
    it("maps each rspamd action through its option", function()
        local plugin = require "fuglu.plugin"
        local c = config({ spam = { defaultlowspamaction = "DUNNO", defaulthighspamaction = "REJECT" } })
        plugin.fill_defaults(RspamdPlugin, c)
        local p = RspamdPlugin(c)
        local function verdict(action, score)
            p.ask = function() return { action = action, score = score or 1, required = 15, symbols = {} } end
            local s = suspect()
            local code = p:examine(s)
            return code, s
        end
        local code, s = verdict("reject", 20)
        assert.equal(actions.REJECT, code)
        assert.is_true(s.tags.highspam.Rspamd)
        code, s = verdict("add header", 8)
        assert.equal(actions.DUNNO, code)
        assert.is_true(s.tags.spam.Rspamd)
        assert.is_false(s.tags.highspam.Rspamd)
        code, s = verdict("soft reject")
        assert.equal(actions.DEFER, code)
        assert.is_false(s.tags.spam.Rspamd)
        code, s = verdict("greylist")
        assert.equal(actions.DUNNO, code)
        assert.is_false(s.tags.spam.Rspamd)
        code, s = verdict("no action", -1)
        assert.equal(actions.DUNNO, code)
        assert.equal(-1, s.tags["Rspamd.score"])
        assert.equal("X-Rspamd-Status", s.added_headers[1].name)
        assert.equal("No, score=-1.00 required=15.00 action=no action", s.added_headers[1].value)
    end)
end)

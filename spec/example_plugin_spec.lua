-- The example plugin of doc/plugins.md (kept as spec/plugins/subjectkeyword.lua): it works, and
-- the document shows exactly that file.

local util = require "support.util"
local worker = require "fuglu.worker"
local actions = require "fuglu.actions"

local MESSAGE = "From: a@example.org\r\nSubject: You are a LOTTERY WIN ner\r\n\r\nbody\r\n"

local function make_worker(section)
    local raw = { main = { plugins = "subjectkeyword" }, SubjectKeywordPlugin = section }
    local w, errors = worker.new(raw, { luadir = "lua", plugindirs = { "spec/plugins" },
        reinject = function() return true, 250, "2.0.0 Ok: queued" end })
    assert(w, errors and table.concat(errors, "\n"))
    return w
end

local function job(source)
    return { id = string.rep("0", 32), from = "a@example.org", rcpts = { "b@example.net" },
        helo = "h", peer_addr = "127.0.0.1", local_port = 10025, message = util.message(source) }
end

describe("example plugin SubjectKeywordPlugin", function()
    local logs
    before_each(function() logs = util.capture_logs() end)
    after_each(function() logs.restore() end)

    it("rejects a matching subject with the templated message", function()
        local w = make_worker{ keywords = "viagra, lottery win", action = "reject" }
        local r = w:handle(job(MESSAGE))
        assert.equal(550, r.code)
        assert.equal('subject contains "lottery win"', r.text)
    end)

    it("tags and adds a header when the action is DUNNO", function()
        local sent
        local w = make_worker{ keywords = "lottery" }
        w.reinject = function(t) sent = t return true, 250, "queued" end
        local r = w:handle(job(MESSAGE))
        assert.equal(250, r.code)
        assert.truthy(sent.prefix:find("X-Subject-Keyword: lottery\r\n", 1, true))
        assert.truthy(sent.prefix:find("X-Fuglu-Spamstatus: YES\r\n", 1, true))
    end)

    it("lets other mail through", function()
        local w = make_worker{ keywords = "viagra", action = "REJECT" }
        assert.equal(actions.DUNNO, w:handle(job("Subject: hello\r\n\r\nx\r\n")).action)
    end)

    it("lints a bad action", function()
        local w = make_worker{ action = "maybe" }
        local saved, printed = _G.print, {}
        _G.print = function(text) printed[#printed + 1] = text end
        local ok = w.chain.scanners[1]:lint()
        _G.print = saved
        assert.is_false(ok)
        assert.matches("'maybe' is not an action", printed[1])
    end)

    it("is shown verbatim in doc/plugins.md", function()
        local doc = util.read("doc/plugins.md")
        local code = util.read("spec/plugins/subjectkeyword.lua")
        assert.truthy(doc:find("```lua\n" .. code .. "```", 1, true), "doc/plugins.md must contain spec/plugins/subjectkeyword.lua")
    end)
end)

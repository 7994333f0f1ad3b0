-- The rule-driven plugins through the Lua worker: skip, fraction, actionoverride, archive,
-- scriptfilter (the daemon-level tests are spec/integration/test_rules.py).

local util = require "support.util"
local worker = require "fuglu.worker"
local actions = require "fuglu.actions"

local function make_worker(raw)
    local w, errors = worker.new(raw, { luadir = "lua", plugindirs = { "spec/plugins" },
        reinject = function() return true, 250, "2.0.0 Ok: queued" end })
    assert(w, errors and table.concat(errors, "\n"))
    return w
end

local function job(from, source)
    return { id = string.rep("0", 32), from = from or "sender@unittests.fuglu.org",
        rcpts = { "recipient@unittests.fuglu.org" }, helo = "h", peer_addr = "127.0.0.1",
        local_port = 10025, message = util.message(source or util.fixture("rules/helloworld.eml")) }
end

describe("rule plugins", function()
    local logs, dir
    before_each(function()
        logs = util.capture_logs()
        dir = util.tempdir()
    end)
    after_each(function()
        logs.restore()
        util.rmtree(dir)
    end)

    it("skip removes the plugins named by matching rules (class names and aliases)", function()
        util.write(dir .. "/skip.regex", "@incomingport ^10025$ KillerPlugin\nsubject nomatch testaction\n")
        local w = make_worker{ main = { prependers = "skip", plugins = "killer,testaction" },
            PluginSkipper = { filterfile = dir .. "/skip.regex" } }
        local r = w:handle(job())
        assert.equal(250, r.code)      -- KillerPlugin (DELETE) skipped
        assert.matches("REQUEUE", r.text)
        util.write(dir .. "/skip2.regex", "@incomingport ^10099$ KillerPlugin\n")
        w = make_worker{ main = { prependers = "skip", plugins = "killer" },
            PluginSkipper = { filterfile = dir .. "/skip2.regex" } }
        r = w:handle(job())
        assert.matches("^OK: %(", r.text)   -- not skipped: deleted
    end)

    it("fraction keeps only the listed plugins when a rule matches", function()
        util.write(dir .. "/fraction.regex", "to_domain ^unittests\\.fuglu\\.org$ testaction\n")
        local w = make_worker{ main = { prependers = "fraction", plugins = "killer,testaction" },
            PluginFraction = { filterfile = dir .. "/fraction.regex" } }
        local r = w:handle(job())
        assert.matches("REQUEUE", r.text)
        util.write(dir .. "/fraction.regex", "to_domain ^other\\.example$ testaction\n")
        w = make_worker{ main = { prependers = "fraction", plugins = "killer,testaction" },
            PluginFraction = { filterfile = dir .. "/fraction.regex" } }
        r = w:handle(job())
        assert.matches("^OK: %(", r.text)   -- no match: list unchanged, KillerPlugin deletes
    end)

    it("actionoverride: action with message, REDIRECT, invalid action", function()
        util.write(dir .. "/actions.regex", table.concat({
            "envelope_from ^bad@ REJECT we do not want your mail",
            "envelope_from ^redirect@ REDIRECT other@example.net",
            "envelope_from ^weird@ FROBNICATE x",
            "envelope_from ^discard@ discard",
        }, "\n"))
        local w = make_worker{ main = { plugins = "actionoverride" },
            ActionOverridePlugin = { actionrules = dir .. "/actions.regex" } }
        local r = w:handle(job("bad@example.org"))
        assert.equal(550, r.code)
        assert.equal("we do not want your mail", r.text)
        local sent
        w.reinject = function(t) sent = t return true, 250, "queued" end
        r = w:handle(job("redirect@example.org"))
        assert.equal(250, r.code)
        assert.same({ "other@example.net" }, sent.rcpts)
        r = w:handle(job("weird@example.org"))
        assert.equal(actions.DUNNO, r.action)
        assert.truthy(logs.find("invalid action 'FROBNICATE'"))
        r = w:handle(job("discard@example.org"))
        assert.equal(actions.DELETE, r.action)
    end)

    it("archive writes the original bytes to the templated path", function()
        util.write(dir .. "/archive.regex", "to_domain unittests yes\n")
        local w = make_worker{ main = { plugins = "archive" }, ArchivePlugin = {
            archiverules = dir .. "/archive.regex", archivedir = dir .. "/arch",
            subdirtemplate = "${to_domain}/${from_domain}", filenametemplate = "${id}.eml", chmod = "640" } }
        local j = job()
        local r = w:handle(j)
        local path = dir .. "/arch/unittests.fuglu.org/unittests.fuglu.org/" .. r.id .. ".eml"
        assert.equal(util.fixture("rules/helloworld.eml"), util.read(path))
        local st = require("fuglu_fs").stat(path)
        assert.equal(tonumber("640", 8), st.mode)
    end)

    it("archive refuses a subdirectory that leaves archivedir (.. and symlinks)", function()
        util.write(dir .. "/archive.regex", "to_domain unittests\n")
        os.execute("mkdir -p '" .. dir .. "/arch' '" .. dir .. "/outside' && ln -s '" .. dir .. "/outside' '" .. dir .. "/arch/link'")
        for _, sub in ipairs({ "../outside", "link", "${@sub}" }) do
            local w = make_worker{ main = { plugins = "archive" }, ArchivePlugin = {
                archiverules = dir .. "/archive.regex", archivedir = dir .. "/arch",
                subdirtemplate = sub, filenametemplate = "x.eml" } }
            w:handle(job())
            assert.is_nil(io.open(dir .. "/outside/x.eml", "r"), sub)
            assert.truthy(io.open(dir .. "/arch/x.eml", "r"), sub)
            os.remove(dir .. "/arch/x.eml")
        end
        assert.truthy(logs.find("leaves the archive directory"))
    end)

    it("archive: 'no' argument, no match and debug messages are not archived", function()
        util.write(dir .. "/archive.regex", "envelope_from ^sender@ no\nto_domain unittests\n")
        local w = make_worker{ main = { plugins = "archive" }, ArchivePlugin = {
            archiverules = dir .. "/archive.regex", archivedir = dir .. "/arch", subdirtemplate = "",
            filenametemplate = "x.eml" } }
        w:handle(job())
        assert.is_nil(io.open(dir .. "/arch/x.eml", "r"))
        local plugin = w.chain.scanners[1]
        local s = util.suspect(util.fixture("rules/helloworld.eml"), "other@example.org")
        s.tags.debug = true
        plugin:examine(s)
        assert.is_nil(io.open(dir .. "/arch/x.eml", "r"))
        s.tags.debug = nil
        plugin:examine(s)
        assert.truthy(io.open(dir .. "/arch/x.eml", "r"))
    end)

    it("scriptfilter runs scripts in order, stop() decides, errors count as DUNNO", function()
        os.execute("mkdir -p '" .. dir .. "/scripts'")
        util.write(dir .. "/scripts/00-broken.lua", "local x = nil\nx.y = 1\n")
        util.write(dir .. "/scripts/10-reject.lua", [[
if suspect.from_domain == "unittests.fuglu.org" then
    stop(REJECT, "rejected")
end
action = DUNNO
message = "accepted"
]])
        util.write(dir .. "/scripts/20-never.lua", "stop(DEFER, 'should not run for unittests')\n")
        util.write(dir .. "/scripts/notascript.txt", "stop(DEFER)\n")
        local w = make_worker{ main = { plugins = "scriptfilter" }, ScriptFilter = { scriptdir = dir .. "/scripts" } }
        local r = w:handle(job())
        assert.equal(550, r.code)
        assert.equal("rejected", r.text)
        assert.truthy(logs.find("00-broken.lua:2"))
        r = w:handle(job("someone@example.org"))
        assert.equal(451, r.code)
        assert.equal("should not run for unittests", r.text)
        -- changed scripts are picked up
        util.write(dir .. "/scripts/20-never.lua", "action = DUNNO -- changed, longer than before\n")
        r = w:handle(job("someone@example.org"))
        assert.equal(250, r.code)
    end)

    it("lint reports rule-file errors with file:line", function()
        util.write(dir .. "/actions.regex", "subject (broken REJECT\n")
        local w = make_worker{ main = { plugins = "actionoverride" },
            ActionOverridePlugin = { actionrules = dir .. "/actions.regex" } }
        local printed = {}
        local saved = _G.print
        _G.print = function(line) printed[#printed + 1] = line end
        local ok = w.chain.scanners[1]:lint()
        _G.print = saved
        assert.is_false(ok)
        assert.matches("lineno 1", printed[1])
    end)
end)

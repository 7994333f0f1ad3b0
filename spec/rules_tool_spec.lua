-- build/fuglu_suspectfilter: output compared with a golden file, -D trace, errors and exit codes.

local util = require "support.util"

local TOOL = "build/fuglu_suspectfilter"

local function run(args)
    local p = io.popen(TOOL .. " " .. args .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("*a")
    p:close()
    local body, rc = out:match("^(.*)rc=(%d+)\n$")
    return body, tonumber(rc)
end

local available = io.open(TOOL, "r")
if available then available:close() end

describe("fuglu_suspectfilter", function()
    if not available then
        pending(TOOL .. " not built")
        return
    end

    it("prints what the golden file holds", function()
        local out, rc = run("spec/fixtures/rules/headertest.regex spec/fixtures/rules/helloworld.eml")
        assert.equal(0, rc)
        assert.equal(util.fixture("rules/headertest.golden"), out)
    end)

    it("-D traces every rule and value", function()
        local out, rc = run("spec/fixtures/rules/headertest.regex spec/fixtures/rules/helloworld.eml -D")
        assert.equal(0, rc)
        assert.matches("DEBUG:fuglu.suspectfilter:spec/fixtures/rules/headertest.regex:3 Subject testsubj: NO MATCH value 'Hello world!'", out, 1, true)
        assert.matches("headertest.regex:6 to_domain unittests\\.fuglu\\.org: MATCH value 'unittests.fuglu.org'", out, 1, true)
    end)

    it("a missing file is a clear error with exit 1", function()
        local out, rc = run("spec/fixtures/rules/headertest.regex /nonexistent.eml")
        assert.equal(1, rc)
        assert.equal("File not found: /nonexistent.eml\n", out)
        out, rc = run("/nonexistent.regex spec/fixtures/rules/helloworld.eml")
        assert.equal(1, rc)
        assert.equal("File not found: /nonexistent.regex\n", out)
    end)

    it("no arguments print the usage with exit 1", function()
        local out, rc = run("")
        assert.equal(1, rc)
        assert.matches("^usage: fuglu_suspectfilter", out)
    end)

    it("a file that is not a message is an error with exit 1", function()
        local dir = util.tempdir()
        util.write(dir .. "/empty.eml", "")
        util.write(dir .. "/garbage.eml", "\n\nno headers here\n")
        local out, rc = run("spec/fixtures/rules/headertest.regex " .. dir .. "/empty.eml")
        local out2, rc2 = run("spec/fixtures/rules/headertest.regex " .. dir .. "/garbage.eml")
        util.rmtree(dir)
        assert.equal(1, rc)
        assert.matches("Not a message", out)
        assert.equal(1, rc2)
        assert.matches("Not a message", out2)
    end)

    it("a message without body gets a dummy body, the envelope comes from the headers", function()
        local dir = util.tempdir()
        util.write(dir .. "/r.regex", "envelope_from ^rp@example\\.org$ from-return-path\nenvelope_to ^dt@example\\.net$ to-delivered-to\n")
        util.write(dir .. "/m.eml", "Return-Path: <rp@example.org>\nFrom: x@example.org\nDelivered-To: dt@example.net\nTo: y@example.net\nSubject: s")
        local out, rc = run(dir .. "/r.regex " .. dir .. "/m.eml")
        util.rmtree(dir)
        assert.equal(0, rc)
        assert.matches("INFO:root:2 matches found", out, 1, true)
    end)
end)

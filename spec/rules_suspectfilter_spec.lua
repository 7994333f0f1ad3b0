-- SuspectFilter: reference 5.5 acceptance cases, both syntaxes, flags, broken lines, Lua rules,
-- reload on change, the one-pass prefilter and the PCRE2 limits.

local util = require "support.util"
local core = require "fuglu_core"
local suspectfilter = require "fuglu.suspectfilter"

local function hello()
    local s = util.suspect(util.fixture("rules/helloworld.eml"))
    s.tags.testtag = "testvalue"
    return s
end

local function contains(list, value)
    for _, v in ipairs(list) do if v == value then return true end end
    return false
end

describe("SuspectFilter on headertest.regex", function()
    local sf
    before_each(function() sf = suspectfilter.new("spec/fixtures/rules/headertest.regex") end)

    it("loads all 13 rules", function()
        assert.equals(13, sf:count())
        assert.equals(0, #sf.errors)
    end)

    it("get_args has the matching rules' args and not the others", function()
        local args = sf:get_args(hello())
        for _, want in ipairs({ "Sent to unittest domain!", "Envelope sender is sender@unittests.fuglu.org",
            "Mime Version is 1.0", "A tag match", "Globbing works", "body rule works",
            "full body rule works", "mime rule works", "perl-style /-notation works!",
            "perl-style recipient match" }) do
            assert.is_true(contains(args, want), want)
        end
        assert.is_false(contains(args, "Subject match"))
        assert.is_false(contains(args, "this should not match in a body rule"))
        assert.is_false(contains(args, "this should not match"))
        assert.equals(10, #args)
    end)

    it("matches gives the first match (extended)", function()
        local ok, info = sf:matches(hello(), true)
        assert.is_true(ok)
        assert.equals("to_domain", info.field)
        assert.equals("unittests.fuglu.org", info.value)
        assert.equals("Sent to unittest domain!", info.arg)
        assert.equals("unittests\\.fuglu\\.org", info.regex)
        assert.equals(6, info.line)
        local ok2, arg = sf:matches(hello())
        assert.is_true(ok2)
        assert.equals("Sent to unittest domain!", arg)
    end)

    it("lint passes", function()
        assert.is_true(sf:lint())
    end)
end)

describe("rule syntax", function()
    local s
    before_each(function() s = hello() end)

    local function args(text) return suspectfilter.from_string(text, "t.regex"):get_args(s) end

    it("simple rules are case-insensitive and dot matches newline", function()
        assert.same({ "yes" }, args("subject hello.WORLD yes"))
        assert.same({ "dotall" }, args("body:raw blablabla.+some dotall"))
    end)

    it("perl-style rules are case-sensitive unless i", function()
        assert.same({}, args("subject /hello world/ no"))
        assert.same({ "ci" }, args("subject /hello world/i ci"))
    end)

    it("perl-style m makes ^ and $ match at line ends; without m they do not", function()
        assert.same({}, args("body:raw /^some/ x"))
        assert.same({ "m" }, args("body:raw /^some/m m"))
    end)

    it("perl-style works with @tag and wildcard fields (unlike Fuglu)", function()
        assert.same({ "tag" }, args("@testtag /^testvalue$/ tag"))
        assert.same({ "glob" }, args("MIME-* /^1\\.0$/ glob"))
    end)

    it("an escaped slash in a perl regex and a trailing colon on the field", function()
        s.tags.path = "a/b"
        assert.same({ "slash" }, args("@path: /a\\/b/ slash"))
    end)

    it("a rule without argument gives false in get_args and nil in matches", function()
        assert.same({ false }, args("subject hello"))
        local ok, arg = suspectfilter.from_string("subject hello"):matches(s)
        assert.is_true(ok)
        assert.is_nil(arg)
    end)

    it("Python-regex constructs work", function()
        assert.same({ "named" }, args("subject /(?P<w>Hello)\\s(?P=w)?world/ named"))
        assert.same({ "look" }, args("subject (?<=hello\\s)world(?!\\?) look"))
        assert.same({ "inline" }, args("subject /(?i)HELLO/ inline"))
        assert.same({ "classes" }, args("clientip ^\\d+\\.\\d+\\.\\d+\\.\\d+$ classes"))
        assert.same({ "wordb" }, args("subject \\bworld\\b wordb"))
        assert.same({ "endZ" }, args("subject world!\\Z endZ"))
    end)

    it("get_args has one entry per matching value", function()
        assert.same({ "r", "r", "r", "r" }, args("Received /from helo\\d/ r"))
    end)

    it("broken lines are reported with the line number and skipped", function()
        local capture = util.capture_logs()
        local sf = suspectfilter.from_string("subject (unclosed bad\nonlyfield\nsubject hello good\n", "b.regex")
        capture.restore()
        assert.equals(1, sf:count())
        assert.equals(2, #sf.errors)
        assert.equals(1, sf.errors[1].line)
        assert.equals(2, sf.errors[2].line)
        assert.same({ "good" }, sf:get_args(s))
    end)

    it("lint prints each bad line with file and line number", function()
        local dir = util.tempdir()
        util.write(dir .. "/bad.regex", "# c\nsubject (x bad\nsubject ok fine\n")
        local printed = {}
        local saved = _G.print
        _G.print = function(line) printed[#printed + 1] = line end
        local capture = util.capture_logs()
        local ok = suspectfilter.new(dir .. "/bad.regex"):lint()
        capture.restore()
        _G.print = saved
        util.rmtree(dir)
        assert.is_false(ok)
        assert.matches("bad.regex', lineno 2 , line 'subject %(x bad'", printed[1])
    end)

    it("a missing file gives no rules and lint says so", function()
        local capture = util.capture_logs()
        local sf = suspectfilter.new("/nonexistent/rules.regex")
        assert.equals(0, sf:count())
        assert.same({}, sf:get_args(s))
        local saved, printed = _G.print, nil
        _G.print = function(line) printed = line end
        assert.is_false(sf:lint())
        _G.print = saved
        capture.restore()
        assert.equals("SuspectFilter file not found: /nonexistent/rules.regex", printed)
    end)
end)

describe("the one-pass prefilter", function()
    it("gives the same results as rule-by-rule matching", function()
        local lines = {}
        for i = 1, 60 do lines[#lines + 1] = string.format("subject nomatch%d n%d", i, i) end
        lines[#lines + 1] = "subject /world/ lower"
        lines[#lines + 1] = "subject /WORLD/ upper"
        lines[#lines + 1] = "subject (h)ello\\1 backref"     -- not combinable: checked alone
        lines[#lines + 1] = "subject (?P<x>he)llo named"
        lines[#lines + 1] = "subject ^hello first"
        local sf = suspectfilter.from_string(table.concat(lines, "\n"))
        local group = sf.rules[1].group
        assert.truthy(group.combined)
        assert.equals(2, #group.single_rules)
        assert.same({ "lower", "named", "first" }, sf:get_args(hello()))
    end)
end)

describe("PCRE2 limits", function()
    it("a catastrophic regex returns promptly as no match and is logged", function()
        local s = hello()
        s.tags.evil = string.rep("a", 5000) .. "b"
        local capture = util.capture_logs()
        local sf = suspectfilter.from_string("@evil (a+)+$ evil\n@evil (x|x?)+y evil2\nsubject hello ok", "evil.regex")
        local started = core.monotonic()
        local args = sf:get_args(s)
        local seconds = core.monotonic() - started
        capture.restore()
        assert.same({ "ok" }, args)
        assert.is_true(seconds < 1, "took " .. seconds .. " s")
        assert.truthy(capture.find("gave up"))
    end)
end)

describe("rules written in Lua", function()
    it("accepts functions and field/regex tables", function()
        local dir = util.tempdir()
        util.write(dir .. "/rules.lua", [[
return {
    function(suspect)
        if suspect.from_domain == "unittests.fuglu.org" then return suspect.from_address, "fn arg" end
    end,
    { field = "subject", regex = "hello", args = "table rule" },
    { field = "subject", regex = "HELLO", flags = "", args = "case-sensitive, no match" },
    { match = function(suspect) return #suspect.recipients == 1 end, args = "one rcpt", name = "single" },
    function() error("boom") end,
}
]])
        local capture = util.capture_logs()
        local sf = suspectfilter.new(dir .. "/rules.lua")
        local infos = sf:get_args(hello(), true)
        capture.restore()
        util.rmtree(dir)
        assert.equals(5, sf:count())
        assert.equals(3, #infos)
        assert.equals("fn arg", infos[1].arg)
        assert.equals("sender@unittests.fuglu.org", infos[1].value)
        assert.matches("^lua:.*rules%.lua:2$", infos[1].field)
        assert.equals("table rule", infos[2].arg)
        assert.equals("single", infos[3].field)
        assert.truthy(capture.find("Lua rule failed"))
        assert.truthy(capture.find("rules.lua:8"))
    end)
end)

describe("reload on change", function()
    it("picks up a changed file after the check interval and keeps good rules otherwise", function()
        local dir = util.tempdir()
        local path = dir .. "/r.regex"
        util.write(path, "subject hello one\n")
        local capture = util.capture_logs()
        local sf = suspectfilter.new(path, { check_interval = 0 })
        local s = hello()
        assert.same({ "one" }, sf:get_args(s))
        util.write(path, "subject hello two\nsubject world three\n")
        sf.stamp = "forced"      -- mtime granularity: make the change visible at once
        assert.same({ "two", "three" }, sf:get_args(s))
        os.remove(path)
        assert.same({ "two", "three" }, sf:get_args(s))   -- file gone: last rules kept

        local lpath = dir .. "/r.lua"
        util.write(lpath, "return { { field = 'subject', regex = 'hello', args = 'lua1' } }")
        local lsf = suspectfilter.new(lpath, { check_interval = 0 })
        util.write(lpath, "return { syntax error")
        lsf.stamp = "forced"
        assert.same({ "lua1" }, lsf:get_args(s))          -- broken Lua file: last rules kept
        capture.restore()
        util.rmtree(dir)
        assert.truthy(capture.find("keeping the last good rules"))
    end)

    it("does not look at the file again within the interval", function()
        local dir = util.tempdir()
        local path = dir .. "/r.regex"
        util.write(path, "subject hello one\n")
        local capture = util.capture_logs()
        local sf = suspectfilter.new(path, { check_interval = 3600 })
        util.write(path, "subject hello two\n")
        sf.stamp = "forced"
        local args = sf:get_args(hello())
        capture.restore()
        util.rmtree(dir)
        assert.same({ "one" }, args)
    end)
end)

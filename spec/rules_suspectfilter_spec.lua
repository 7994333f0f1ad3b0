-- SuspectFilter: reference 5.5 acceptance cases, both syntaxes, flags, broken lines, Lua rules,
-- reload on change, the one-pass prefilter and the PCRE2 limits.

local util = require "support.util"
local sys = require "fuglu_sys"
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
        local started = sys.monotonic()
        local args = sf:get_args(s)
        local seconds = sys.monotonic() - started
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

describe("required literals (the prefilter's reading of a regex)", function()
    local lits = suspectfilter.required_literals

    it("takes the rarest needed run of plain characters, lower-cased", function()
        assert.same({ "badword12" }, lits("\\bbadword12\\b", "is"))
        assert.same({ "spamword3" }, lits("spamword3\\s+(?:offer|deal)3", "i"))
        assert.same({ "viagra6@" }, lits("^viagra6@", "is"))
        assert.same({ "@diet4." }, lits("@diet4\\.(biz|info|top)>?$", "i"))
        assert.same({ "crypto16" }, lits("filename=\"?crypto16[^\"]*\\.exe", "i"))
        assert.same({ "203.0.10.70" }, lits("^203\\.0\\.10\\.70$", "is"))
        assert.same({ "world" }, lits("Hello.WORLD", "is"))
        assert.same({ "xyzw" }, lits("[]abcdefg]xyzw", ""))
    end)

    it("gives one literal per top-level alternative", function()
        assert.same({ "viagra", "cialis" }, lits("viagra|cialis", "i"))
        assert.same({ "viagra", "cialis" }, lits("(?:x|y)viagra|cialis(z|w)", "i"))
    end)

    it("drops characters a quantifier makes optional and ends runs at repeats", function()
        assert.same({ "abcd" }, lits("abcde?", ""))
        assert.same({ "abcd" }, lits("abcde*f", ""))
        assert.same({ "abcd" }, lits("abcde{0,3}", ""))
        assert.same({ "abcde" }, lits("abcde+f", ""))
        assert.same({ "abcde" }, lits("abcde{2}x", ""))
        assert.same({ "abcd" }, lits("abcde??", ""))
    end)

    it("gives none when a match needs no fixed text or the syntax is not followed", function()
        assert.is_nil(lits("(a+)+$", "is"))
        assert.is_nil(lits("viagra|ab", "i"))          -- one alternative without a literal
        assert.is_nil(lits("abcd|", "i"))               -- an empty alternative
        assert.is_nil(lits("abc?d", ""))                -- runs shorter than 4
        assert.is_nil(lits("ab\\x41cdef", ""))          -- escapes with letters other than classes
        assert.is_nil(lits("\\Qabcdef\\E", ""))
        assert.is_nil(lits("abc def", "x"))             -- extended syntax
        assert.is_nil(lits("(?x)abc def", ""))
        assert.is_nil(lits("(*UCP)abcdef", ""))
        assert.is_nil(lits("abcdef{x}", ""))            -- "{" that is not a quantifier
        assert.is_nil(lits("abcdef)", ""))
        assert.is_nil(lits("(abcdef", ""))
        assert.is_nil(lits("\\d+\\s*[a-z]{5}", "i"))
    end)
end)

describe("the literal set (C)", function()
    local regex = require "fuglu.regex"

    local function scan(set, subject)
        local out = {}
        local k = set:scan(subject, out)
        local ids = {}
        for i = 1, k do ids[i] = out[i] end
        table.sort(ids)
        return ids
    end

    it("reports each id whose literal occurs once, ignoring ASCII case", function()
        local set = regex.literal_set({ "viagra", "cialis", "casino", "prize1" }, { 1, 1, 2, 3 }, 3)
        assert.same({}, scan(set, "a quarterly report"))
        assert.same({ 1 }, scan(set, "Buy VIAGRA and Cialis and viagra"))
        assert.same({ 1, 2, 3 }, scan(set, "cAsInO prize1 viagra"))
        assert.same({}, scan(set, "prize"))
        assert.same({ 3 }, scan(set, "prize1"))
        assert.same({}, scan(set, ""))
    end)

    it("treats U+212A KELVIN SIGN as k and U+017F LONG S as s (PCRE2 caseless UTF)", function()
        local set = regex.literal_set({ "kelvin", "spam" }, { 1, 2 }, 2)
        assert.same({ 1, 2 }, scan(set, "\226\132\170elvin \197\191pam"))
        assert.same({ 1 }, scan(set, "caf\195\169 \226\132\170ELVIN"))
    end)

    it("finds a literal at every offset, with every stride (shortest literal - 3, at most 8)", function()
        local checked = 0
        for _, lit in ipairs({ "abcd", "pr1ze", "jackpot9", "inheritance", "x-mailer-version-12" }) do
            local set = regex.literal_set({ lit, "zzzz" .. lit:sub(2) }, { 1, 2 }, 2)
            local miss = lit:sub(1, -2) .. "#"
            for offset = 0, 19 do
                for tail = 0, 9 do
                    local pad, after = string.rep("-", offset), string.rep(".", tail)
                    assert.same({ 1 }, scan(set, pad .. lit:upper() .. after), lit .. " at " .. offset)
                    assert.same({}, scan(set, pad .. miss .. after))
                    checked = checked + 1
                end
            end
        end
        assert.equals(1000, checked)
    end)

    it("refuses literals shorter than 4 bytes", function()
        assert.has_error(function() regex.literal_set({ "abc" }, { 1 }, 1) end)
    end)
end)

describe("the literal prefilter gives the results of checking every rule", function()
    local function suspect_with(subject, body)
        local source = "From: a@example.org\r\nTo: b@example.net\r\nSubject: " .. subject ..
            "\r\nX-Multi: one Kelvin\r\nX-Multi: two viagra\r\nContent-Type: text/plain\r\n\r\n" .. body .. "\r\n"
        return util.suspect(source)
    end

    it("rule by rule, for caseless UTF equivalents too", function()
        local sf = suspectfilter.from_string(table.concat({
            "subject /kelvin/i kelvin",
            "subject /SPAM/i spam",
            "subject /Kelvin/ sensitive",
            "body viagra|cialis alt",
        }, "\n"))
        assert.truthy(sf.rules[1].group.litset)
        local s = suspect_with("\226\132\170elvin \197\191pam", "buy CIALIS now")
        assert.same({ "kelvin", "spam", "alt" }, sf:get_args(s))
    end)

    it("every value and the file order, with rules on several fields interleaved", function()
        local sf = suspectfilter.from_string(table.concat({
            "X-Multi /kelvin/i multi-k",
            "subject hello first",
            "X-Multi viagra multi-v",
            "X-Multi ^(one|two) both",
            "body hello body",
        }, "\n"))
        local s = suspect_with("hello there", "hello body")
        assert.same({ "multi-k", "first", "multi-v", "both", "both", "body" }, sf:get_args(s))
        local ok, arg = sf:matches(s)
        assert.is_true(ok)
        assert.equals("multi-k", arg)
    end)

    it("on generated rules and subjects (same as the trace path, which tries every rule)", function()
        local pieces = { "kelvin", "spam", "wordy", "abcd", "abcd", "bcde", "bcde", "wxyz", "wxyz", "wxyz", "ABCD", "\\s+", "\\d", "x?", "(?:ab|cd)", "[a-c]+", ".", ".*",
            "\\bword", "k", "ss", "e{0,2}", "e+", "\\.", "^", "$", "(?=abcd)", "(q)\\1", "(?P<n>z)" }
        local alphabet = { "abcd", "bcde", "wxyz", "ab", "cd", " ", "1", "x", "word", "\226\132\170", "\197\191",
            "SS", "e", ".", "q", "qq", "z", "ABCDE", "k", "\255", "kelvin", "SPAM", "\226\132\170ELVIN", "\197\191pam", "wordy" }
        local seed = 12345
        local function rand(n)
            seed = (seed * 1103515245 + 12345) % 2147483648
            return seed % n + 1
        end
        local checked, hits, prefiltered = 0, 0, 0
        for _ = 1, 40 do
            local lines = {}
            for r = 1, 25 do
                local parts = {}
                for p = 1, rand(4) do parts[p] = pieces[rand(#pieces)] end
                if rand(4) == 1 then parts[#parts + 1] = "|" .. pieces[rand(#pieces)] .. pieces[rand(#pieces)] end
                local field = rand(2) == 1 and "subject" or "body"
                local pattern = table.concat(parts)
                if rand(2) == 1 then
                    lines[#lines + 1] = string.format("%s %s r%d", field, pattern, r)
                else
                    lines[#lines + 1] = string.format("%s /%s/%s r%d", field, pattern, rand(2) == 1 and "i" or "", r)
                end
            end
            local capture = util.capture_logs()
            local fast = suspectfilter.from_string(table.concat(lines, "\n"))
            local slow = suspectfilter.from_string(table.concat(lines, "\n"))
            capture.restore()
            slow.trace = function() end
            for _, rule in ipairs(fast.rules) do
                if rule.literals then prefiltered = prefiltered + 1 end
            end
            for _ = 1, 5 do
                local subject, body = {}, {}
                for i = 1, rand(8) do subject[i] = alphabet[rand(#alphabet)] end
                for i = 1, rand(30) do body[i] = alphabet[rand(#alphabet)] end
                local s = suspect_with(table.concat(subject), table.concat(body))
                local want = slow:get_args(s)
                assert.same(want, fast:get_args(s), table.concat(lines, "\n"))
                checked = checked + 1
                hits = hits + #want
            end
        end
        assert.equals(200, checked)
        assert.is_true(hits > 100, "only " .. hits .. " matches")     -- the comparison means something
        assert.is_true(prefiltered > 100, "only " .. prefiltered .. " rules with a literal")
    end)
end)

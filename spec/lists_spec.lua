-- fuglu.lists: sets, maps, regex lists and networks from files, reloaded when the file changes,
-- the last good version kept when a new one is broken (and the error logged with FILE:LINE).
local lists = require "fuglu.lists"
local clog = require "fuglu_log"
local util = require "support.util"

describe("fuglu.lists", function()
    local dir, logged, orig_write, orig_enabled
    before_each(function()
        dir = util.tempdir()
        logged = {}
        orig_write, orig_enabled = clog.write, clog.enabled
        clog.write = function(_, level, text) logged[#logged + 1] = { level, text } end
        clog.enabled = function() return true end
    end)
    after_each(function()
        clog.write, clog.enabled = orig_write, orig_enabled
        util.rmtree(dir)
    end)

    local function errors()
        local out = {}
        for _, l in ipairs(logged) do if l[1] >= 40 then out[#out + 1] = l[2] end end
        return out
    end

    it("reads a set with comments, case-insensitively, and sees an edit", function()
        local path = dir .. "/white.txt"
        util.write(path, "# whitelist\nAlice@Example.org   \n\n  bob@example.net # the boss\n")
        local l = lists.open(path, { check = 0 })
        assert.is_true(l:contains("alice@example.org"))
        assert.is_true(l:contains("BOB@example.net"))
        assert.is_false(l:contains("eve@example.com"))
        assert.equal(2, l:size())
        util.write(path, "eve@example.com\n")
        os.execute("touch -d '+1 second' " .. path)   -- a distinct mtime, whatever the clock's grain
        assert.is_true(l:contains("eve@example.com"))
        assert.is_false(l:contains("alice@example.org"))
        assert.equal(l, lists.open(path))           -- one object per path and kind
    end)

    it("keeps the last good version when the new one is broken, and names the line", function()
        local path = dir .. "/subjects.re"
        util.write(path, "# patterns\n^viagra\nlottery\\s+win\n")
        local l = lists.open(path, { kind = "regex", check = 0 })
        assert.equal("lottery\\s+win", l:match("you have a LOTTERY  win") or l:match("lottery  win"))
        assert.is_nil(l:match("hello"))
        util.write(path, "^viagra\n(unclosed\n")
        os.execute("touch -d '+2 seconds' " .. path)
        assert.equal("^viagra", l:match("viagra now"))   -- still the old list
        assert.equal("lottery\\s+win", l:match("lottery win"))
        local e = errors()
        assert.equal(1, #e)
        assert.matches(path:gsub("%p", "%%%0") .. ":2: bad regular expression", e[1])
        assert.matches("the last good version keeps serving", e[1])
    end)

    it("matches IPv4 and IPv6 networks", function()
        local path = dir .. "/nets.txt"
        util.write(path, "192.0.2.0/24\n10.0.0.1\n2001:db8::/32\n198.51.100.128/25\n")
        local l = lists.open(path, { kind = "cidr" })
        assert.is_true(l:contains("192.0.2.77"))
        assert.is_false(l:contains("192.0.3.1"))
        assert.is_true(l:contains("10.0.0.1"))
        assert.is_false(l:contains("10.0.0.2"))
        assert.is_true(l:contains("2001:db8:1::5"))
        assert.is_false(l:contains("2001:db9::1"))
        assert.is_true(l:contains("198.51.100.200"))
        assert.is_false(l:contains("198.51.100.100"))
        assert.is_false(l:contains("not an address"))
        util.write(dir .. "/bad.txt", "192.0.2.0/24\n300.1.1.1\n")
        local bad = lists.open(dir .. "/bad.txt", { kind = "cidr" })
        assert.is_false(bad:contains("192.0.2.1"))       -- no good version yet: empty
        assert.matches("bad.txt:2: not an IP address or network: 300.1.1.1", errors()[1])
    end)

    it("reads maps and survives a missing file", function()
        local path = dir .. "/routes.map"
        util.write(path, "example.org  smtp:[192.0.2.1]:25\nExample.NET relay two\nflag\n")
        local m = lists.open(path, { kind = "map" })
        assert.equal("smtp:[192.0.2.1]:25", m:get("EXAMPLE.org"))
        assert.equal("relay two", m:get("example.net"))
        assert.equal("", m:get("flag"))
        assert.is_nil(m:get("other"))
        local gone = lists.open(dir .. "/nothere.txt")
        assert.is_false(gone:contains("x"))
        assert.matches("nothere.txt: cannot read", errors()[1])
    end)
end)

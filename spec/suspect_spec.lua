-- fuglu.suspect: ids, addresses, sources, headers, predicates, client info, str(suspect).

local codec = require "fuglu_codec"
local suspect = require "fuglu.suspect"
local addrcheck = require "fuglu.addrcheck"
local actions = require "fuglu.actions"
local util = require "support.util"

local function new(from, rcpts, checker)
    return suspect.new{ from = from, recipients = rcpts, source = "Subject: x\r\n\r\nbody\r\n", checker = checker }
end

local function address_error(fn)
    local ok, err = pcall(fn)
    return not ok and addrcheck.is_address_error(err)
end

describe("fuglu.suspect", function()
    it("has a 32 character hex id, unique over 10000 suspects", function()
        local seen = {}
        for _ = 1, 10000 do
            local s = new("a@b", "c@d")
            assert.equal(32, #s.id)
            assert.is_nil(s.id:find("[^0-9a-f]"))
            assert.is_nil(seen[s.id])
            seen[s.id] = true
        end
    end)

    it("splits sender and recipient", function()
        local s = new("sender@example.com", "recipient@example.com")
        assert.equal("sender", s.from_localpart)
        assert.equal("example.com", s.from_domain)
        assert.equal("recipient", s.to_localpart)
        assert.equal("example.com", s.to_domain)
        assert.same({ "recipient@example.com" }, s.recipients)
    end)

    it("gives empty strings for the null sender (nil or '')", function()
        for _, from in ipairs({ "", false }) do
            local s = new(from or nil, "recipient@example.com")
            assert.equal("", s.from_address)
            assert.equal("", s.from_localpart)
            assert.equal("", s.from_domain)
        end
    end)

    it("accepts local addresses", function()
        local s = new("bob@localhost", "root@localhost")
        assert.equal("bob@localhost", s.from_address)
        assert.equal("root@localhost", s.to_address)
    end)

    it("raises an address error for illegal addresses", function()
        assert.is_true(address_error(function() new("sender@example.com", { nil }) end))
        assert.is_true(address_error(function() new("sender@example.com", "recipient") end))
        assert.is_true(address_error(function() new("sender", "recipient@example.com") end))
        assert.is_true(address_error(function() new("sender@example.com", "recipient@example.com@example.org") end))
        assert.is_true(address_error(function() new("sender@example.com", { "ok@example.com", "@example.com" }) end))
    end)

    it("knows the LazyLocalPart checker", function()
        assert.is_true(address_error(function() new("a@b@c", "x@y") end))
        local s = new('"bob@remotehost"@localhost', "x@y", "LazyLocalPart")
        assert.equal('"bob@remotehost"', s.from_localpart)
        assert.equal("localhost", s.from_domain)
        assert.is_true(address_error(function() new("'root@localhost'@remotehost", "x@y", "LazyLocalPart") end))
        assert.is_true(address_error(function() new('"bob@remotehost"@localhost', "x@y", "Default") end))
    end)

    it("keeps all recipients and shows the first as to_address", function()
        local s = new("a@b", { "one@x.org", "two@y.org" })
        assert.equal("one@x.org", s.to_address)
        assert.equal(2, #s.recipients)
        s:set_recipients({ "three@z.org" })
        assert.equal("z.org", s.to_domain)
    end)

    describe("source", function()
        it("returns the original until a source is set", function()
            local raw = util.fixture("hello.eml")
            local s = util.suspect(raw)
            assert.equal(#raw, s.size)
            assert.is_false(s:is_modified())
            assert.equal(raw, s:get_source())
            assert.equal(raw:sub(1, 10), s:get_source(10))
            s:set_source("Subject: new\r\n\r\nnew body\r\n")
            assert.is_true(s:is_modified())
            assert.equal("Subject: new\r\n\r\nnew body\r\n", s:get_source())
            assert.equal("Subject:", s:get_source(8))
            assert.equal(raw, s:get_original_source())
            assert.equal("Subject: new", s:get_headers())
            assert.equal("new", s:get_message_rep():header("Subject")[1])
        end)

        it("gives the header block", function()
            local s = util.suspect()
            local headers = s:get_headers()
            assert.equal("Received: from helo1", headers:sub(1, 20))
            assert.is_nil(headers:find("\r\n\r\n", 1, true))
            assert.truthy(headers:find('boundary="----=_PART_BOUNDARY_4711"', 1, true))
        end)
    end)

    describe("add_header", function()
        it("keeps the order and duplicate names", function()
            local s = util.suspect()
            s:add_header("X-One", "1")
            s:add_header("X-Two", "2")
            s:add_header("X-One", "again")
            assert.same({ { name = "X-One", value = "1" }, { name = "X-Two", value = "2" }, { name = "X-One", value = "again" } },
                s.added_headers)
            assert.equal("X-One: 1\r\nX-Two: 2\r\nX-One: again\r\n", s:added_header_lines())
            assert.is_false(s:is_modified())
        end)

        it("prepends immediate headers to the source at once", function()
            local raw = util.fixture("hello.eml")
            local s = util.suspect(raw)
            s:add_header("X-Now", "seen", true)
            s:add_header("X-Later", "pending")
            assert.is_true(s:is_modified())
            assert.equal("X-Now: seen\r\n" .. raw, s:get_source())
            assert.same({ "seen" }, s:get_message_rep():header("X-Now"))
            assert.same({}, s:get_message_rep():header("X-Later"))
            assert.equal(1, #s.added_headers)
        end)

        it("encodes non-ASCII values", function()
            local s = util.suspect()
            s:add_header("X-Umlaut", "F\195\188r", true)
            local value = s:get_message_rep():header("X-Umlaut")[1]
            assert.is_nil(value:find("[\128-\255]"))
            assert.equal("F\195\188r", codec.rfc2047_decode(value))
        end)
    end)

    describe("predicates", function()
        it("is ham until an engine says otherwise", function()
            local s = util.suspect()
            assert.is_true(s:is_ham())
            s.tags.spam.SAPlugin = false
            assert.is_false(s:is_spam())
            assert.is_true(s:is_ham())
            s.tags.spam.SAPlugin = true
            assert.is_true(s:is_spam())
            assert.is_false(s:is_ham())
        end)

        it("checks each dict on its own", function()
            local s = util.suspect()
            s.tags.virus.ClamAV = true
            assert.is_true(s:is_virus())
            assert.is_false(s:is_blocked())
            assert.is_false(s:is_highspam())
            s.tags.blocked.Filetype = "x"
            assert.is_true(s:is_blocked())
            s.tags.highspam.SA = 1
            assert.is_true(s:is_highspam())
        end)

        it("reports the last decision", function()
            local s = util.suspect()
            assert.equal(actions.DUNNO, s:get_current_decision_code())
            s.tags.decisions = { { "A", actions.DUNNO }, { "B", actions.REJECT } }
            assert.equal(actions.REJECT, s:get_current_decision_code())
        end)
    end)

    describe("client info", function()
        it("parses Postfix Received headers", function()
            assert.same({ "helo1", "rdns1", "10.0.0.1" }, { suspect.parse_received("from helo1 (rdns1 [10.0.0.1])") })
            assert.same({ "mx0.slc.paypal.com", "mx1.slc.paypal.com", "173.0.84.226" },
                { suspect.parse_received("from mx0.slc.paypal.com (mx1.slc.paypal.com [173.0.84.226])\r\n\tby mail.example.org (Postfix) with ESMTPS id 1234") })
            assert.same({ "mail.example.org", "x.example.org", "2a02:2770:6:0:21a:4aff:fea8:1328" },
                { suspect.parse_received("from mail.example.org (x.example.org [IPv6:2a02:2770:6:0:21a:4aff:fea8:1328])\r\n\tby y") })
            assert.is_nil(suspect.parse_received("by localhost with LMTP"))
            assert.is_nil(suspect.parse_received("from a (b [not-an-ip])"))
        end)

        it("takes the first Received header, honouring boundarydistance", function()
            local s = util.suspect()
            assert.same({ helo = "helo1", ip = "10.0.0.1", rdns = "rdns1" }, s:client_info_from_received(nil, 0))
            assert.same({ helo = "helo2", ip = "10.0.0.2", rdns = "rdns2" }, s:client_info_from_received(nil, 1))
            local s2 = util.suspect()
            local cfg = util.config{ environment = { boundarydistance = "2" } }
            assert.same({ helo = "helo3", ip = "10.0.0.3", rdns = "rdns3" }, s2:get_client_info(cfg))
            assert.equal(s2.clientinfo, s2:get_client_info(cfg))
        end)

        it("skips trusted hosts when a regex module is available", function()
            local saved = package.loaded["fuglu.regex"]
            package.loaded["fuglu.regex"] = {
                -- stand-in for a PCRE module: treats the pattern as a Lua pattern
                search = function(pattern, subject) return subject:find(pattern) ~= nil end,
            }
            local ok, err = pcall(function()
                package.loaded["fuglu.suspect"] = nil
                local fresh = require "fuglu.suspect"
                local s = fresh.new{ from = "a@b", recipients = "c@d", message = util.message(util.fixture("hello.eml")) }
                assert.same({ helo = "helo3", ip = "10.0.0.3", rdns = "rdns3" }, s:client_info_from_received("10%.0%.0%.2", 1))
            end)
            package.loaded["fuglu.regex"] = saved
            package.loaded["fuglu.suspect"] = nil
            package.loaded["fuglu.suspect"] = require "fuglu.suspect"
            assert(ok, err)
        end)

        it("stops at the first unparseable header", function()
            local s = util.suspect("Received: by localhost\r\nReceived: from h (r [1.2.3.4])\r\n\r\nx\r\n")
            assert.is_nil(s:get_client_info(util.config{}))
        end)

        it("prefers XFORWARD client info", function()
            local s = util.suspect()
            s.clientinfo = { helo = "xf", ip = "192.0.2.1", rdns = "xf.example" }
            assert.equal("xf", s:get_client_info(util.config{}).helo)
        end)
    end)

    it("writes debug lines only when tags.debug is set", function()
        local path = os.tmpname()
        local f = assert(io.open(path, "w"))
        local s = util.suspect()
        s.tags.debugfile = f
        s:debug("not written")
        s.tags.debug = true
        s:debug("hello debug")
        f:close()
        local text = util.read(path)
        os.remove(path)
        assert.is_nil(text:find("not written", 1, true))
        assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+ hello debug\n$", text)
    end)

    it("renders like Fuglu's str(suspect)", function()
        local s = util.suspect()
        s.tags.spam.SAPlugin = true
        s.tags.decisions[1] = { "SAPlugin", actions.REJECT }
        s.tags.mytag = string.rep("x", 150)
        local text = tostring(s)
        assert.equal("Suspect " .. s.id .. ": from=sender@unittests.fuglu.org to=recipient@unittests.fuglu.org size="
            .. s.size .. " spam=yes blocked=no virus=no modified=no decision=REJECT tags=", text:sub(1, #text - #text:match("tags=(.*)$")))
        local tags = text:match("tags=(.*)$")
        assert.truthy(tags:find("'spam': {'SAPlugin': True}", 1, true))
        assert.is_nil(tags:find("decisions", 1, true))
        assert.truthy(tags:find("'mytag': '" .. string.rep("x", 99) .. "...", 1, true))
    end)
end)

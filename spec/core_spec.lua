-- Specs of the C modules (src/lua/lua_*.c: fuglu_sys, fuglu_log, fuglu_codec, fuglu_message,
-- fuglu_job) against doc/lua-core-api.md.
-- Run from /work/main after `make`: busted --lua=luajit spec/core_spec.lua
package.cpath = "build/?.so;" .. package.cpath

local codec = require "fuglu_codec"
local job_lib = require "fuglu_job"
local clog = require "fuglu_log"
local message_lib = require "fuglu_message"
local sys = require "fuglu_sys"

local function fixture(name)
    local f = assert(io.open("spec/fixtures/" .. name, "rb"))
    local data = f:read("*a")
    f:close()
    return data
end

local function message(name)
    return assert(message_lib.from_file("spec/fixtures/" .. name))
end

local function all_bytes(times)
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    return string.rep(table.concat(t), times)
end

local function lines_of(name, value)
    local lines = {}
    for line in (name .. ": " .. value .. "\r\n"):gmatch("(.-)\r\n") do lines[#lines + 1] = line end
    return lines
end

describe("fuglu_sys, fuglu_log and fuglu_codec basics", function()
    it("has a version and clocks", function()
        assert.equals("0.1.0", sys.version)
        assert.is_true(math.abs(sys.now() - os.time()) < 5)
        local a = sys.monotonic()
        local b = sys.monotonic()
        assert.is_true(b >= a)
    end)

    it("makes 32-hex ids that do not repeat", function()
        local seen = {}
        for _ = 1, 1000 do
            local id = sys.random_id()
            assert.is_truthy(id:match("^[0-9a-f]+$"))
            assert.equals(32, #id)
            assert.is_nil(seen[id])
            seen[id] = true
        end
    end)

    it("knows the host name", function()
        assert.is_true(#sys.hostname() > 0)
    end)

    it("logs user text verbatim and reports enabled levels", function()
        assert.has_no.errors(function() clog.write("fuglu.spec", 10, "100% %s %n safe") end)
        assert.is_true(clog.enabled("fuglu.spec", 50))
        assert.is_boolean(clog.enabled("fuglu.spec", 10))
    end)
end)

describe("base64", function()
    it("round-trips every byte value", function()
        for _, s in ipairs({ "", "a", "ab", "abc", all_bytes(3) }) do
            assert.equals(s, codec.b64decode(codec.b64encode(s)))
        end
        assert.equals("aGVsbG8=", codec.b64encode("hello"))
    end)

    it("ignores whitespace, accepts missing padding, refuses garbage", function()
        assert.equals("hello", codec.b64decode("aGVs\r\n bG8="))
        assert.equals("hello", codec.b64decode("aGVsbG8"))
        assert.is_nil(codec.b64decode("aGV!"))
        assert.is_nil(codec.b64decode("a"))
        assert.is_nil(codec.b64decode("aG=Vs"))
    end)
end)

describe("message objects", function()
    it("keep the bytes exactly, NUL and 8-bit included", function()
        local raw = "Subject: x\r\n\r\n" .. all_bytes(2) .. "\0end"
        local m = message_lib.from_string(raw)
        assert.equals(#raw, m:size())
        assert.equals(raw, m:bytes())
        assert.equals(raw:sub(1, 10), m:bytes(10))
        assert.equals(raw, m:bytes(#raw + 100))
        assert.equals("", m:bytes(0))
    end)

    it("read files and report errors", function()
        assert.equals(fixture("mime_simple.eml"), message("mime_simple.eml"):bytes())
        local m, err = message_lib.from_file("spec/fixtures/does-not-exist.eml")
        assert.is_nil(m)
        assert.is_string(err)
    end)

    it("give the header block and the headers with folding kept", function()
        local m = message("mime_simple.eml")
        local block = m:header_block()
        assert.equals(1, select(2, block:gsub("^Return%-Path:", "")))
        assert.is_truthy(block:match("Message%-ID: <simple%-1@example%.org>\n$"))
        local headers = m:headers()
        assert.equals(7, #headers)
        assert.same({ name = "Return-Path", value = "<sender@example.org>" }, headers[1])
        assert.same({ name = "Received", value = "from helo1 (rdns1 [10.0.0.1])\n\tby mx.example.net with ESMTP id 1234;\n\tMon, 1 Jan 2024 10:00:00 +0000" }, headers[2])
        assert.same({ name = "Subject", value = "Hello world!" }, headers[5])
    end)

    it("handle CRLF, a message without body and garbage header lines", function()
        local m = message_lib.from_string("Subject: only headers\r\nX-Folded: a\r\n  b\r\n")
        assert.equals("Subject: only headers\r\nX-Folded: a\r\n  b\r\n", m:header_block())
        assert.same({ { name = "Subject", value = "only headers" }, { name = "X-Folded", value = "a\r\n  b" } }, m:headers())
        local broken = message("mime_broken.eml")
        local names = {}
        for _, h in ipairs(broken:headers()) do names[#names + 1] = h.name end
        assert.same({ "From", "To", "Subject", "MIME-Version", "Content-Type" }, names)
        local empty = message_lib.from_string("\r\nbody\r\n")
        assert.equals("", empty:header_block())
        assert.same({}, empty:headers())
    end)

    it("find headers case-insensitively", function()
        local m = message("mime_simple.eml")
        assert.same({ "Hello world!" }, m:header("subject"))
        assert.same({ "Hello world!" }, m:header("SUBJECT"))
        assert.same({}, m:header("X-Missing"))
        local two = message_lib.from_string("X-A: 1\nx-a: 2\nX-B: 3\n\nbody")
        assert.same({ "1", "2" }, two:header("X-a"))
    end)

    it("refuse other values as self", function()
        local m = message("mime_simple.eml")
        assert.has_error(function() m.size({}) end)
        assert.equals("fuglu.message", getmetatable(m))
    end)
end)

describe("mime()", function()
    it("sees a simple message as one text part", function()
        local m = message("mime_simple.eml")
        local parts = m:mime()
        assert.equals(1, #parts)
        local p = parts[1]
        assert.equals(1, p.index)
        assert.equals(0, p.depth)
        assert.equals("text/plain", p.content_type)
        assert.is_false(p.is_attachment)
        assert.is_false(p.is_multipart)
        assert.equals(7, #p.headers)
        assert.equals("blablabla\n\nsome <tagged>text</tagged>\n", m:part_payload(1))
        assert.equals("blablabla\n\nsome <tagged>text</tagged>\n", m:part_text(1))
        assert.equals(parts, m:mime())
    end)

    it("lists a multipart/mixed with a base64 attachment", function()
        local m = message("mime_mixed.eml")
        local parts = m:mime()
        assert.equals(3, #parts)
        assert.equals("multipart/mixed", parts[1].content_type)
        assert.is_true(parts[1].is_multipart)
        assert.is_nil(m:part_payload(1))
        assert.equals("text/plain", parts[2].content_type)
        assert.equals("us-ascii", parts[2].charset)
        assert.equals(1, parts[2].depth)
        assert.equals("the text part", m:part_text(2))
        local att = parts[3]
        assert.equals("application/octet-stream", att.content_type)
        assert.equals("bytes.bin", att.filename)
        assert.equals("attachment", att.disposition)
        assert.is_true(att.is_attachment)
        assert.equals(all_bytes(4), m:part_payload(3))
        assert.is_nil(m:part_text(3))
        assert.is_nil(m:part_payload(4))
        assert.is_nil(m:part_payload(0))
    end)

    it("decodes an HTML + text alternative", function()
        local m = message("mime_alternative.eml")
        local parts = m:mime()
        assert.equals(3, #parts)
        assert.equals("multipart/alternative", parts[1].content_type)
        assert.equals("text/plain", parts[2].content_type)
        assert.equals("text/html", parts[3].content_type)
        assert.equals("utf-8", parts[3].charset)
        assert.equals("Grüße in plain text", m:part_text(2))
        assert.equals("<html><body><p>Grüße in <b>HTML</b></p></body></html>", m:part_text(3))
    end)

    it("walks into message/rfc822 attachments", function()
        local m = message("mime_rfc822.eml")
        local parts = m:mime()
        local shape = {}
        for i, p in ipairs(parts) do shape[i] = p.depth .. " " .. p.content_type end
        assert.same({ "0 multipart/mixed", "1 text/plain", "1 message/rfc822", "2 multipart/mixed",
                      "3 text/plain", "3 application/zip" }, shape)
        assert.is_true(parts[3].is_message)
        assert.is_false(parts[3].is_attachment)
        assert.is_nil(m:part_payload(3))
        local inner = {}
        for _, h in ipairs(parts[4].headers) do inner[#inner + 1] = h.name end
        assert.same({ "From", "To", "Subject", "MIME-Version", "Content-Type" }, inner)
        assert.equals("inner text", m:part_text(5))
        assert.equals("inner.zip", parts[6].filename)
        assert.equals("PK\5\6" .. string.rep("\0", 18), m:part_payload(6))
    end)

    it("decodes RFC 2047 and RFC 2231 file names to UTF-8", function()
        local parts = message("mime_encoded_names.eml"):mime()
        assert.equals("Résumé.pdf", parts[3].filename)
        assert.equals("übersicht €.txt", parts[4].filename)
        local split = message_lib.from_string(
            'Content-Type: application/octet-stream; name="=?UTF-8?B?w6Q=?= =?UTF-8?B?w6Q=?= =?UTF-8?B?LmV4ZQ==?="\r\n\r\nxx\r\n')
        assert.equals("ää.exe", split:mime()[1].filename)
    end)

    it("converts a quoted-printable latin1 text to UTF-8", function()
        local m = message("mime_latin1_qp.eml")
        local p = m:mime()[1]
        assert.equals("iso-8859-1", p.charset)
        assert.equals("Gr\252\223e aus K\246ln", m:part_payload(1):sub(1, 14))
        assert.equals("Grüße aus Köln, schöne Grüße und eine sehr lange Zeile die weich umgebrochen wird.\n",
                      m:part_text(1))
    end)

    it("replaces invalid bytes and falls back for unknown charsets", function()
        local bad = message_lib.from_string("Content-Type: text/plain; charset=utf-8\n\nok \255 end")
        assert.equals("ok \239\191\189 end", bad:part_text(1))
        local unknown = message_lib.from_string("Content-Type: text/plain; charset=x-nonsense\n\ncaf\233")
        assert.equals("café", unknown:part_text(1))
        local none = message_lib.from_string("Subject: x\n\ncaf\195\169")
        assert.equals("café", none:part_text(1))
    end)

    it("survives broken MIME", function()
        local m = message("mime_broken.eml")
        local parts = m:mime()
        assert.is_true(#parts >= 1)
        assert.equals("multipart/mixed", parts[1].content_type)
        assert.equals("cut.bin", parts[#parts].filename)
        assert.equals("\0\1\2\3\4\5", m:part_payload(#parts))
        for i = 1, #parts do
            m:part_payload(i)
            m:part_text(i)
        end
        local headerless = message_lib.from_string("just text, no headers\nsecond line\n")
        assert.equals(1, #headerless:mime())
        assert.equals("text/plain", headerless:mime()[1].content_type)
        assert.equals("just text, no headers\nsecond line\n", headerless:part_payload(1))
        for _, raw in ipairs({ "", "\0\0\0", ":\n:\n", "Content-Type: multipart/mixed\n\n--\n--\n",
                               "Content-Type: message/rfc822\n\n", string.rep("--x\n", 100) }) do
            local p = message_lib.from_string(raw):mime()
            assert.is_true(#p >= 1)
        end
    end)

    it("stops at the part and depth limits", function()
        local t = { "Content-Type: multipart/mixed; boundary=b\n\n" }
        for _ = 1, 1100 do t[#t + 1] = "--b\nContent-Type: text/plain\n\npart\n" end
        t[#t + 1] = "--b--\n"
        local wide = message_lib.from_string(table.concat(t)):mime()
        assert.equals(1000, #wide)
        assert.is_true(wide.truncated)
        t = { "Content-Type: multipart/mixed; boundary=b0\n\n" }
        for i = 1, 80 do t[#t + 1] = ("--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n"):format(i - 1, i) end
        local deep = message_lib.from_string(table.concat(t)):mime()
        assert.equals(50, deep[#deep].depth)
        assert.is_true(deep.truncated)
        assert.is_nil(message("mime_mixed.eml"):mime().truncated)
    end)
end)

describe("RFC 2047", function()
    it("decodes encoded words", function()
        assert.equals("Umlaute äöü", codec.rfc2047_decode("=?UTF-8?B?VW1sYXV0ZSDDpMO2w7w=?="))
        assert.equals("Résumé plain äöü",
                      codec.rfc2047_decode("=?ISO-8859-1?Q?R=E9sum=E9?= plain =?utf-8?b?w6TDtsO8?="))
        assert.equals("a b", codec.rfc2047_decode("=?utf-8?q?a_b?="))
        assert.equals("no words here", codec.rfc2047_decode("no words here"))
        assert.equals("ää", codec.rfc2047_decode("=?UTF-8?B?w6Q=?=\r\n =?UTF-8?B?w6Q=?="))
    end)

    it("leaves short ASCII values alone", function()
        assert.equals("hello world", codec.header_encode("Subject", "hello world"))
    end)

    it("folds long ASCII values at blanks within 78 characters", function()
        local value = string.rep("word ", 40) .. "end"
        local encoded = codec.header_encode("X-Long", value)
        assert.equals(value, (encoded:gsub("\r\n", "")))
        local lines = lines_of("X-Long", encoded)
        assert.is_true(#lines > 1)
        for i, line in ipairs(lines) do
            assert.is_true(#line <= 78)
            if i > 1 then assert.is_truthy(line:match("^ ")) end
        end
    end)

    it("encodes non-ASCII values so they decode back", function()
        local value = "Grüße aus Köln " .. string.rep("äöü€𝄞 ", 20)
        local encoded = codec.header_encode("Subject", value)
        assert.is_truthy(encoded:match("^=%?UTF%-8%?B%?"))
        for _, line in ipairs(lines_of("Subject", encoded)) do
            assert.is_true(#line <= 78)
        end
        for word in encoded:gmatch("=%?[^?]+%?B%?[^?]*%?=") do assert.is_true(#word <= 75) end
        assert.equals(value, codec.rfc2047_decode(encoded))
        assert.equals("ä", codec.rfc2047_decode(codec.header_encode("X", "ä")))
    end)

    it("treats invalid UTF-8 as latin1 and never emits a bare line break", function()
        assert.equals("caf\195\169", codec.rfc2047_decode(codec.header_encode("X", "caf\233")))
        local flat = codec.header_encode("Subject", "inject\r\nBcc: victim@example.com")
        assert.is_nil(flat:find("\n"))
    end)
end)

describe("reinject", function()
    it("checks its arguments", function()
        assert.has_error(function() job_lib.reinject({ port = 25, rcpts = { "a@b" }, source = "" }) end)
        assert.has_error(function() job_lib.reinject({ host = "127.0.0.1", port = 25, rcpts = {}, source = "" }) end)
        assert.has_error(function() job_lib.reinject({ host = "127.0.0.1", port = 25, rcpts = { "a@b" } }) end)
        assert.has_error(function()
            job_lib.reinject({ host = "127.0.0.1", port = 25, rcpts = { "a@b" }, message = io.stdout })
        end)
    end)

    it("reports a refused connection as a temporary failure", function()
        local ok, code, text, temporary = job_lib.reinject({
            host = "127.0.0.1", port = 1, helo = "spec", timeout = 2, from = "a@example.org",
            rcpts = { "b@example.net" }, message = message("mime_simple.eml"),
        })
        assert.is_false(ok)
        assert.equals(0, code)
        assert.is_string(text)
        assert.is_true(temporary)
    end)
end)

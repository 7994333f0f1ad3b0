-- Rule fields (fuglu.fields), HTML stripping, client info from Received headers and templates
-- (reference 3.4 TemplateTestcase, 5.2, 5.5 test_sf_get_field / test_strip).

local util = require "support.util"
local fields = require "fuglu.fields"
local htmlstrip = require "fuglu.htmlstrip"
local template = require "fuglu.template"

local function hello()
    local s = util.suspect(util.fixture("rules/helloworld.eml"))
    s.tags.testtag = "testvalue"
    return s
end

describe("fields.get", function()
    it("client info from the first Received header", function()
        local s = hello()
        assert.same({ "helo1" }, fields.get(s, "clienthelo"))
        assert.same({ "10.0.0.1" }, fields.get(s, "clientip"))
        assert.same({ "rdns1" }, fields.get(s, "clienthostname"))
    end)

    it("headers, wildcards, envelope and tags", function()
        local s = hello()
        assert.equals(4, #fields.get(s, "Received"))
        assert.equals(4, #fields.get(s, "received"))
        assert.same({ "1.0" }, fields.get(s, "MI*ion"))
        assert.same({ "1.0" }, fields.get(s, "header:MIME-Version"))
        assert.same({ "sender@unittests.fuglu.org" }, fields.get(s, "envelope_from"))
        assert.same({ "sender@unittests.fuglu.org" }, fields.get(s, "from_address"))
        assert.same({ "recipient@unittests.fuglu.org" }, fields.get(s, "to_address"))
        assert.same({ "unittests.fuglu.org" }, fields.get(s, "from_domain"))
        assert.same({ "testvalue" }, fields.get(s, "@testtag"))
        s.tags.list = { "a", "b" }
        s.tags.num = 13.37
        assert.same({ "a", "b" }, fields.get(s, "@list"))
        assert.same({ "13.37" }, fields.get(s, "@num"))
        assert.same({}, fields.get(s, "@missing"))
        assert.same({}, fields.get(s, "X-Not-There"))
    end)

    it("body, body:raw and body:full", function()
        local s = hello()
        local raw = fields.get(s, "body:raw")
        assert.equals(1, #raw)
        assert.matches("some <tagged>text</tagged>", raw[1], 1, true)
        local body = fields.get(s, "body")
        assert.equals(1, #body)
        assert.matches("some text", body[1], 1, true)
        assert.is_nil(body[1]:find("\n", 1, true))
        assert.same(body, fields.get(s, "body:stripped"))
        assert.matches("_MIME_BOUNDARY_000_12140", fields.get(s, "body:full")[1], 1, true)
    end)

    it("mime: looks at every part, the root included", function()
        local s = util.suspect(util.fixture("rules/multipart-html.eml"))
        local ct = fields.get(s, "mime:Content-Type")
        assert.equals(3, #ct)
        assert.matches("multipart/alternative", ct[1], 1, true)
        assert.matches("text/html", ct[3], 1, true)
        assert.same({ "html-part" }, fields.get(s, "mime:X-Part-Marker"))
        assert.same({}, fields.get(s, "X-Part-Marker"))
    end)

    it("body strips script and style of HTML parts and decodes charsets", function()
        local s = util.suspect(util.fixture("rules/multipart-html.eml"))
        local raw = fields.get(s, "body:raw")
        assert.equals(2, #raw)
        assert.equals("Grüße aus Köln", raw[1]:gsub("%s+$", ""))
        local body = fields.get(s, "body")
        assert.matches("Visible text & more", body[2], 1, true)
        assert.is_nil(body[2]:find("hidden", 1, true))
        assert.is_nil(body[2]:find("color", 1, true))
        assert.is_nil(body[2]:find("comment", 1, true))
    end)

    it("header:decoded: gives RFC 2047-decoded values, the default stays raw", function()
        local s = util.suspect(util.fixture("rules/multipart-html.eml"))
        assert.same({ "=?UTF-8?B?R3LDvMOfZQ==?= from Alice" }, fields.get(s, "Subject"))
        assert.same({ "Grüße from Alice" }, fields.get(s, "header:decoded:Subject"))
        local sf = require("fuglu.suspectfilter").from_string("header:decoded:Subject /^Grüße/ dec\nSubject Grüße raw")
        assert.same({ "dec" }, sf:get_args(s))
    end)
end)

describe("htmlstrip", function()
    it("removes script content and tags", function()
        assert.equals("foobarbaz", htmlstrip.strip([[foo<a href="bar">bar</a><script language="JavaScript">echo('hello world');</script>baz]]))
    end)

    it("keeps the words of an XHTML document", function()
        local doc = [[<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head><title></title></head>
<body>
<p>greetings</p>
<div>well <b>met!</b></div>
</body>
</html>]]
        local words = {}
        for w in htmlstrip.strip(doc):gmatch("%S+") do words[#words + 1] = w end
        assert.same({ "greetings", "well", "met!" }, words)
    end)

    it("gives nothing for style blocks and conditional comments", function()
        local word = [[<html><head><!--[if gte mso 9]><xml><o:OfficeDocumentSettings></o:OfficeDocumentSettings></xml><![endif]-->
<style>
/* Style Definitions */ p.MsoNormal { margin: 0cm; }
</style></head><body></body></html>]]
        assert.equals("", (htmlstrip.strip(word):gsub("%s", "")))
    end)

    it("decodes entities and non-breaking spaces", function()
        assert.equals("a b c d <e>", htmlstrip.strip("a&nbsp;b&#160;c&#xa0;d &lt;e&gt;"))
        assert.equals("1 < 2", htmlstrip.strip("1 < 2"))
    end)
end)

describe("client info with a config", function()
    local function info(raw)
        local s = hello()
        return s:get_client_info(util.config(raw))
    end

    it("boundarydistance skips headers", function()
        local ci = info({ environment = { boundarydistance = "1" } })
        assert.same({ helo = "helo2", ip = "10.0.0.2", rdns = "rdns2" }, ci)
    end)

    it("trustedhostsregex skips trusted relays (PCRE2)", function()
        local ci = info({ environment = { boundarydistance = "1", trustedhostsregex = "10\\.0\\.0\\.2" } })
        assert.same({ helo = "helo3", ip = "10.0.0.3", rdns = "rdns3" }, ci)
        ci = info({ environment = { trustedhostsregex = "^(?:rdns1|helo2)$" } })
        assert.same({ helo = "helo3", ip = "10.0.0.3", rdns = "rdns3" }, ci)
    end)

    it("without config the first header counts", function()
        assert.same({ helo = "helo1", ip = "10.0.0.1", rdns = "rdns1" }, hello():get_client_info())
    end)
end)

describe("templates (TemplateTestcase)", function()
    it("fills in the built-ins and caller values", function()
        local s = hello()
        local text = template.apply("Your message '${subject}' from ${from_address} to ${to_address} could not be delivered because ${reason}",
            s, { reason = "a three-headed monkey stole it" })
        assert.equals("Your message 'Hello world!' from sender@unittests.fuglu.org to recipient@unittests.fuglu.org could not be delivered because a three-headed monkey stole it", text)
    end)

    it("tags, unknown names, lists, date and header:date", function()
        local s = hello()
        s.tags["SAPlugin.spamscore"] = "13.37"
        s.tags.hello = { "World", "is", "cool" }
        assert.equals("Hello world!", template.apply("${subject}", s))
        assert.equals("13.37", template.apply("${@SAPlugin.spamscore}", s))
        assert.equals("", template.apply("${blubb}", s))
        assert.equals("World", template.apply("${@hello}", s))
        assert.equals(os.date("%Y-%m-%d"), template.apply("${date}", s))
        assert.equals("Tue, 12 Nov 2013 01:12:11 +0200", template.apply("${header:date}", s))
    end)

    it("every rule field: clientip, mime:, envelope_from, $$", function()
        local s = hello()
        assert.equals("10.0.0.1 helo1", template.apply("${clientip} ${clienthelo}", s))
        assert.equals("Hello world!", template.apply("${mime:subject}", s))
        assert.equals("${mime:Content-Type}", template.apply("${mime:Content-Type}", s))   -- no "-" in names
        assert.equals("$ sender@unittests.fuglu.org", template.apply("$$ ${envelope_from}", s))
    end)

    it("a valuesfunction may remove and change values", function()
        local s = hello()
        s.tags.removeme = "disappearing rabbit"
        s.tags.changeme = "an elephant"
        local text = template.apply("The quick brown ${@removeme} jumps over the ${@removeme}. Uh ${@changeme}", s, nil,
            function(map)
                map["@removeme"] = nil
                map["@changeme"] = "elephant"
                return map
            end)
        assert.equals("The quick brown  jumps over the . Uh elephant", text)
    end)
end)

describe("htmlstrip in C (fuglu_htmlstrip.strip) and the Lua reference", function()
    local regex = require "fuglu.regex"

    it("the C version is in use", function()
        assert.equals("function", type(require("fuglu_htmlstrip").strip))
        assert.equals("foobarbaz", require("fuglu_htmlstrip").strip([[foo<a href="bar">bar</a><script>x</script>baz]]))
    end)

    it("gives the Lua version's result on the fixtures' text parts", function()
        local parts = 0
        for _, name in ipairs({ "rules/helloworld.eml", "rules/multipart-html.eml", "mime_alternative.eml",
            "mime_latin1_qp.eml", "mime_mixed.eml", "mime_rfc822.eml", "mime_simple.eml", "mime_broken.eml",
            "mime_encoded_names.eml", "hello.eml" }) do
            local s = util.suspect(util.fixture(name))
            for _, text in ipairs(fields.text_parts(s)) do
                assert.equals(htmlstrip.strip_lua(text), htmlstrip.strip(text), name)
                parts = parts + 1
            end
        end
        assert.is_true(parts >= 10)
    end)

    it("gives the Lua version's result on generated HTML", function()
        local tokens = { "<", ">", "/", "!", "?", "-", "--", "<!--", "-->", "<script>", "</script>", "<SCRIPT ",
            "</script >", "<style/>", "</STYLE>", "<Style\t", "<scripts>", "<![CDATA[", "]]>", "&", "#", "x", "X",
            ";", "&amp;", "&AMP;", "&nbsp;", "&#160;", "&#xa0;", "&#x", "&#", "&shy;", "&Auml;", "&AUML;",
            "&foo;", "&lt;", "&#x23;", "&#65;", "&#x41", "&#0;", "&#55296;", "&#x110000;", "&#1114111;",
            "99999999999999999999", "ffffffffffffffffffff", "a", "B", "1", "f", " ", "\t", "\r", "\n", "\r\n",
            "\194\160", "\194", "\160", "<b>", "</b>", "<a href='x'>", "<p", "</", "<?xml?>", "<!DOCTYPE html>",
            "\226\130\172", "\255" }
        local seed = 4242
        local function rand(n)
            seed = (seed * 1103515245 + 12345) % 2147483648
            return seed % n + 1
        end
        local changed = 0
        for _ = 1, 3000 do
            local parts = {}
            for j = 1, rand(40) do parts[j] = tokens[rand(#tokens)] end
            local text = table.concat(parts)
            local want = htmlstrip.strip_lua(text)
            assert.equals(want, htmlstrip.strip(text), string.format("%q", text))
            if want ~= text then changed = changed + 1 end
        end
        assert.is_true(changed > 2000)
    end)

    it("other element lists use the Lua version", function()
        assert.equals("a  c", htmlstrip.strip("a <b>x</b> c", { "b" }))
    end)
end)

describe("field values are computed once per message", function()
    it("shares body, header and mime: values until the source changes, never tags", function()
        local s = hello()
        for _, name in ipairs({ "body", "body:raw", "Subject", "MI*ion", "mime:Content-Type", "header:decoded:Subject" }) do
            assert.equals(fields.get(s, name), fields.get(s, name), name)
        end
        local before = fields.get(s, "Subject")
        s:set_source("Subject: changed\r\n\r\nnew body\r\n")
        assert.same({ "changed" }, fields.get(s, "Subject"))
        assert.equals("new body", (fields.get(s, "body:raw")[1]:gsub("%s+$", "")))
        assert.same({ "Hello world!" }, before)
        s.tags.testtag = "other"
        assert.same({ "other" }, fields.get(s, "@testtag"))
    end)
end)

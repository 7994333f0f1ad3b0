-- fuglu.template: Fuglu's TemplateTestcase cases that need no rule-file fields, plus syntax edges.

local template = require "fuglu.template"
local util = require "support.util"

describe("fuglu.template", function()
    local s
    before_each(function()
        s = util.suspect()
        s.tags["SAPlugin.spamscore"] = 13.37
        s.tags.hello = { "World", "is", "cool" }
        s.tags.testtag = "testvalue"
    end)

    it("fills in built-ins and caller values", function()
        local text = template.apply("Your message '${subject}' from ${from_address} to ${to_address} could not be delivered because ${reason}",
            s, { reason = "a three-headed monkey stole it" })
        assert.equal("Your message 'Hello world!' from sender@unittests.fuglu.org to recipient@unittests.fuglu.org could not be delivered because a three-headed monkey stole it", text)
    end)

    it("knows tags, lists, headers and today's date", function()
        assert.equal("Hello world!", template.apply("${subject}", s))
        assert.equal("13.37", template.apply("${@SAPlugin.spamscore}", s))
        assert.equal("", template.apply("${blubb}", s))
        assert.equal("World", template.apply("${@hello}", s))
        assert.equal(os.date("%Y-%m-%d"), template.apply("${date}", s))
        assert.equal("Tue, 12 Nov 2013 01:12:11 +0200", template.apply("${header:date}", s))
        assert.equal("Tue, 12 Nov 2013 01:12:11 +0200", template.apply("${HEADER:Date}", s))
        assert.equal(s.id .. " unittests.fuglu.org unittests.fuglu.org", template.apply("$id $from_domain ${to_domain}", s))
    end)

    it("lets a values function edit the resolved values", function()
        local function valuesfunction(values)
            values["@removeme"] = nil
            values["@changeme"] = "elephant"
            return values
        end
        s.tags.removeme = "remove me"
        s.tags.changeme = "change me"
        local text = template.apply("The quick brown ${from_address} jumps over the ${@removeme}. Uh ${@changeme}", s, nil, valuesfunction)
        assert.equal("The quick brown sender@unittests.fuglu.org jumps over the . Uh elephant", text)
    end)

    it("handles $$, invalid placeholders and names with dots", function()
        assert.equal("costs $5", template.apply("costs $$5", s))
        assert.equal("costs $5", template.apply("costs $5", s))
        assert.equal("${x-mailer} and $-", template.apply("${x-mailer} and $-", s))
        assert.equal("", template.apply("$id.", s))     -- looked up as "id." like Fuglu
        assert.equal("trailing $", template.apply("trailing $", s))
    end)

    it("lets caller values win over built-ins", function()
        assert.equal("mine", template.apply("${subject}", s, { subject = "mine" }))
    end)

    it("works without a suspect", function()
        assert.equal("a b ", template.apply("$x ${y} ${z}", nil, { x = "a", y = "b" }))
    end)

    it("lists placeholder names once each", function()
        assert.same({ "a", "@b.c", "header:To" }, template.names("$a ${@b.c} $a ${header:To} $$d"))
    end)

    it("renders the logtemplate extras", function()
        local values = s:log_values()
        assert.equal("no no", template.apply("${spam} ${modified}", s, values))
        s.tags.virus.ClamAV = true
        local line = template.apply("size=${size} virus=${virus} decision=${decision}", s, s:log_values())
        assert.equal("size=" .. s.size .. " virus=yes decision=DUNNO", line)
        assert.truthy(template.apply("${fulltags}", s, s:log_values()):find("'decisions': {}", 1, true))
        assert.is_nil(template.apply("${tags}", s, s:log_values()):find("decisions", 1, true))
        assert.truthy(template.apply("${tags}", s, s:log_values()):find("'SAPlugin.spamscore': '13.37'", 1, true))
    end)
end)

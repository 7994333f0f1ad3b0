-- fuglu.lint: plugin loading and per-plugin lint output for `fuglu --lint`.

local lint = require "fuglu.lint"

local function run(raw)
    local printed = {}
    local saved = _G.print
    _G.print = function(text) printed[#printed + 1] = tostring(text) end
    local ok, errors = pcall(lint.run, raw, { luadir = "lua", plugindirs = { "spec/plugins" } })
    _G.print = saved
    assert(ok, errors)
    return errors, table.concat(printed, "\n")
end

describe("fuglu.lint", function()
    it("lints every plugin and counts none as failed", function()
        local errors, out = run{ main = { plugins = "killer,testaction(Second)", appenders = "testappender" } }
        assert.equal(0, errors)
        assert.truthy(out:find("Plugin loading complete", 1, true))
        assert.truthy(out:find("Linting Plugin KillerPlugin Config section: KillerPlugin\n", 1, true))
        assert.truthy(out:find("KillerPlugin deletes EVERY message", 1, true))
        assert.truthy(out:find("Linting Plugin TestActionPlugin(Second) Config section: Second\nOK", 1, true))
        assert.truthy(out:find("0 plugins reported errors.", 1, true))
    end)

    it("reports load failures", function()
        local errors, out = run{ main = { plugins = "nothere", appenders = "also missing" } }
        assert.equal(2, errors)
        assert.truthy(out:find("At least one plugin failed to load", 1, true))
        assert.truthy(out:find("ERROR: plugin 'nothere' not found", 1, true))
        assert.truthy(out:find("Invalid Plugin Syntax: also missing", 1, true))
    end)
end)

-- fuglu.actions: codes, names and the config-dependent DEFAULT* keywords (Fuglu's ActionCodeTestCase).

local actions = require "fuglu.actions"
local config = require "fuglu.config"

describe("fuglu.actions", function()
    it("has Fuglu's numbers", function()
        assert.same({ 0, 1, 2, 3, 4 }, { actions.DUNNO, actions.ACCEPT, actions.DELETE, actions.REJECT, actions.DEFER })
        assert.equal(actions.DELETE, actions.DISCARD)
    end)

    it("maps the DEFAULT* keywords through the config", function()
        local cfg = config.new{
            spam = { defaultlowspamaction = "REJEcT", defaulthighspamaction = "REJECT" },
            virus = { defaultvirusaction = "rejecT" },
        }
        assert.equal(actions.REJECT, actions.string_to_actioncode("defaultlowspamaction", cfg))
        assert.equal(actions.REJECT, actions.string_to_actioncode("DEFAULTHIGHSPAMACTION", cfg))
        assert.equal(actions.REJECT, actions.string_to_actioncode("defaultvirusaction", cfg))
    end)

    it("uses Fuglu's defaults for unset DEFAULT* options", function()
        local cfg = config.new{}
        assert.equal(actions.DELETE, actions.string_to_actioncode("DEFAULTVIRUSACTION", cfg))
        assert.equal(actions.DUNNO, actions.string_to_actioncode("DEFAULTLOWSPAMACTION", cfg))
        assert.equal(actions.DUNNO, actions.string_to_actioncode("DEFAULTHIGHSPAMACTION", nil))
    end)

    it("accepts a plain config table too", function()
        assert.equal(actions.DEFER, actions.string_to_actioncode("DEFAULTVIRUSACTION", { virus = { defaultvirusaction = "defer" } }))
    end)

    it("is case-insensitive, trims, knows DISCARD and returns nil for unknown words", function()
        assert.equal(actions.REJECT, actions.string_to_actioncode("  reject \n"))
        assert.equal(actions.DELETE, actions.string_to_actioncode("discard"))
        assert.is_nil(actions.string_to_actioncode("nonexistingstuff"))
        assert.is_nil(actions.string_to_actioncode(nil))
    end)

    it("names codes, invalid codes and nil", function()
        assert.equal("REJECT", actions.actioncode_to_string(actions.REJECT))
        assert.equal("DELETE", actions.actioncode_to_string(actions.string_to_actioncode("discard")))
        assert.equal("DUNNO", actions.actioncode_to_string(0))
        assert.equal("INVALID ACTION CODE 7", actions.actioncode_to_string(7))
        assert.equal("NULL ACTION CODE", actions.actioncode_to_string(nil))
    end)

    it("tells valid codes from invalid ones", function()
        assert.is_true(actions.is_valid(4))
        assert.is_false(actions.is_valid(5))
        assert.is_false(actions.is_valid("1"))
    end)
end)

-- fuglu.plugin base classes and the built-in KillerPlugin.

local plugin = require "fuglu.plugin"
local actions = require "fuglu.actions"
local util = require "support.util"

describe("fuglu.plugin", function()
    local Sample
    before_each(function()
        Sample = plugin.scanner{
            name = "SamplePlugin",
            description = "a sample",
            options = {
                withdefault = { default = "5", description = "has a default" },
                required = { description = "no default" },
            },
        }
    end)

    it("builds instances with section, config and logger", function()
        local cfg = util.config{}
        local p = Sample(cfg)
        assert.equal("SamplePlugin", p.section)
        assert.equal(cfg, p.config)
        assert.equal("fuglu.plugin.SamplePlugin", p.logger.name)
        assert.equal("SamplePlugin", tostring(p))
        local q = Sample:new(cfg, "Other")
        assert.equal("SamplePlugin(Other)", tostring(q))
        assert.equal(actions.DUNNO, q:examine(util.suspect()))
    end)

    it("lints missing options with Fuglu's message", function()
        local cfg = util.config{}
        plugin.fill_defaults(Sample, cfg, "SamplePlugin")
        assert.equal("5", cfg:get("SamplePlugin", "withdefault"))
        local p = Sample(cfg)
        local printed = {}
        local saved = _G.print
        _G.print = function(text) printed[#printed + 1] = text end
        local ok = p:lint()
        _G.print = saved
        assert.is_false(ok)
        assert.same({ "Missing configuration value [SamplePlugin] :: required" }, printed)
        cfg:set("SamplePlugin", "required", "x")
        assert.is_true(p:lint())
        assert.equal(5, p:getint("withdefault"))
    end)

    it("refuses a class without a usable name", function()
        assert.has_error(function() plugin.scanner{} end)
        assert.has_error(function() plugin.appender{ name = "with space" } end)
        assert.has_error(function() plugin.prepender{ name = "X", options = { a = "notatable" } } end)
    end)

    it("gives every kind a harmless default method", function()
        local P = plugin.prepender{ name = "P" }
        local A = plugin.appender{ name = "A" }
        assert.is_nil(P(util.config{}):pluginlist(nil, {}))
        assert.is_nil(A(util.config{}):process(nil, 0))
        assert.equal("prepender", plugin.kind_of(P))
        assert.is_nil(plugin.kind_of({}))
    end)

    it("calls init() after construction", function()
        local C = plugin.scanner{ name = "C" }
        function C:init() self.ready = self.section end
        assert.equal("C", C(util.config{}).ready)
    end)
end)

describe("KillerPlugin", function()
    local Killer = dofile("lua/plugins/killer.lua")

    it("deletes every message", function()
        local k = Killer(util.config{})
        assert.equal(actions.DELETE, k:examine(util.suspect()))
        assert.equal("KillerPlugin", tostring(k))
    end)

    it("warns loudly in lint and passes", function()
        local printed = {}
        local saved = _G.print
        _G.print = function(text) printed[#printed + 1] = text end
        local ok = Killer(util.config{}):lint()
        _G.print = saved
        assert.is_true(ok)
        assert.truthy(table.concat(printed, "\n"):find("KillerPlugin deletes EVERY message", 1, true))
    end)
end)

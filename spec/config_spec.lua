-- fuglu.config: typed getters, case-insensitive option names, defaults.

local config = require "fuglu.config"

describe("fuglu.config", function()
    local cfg
    before_each(function()
        cfg = config.new{
            main = { Plugins = " a, b ,,c ", outgoingport = "10026", flag = "Yes", off = "0", bad = "maybe", ratio = "0.5" },
            Section = { x = "1" },
        }
    end)

    it("reads strings with case-insensitive option names", function()
        assert.equal(" a, b ,,c ", cfg:get("main", "PLUGINS"))
        assert.equal("10026", cfg:get("main", "OutgoingPort"))
    end)

    it("keeps section names case-sensitive", function()
        assert.is_true(cfg:has_section("Section"))
        assert.is_false(cfg:has_section("section"))
    end)

    it("raises for a missing option without default and returns the default otherwise", function()
        assert.has_error(function() cfg:get("main", "nothere") end, "missing configuration value [main] :: nothere")
        assert.equal("dflt", cfg:get("main", "nothere", "dflt"))
        assert.equal(false, cfg:get("nosection", "x", false))
    end)

    it("converts numbers and rejects bad ones", function()
        assert.equal(10026, cfg:getint("main", "outgoingport"))
        assert.equal(0.5, cfg:getfloat("main", "ratio"))
        assert.has_error(function() cfg:getint("main", "ratio") end)
        assert.equal(7, cfg:getint("main", "missing", 7))
    end)

    it("knows Fuglu's boolean words and names the option of a bad value", function()
        assert.is_true(cfg:getboolean("main", "flag"))
        assert.is_false(cfg:getboolean("main", "off"))
        for _, word in ipairs({ "1", "yes", "TRUE", "on" }) do
            cfg:set("main", "b", word)
            assert.is_true(cfg:getboolean("main", "b"))
        end
        for _, word in ipairs({ "0", "No", "false", "OFF" }) do
            cfg:set("main", "b", word)
            assert.is_false(cfg:getboolean("main", "b"))
        end
        local ok, err = pcall(cfg.getboolean, cfg, "main", "bad")
        assert.is_false(ok)
        assert.matches("[main] bad", err, 1, true)
    end)

    it("splits lists on commas, trimming and skipping empty items", function()
        assert.same({ "a", "b", "c" }, cfg:getlist("main", "plugins"))
        assert.same({}, cfg:getlist("main", "none", ""))
    end)

    it("sets values and defaults without overwriting", function()
        cfg:set_default("main", "OUTGOINGPORT", "1")
        assert.equal("10026", cfg:get("main", "outgoingport"))
        cfg:set_default("new", "opt", "v")
        assert.equal("v", cfg:get("new", "OPT"))
        assert.is_true(cfg:has_option("new", "Opt"))
        cfg:set("new", "opt", "w")
        assert.equal("w", cfg:get("new", "opt"))
    end)

    it("falls back to the C core's table for a core option that is not set", function()
        local empty = config.new({})
        if require("fuglu_sys").fake then return end   -- the pure-Lua stand-in has no table
        assert.equal("X-Fuglu-", empty:get("main", "prependaddedheaders"))
        assert.is_true(empty:getboolean("main", "spamstatusheader"))
        assert.equal(0, empty:getint("environment", "boundarydistance"))
        local t = config.core_options()
        assert.equal("int", t.main.scan_timeout.type)
        assert.equal("300", t.main.scan_timeout.default)
        assert.equal(0, t.main.scan_timeout.min)
        assert.equal("bool", t.main.trashlog.type)
        -- not a core option: still Fuglu's NoOptionError
        assert.has_error(function() empty:get("main", "no_such_option") end)
    end)
end)

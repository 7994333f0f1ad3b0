-- fuglu.loader: list syntax, alias resolution, search order, errors, defaults.

local loader = require "fuglu.loader"
local plugin = require "fuglu.plugin"
local util = require "support.util"

local OPTIONS = { luadir = "lua", plugindirs = { "spec/plugins" } }

describe("fuglu.loader", function()
    describe("parse_list", function()
        it("parses names and name(section)", function()
            assert.same({ { name = "archive" }, { name = "attachment", section = "Att2" }, { name = "my.plugin-x_1" } },
                loader.parse_list(" archive , attachment(Att2),, my.plugin-x_1"))
            assert.same({}, loader.parse_list(""))
        end)

        it("rejects spaces and other characters", function()
            for _, bad in ipairs({ "arch ive", "a(b c)", "a(b", "a()", "a(b)(c)", "a;b", "(x)" }) do
                local ok, err = pcall(loader.parse_list, bad)
                assert.is_false(ok, bad)
                assert.equal("Invalid Plugin Syntax: " .. bad, err)
            end
        end)
    end)

    describe("module path", function()
        it("lets a plugin require a helper module beside it", function()
            local dir = util.tempdir()
            util.write(dir .. "/helper_for_spec.lua", "return { answer = 42 }")
            util.write(dir .. "/helped.lua", [[
                local plugin = require "fuglu.plugin"
                local helper = require "helper_for_spec"
                local P = plugin.scanner{ name = "HelpedPlugin", description = "uses a helper" }
                P.answer = helper.answer
                return P
            ]])
            local saved = package.path
            local cfg = util.config{ main = { plugindir = dir, plugins = "helped" } }
            local result, errors = loader.load_all(cfg, { luadir = "lua" })
            assert.same({}, errors)
            assert.equal(42, result.scanners[1].answer)
            loader.load_all(cfg, { luadir = "lua" })   -- added once, not per load
            local _, count = package.path:gsub(dir:gsub("%p", "%%%0") .. "/%?%.lua;", "")
            assert.equal(1, count)
            package.path = saved
            package.loaded.helper_for_spec = nil
            util.rmtree(dir)
        end)
    end)

    describe("find", function()
        it("resolves aliases and searches plugindirs before lua/plugins", function()
            local dir = util.tempdir()
            util.write(dir .. "/killer.lua", "return 1")
            local cfg = util.config{ main = { plugindir = dir }, PluginAlias = { trap = "killer" } }
            assert.equal(dir .. "/killer.lua", loader.find("killer", cfg, { luadir = "lua" }))
            assert.equal(dir .. "/killer.lua", loader.find("trap", cfg, { luadir = "lua" }))
            assert.equal("lua/plugins/killer.lua", loader.find("trap", util.config{ PluginAlias = { trap = "killer" } }, { luadir = "lua" }))
            util.rmtree(dir)
        end)

        it("says where it looked for a missing plugin", function()
            local path, err = loader.find("nothere", util.config{}, OPTIONS)
            assert.is_nil(path)
            assert.equal("plugin 'nothere' not found (looked in: spec/plugins/nothere.lua, lua/plugins/nothere.lua)", err)
        end)

        it("names the discontinued scanners instead of 'not found'", function()
            local path, err = loader.find("fprot", util.config{}, OPTIONS)
            assert.is_nil(path)
            assert.matches("^plugin 'fprot': F%-Prot Antivirus was discontinued", err)
            path, err = loader.find("drweb", util.config{ PluginAlias = { drweb = "DrWebPlugin" } }, OPTIONS)
            assert.matches("^plugin 'drweb' %(alias of 'DrWebPlugin'%): .*experimental", err)
        end)
    end)

    describe("load_all", function()
        it("loads all three kinds in order with sections", function()
            local cfg = util.config{ main = {
                prependers = "testprepender",
                plugins = "testaction, killer, testaction(Second)",
                appenders = "testappender",
            } }
            local chain, errors = loader.load_all(cfg, OPTIONS)
            assert.same({}, errors)
            assert.equal(1, #chain.prependers)
            assert.equal(3, #chain.scanners)
            assert.equal("TestActionPlugin", tostring(chain.scanners[1]))
            assert.equal("KillerPlugin", tostring(chain.scanners[2]))
            assert.equal("TestActionPlugin(Second)", tostring(chain.scanners[3]))
            assert.equal("Second", chain.scanners[3].section)
            assert.equal("fuglu.plugin.TestActionPlugin", chain.scanners[3].logger.name)
            assert.equal("scanner", plugin.kind_of(chain.scanners[2]))
            assert.equal("appender", plugin.kind_of(chain.appenders[1]))
            -- one class per file, shared by both instances
            assert.equal(getmetatable(chain.scanners[1]), getmetatable(chain.scanners[3]))
        end)

        it("fills option defaults into the plugin's section without overwriting", function()
            local cfg = util.config{ main = { appenders = "testappender, testappender(Other)" },
                Other = { outfile = "/tmp/other" } }
            local chain, errors = loader.load_all(cfg, OPTIONS)
            assert.same({}, errors)
            assert.equal("/tmp/fuglu-testappender.log", cfg:get("TestAppender", "outfile"))
            assert.equal("/tmp/other", cfg:get("Other", "outfile"))
            assert.equal("/tmp/other", chain.appenders[2]:get("outfile"))
        end)

        it("collects errors: syntax, missing plugin, wrong kind, bad return, runtime error", function()
            local dir = util.tempdir()
            util.write(dir .. "/broken.lua", "local x = \nreturn {")
            util.write(dir .. "/notaplugin.lua", "return {}")
            util.write(dir .. "/crash.lua", "local t = nil\nreturn t.x")
            local cfg = util.config{ main = {
                plugindir = dir,
                plugins = "broken,missing,testprepender,notaplugin,crash,killer",
                appenders = "bad syntax",
            } }
            local chain, errors = loader.load_all(cfg, OPTIONS)
            assert.equal(6, #errors)
            assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/broken%.lua:%d+: ", errors[1])
            assert.matches("^plugin 'missing' not found %(looked in: ", errors[2])
            assert.matches("TestPrepender is a prepender, but is listed where a scanner is expected", errors[3])
            assert.matches("notaplugin%.lua: the file must return a plugin class", errors[4])
            assert.matches("crash%.lua:2: ", errors[5])
            assert.equal("[main] appenders: Invalid Plugin Syntax: bad syntax", errors[6])
            assert.equal(1, #chain.scanners)
            util.rmtree(dir)
        end)
    end)
end)

-- FiletypePlugin (lua/plugins/attachment.lua) on messages made by spec/fixtures/attachment/gen.py:
-- rule files and scopes, names, declared and magic types, archives, epilogue parts, bounces, lint.
-- The daemon-level cases (zip bomb memory, the bounce at the downstream) are in
-- spec/integration/test_attachment.py.
--
-- FUGLU_BUILD=build-att busted ... loads the C modules from that build directory instead of build/.

local build = os.getenv("FUGLU_BUILD")
if build and build ~= "" and build ~= "build" then
    for name in pairs(package.loaded) do
        if name:match("^fuglu") or name:match("^support%.") then package.loaded[name] = nil end
    end
    for name in pairs(package.preload) do
        if name:match("^fuglu_") then package.preload[name] = nil end
    end
    package.cpath = build .. "/?.so;" .. package.cpath
    local open = assert(package.loadlib(build .. "/fuglu_core.so", "luaopen_fuglu_core"))
    open()
end

local util = require "support.util"
local config = require "fuglu.config"
local plugin = require "fuglu.plugin"
local suspect_lib = require "fuglu.suspect"
local actions = require "fuglu.actions"
local message_lib = require "fuglu_message"

local bounces = {}
local real_bounce = package.loaded["fuglu.bounce"]
local function stub_bounce()
    package.loaded["fuglu.bounce"] = {
        send_template_file = function(conf, suspect, recipient, path, values)
            bounces[#bounces + 1] = { config = conf, suspect = suspect, recipient = recipient, path = path,
                                      values = values }
            return true
        end,
    }
end

local function load_plugin()
    return assert(loadfile("lua/plugins/attachment.lua"))()
end

local fixtures            -- name -> bytes, made once by gen.py

local function make_fixtures()
    if fixtures then return fixtures end
    local dir = util.tempdir()
    assert(os.execute("GEN_SKIP_BOMB=1 python3 spec/fixtures/attachment/gen.py '" .. dir .. "'") == 0)
    fixtures = {}
    for _, name in ipairs({ "hiddenbinary", "rfc2047exe", "rfc2231exe", "clean", "sizecap_over", "sizecap_under",
                            "archivenames", "nested", "epilogue", "wrongext", "plaingz" }) do
        fixtures[name] = util.read(dir .. "/" .. name .. ".eml")
    end
    util.rmtree(dir)
    return fixtures
end

describe("FiletypePlugin", function()
    local Plugin, dir, logs

    local function instance(options)
        local raw = { FiletypePlugin = { rulesdir = dir, template_blockedfile = dir .. "/blockedfile.tmpl" } }
        for k, v in pairs(options or {}) do raw.FiletypePlugin[k] = v end
        local cfg = config.new(raw)
        plugin.fill_defaults(Plugin, cfg)
        return Plugin(cfg)
    end

    local function suspect(name, rcpts, from)
        return suspect_lib.new{
            from = from or "a@example.org",
            recipients = rcpts or { "b@example.net" },
            message = assert(message_lib.from_string(make_fixtures()[name])),
        }
    end

    local function copy_default_rules()
        for _, kind in ipairs({ "filenames", "filetypes", "archivenames", "archivefiletypes" }) do
            util.write(dir .. "/default-" .. kind .. ".conf", util.read("rules/default-" .. kind .. ".conf"))
        end
        util.write(dir .. "/blockedfile.tmpl", util.read("conf/templates/blockedfile.tmpl.dist"))
    end

    before_each(function()
        stub_bounce()
        bounces = {}
        Plugin = load_plugin()
        Plugin.RULES_CHECK = 0
        dir = util.tempdir()
        copy_default_rules()
        logs = util.capture_logs()
    end)

    after_each(function()
        logs.restore()
        util.rmtree(dir)
        package.loaded["fuglu.bounce"] = real_bounce
    end)

    describe("rule files", function()
        it("parses ACTION REGEX DESCRIPTION lines and reports bad ones with file:line", function()
            local rules, errors = Plugin.parse_rules(table.concat({
                "# comment", "", "allow \\.txt$ -", "DENY  \\.exe$   no programs here ", "block x y",
                "deny onlytwo", "deny ([ broken regex",
            }, "\n"), "/r/default-filenames.conf")
            assert.equal(2, #rules)
            assert.same({ "allow", "deny" }, { rules[1].action, rules[2].action })
            assert.equal("no programs here", rules[2].description)
            assert.equal(4, rules[2].line)
            assert.equal(3, #errors)
            assert.matches("^/r/default%-filenames%.conf:5: invalid action 'block'", errors[1])
            assert.matches("^/r/default%-filenames%.conf:6: invalid rule line", errors[2])
            assert.matches("^/r/default%-filenames%.conf:7: bad regular expression", errors[3])
        end)

        it("a bad line is logged with file:line and the other rules keep working", function()
            util.write(dir .. "/default-filenames.conf", "deny \\.exe$ no exe\nwrong line\n")
            local code, msg = instance():examine(suspect("rfc2047exe"))
            assert.equal(actions.DELETE, code)
            assert.equal("Rechnung_Mrz.exe: no exe", msg)
            assert.truthy(logs.find("default-filenames.conf:2: invalid rule line"))
        end)

        it("picks up an edit of the rules directory without a reload", function()
            local p = instance()
            assert.equal(actions.DUNNO, (p:examine(suspect("clean"))))
            util.write(dir .. "/b@example.net-filenames.conf", "deny \\.png$ no pictures for bob\n")
            local code, msg = p:examine(suspect("clean"))
            assert.equal(actions.DELETE, code)
            assert.equal("photo.png: no pictures for bob", msg)
        end)

        it("looks at the directory at most every RULES_CHECK seconds", function()
            Plugin.RULES_CHECK = 3600
            local p = instance()
            assert.equal(actions.DUNNO, (p:examine(suspect("clean"))))
            util.write(dir .. "/b@example.net-filenames.conf", "deny \\.png$ no\n")
            assert.equal(actions.DUNNO, (p:examine(suspect("clean"))))
        end)

        it("tries user, then domain, then default rules", function()
            local p = instance()
            assert.equal(actions.DELETE, (p:examine(suspect("rfc2047exe"))))
            util.write(dir .. "/example.net-filenames.conf", "allow \\.exe$ the domain allows it\n")
            assert.equal(actions.DUNNO, (p:examine(suspect("rfc2047exe"))))
            util.write(dir .. "/B@Example.NET-filenames.conf", "deny Rechnung bob does not\n")
            local code, msg = p:examine(suspect("rfc2047exe"))
            assert.equal(actions.DELETE, code)
            assert.equal("Rechnung_Mrz.exe: bob does not", msg)
            -- another recipient of the domain is allowed, but the message still goes to bob too
            assert.equal(actions.DUNNO, (p:examine(suspect("rfc2047exe", { "c@example.net" }))))
            assert.equal(actions.DELETE, (p:examine(suspect("rfc2047exe", { "c@example.net", "b@example.net" }))))
        end)

        it("delete rules delete silently: no tag, no bounce, no message", function()
            util.write(dir .. "/default-filenames.conf", "delete \\.exe$ gone\n")
            local s = suspect("rfc2047exe")
            local code, msg = instance({ blockaction = "REJECT" }):examine(s)
            assert.equal(actions.DELETE, code)
            assert.is_nil(msg)
            assert.is_nil(s.tags.blocked.FiletypePlugin)
            assert.equal(0, #bounces)
        end)
    end)

    describe("names and types", function()
        it("blocks a binary declared text/plain by its magic type", function()
            local s = suspect("hiddenbinary")
            local code, msg = instance():examine(s)
            assert.equal(actions.DELETE, code)
            assert.matches("^hiddenbinary%.txt application/x%-[%w%-]+: Executables are not allowed$", msg)
            assert.is_true(s.tags.blocked.FiletypePlugin)
            assert.equal(msg, s.tags["FiletypePlugin.errormessage"])
        end)

        it("decodes RFC 2047 and RFC 2231 names and drops non-ASCII before matching", function()
            local code, msg = instance():examine(suspect("rfc2047exe"))
            assert.equal(actions.DELETE, code)
            assert.equal("Rechnung_Mrz.exe: Windows executable or script files are not allowed", msg)
            code, msg = instance():examine(suspect("rfc2231exe"))
            assert.equal(actions.DELETE, code)
            assert.equal("Rechnung Mrz.exe: Windows executable or script files are not allowed", msg)
        end)

        it("names parts without a file name unnamed.<ext>", function()
            assert.equal("unnamed.txt", Plugin.unnamed("text/plain"))
            assert.equal("unnamed.html", Plugin.unnamed("TEXT/HTML"))
            assert.equal("unnamed", Plugin.unnamed("application/octet-stream"))
            assert.equal("unnamed", Plugin.unnamed("x-unknown/x-nothing"))
            util.write(dir .. "/default-filenames.conf", "deny ^unnamed\\.txt$ the body\n")
            local code, msg = instance():examine(suspect("clean"))
            assert.equal(actions.DELETE, code)
            assert.equal("unnamed.txt: the body", msg)
        end)

        it("passes a clean message and uses blockaction for a deny", function()
            assert.equal(actions.DUNNO, (instance():examine(suspect("clean"))))
            assert.equal(actions.REJECT, (instance({ blockaction = "REJECT" }):examine(suspect("hiddenbinary"))))
        end)

        it("checks a part hidden in the epilogue", function()
            assert.equal(actions.DUNNO, (instance():examine(suspect("epilogue"))))
            util.write(dir .. "/b@example.net-filetypes.conf", "deny application\\/zip no zips\n")
            local code, msg = instance():examine(suspect("epilogue"))
            assert.equal(actions.DELETE, code)
            assert.equal("hidden.zip application/zip: no zips", msg)
        end)
    end)

    describe("archives", function()
        local on = { checkarchivenames = "1", checkarchivecontent = "1" }

        it("checks member names only when checkarchivenames is on", function()
            assert.equal(actions.DUNNO, (instance():examine(suspect("archivenames"))))
            local code, msg = instance({ checkarchivenames = "1" }):examine(suspect("archivenames"))
            assert.equal(actions.DELETE, code)
            assert.equal("docs/setup.exe: Executable files in archives are not allowed", msg)
        end)

        it("finds a zip named .gz by its magic type", function()
            local code, msg = instance({ checkarchivenames = "1" }):examine(suspect("wrongext"))
            assert.equal(actions.DELETE, code)
            assert.equal("payload.exe: Executable files in archives are not allowed", msg)
        end)

        it("opens a plain .gz as one member named without .gz", function()
            local code, msg = instance({ checkarchivenames = "1" }):examine(suspect("plaingz"))
            assert.equal(actions.DELETE, code)
            assert.equal("tool.exe: Executable files in archives are not allowed", msg)
        end)

        it("checks member types up to archivecontentmaxsize bytes", function()
            util.write(dir .. "/b@example.net-archivefiletypes.conf", "deny application\\/octet\\-stream zeros\n")
            local opts = { checkarchivecontent = "1", archivecontentmaxsize = "1000000" }
            assert.equal(actions.DUNNO, (instance(opts):examine(suspect("sizecap_over"))))
            local code, msg = instance(opts):examine(suspect("sizecap_under"))
            assert.equal(actions.DELETE, code)
            assert.equal("small.bin application/octet-stream: zeros", msg)
            opts.archivecontentmaxsize = "3000000"
            assert.equal(actions.DELETE, (instance(opts):examine(suspect("sizecap_over"))))
            opts.archiveextractlevel = "0"
            assert.equal(actions.DUNNO, (instance(opts):examine(suspect("sizecap_over"))))
            opts.archiveextractlevel = "1"
            opts.checkarchivecontent = "0"
            assert.equal(actions.DUNNO, (instance(opts):examine(suspect("sizecap_under"))))
        end)

        it("follows nested archives to archiveextractlevel (negative: unlimited)", function()
            util.write(dir .. "/b@example.net-archivenames.conf", "deny level6\\.txt deepest level\n")
            local function with(level)
                local o = { archiveextractlevel = level }
                for k, v in pairs(on) do o[k] = v end
                return instance(o):examine(suspect("nested"))
            end
            assert.equal(actions.DUNNO, (with("6")))
            local code, msg = with("7")
            assert.equal(actions.DELETE, code)
            assert.equal("level6.txt: deepest level", msg)
            assert.equal(actions.DELETE, (with("-1")))
            assert.equal(actions.DUNNO, (with("1")))
        end)

        it("enabledarchivetypes limits the archives found by extension only", function()
            util.write(dir .. "/default-archivenames.conf", "deny level0\\.txt first level\n")
            -- the nested archive is application/gzip by its magic: opened whatever the list says
            assert.equal(actions.DELETE, (instance({ checkarchivenames = "1", enabledarchivetypes = "zip" })
                :examine(suspect("nested"))))
        end)

        it("logs a broken archive as a warning and passes the message", function()
            local src = make_fixtures().archivenames:gsub("UEsDB", "QUFBQ")    -- break the zip magic
            local s = suspect_lib.new{ from = "a@example.org", recipients = { "b@example.net" },
                message = message_lib.from_string(src) }
            assert.equal(actions.DUNNO, (instance({ checkarchivenames = "1" }):examine(s)))
            assert.truthy(logs.find("archive docs.zip", 30) or logs.find("error while scanning archive docs.zip", 30))
        end)
    end)

    describe("bounces", function()
        it("bounces to the envelope sender with the template and blockinfo", function()
            local p = instance()
            local s = suspect("rfc2047exe")
            p:examine(s)
            assert.equal(1, #bounces)
            assert.equal("a@example.org", bounces[1].recipient)
            assert.equal(dir .. "/blockedfile.tmpl", bounces[1].path)
            assert.equal("Rechnung_Mrz.exe: Windows executable or script files are not allowed",
                bounces[1].values.blockinfo)
            assert.equal(p.config, bounces[1].config)
        end)

        it("does not bounce for spam or virus, an empty sender, or sendbounce = 0", function()
            local s = suspect("rfc2047exe")
            s.tags.spam.SAPlugin = true
            assert.equal(actions.DELETE, (instance():examine(s)))
            s = suspect("rfc2047exe")
            s.tags.virus.ClamavPlugin = true
            assert.equal(actions.DELETE, (instance():examine(s)))
            assert.equal(actions.DELETE, (instance():examine(suspect("rfc2047exe", nil, ""))))
            assert.equal(actions.DELETE, (instance({ sendbounce = "0" }):examine(suspect("rfc2047exe"))))
            assert.equal(0, #bounces)
        end)

        it("a failing bounce does not change the verdict", function()
            package.loaded["fuglu.bounce"] = { send_template_file = function() error("smtp down") end }
            assert.equal(actions.DELETE, (instance():examine(suspect("rfc2047exe"))))
            assert.truthy(logs.find("smtp down"))
        end)
    end)

    describe("lint", function()
        local function lint(p)
            local lines = {}
            local saved = _G.print
            _G.print = function(...) lines[#lines + 1] = table.concat({ ... }, "\t") end
            local ok, result = pcall(p.lint, p)
            _G.print = saved
            assert(ok, result)
            return result, table.concat(lines, "\n")
        end

        it("passes with the default rules and lists the archive types", function()
            local ok, out = lint(instance())
            assert.is_true(ok, out)
            assert.matches("libmagic %d", out)
            assert.matches("available file extensions: zip, z, tar, tar%.gz", out)
        end)

        it("fails on a bad rule line, naming file:line", function()
            util.write(dir .. "/example.net-filetypes.conf", "allow text ok\nnonsense\n")
            local ok, out = lint(instance())
            assert.is_false(ok)
            assert.matches("example%.net%-filetypes%.conf:2: invalid rule line", out)
        end)

        it("says that dbconnectstring is not supported yet", function()
            local ok, out = lint(instance({ dbconnectstring = "mysql://x" }))
            assert.is_false(ok)
            assert.matches("dbconnectstring is set, but SQL attachment rules are not supported yet", out)
        end)

        it("fails on a missing rulesdir, a bad blockaction or an unknown archive type", function()
            local ok, out = lint(instance({ rulesdir = dir .. "/nope" }))
            assert.is_false(ok)
            assert.matches("does not exist", out)
            ok, out = lint(instance({ blockaction = "EXPLODE" }))
            assert.is_false(ok)
            assert.matches("blockaction", out)
            ok, out = lint(instance({ enabledarchivetypes = "zip, cab" }))
            assert.is_false(ok)
            assert.matches("unknown archive type 'cab'", out)
        end)
    end)
end)

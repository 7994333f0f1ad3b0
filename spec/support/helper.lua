-- Spec helper: makes fuglu_core loadable for every spec.
--
-- The real module is build/fuglu_core.so (`make all`). When it has not been built, a small
-- pure-Lua stand-in (spec/support/fake_core.lua) takes its place so the framework specs still run;
-- a line on stderr says so. Set FUGLU_REQUIRE_CORE=1 to make a missing module an error instead.

package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local ok, err = pcall(require, "fuglu_core")
if not ok then
    if os.getenv("FUGLU_REQUIRE_CORE") == "1" then
        error("build/fuglu_core.so cannot be loaded: " .. tostring(err))
    end
    io.stderr:write("spec helper: build/fuglu_core.so not loadable, using spec/support/fake_core.lua\n")
    package.loaded.fuglu_core = nil
    package.preload.fuglu_core = function() return require "support.fake_core" end
end

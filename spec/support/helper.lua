-- Spec helper: makes the C modules (fuglu_sys, fuglu_log, fuglu_message, ...) loadable for every spec.
--
-- They are all in build/fuglu_core.so (`make all`): `require "fuglu_core"` puts each of them in
-- package.preload. When it has not been built, a small pure-Lua stand-in
-- (spec/support/fake_core.lua) takes their place so the framework specs still run; a line on
-- stderr says so. Set FUGLU_REQUIRE_CORE=1 to make a missing library an error instead.

package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath

local ok, err = pcall(require, "fuglu_core")
if not ok then
    if os.getenv("FUGLU_REQUIRE_CORE") == "1" then
        error("build/fuglu_core.so cannot be loaded: " .. tostring(err))
    end
    io.stderr:write("spec helper: build/fuglu_core.so not loadable, using spec/support/fake_core.lua\n")
    package.loaded.fuglu_core = nil
    for name, module in pairs(require "support.fake_core") do
        package.preload[name] = function() return module end
    end
end

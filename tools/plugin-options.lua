-- plugin-options.lua: the options of every built-in plugin as Markdown (for doc/plugins.md).
--
--   luajit tools/plugin-options.lua > /tmp/options.md
--
-- One section per lua/plugins/*.lua: alias, class, description and a table of each option with
-- its default and description, from the plugin class itself (so the doc cannot drift: the spec
-- spec/plugin_docs_spec.lua checks that doc/plugins.md names every option).

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/?.so;" .. package.cpath
require "fuglu_core"
local fs = require "fuglu_fs"

local names = {}
for _, f in ipairs(fs.listdir("lua/plugins")) do
    local alias = f:match("^(.+)%.lua$")
    if alias then names[#names + 1] = alias end
end
table.sort(names)

local function cell(s)
    return (tostring(s):gsub("|", "\\|"):gsub("\n", " "))
end

for _, alias in ipairs(names) do
    local class = dofile("lua/plugins/" .. alias .. ".lua")
    io.write(string.format("### `%s` (%s)\n\n%s\n\n", alias, class.name, cell(class.description or "")))
    local options = {}
    for option in pairs(class.options or {}) do options[#options + 1] = option end
    table.sort(options)
    if #options == 0 then
        io.write("No options.\n\n")
    else
        io.write("| option | default | meaning |\n|---|---|---|\n")
        for _, option in ipairs(options) do
            local spec = class.options[option]
            local default = spec.default == nil and "" or tostring(spec.default)
            io.write(string.format("| `%s` | %s | %s |\n", option,
                default == "" and "(empty)" or "`" .. cell(default) .. "`", cell(spec.description or "")))
        end
        io.write("\n")
    end
end

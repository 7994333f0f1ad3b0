-- fuglu.lint: the plugin part of `fuglu --lint` (the C side lints the core options first).
--
--   local errors = require("fuglu.lint").run(config, options)   -- number of errors found
--
-- Loads every plugin the way a worker does, then runs each plugin's lint() and prints Fuglu's
-- lines: "Linting Plugin <name> Config section: <section>", the plugin's own output, OK/ERROR.

local worker = require "fuglu.worker"

local lint = {}

-- Runs one plugin's lint(); a crash counts as a failure and is printed.
local function lint_plugin(p)
    print(string.format("Linting Plugin %s Config section: %s", tostring(p), tostring(p.section)))
    local ok, result = xpcall(function() return p:lint() end, debug.traceback)
    if not ok then
        print("ERROR: lint() raised an error: " .. tostring(result))
        result = false
    end
    print(result and "OK" or "ERROR")
    return result and true or false
end

function lint.run(config, options)
    print("Loading plugins...")
    local ok, w, errors = pcall(worker.new, config, options)
    if not ok then
        print("ERROR: " .. tostring(w))
        return 1
    end
    if w == nil then
        print("ERROR: At least one plugin failed to load")
        for _, err in ipairs(errors) do print("ERROR: " .. err) end
        return #errors
    end
    print("Plugin loading complete")
    local failed = 0
    for _, key in ipairs({ "prependers", "scanners", "appenders" }) do
        for _, p in ipairs(w.chain[key]) do
            if not lint_plugin(p) then failed = failed + 1 end
        end
    end
    print(string.format("%d plugins reported errors.", failed))
    return failed
end

return lint

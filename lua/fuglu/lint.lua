-- fuglu.lint: the plugin part of `fuglu --lint` and of every reload (the C side lints the core
-- options first).
--
--   local errors = require("fuglu.lint").run(config, options, report)   -- number of errors found
--
-- Loads every plugin the way a worker does, then runs each plugin's lint(). Every line goes to
-- report(severity, text, line): severity "info" (progress: "Linting Plugin <name> Config section:
-- <section>", OK/ERROR), "warning" or "error"; text is the message without Fuglu's "ERROR: " or
-- "WARNING: " prefix, line the transcript line as Fuglu prints it. Without report, lines are printed.
-- What a plugin's lint() prints is its findings: errors when its lint fails, else info (warnings and
-- errors when the line says so). A lint() that returns false, "service" (Base:service_problem: its
-- service does not answer) fails `--lint` but, with options.reload, only warns.

local worker = require "fuglu.worker"

local lint = {}

local function printer(_, _, line) print(line) end

local function classify(line, failed)
    local err = line:match("^ERROR: (.*)$")
    if err then return "error", err end
    local warn = line:match("^WARNING: (.*)$")
    if warn then return "warning", warn end
    return failed and "error" or "info", line
end

-- Runs one plugin's lint() with print captured; a crash counts as a failure.
local function lint_plugin(p, report, reload)
    report("info", nil, string.format("Linting Plugin %s Config section: %s", tostring(p), tostring(p.section)))
    local lines = {}
    local saved = print
    print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
        lines[#lines + 1] = table.concat(parts, "\t")
    end
    local ok, result, kind = xpcall(function() return p:lint() end, debug.traceback)
    print = saved
    if not ok then
        lines[#lines + 1] = "ERROR: lint() raised an error: " .. tostring(result)
        result, kind = false, nil
    end
    -- at a reload a service that does not answer is a warning: the new generation still starts
    local soft = not result and kind == "service" and reload
    for _, line in ipairs(lines) do
        local severity, text = classify(line, not result)
        if soft and severity == "error" then
            severity = "warning"
            line = line:gsub("^ERROR: ", "WARNING: ")
        end
        report(severity, text, line)
    end
    if soft then
        report("info", nil, "WARNING (service check failed; the reload goes on)")
        return true
    end
    report("info", nil, result and "OK" or "ERROR")
    return result and true or false
end

function lint.run(config, options, report)
    report = report or printer
    report("info", nil, "Loading plugins...")
    local ok, w, errors = pcall(worker.new, config, options)
    if not ok then
        report("error", tostring(w), "ERROR: " .. tostring(w))
        return 1
    end
    if w == nil then
        report("info", nil, "ERROR: At least one plugin failed to load")
        for _, err in ipairs(errors) do report("error", err, "ERROR: " .. err) end
        return #errors
    end
    report("info", nil, "Plugin loading complete")
    local failed = 0
    for _, key in ipairs({ "prependers", "scanners", "appenders" }) do
        for _, p in ipairs(w.chain[key]) do
            if not lint_plugin(p, report, options and options.reload) then failed = failed + 1 end
        end
    end
    report("info", nil, string.format("%d plugins reported errors.", failed))
    return failed
end

return lint

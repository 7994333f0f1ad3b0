-- fuglu.console: the read-eval-print logic of the Lua consoles (--console and the netconsole).
--
--   local session = console.session(mc)        -- one per terminal / network client
--   local status, output = session:eval(text)  -- status "ok", "more" (incomplete input) or "error"
--
-- Input is collected until it compiles: an incomplete chunk answers "more" and the next eval()
-- continues it (an empty line after an error-free incomplete chunk keeps waiting; `\c` on a line
-- of its own drops the pending input). An expression prints its values, so `mc.config` needs no
-- `return`; tables are expanded (nested, sorted keys, cycles marked). print() writes to the
-- session's output. Errors come back as text; they never leave the session.
-- Globals assigned in the console stay in the session's own environment.

local console = {}

local Session = {}
Session.__index = Session

local MAX_DEPTH = 4
local MAX_ITEMS = 200

local KEYWORDS = {}
for word in ("and break do else elseif end false for function if in local nil not or repeat return then true until while"):gmatch("%a+") do
    KEYWORDS[word] = true
end

local function is_identifier(k)
    return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil and not KEYWORDS[k]
end

local sorted_keys = require("fuglu.repr").sorted_keys

-- A readable multi-line rendering of any value.
function console.pretty(value, indent, depth, seen)
    indent, depth, seen = indent or "", depth or 0, seen or {}
    local t = type(value)
    if t == "string" then return string.format("%q", value):gsub("\\\n", "\\n") end
    if t ~= "table" then return tostring(value) end
    local mt = getmetatable(value)
    if mt and rawget(mt, "__tostring") and depth > 0 then return tostring(value) end
    if seen[value] then return "<cycle " .. tostring(value) .. ">" end
    if depth >= MAX_DEPTH then return "{...}" end
    seen[value] = true
    local keys = sorted_keys(value)
    if #keys == 0 then
        seen[value] = nil
        return "{}"
    end
    local inner = indent .. "  "
    local lines = { "{" }
    local n = #value
    for i, k in ipairs(keys) do
        if i > MAX_ITEMS then
            lines[#lines + 1] = inner .. string.format("... (%d more)", #keys - MAX_ITEMS)
            break
        end
        local label
        if type(k) == "number" and k >= 1 and k <= n and k == math.floor(k) then
            label = ""
        elseif is_identifier(k) then
            label = k .. " = "
        else
            label = "[" .. console.pretty(k, inner, MAX_DEPTH, seen) .. "] = "
        end
        lines[#lines + 1] = inner .. label .. console.pretty(value[k], inner, depth + 1, seen) .. ","
    end
    lines[#lines + 1] = indent .. "}"
    seen[value] = nil
    if mt and rawget(mt, "__tostring") then lines[1] = tostring(value) .. " {" end
    return table.concat(lines, "\n")
end

-- A new session with mc in its environment (globals of the session stay in it).
function console.session(mc, extra)
    local out = {}
    local env = setmetatable({}, { __index = _G })
    env.mc = mc
    env.print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
        out[#out + 1] = table.concat(parts, "\t")
    end
    env.pp = function(...)
        for i = 1, select("#", ...) do out[#out + 1] = console.pretty((select(i, ...))) end
    end
    for k, v in pairs(extra or {}) do env[k] = v end
    return setmetatable({ env = env, out = out, pending = nil, name = "console" }, Session)
end

local function incomplete(err)
    return err and (err:find("<eof>", 1, true) ~= nil)
end

local function compile(self, text)
    -- an expression first, so `mc.generation` prints its value
    local fn = loadstring("return " .. text, "=" .. self.name)
    if fn then return fn end
    local err
    fn, err = loadstring(text, "=" .. self.name)
    return fn, err
end

local function take_output(self)
    local text = table.concat(self.out, "\n")
    for i = #self.out, 1, -1 do self.out[i] = nil end
    return text
end

local function pack(...) return { n = select("#", ...), ... } end

-- Runs fn (the compiled input); the C side wraps this call in its instruction and time budget.
local function run(self, fn)
    setfenv(fn, self.env)
    local r = pack(pcall(fn))
    if not r[1] then
        local text = take_output(self)
        return "error", (text ~= "" and text .. "\n" or "") .. "error: " .. tostring(r[2])
    end
    for i = 2, r.n do
        self.out[#self.out + 1] = console.pretty(r[i])
    end
    return "ok", take_output(self)
end

function Session:eval(line)
    line = tostring(line or ""):gsub("\r$", "")
    if line == "\\c" then
        self.pending = nil
        return "ok", ""
    end
    local text = self.pending and (self.pending .. "\n" .. line) or line
    if text:match("^%s*$") then
        self.pending = nil
        return "ok", ""
    end
    if text:sub(1, 1) == "=" then text = "return " .. text:sub(2) end
    local fn, err = compile(self, text)
    if not fn then
        if incomplete(err) then
            self.pending = text
            return "more", ""
        end
        self.pending = nil
        return "error", "error: " .. tostring(err)
    end
    self.pending = nil
    return run(self, fn)
end

return console

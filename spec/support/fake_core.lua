-- A pure-Lua stand-in for the C modules (doc/lua-core-api.md), used by the spec helper only when
-- build/fuglu_core.so is not built. It implements just what the framework specs need: simple
-- header parsing, a one-part MIME view, ASCII-only header "encoding", no re-inject, no network.
-- Returns {module name = table}; the helper puts each in package.preload. fuglu_regex and
-- fuglu_htmlstrip have no stand-in (fuglu.htmlstrip falls back to its Lua version).

local ffi = require "ffi"
pcall(ffi.cdef, [[
typedef struct { long tv_sec; long tv_nsec; } fake_timespec;
int clock_gettime(int clk, fake_timespec *tp);
int mkdir(const char *path, unsigned int mode);
]])

local sys = { version = "0.0.0-fake", fake = true }
local clog, codec, message, job, fs, net = {}, {}, {}, {}, {}, {}

local function clock(id)
    local ts = ffi.new("fake_timespec")
    ffi.C.clock_gettime(id, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

function sys.now() return clock(0) end
function sys.monotonic() return clock(1) end
function sys.hostname() return "localhost" end
function job.cancelled() return false end

local seeded = false
function sys.random_id()
    if not seeded then
        math.randomseed(os.time() + math.floor(sys.monotonic() * 1e6) % 1000000)
        seeded = true
    end
    local t = {}
    for i = 1, 32 do t[i] = string.format("%x", math.random(0, 15)) end
    return table.concat(t)
end

function clog.enabled() return true end
function clog.write() end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function codec.b64encode(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local chars = {}
        for j = 3, 0, -1 do
            local k = math.floor(n / 64 ^ j) % 64
            chars[#chars + 1] = B64:sub(k + 1, k + 1)
        end
        if b == nil then chars[3], chars[4] = "=", "=" elseif c == nil then chars[4] = "=" end
        out[#out + 1] = table.concat(chars)
    end
    return table.concat(out)
end

function codec.b64decode(s)
    s = s:gsub("%s", "")
    if s:find("[^%w+/=]") then return nil end
    local out = {}
    for i = 1, #s, 4 do
        local n, pad = 0, 0
        for j = i, i + 3 do
            local c = s:sub(j, j)
            if c == "=" or c == "" then pad = pad + 1; n = n * 64
            else n = n * 64 + (B64:find(c, 1, true) - 1) end
        end
        local bytes = string.char(math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
        out[#out + 1] = bytes:sub(1, 3 - pad)
    end
    return table.concat(out)
end

-- Only B-encoded UTF-8 words (what header_encode below produces).
function codec.rfc2047_decode(s)
    return (s:gsub("=%?[uU][tT][fF]%-8%?[bB]%?([^?]*)%?=", function(b64) return codec.b64decode(b64) end))
end

function codec.header_encode(_, value)
    if value:find("[\128-\255]") then return "=?utf-8?b?" .. codec.b64encode(value) .. "?=" end
    return value
end

local Message = {}
Message.__index = Message

function message.from_string(s)
    return setmetatable({ data = s }, Message)
end

function message.from_file(path)
    local f, err = io.open(path, "rb")
    if not f then return nil, err end
    local data = f:read("*a")
    f:close()
    return message.from_string(data)
end

function Message:size() return #self.data end

function Message:bytes(maxbytes)
    if maxbytes then return self.data:sub(1, maxbytes) end
    return self.data
end

function Message:header_block()
    local stop = self.data:find("\r?\n\r?\n")
    if stop then return self.data:sub(1, stop - 1) end
    return self.data
end

function Message:headers()
    local list = {}
    local block = self:header_block() .. "\n"
    for line in block:gmatch("([^\n]*)\n") do
        line = line:gsub("\r$", "")
        if line:match("^[ \t]") and #list > 0 then
            list[#list].value = list[#list].value .. "\r\n" .. line
        else
            local name, value = line:match("^([^:%s]+):[ \t]?(.*)$")
            if name then list[#list + 1] = { name = name, value = value } end
        end
    end
    return list
end

function Message:header(name)
    local values = {}
    for _, h in ipairs(self:headers()) do
        if h.name:lower() == name:lower() then values[#values + 1] = h.value end
    end
    return values
end

function Message:mime()
    local ct = (self:header("Content-Type")[1] or "text/plain"):match("^%s*([^;%s]+)") or "text/plain"
    return { { index = 1, content_type = ct:lower(), depth = 0, is_attachment = false,
        is_multipart = ct:lower():match("^multipart/") ~= nil, is_message = false, headers = self:headers() } }
end

function job.reinject()
    return false, nil, "fake core: no re-inject", true
end

function fs.mkdir(path, mode)
    if ffi.C.mkdir(path, mode or tonumber("755", 8)) ~= 0 then return nil, "cannot create directory " .. path end
    return true
end

function net.udp_send()
    return nil, "fake core: no network"
end

-- no resolver: every query fails as the real one does without a network
local dns = {}
function dns.resolver()
    local r = {}
    function r.query(_, name, qtype) return nil, "ERROR", name .. " " .. qtype .. ": fake core: no network" end
    function r.query_many(_, list)
        local out = {}
        for i, q in ipairs(list) do out[i] = { r.query(nil, q[1], q[2]) } end
        return out
    end
    return r
end

return {
    fuglu_sys = sys, fuglu_log = clog, fuglu_codec = codec, fuglu_message = message,
    fuglu_job = job, fuglu_fs = fs, fuglu_net = net, fuglu_dns = dns,
}

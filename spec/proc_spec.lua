-- fuglu_proc.run: a program with arguments and no shell, input from a string or a message, output
-- bounded, a timeout that kills the whole process group, the exit status decoded.
local proc = require "fuglu_proc"
local sys = require "fuglu_sys"
local message_lib = require "fuglu_message"

describe("fuglu_proc.run", function()
    it("runs a program without a shell and decodes the exit status", function()
        local r = assert(proc.run{ "/bin/sh", "-c", "echo out; echo err >&2; exit 3" })
        assert.equal(3, r.status)
        assert.equal("out\n", r.stdout)
        assert.equal("err\n", r.stderr)
        assert.is_false(r.timedout)
        assert.is_false(r.truncated)
        -- arguments are not interpreted by a shell
        r = assert(proc.run{ "/bin/echo", "$HOME; rm -rf /", "*" })
        assert.equal("$HOME; rm -rf / *\n", r.stdout)
    end)

    it("feeds a string or a message object on stdin", function()
        local r = assert(proc.run{ "/usr/bin/wc", "-c", input = string.rep("x", 300000) })
        assert.equal("300000", r.stdout:match("%d+"))
        local src = "Subject: t\r\n\r\n" .. string.rep("line\r\n", 50000)
        r = assert(proc.run{ "/usr/bin/sha1sum", input = message_lib.from_string(src) })
        assert.equal(require("fuglu_hash").sha1(src), r.stdout:match("^%x+"))
        r = assert(proc.run{ "/bin/cat" })           -- no input: stdin is at end of file
        assert.equal(0, r.status)
        assert.equal("", r.stdout)
    end)

    it("bounds the output it keeps and never lets the child block", function()
        local r = assert(proc.run{ "/bin/sh", "-c", "head -c 5000000 /dev/zero; echo done >&2", maxoutput = 1000 })
        assert.equal(1000, #r.stdout)
        assert.equal("done\n", r.stderr)
        assert.is_true(r.truncated)
        assert.equal(0, r.status)
    end)

    it("kills the program and its children at the timeout", function()
        local t0 = sys.monotonic()
        local r = assert(proc.run{ "/bin/sh", "-c", "sleep 30 & echo $! >&2; sleep 30; echo never", timeout = 300 })
        assert.is_true(sys.monotonic() - t0 < 5)
        assert.is_true(r.timedout)
        assert.equal(9, r.signal)
        assert.is_nil(r.status)
        assert.equal("", r.stdout)
        -- the background child went with the group: gone, or a zombie waiting for its reaper
        local child = assert(tonumber(r.stderr:match("%d+")))
        local alive
        for _ = 1, 100 do
            local f = io.open("/proc/" .. child .. "/stat")
            local stat = f and f:read("*a") or ""
            if f then f:close() end
            alive = stat:match("^%d+ %b() (%a)")
            if alive == nil or alive == "Z" then break end
            os.execute("sleep 0.02")
        end
        assert.is_true(alive == nil or alive == "Z", "background child still " .. tostring(alive))
    end)

    it("reports a program that cannot be started", function()
        local r, err = proc.run{ "/nonexistent/program", "x" }
        assert.is_nil(r)
        assert.equal("cannot run /nonexistent/program: No such file or directory", err)
        assert.has_error(function() proc.run{} end)
        assert.has_error(function() proc.run{ "/bin/echo", {} } end)
    end)
end)

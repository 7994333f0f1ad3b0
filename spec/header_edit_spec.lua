-- Header edits on the Suspect (remove_header, replace_header, set_subject): applied once at
-- re-injection, the body sent from the original bytes, every other header byte unchanged.
local worker = require "fuglu.worker"
local suspect_module = require "fuglu.suspect"
local message_lib = require "fuglu_message"
local util = require "support.util"

local SOURCE = "Received: from a\r\n\tby b\r\nSubject: old one\r\nX-Spam: yes\r\nTo: x@example.net\r\n" ..
    "X-Spam: again\r\n\r\nbody line\r\n.dot line\r\n"

local function new_suspect(source)
    return suspect_module.new{ from = "a@example.org", recipients = { "x@example.net" },
        message = message_lib.from_string(source or SOURCE) }
end

describe("header edits", function()
    it("removes all or the n-th field of a name, keeping folded fields whole", function()
        local s = new_suspect()
        s:remove_header("x-spam")
        local block = s:get_message_rep():header_block()
        assert.equal("Received: from a\r\n\tby b\r\nSubject: old one\r\nTo: x@example.net\r\n",
            s:apply_header_edits(block))
        s = new_suspect()
        s:remove_header("X-Spam", 2)
        assert.equal("Received: from a\r\n\tby b\r\nSubject: old one\r\nX-Spam: yes\r\nTo: x@example.net\r\n",
            s:apply_header_edits(block))
        s = new_suspect()
        s:remove_header("Received")
        assert.equal("Subject: old one\r\nX-Spam: yes\r\nTo: x@example.net\r\nX-Spam: again\r\n",
            s:apply_header_edits(block))
    end)

    it("replaces in place, adds a missing field on top, encodes non-ASCII subjects", function()
        local s = new_suspect()
        local block = s:get_message_rep():header_block()
        s:replace_header("X-Spam", "no")
        assert.equal("Received: from a\r\n\tby b\r\nSubject: old one\r\nX-Spam: no\r\nTo: x@example.net\r\n",
            s:apply_header_edits(block))
        s = new_suspect()
        s:replace_header("X-Spam", "second", 2)
        assert.matches("X%-Spam: yes\r\nTo: x@example.net\r\nX%-Spam: second\r\n$", s:apply_header_edits(block))
        s = new_suspect()
        s:replace_header("X-New", "v")
        assert.matches("^X%-New: v\r\nReceived: from a", s:apply_header_edits(block))
        s = new_suspect()
        s:set_subject("[SPAM] Grüße")
        assert.matches("\r\nSubject: =%?UTF%-8%?B%?[%w+/=]+%?=\r\n", s:apply_header_edits(block))
    end)

    it("re-injects the edited header block and the original body bytes", function()
        local dir = util.tempdir()
        util.write(dir .. "/editor.lua", [[
            local plugin = require "fuglu.plugin"
            local actions = require "fuglu.actions"
            local P = plugin.scanner{ name = "Editor", description = "edits headers" }
            function P:examine(suspect)
                suspect:set_subject("[tagged] old one")
                suspect:remove_header("X-Spam")
                suspect:add_header("X-Added", "1")
                return actions.DUNNO
            end
            return P
        ]])
        local sent
        local w = assert(worker.new({ main = { plugins = "editor" } },
            { luadir = "lua", plugindirs = { dir },
              reinject = function(t)
                  local body = t.message and t.message:bytes():sub((t.skip or 0) + 1) or t.source
                  sent = t.prefix .. body
                  return true, 250, "2.0.0 Ok"
              end }))
        local result = w:handle{ id = string.rep("0", 32), from = "a@example.org", rcpts = { "x@example.net" },
            helo = "h", peer_addr = "127.0.0.1", local_port = 10025, message = message_lib.from_string(SOURCE) }
        assert.equal(250, result.code)
        assert.matches("^X%-Added: 1\r\n", sent)
        assert.matches("\r\nSubject: %[tagged%] old one\r\n", sent)
        assert.is_nil(sent:find("X-Spam", 1, true))
        assert.matches("\r\nReceived: from a\r\n\tby b\r\n", sent)
        assert.matches("\r\n\r\nbody line\r\n%.dot line\r\n$", sent)   -- the body as it came
        util.rmtree(dir)
    end)
end)

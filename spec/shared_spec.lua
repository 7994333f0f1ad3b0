-- fuglu_shared: the Lua side of the shared dictionaries (results, types, TTLs, eviction, keys),
-- on a private dictionary (shared.create); sharing across workers is tested in
-- spec/integration/test_shared.py.
local shared = require "fuglu_shared"
local sys = require "fuglu_sys"

local function sleep(s)
    local t = sys.monotonic() + s
    while sys.monotonic() < t do end
end

describe("fuglu_shared", function()
    it("stores strings, numbers and booleans and says what happened", function()
        local d = assert(shared.create("spec", "1m"))
        assert.same({ true, nil, false }, { d:set("s", "a\0b") })
        assert.equal("a\0b", d:get("s"))
        assert.is_true(d:set("n", 2.5))
        assert.equal(2.5, d:get("n"))
        assert.is_true(d:set("b", false))
        assert.is_false(d:get("b"))
        assert.is_nil(d:get("absent"))
        assert.same({ false, "exists" }, { d:add("s", "x") })
        assert.same({ false, "not found" }, { d:replace("absent", 1) })
        assert.is_true(d:replace("s", "y"))
        assert.equal("y", d:get("s"))
        assert.is_true(d:set("s", nil))            -- nil deletes
        assert.is_nil(d:get("s"))
        assert.is_true(d:delete("n"))
        assert.is_nil(d:get("n"))
        assert.has_error(function() d:set("t", {}) end)
        assert.has_error(function() d:set("", 1) end)
    end)

    it("increments atomically with an initial value and ttl", function()
        local d = assert(shared.create("incr", "1m"))
        assert.same({ nil, "not found" }, { d:incr("c", 1) })
        assert.equal(1, d:incr("c", 1, 0, 60))
        assert.equal(11, d:incr("c", 10))
        assert.equal(10.5, d:incr("c", -0.5))
        d:set("s", "text")
        assert.same({ nil, "not a number" }, { d:incr("s", 1, 0) })
        local ttl = d:ttl("c")
        assert.is_true(ttl > 59 and ttl <= 60)
        assert.equal(0, d:ttl("s"))                -- never expires
        assert.same({ nil, "not found" }, { d:ttl("absent") })
    end)

    it("expires entries", function()
        local d = assert(shared.create("ttl", "1m"))
        d:set("short", 1, 0.05)
        d:set("long", 1)
        assert.is_true(d:expire("long", 0.05))
        sleep(0.08)
        assert.is_nil(d:get("short"))
        assert.is_nil(d:get("long"))
        assert.is_true(d:add("short", 2))          -- an expired key counts as absent
        assert.same({ nil, "not found" }, { d:expire("gone", 1) })
    end)

    it("evicts the least recently used entries when full", function()
        local d = assert(shared.create("small", "64k"))
        d:set("keep", "x")
        local evicted = false
        for i = 1, 2000 do
            d:get("keep")                          -- recently used: survives
            local ok, err, forcible = d:set("k" .. i, string.rep("v", 100))
            assert.is_true(ok, err)
            evicted = evicted or forcible
        end
        assert.is_true(evicted)
        assert.equal("x", d:get("keep"))
        assert.is_nil(d:get("k1"))
        local entries, free, capacity = d:usage()
        assert.is_true(entries > 100 and entries < 2001)
        assert.equal(65536, capacity)
        assert.is_true(free < capacity)
        assert.same({ false, "no memory" }, { d:set("huge", string.rep("x", 2 * 1024 * 1024)) })
    end)

    it("lists keys, most recent first, and flushes", function()
        local d = assert(shared.create("keys", "1m"))
        for i = 1, 5 do d:set("k" .. i, i) end
        assert.same({ "k5", "k4", "k3", "k2", "k1" }, d:keys())
        assert.same({ "k5", "k4" }, d:keys(2))
        d:flush_all()
        assert.same({}, d:keys())
    end)

    it("names a missing dictionary and refuses bad sizes", function()
        local d, err = shared.dict("nothere")
        assert.is_nil(d)
        assert.equal("no shared dict 'nothere' (declare it in fuglu.conf: [shared] nothere = 1m)", err)
        local bad, why = shared.create("bad", "1k")
        assert.is_nil(bad)
        assert.matches("out of range", why)
    end)
end)

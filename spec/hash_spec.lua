-- fuglu_hash (digests, HMAC, random bytes) and fuglu_codec's quoted-printable, against published
-- test vectors (RFC 1321, FIPS 180-2, RFC 4231) and RFC 2045's rules.
local hash = require "fuglu_hash"
local codec = require "fuglu_codec"
local message_lib = require "fuglu_message"

describe("fuglu_hash", function()
    it("computes the standard digests of 'abc'", function()
        assert.equal("900150983cd24fb0d6963f7d28e17f72", hash.md5("abc"))
        assert.equal("a9993e364706816aba3e25717850c26c9cd0d89d", hash.sha1("abc"))
        assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hash.sha256("abc"))
        assert.equal("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", hash.sha512("abc"))
        assert.equal(hash.sha256("abc"), hash.digest("sha256", "abc"))
        assert.equal(32, #hash.digest("sha256", "abc", "raw"))
        assert.equal("d41d8cd98f00b204e9800998ecf8427e", hash.md5(""))
    end)

    it("hashes a message object's bytes without a Lua copy", function()
        local src = "Subject: x\r\n\r\n" .. string.rep("body line\r\n", 1000)
        assert.equal(hash.sha1(src), hash.sha1(message_lib.from_string(src)))
    end)

    it("computes HMAC (RFC 4231 test case 2)", function()
        assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            hash.hmac("sha256", "Jefe", "what do ya want for nothing?"))
        assert.equal("750c783e6ab0b503eaa86e310a5db738", hash.hmac("md5", "Jefe", "what do ya want for nothing?"))
        assert.equal(20, #hash.hmac("sha1", "k", "d", "raw"))
    end)

    it("gives random bytes and refuses unknown algorithms", function()
        assert.equal(1000, #hash.random_bytes(1000))
        assert.not_equal(hash.random_bytes(16), hash.random_bytes(16))
        assert.has_error(function() hash.digest("crc32", "x") end)
        assert.has_error(function() hash.random_bytes(0) end)
    end)
end)

describe("fuglu_codec quoted-printable", function()
    it("encodes with soft breaks under 76 characters and encodes trailing blanks", function()
        local e = codec.qp_encode("caf\xc3\xa9 = ok  \nnext\r\n" .. string.rep("x", 100))
        assert.equal("caf=C3=A9 =3D ok =20\r\nnext\r\n" .. string.rep("x", 75) .. "=\r\n" .. string.rep("x", 25), e)
        for line in (e .. "\r\n"):gmatch("(.-)\r\n") do assert.is_true(#line <= 76, line) end
    end)

    it("encodes line breaks too in binary mode", function()
        assert.equal("a=0D=0Ab=0A", codec.qp_encode("a\r\nb\n", true))
    end)

    it("decodes both cases, soft breaks, transport blanks, and keeps a malformed =", function()
        assert.equal("a=b=bc d\r\n=XYz", codec.qp_decode("a=3Db=3db=\r\nc =\nd  \r\n=XYz"))
        local text = "Gr\xc3\xbc\xc3\x9fe, " .. string.rep("long text ", 30) .. "\r\nend ="
        assert.equal(text, codec.qp_decode(codec.qp_encode(text)))
        local bin = {}
        for i = 0, 255 do bin[#bin + 1] = string.char(i) end
        bin = table.concat(bin)
        assert.equal(bin, codec.qp_decode(codec.qp_encode(bin, true)))
    end)
end)

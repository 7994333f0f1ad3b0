-- fuglu.dns: the names it builds (reverse and DNSBL forms) and its error contract without a
-- server; lookups against a real DNS server are in spec/integration/test_dns.py.
local dns = require "fuglu.dns"

describe("fuglu.dns", function()
    it("builds reverse names for IPv4 and IPv6", function()
        assert.equal("4.3.2.1.in-addr.arpa", dns.reverse_name("1.2.3.4"))
        assert.equal("7.2.0.192", dns.reverse_name("192.0.2.7", ""))
        assert.equal("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            dns.reverse_name("2001:db8::1"))
        assert.equal("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
            dns.reverse_name("::1"))
        assert.equal(dns.reverse_name("2001:0db8:0000:0000:0000:0000:0000:0001"), dns.reverse_name("2001:DB8::1"))
    end)

    it("refuses what is not an address", function()
        for _, bad in ipairs({ "1.2.3", "256.1.1.1", "example.org", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1" }) do
            local name, err = dns.reverse_name(bad)
            assert.is_nil(name, bad)
            assert.equal("not an IP address: " .. bad, err)
        end
        local listed, err = dns.dnsbl("nonsense", { "bl.example" })
        assert.is_nil(listed)
        assert.matches("not an IP address", err)
    end)

    it("rejects bad resolver settings with a message", function()
        local cdns = require "fuglu_dns"
        if not cdns.resolver or package.loaded.fuglu_core == nil then return end   -- fake core
        local r, err = cdns.resolver{ nameservers = "not an address" }
        assert.is_nil(r)
        assert.matches("nameservers 'not an address'", err)
        assert.has_error(function() cdns.resolver{ timeout = 1 } end)
        r = assert(cdns.resolver{ nameservers = "127.0.0.1:1" })
        assert.has_error(function() r:query("example.org", "SRV") end)
        assert.has_error(function() r:query_many{ { "example.org" } } end)
    end)
end)

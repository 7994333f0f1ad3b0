/* fuzz_dnsmsg: libFuzzer target for the DNS response parser (src/lib/dnsmsg.c), which reads what
 * a DNS server (or anyone who can spoof one) sends. Every input is parsed for each record type
 * the resolver asks for; a parse must either fail cleanly or give records whose lengths hold.
 * Built and run by `make fuzz` (clang, ASan + UBSan), seeds in test/fuzz/corpus/dnsmsg/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dnsmsg.h"

static const int types[] = {FG_DNS_A, FG_DNS_AAAA, FG_DNS_TXT, FG_DNS_MX, FG_DNS_PTR, FG_DNS_CNAME, FG_DNS_NS};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        fg_dns_answer a;
        const char *err = NULL;
        if (fg_dns_parse(data, size, types[t], &a, &err) != 0) {
            if (!err || a.count != 0 || a.rr != NULL)
                abort();
            continue;
        }
        for (size_t i = 0; i < a.count; i++)
            if (strlen(a.rr[i].text) > a.rr[i].len || (types[t] != FG_DNS_TXT && strlen(a.rr[i].text) != a.rr[i].len))
                abort();
        if (strlen(a.qname) >= sizeof a.qname || strlen(a.cname) >= sizeof a.cname)
            abort();
        fg_dns_answer_free(&a);
    }
    return 0;
}

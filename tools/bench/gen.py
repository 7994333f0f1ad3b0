"""gen: deterministic benchmark inputs for tools/bench/run (Python standard library only).

Messages are built with the email package from a fixed random seed, so every run (and every
machine) sends the same bytes:
  small_4k      one 4 KB text/plain message with a realistic header block (Received, DKIM, ...)
  mix           ten real-looking messages: plain text, text+HTML alternatives, newsletters,
                attachments (pdf, docx, zip, png), a forwarded message/rfc822; median ~40 KB
  big_1m        text + a base64 attachment, 1 MB on the wire
  big_20m       text + a base64 attachment, 20 MB on the wire
Rule files in Fuglu's SuspectFilter syntax:
  skip_rules    a few PluginSkipper rules (none match the bench messages)
  action_rules  200 ActionOverride rules over headers, envelope, MIME headers and body text; none
                matches the bench messages, so every message is checked against all of them.

Each function writes into a directory and returns the path(s); files that exist are reused.
"""

import os
import random
from email.message import EmailMessage
from email.utils import format_datetime
import datetime

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have "
         "from or one had by word but not what all were we when your can said there use an each "
         "which she do how their if will up other about out many then them these so some her "
         "would make like him into time has look two more write go see number no way could "
         "people my than first water been call who oil its now find long down day did get come "
         "made may part meeting invoice report quarter budget project schedule review update "
         "customer delivery contract shipment account support release version server network").split()

DOMAINS = ("example.org", "example.net", "example.com", "mail.example.org", "lists.example.net")


def _text(rng, size):
    """Plain text of about size bytes, lines under 76 characters."""
    lines, total, line = [], 0, []
    while total < size:
        w = rng.choice(WORDS)
        if sum(len(x) + 1 for x in line) + len(w) > 72:
            s = " ".join(line)
            lines.append(s)
            total += len(s) + 1
            line = []
            if rng.random() < 0.08:
                lines.append("")
        line.append(w)
    return "\n".join(lines) + "\n"


def _html(rng, size):
    """An HTML newsletter of about size bytes with links, tables and a style block."""
    parts = ["<html><head><style>body{font-family:Arial} td{padding:4px}</style></head><body>"]
    total = len(parts[0])
    n = 0
    while total < size:
        n += 1
        para = _text(rng, 300).replace("\n", " ")
        link = "https://www.%s/news/%d?utm_source=newsletter&amp;id=%d" % (
            rng.choice(DOMAINS), n, rng.randrange(10 ** 6))
        chunk = ('<table><tr><td><p>%s <a href="%s">read more</a></p></td></tr></table>\n'
                 % (para, link))
        parts.append(chunk)
        total += len(chunk)
    parts.append("</body></html>\n")
    return "".join(parts)


def _headers(msg, rng, n, subject):
    """A realistic top-level header block (6 Received, DKIM-Signature, ...)."""
    for hop in range(6):
        msg["Received"] = ("from mx%d.%s (mx%d.%s [192.0.2.%d]) by relay%d.example.org "
                           "(Postfix) with ESMTPS id %X for <user@example.net>; %s" % (
                               hop, rng.choice(DOMAINS), hop, rng.choice(DOMAINS),
                               rng.randrange(1, 250), hop, rng.randrange(16 ** 10),
                               "Tue, 3 Mar 2026 10:%02d:%02d +0000" % (hop, n % 60)))
    msg["DKIM-Signature"] = ("v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel1; "
                             "h=from:to:subject:date; bh=%s; b=%s" % (
                                 "".join(rng.choice("ABCDEFabcdef0123456789") for _ in range(44)),
                                 " ".join("".join(rng.choice("ABCDEFabcdef0123456789")
                                                  for _ in range(43)) for _ in range(4))))
    msg["From"] = "Sender %d <sender%d@%s>" % (n, n, rng.choice(DOMAINS))
    msg["To"] = "User <user@example.net>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.datetime(2026, 3, 3, 10, n % 60, 0,
                                                    tzinfo=datetime.timezone.utc))
    msg["Message-ID"] = "<bench.%d.%d@example.org>" % (n, rng.randrange(10 ** 9))
    msg["X-Mailer"] = "BenchMailer 1.0"


def _binary(rng, size, magic=b""):
    return magic + rng.randbytes(max(0, size - len(magic)))


def _write(path, msg):
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
    with open(path, "wb") as f:
        f.write(data)
    return path


def small_4k(directory):
    path = os.path.join(directory, "small-4k.eml")
    if os.path.exists(path):
        return path
    rng = random.Random(4096)
    msg = EmailMessage()
    _headers(msg, rng, 1, "Quarterly report")
    head = len(msg.as_bytes())
    msg.set_content(_text(rng, 4096 - head - 120))
    return _write(path, msg)


def _mix_message(rng, i):
    """The i-th message of the realistic mix (i in 0..9)."""
    msg = EmailMessage()
    kind = i % 10
    subjects = ("Meeting notes", "Your invoice 2026-03", "Weekly newsletter", "Project files",
                "Fwd: contract", "Photos", "Re: schedule", "Release notes", "Monthly digest",
                "Scanned document")
    _headers(msg, rng, i, subjects[kind])
    if kind in (0, 6):                      # plain text, 3-8 KB
        msg.set_content(_text(rng, 3000 + 5000 * (kind == 6)))
    elif kind in (2, 8):                    # text + HTML newsletter, ~40-60 KB
        msg.set_content(_text(rng, 8000))
        msg.add_alternative(_html(rng, 30000 + 10000 * (kind == 8)), subtype="html")
    elif kind == 1:                         # invoice with a PDF, ~45 KB
        msg.set_content(_text(rng, 1500))
        msg.add_attachment(_binary(rng, 30000, b"%PDF-1.7\n"), maintype="application",
                           subtype="pdf", filename="invoice-2026-03.pdf")
    elif kind == 3:                         # docx + zip, ~70 KB
        msg.set_content(_text(rng, 2000))
        msg.add_attachment(_binary(rng, 25000, b"PK\x03\x04"), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                           filename="plan.docx")
        msg.add_attachment(_binary(rng, 25000, b"PK\x03\x04"), maintype="application",
                           subtype="zip", filename="files.zip")
    elif kind == 4:                         # forwarded message/rfc822
        inner = EmailMessage()
        _headers(inner, rng, 100 + i, "contract")
        inner.set_content(_text(rng, 6000))
        inner.add_alternative(_html(rng, 12000), subtype="html")
        msg.set_content(_text(rng, 800))
        msg.add_attachment(inner)
    elif kind == 5:                         # HTML with inline images, ~50 KB
        msg.set_content(_text(rng, 1500))
        msg.add_alternative(_html(rng, 6000), subtype="html")
        html_part = msg.get_payload()[1]
        for j in range(2):
            html_part.add_related(_binary(rng, 12000, b"\x89PNG\r\n\x1a\n"), maintype="image",
                                  subtype="png", cid="<img%d@example.org>" % j)
    elif kind == 7:                         # text + HTML, ~20 KB
        msg.set_content(_text(rng, 6000))
        msg.add_alternative(_html(rng, 12000), subtype="html")
    else:                                   # scanned document: a large image, ~120 KB
        msg.set_content(_text(rng, 500))
        msg.add_attachment(_binary(rng, 85000, b"\xff\xd8\xff\xe0"), maintype="image",
                           subtype="jpeg", filename="scan0001.jpg")
    return msg


def mix(directory):
    """Ten messages; returns their paths (sorted). Files have LF line ends: smtp-source -F appends
    CRLF to every line itself."""
    paths = []
    rng = random.Random(40960)
    for i in range(10):
        path = os.path.join(directory, "mix-%02d.eml" % i)
        msg = _mix_message(rng, i)      # always built, so the generator sequence stays the same
        if not os.path.exists(path):
            _write(path, msg)
        paths.append(path)
    return paths


def _big(directory, name, size, seed):
    path = os.path.join(directory, name)
    if os.path.exists(path):
        return path
    rng = random.Random(seed)
    msg = EmailMessage()
    _headers(msg, rng, 7, "Large file")
    msg.set_content(_text(rng, 2000))
    raw = (size - 4000) * 3 // 4 * 76 // 77        # base64 grows 4/3 plus CRLF every 76
    msg.add_attachment(_binary(rng, raw, b"%PDF-1.7\n"), maintype="application", subtype="pdf",
                       filename="large.pdf")
    return _write(path, msg)


def big_1m(directory):
    return _big(directory, "big-1m.eml", 1 << 20, 1)


def big_20m(directory):
    return _big(directory, "big-20m.eml", 20 << 20, 20)


def skip_rules(directory):
    path = os.path.join(directory, "skipplugins.regex")
    with open(path, "w") as f:
        f.write("# PluginSkipper rules for the benchmark (none matches)\n"
                "@incomingport ^10099$ SAPlugin,DKIMVerifyPlugin\n"
                "@incomingport ^10025$ DKIMSignPlugin\n"
                "envelope_from ^bounces@example\\.invalid$ AttachmentPlugin\n"
                "X-Bench-Skip ^yes$ ActionOverridePlugin\n")
    return path


def action_rules(directory, count=200):
    """count ActionOverride rules, none matching the bench messages: 60% header and envelope
    rules (perl and simple style), 25% mime: rules, 15% body rules."""
    path = os.path.join(directory, "actionrules-%d.regex" % count)
    rng = random.Random(200)
    spamwords = ("viagra", "cialis", "casino", "lottery", "winner", "bitcoin", "inheritance",
                 "pharmacy", "replica", "loan", "crypto", "prize", "jackpot", "diet", "rolex")
    lines = ["# %d ActionOverride rules for the benchmark (none matches the bench messages)" % count]
    for i in range(count):
        w1, w2 = rng.choice(spamwords), rng.choice(spamwords)
        kind = i % 20
        if kind < 4:
            lines.append("Subject /\\b%s\\b.*\\b%s%d\\b/i REJECT rule %d" % (w1, w2, i, i))
        elif kind < 6:
            lines.append("From /@%s%d\\.(biz|info|top)>?$/i DISCARD" % (w1, i))
        elif kind < 8:
            lines.append("envelope_from ^%s%d@ REJECT sender rule %d" % (w1, i, i))
        elif kind < 9:
            lines.append("to_domain ^%s%d\\.example$ DEFER" % (w2, i))
        elif kind < 10:
            lines.append("X-Mailer /%s-mailer-%d/i REJECT" % (w1, i))
        elif kind < 11:
            lines.append("clientip ^203\\.0\\.%d\\.%d$ REJECT" % (i % 250, (i * 7) % 250))
        elif kind < 12:
            lines.append("Reply-To /%s%d@/i DEFER" % (w2, i))
        elif kind < 15:
            lines.append("mime:Content-Type /name=\"?[^\"]*\\.(%s%d|scr|pif|cpl)\"?/i REJECT" % (w1[:3], i))
        elif kind < 17:
            lines.append("mime:Content-Disposition /filename=\"?%s%d[^\"]*\\.exe/i REJECT" % (w2, i))
        else:
            lines.append("body /\\b%s\\s+%s\\s+%d\\b/i REJECT body rule %d" % (w1, w2, i, i))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path

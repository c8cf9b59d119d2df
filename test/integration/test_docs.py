"""Every example request of docs/logs.md is sent to a real ledgerd and must get exactly the answer
printed after it (status and JSON body).

An example is a fenced ```http block whose first line is `POST <path>` followed by a blank line and
the JSON body; the next fenced block must be ```http starting `HTTP/1.1 <status> <reason>`, a blank
line and the JSON answer. The request is sent with a fresh project's API key. Storage is off: the
examples' fixed dates need no partitions, and only the ingest answers are compared.

LDG_DOCS_PRINT=1 prints the actual answers (to update the document after a deliberate change).
"""

import json
import os
import re
from http.client import responses

import requests

from conftest import ROOT, scaled

DOC = ROOT / "docs" / "logs.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def examples(text):
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    out = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "http" or not body.startswith("POST "):
            continue
        head, _, payload = body.partition("\n\n")
        assert i + 1 < len(blocks) and blocks[i + 1][0] == "http" and blocks[i + 1][1].startswith("HTTP/1.1 "), \
            f"the example {head!r} has no answer block after it"
        ans_head, _, ans_body = blocks[i + 1][1].partition("\n\n")
        status = int(ans_head.split()[1])
        assert ans_head.strip() == f"HTTP/1.1 {status} {responses[status]}", ans_head
        out.append((head.split()[1], payload, status, ans_body))
    return out


def test_examples_of_logs_md_get_the_printed_answers(ledgerd, db):
    found = examples(DOC.read_text())
    assert len(found) >= 10, "docs/logs.md lost its examples"
    s = ledgerd(extra_ini={"roles": {"storage": False, "analytics": False},
                           "ingest": {"stream": "test:logs:docs:" + os.urandom(4).hex()}})
    d = db()
    pid = d.project(d.account())
    # The examples' timestamps are fixed (so are their answers): the longest retention (365 days)
    # keeps them inside the accepted time window until December 2027 (docs/logs.md says so next to the examples).
    d.one("UPDATE projects SET retention_days = 365 WHERE id = %s RETURNING id", pid)
    key, _ = d.key(pid)
    show = os.environ.get("LDG_DOCS_PRINT") == "1"
    problems = []
    for path, payload, status, answer in found:
        r = requests.post(s.url + path, data=payload.encode(), timeout=scaled(10),
                          headers={"X-API-Key": key, "Content-Type": "application/json"})
        if show:
            print(f"\n{path} {payload[:60]!r}\n-> {r.status_code} {r.text}")
        try:
            want = json.loads(answer)
        except ValueError:
            problems.append(f"{path} {payload[:60]!r}: the printed answer is not JSON: {answer!r}")
            continue
        if r.status_code != status or r.json() != want:
            problems.append(f"{path} {payload[:80]!r}:\n  printed {status} {answer.strip()}\n  got     "
                            f"{r.status_code} {r.text}")
    assert not problems, "\n".join(problems)

"""GET /api/v1/logs/histogram and GET /api/v1/logs/facets (docs/api.md, docs/query.md).

A deterministic data set is written straight into ledger_logs and every count the server returns
is compared with the same count computed here in Python from the rows we wrote (not from SQL)."""

import datetime
import json
import random

import psycopg
import pytest
import requests

from conftest import scaled
from ldg_fixtures import mint_jwt, open_session, read_secret

HIST = "/api/v1/logs/histogram"
FACETS = "/api/v1/logs/facets"
LEVELS = ["debug", "info", "warning", "error", "critical"]
TYPES = ["console", "logger", "exception", "network", "database", "endpoint", "custom"]
WORDS = ["alpha", "bravo", "timeout", "refused", "payment", "cache"]
UTC = datetime.timezone.utc

NOW = datetime.datetime.now(UTC)
# Two whole hours ending at the last full hour before now (so every log is in the past).
BASE = NOW.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=3)
END = BASE + datetime.timedelta(hours=2)


def z(ts):
    s = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return s + (f".{ts.microsecond:06d}Z" if ts.microsecond else "Z")


def epoch(ts):
    return int(ts.timestamp())


class Data:
    """p1 (account A, 500 logs over [BASE, END) plus one exactly at END), p2 (A, 20 logs), p3 (B, 20)."""

    def __init__(self, ledgerd, db, rc, pg, jwt_secret_file):
        self.srv = ledgerd()
        d = db()
        self.acct_a, self.acct_b = d.account(), d.account()
        self.p1, self.p2 = d.project(self.acct_a), d.project(self.acct_a)
        self.p3 = d.project(self.acct_b)
        self.key1, _ = d.key(self.p1, rpm=100000, rph=1000000)
        secret = read_secret(jwt_secret_file)
        self.tok_a = mint_jwt(secret, self.acct_a, open_session(rc, self.acct_a))
        self.logs = psycopg.connect(pg.dsn("ledger_logs"), autocommit=True)
        rng = random.Random(20261207)
        self.rows = []
        for pid, n in ((self.p1, 500), (self.p2, 20), (self.p3, 20)):
            for _ in range(n):
                ts = BASE + datetime.timedelta(seconds=rng.randrange(0, 7200),
                                               microseconds=rng.choice([0, 0, 999999, 250000]))
                words = [rng.choice(WORDS) for _ in range(rng.randrange(1, 4))]
                self.rows.append({"project_id": pid, "timestamp": ts, "level": rng.choice(LEVELS),
                                  "log_type": rng.choice(TYPES), "message": " ".join(words), "words": words})
        # Exactly at END: outside [BASE, END), inside the next range.
        self.rows.append({"project_id": self.p1, "timestamp": END, "level": "critical", "log_type": "custom",
                          "message": "edge", "words": ["edge"]})
        with self.logs.cursor() as cur:
            with cur.copy("COPY logs (project_id, timestamp, level, log_type, message) FROM STDIN") as cp:
                for r in self.rows:
                    cp.write_row([r["project_id"], r["timestamp"], r["level"], r["log_type"], r["message"]])

    def get(self, path, params=None, token=None, key=None):
        headers = {"X-API-Key": key} if key else {"Authorization": "Bearer " + (token or self.tok_a)}
        return requests.get(self.srv.url + path, params=params, headers=headers, timeout=scaled(10))

    def select(self, pid=None, start=BASE, end=END, pred=lambda r: True):
        pid = pid or self.p1
        return [r for r in self.rows if r["project_id"] == pid and start <= r["timestamp"] < end and pred(r)]


@pytest.fixture
def data(ledgerd, db, rc, pg, jwt_secret_file):
    d = Data(ledgerd, db, rc, pg, jwt_secret_file)
    yield d
    d.logs.close()


def us(ts):
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond


def expected_buckets(rows, start, end, width):
    """Buckets of [start, end) at multiples of width seconds since the epoch, counted from rows."""
    w = width * 1_000_000
    first = us(start) // w
    last = (us(end) - 1) // w if end > start else first
    out = []
    for b in range(first, last + 1):
        counts = {lv: 0 for lv in LEVELS}
        for r in rows:
            if us(r["timestamp"]) // w == b:
                counts[r["level"]] += 1
        out.append({"timestamp": z(datetime.datetime.fromtimestamp(b * width, UTC)), **counts})
    return out


def hist(data, **params):
    params.setdefault("project_id", data.p1)
    params.setdefault("start_time", z(BASE))
    params.setdefault("end_time", z(END))
    return data.get(HIST, params)


def test_histogram_counts_per_minute_and_level(data):
    r = hist(data, interval_s=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["project_id", "start_time", "end_time", "interval_s", "buckets"]
    assert body["project_id"] == data.p1
    assert body["start_time"] == z(BASE) and body["end_time"] == z(END)
    assert body["interval_s"] == 60
    assert len(body["buckets"]) == 120  # end exclusive: the log at END is not in a 121st bucket
    assert body["buckets"] == expected_buckets(data.select(), BASE, END, 60)
    assert list(body["buckets"][0]) == ["timestamp"] + LEVELS
    assert sum(sum(b[lv] for lv in LEVELS) for b in body["buckets"]) == 500


def test_histogram_unaligned_range_keeps_epoch_aligned_buckets(data):
    start = BASE + datetime.timedelta(seconds=90, microseconds=500000)
    end = BASE + datetime.timedelta(minutes=40, seconds=10)
    body = hist(data, interval_s=300, start_time=z(start), end_time=z(end)).json()
    # buckets at multiples of 300 s: the first holds `start`, the last holds the last instant before `end`
    assert [b["timestamp"] for b in body["buckets"]] == [
        z(BASE + datetime.timedelta(minutes=5 * i)) for i in range(9)]
    exp = expected_buckets(data.select(start=start, end=end), BASE, BASE + datetime.timedelta(minutes=45), 300)
    assert body["buckets"] == exp
    # Unix seconds are accepted as well
    body2 = hist(data, interval_s=300, start_time=str(epoch(BASE)), end_time=str(epoch(END))).json()
    assert body2["buckets"] == expected_buckets(data.select(), BASE, END, 300)


def test_histogram_q_and_filters(data):
    word = lambda w: (lambda r: w in r["words"])
    body = hist(data, interval_s=600, q="timeout").json()
    assert body["buckets"] == expected_buckets(data.select(pred=word("timeout")), BASE, END, 600)
    body = hist(data, interval_s=600, q="timeout OR payment").json()
    exp_rows = data.select(pred=lambda r: "timeout" in r["words"] or "payment" in r["words"])
    assert body["buckets"] == expected_buckets(exp_rows, BASE, END, 600)
    body = hist(data, interval_s=600, q="level:error").json()
    assert body["buckets"] == expected_buckets(data.select(pred=lambda r: r["level"] == "error"), BASE, END, 600)
    body = hist(data, interval_s=600, level="error,critical").json()
    exp_rows = data.select(pred=lambda r: r["level"] in ("error", "critical"))
    assert body["buckets"] == expected_buckets(exp_rows, BASE, END, 600)
    assert all(b["info"] == 0 and b["debug"] == 0 for b in body["buckets"])
    body = hist(data, interval_s=600, log_type="exception,endpoint", q="NOT alpha").json()
    exp_rows = data.select(pred=lambda r: r["log_type"] in ("exception", "endpoint") and "alpha" not in r["words"])
    assert body["buckets"] == expected_buckets(exp_rows, BASE, END, 600)
    # empty or blank q: every log
    for q in ("", "   "):
        assert hist(data, interval_s=600, q=q).json()["buckets"] == expected_buckets(data.select(), BASE, END, 600)


def test_histogram_bucket_selection(data):
    # default: 60 buckets wanted over 2 h -> 5 min (24 buckets); 1 min would make 120
    body = hist(data).json()
    assert body["interval_s"] == 300 and len(body["buckets"]) == 24
    assert body["buckets"] == expected_buckets(data.select(), BASE, END, 300)
    assert hist(data, buckets=10).json()["interval_s"] == 900  # 10 min would make 12
    assert hist(data, buckets=120).json()["interval_s"] == 60
    assert hist(data, buckets=500).json()["interval_s"] == 15  # 480 buckets
    # one bucket: the smallest nice width whose epoch-aligned bucket holds both hours
    nice = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 10800, 21600, 43200, 86400, 604800]
    want = next(w for w in nice if len(expected_buckets([], BASE, END, w)) <= 1)
    body = hist(data, buckets=1).json()
    assert body["interval_s"] == want and len(body["buckets"]) == 1
    assert sum(body["buckets"][0][lv] for lv in LEVELS) == 500
    body = hist(data, buckets=2).json()
    assert body["interval_s"] == 3600 and len(body["buckets"]) == 2
    # a wide range: whole weeks
    body = hist(data, start_time=z(BASE - datetime.timedelta(days=3650))).json()
    assert body["interval_s"] % 604800 == 0 and len(body["buckets"]) <= 60
    # an explicit interval giving more than 500 buckets is refused; 500 exactly is fine
    r = hist(data, interval_s=14)
    assert r.status_code == 400 and "Too many buckets" in r.json()["detail"], r.text
    assert len(hist(data, interval_s=15).json()["buckets"]) == 480


def test_histogram_empty_range_is_zeros(data):
    start = BASE - datetime.timedelta(hours=10)
    body = hist(data, interval_s=60, start_time=z(start), end_time=z(start + datetime.timedelta(hours=1))).json()
    assert len(body["buckets"]) == 60
    assert all(all(b[lv] == 0 for lv in LEVELS) for b in body["buckets"])
    # start == end: the one bucket holding that instant, empty
    body = hist(data, interval_s=60, start_time=z(BASE + datetime.timedelta(seconds=30)),
                end_time=z(BASE + datetime.timedelta(seconds=30))).json()
    assert body["buckets"] == [{"timestamp": z(BASE), **{lv: 0 for lv in LEVELS}}]


def test_histogram_end_is_exclusive_and_next_range_has_the_edge(data):
    body = hist(data, interval_s=60, start_time=z(END), end_time=z(END + datetime.timedelta(minutes=1))).json()
    assert len(body["buckets"]) == 1 and body["buckets"][0]["critical"] == 1


def test_histogram_period_and_missing_range(data):
    r = hist(data, period="last24h", start_time=None, end_time=None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert sum(sum(b[lv] for lv in LEVELS) for b in body["buckets"]) == 501  # the END log is in the past too
    assert body["interval_s"] == 1800
    r = data.get(HIST, {"project_id": data.p1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "start_time"], r.text
    # start_time alone: the range ends now
    r = hist(data, end_time=None, interval_s=3600)
    assert r.status_code == 200
    assert sum(sum(b[lv] for lv in LEVELS) for b in r.json()["buckets"]) == 501


def test_histogram_parameter_errors(data):
    for params in ({"interval_s": 0}, {"interval_s": "x"}, {"buckets": 0}, {"buckets": 501},
                   {"level": "fatal"}, {"log_type": "nope"}, {"project_id": "x"},
                   {"period": "lastyear", "start_time": None, "end_time": None}):
        r = hist(data, **params)
        assert r.status_code == 422, (params, r.text)
        assert isinstance(r.json()["detail"], list)
    r = hist(data, interval_s=60, buckets=10)
    assert r.status_code == 400
    r = hist(data, start_time=z(END), end_time=z(BASE))
    assert r.status_code == 400
    r = hist(data, start_time="yesterday")
    assert r.status_code == 400


def test_bad_query_is_400_like_search(data):
    for path in (HIST, FACETS):
        r = data.get(path, {"project_id": data.p1, "period": "last24h", "q": "level:error AND (timeout"})
        assert (r.status_code, r.json()) == (400, {"detail": "Invalid query at position 17: unclosed '('"})
        r = data.get(path, {"project_id": data.p1, "period": "last24h", "q": "foo:bar"})
        assert r.status_code == 400 and r.json()["detail"].startswith("Invalid query at position 1: unknown field")
    # the search endpoint says exactly the same
    s = data.get("/api/v1/logs/search", {"project_id": data.p1, "q": "level:error AND (timeout"})
    assert (s.status_code, s.json()) == (400, {"detail": "Invalid query at position 17: unclosed '('"})


def test_regex_needs_a_short_range(data):
    r = data.get(HIST, {"project_id": data.p1, "start_time": z(BASE - datetime.timedelta(days=3)),
                        "q": "message:/time.ut/"})
    assert r.status_code == 400 and "regular expression" in r.json()["detail"]
    body = hist(data, interval_s=3600, q="message:/time.ut/").json()
    assert body["buckets"] == expected_buckets(data.select(pred=lambda r: "timeout" in r["words"]), BASE, END, 3600)


def test_ownership_and_api_keys(data):
    for path in (HIST, FACETS):
        params = {"project_id": data.p3, "period": "last24h"}
        r = data.get(path, params)
        assert (r.status_code, r.json()) == (403, {"detail": "You don't have permission to access this project"})
        r = data.get(path, {**params, "project_id": 999999999})
        assert (r.status_code, r.json()) == (404, {"detail": "Project not found"})
        r = data.get(path, {"period": "last24h"})
        assert r.status_code == 422  # a session must name the project
        # an API key: its own project by default, never another
        r = data.get(path, {"start_time": z(BASE), "end_time": z(END)}, key=data.key1)
        assert r.status_code == 200 and r.json()["project_id"] == data.p1, r.text
        assert data.get(path, {"project_id": data.p2, "period": "last24h"}, key=data.key1).status_code == 403
        assert requests.get(data.srv.url + path, params=params, timeout=scaled(10)).status_code == 401
    r = data.get(HIST, {"start_time": z(BASE), "end_time": z(END), "interval_s": 60}, key=data.key1)
    assert r.json()["buckets"] == expected_buckets(data.select(), BASE, END, 60)
    # p2's own counts, through a session of its account
    r = data.get(HIST, {"project_id": data.p2, "start_time": z(BASE), "end_time": z(END), "interval_s": 1800})
    assert r.json()["buckets"] == expected_buckets(data.select(pid=data.p2), BASE, END, 1800)


def count_by(rows, field, names):
    return {n: sum(1 for r in rows if r[field] == n) for n in names}


def facets(data, **params):
    params.setdefault("project_id", data.p1)
    params.setdefault("start_time", z(BASE))
    params.setdefault("end_time", z(END))
    r = data.get(FACETS, params)
    assert r.status_code == 200, r.text
    return r.json()


def test_facets_counts(data):
    body = facets(data)
    assert list(body) == ["project_id", "levels", "log_types"]
    assert body["project_id"] == data.p1
    rows = data.select()
    assert body["levels"] == count_by(rows, "level", LEVELS)
    assert body["log_types"] == count_by(rows, "log_type", TYPES)
    assert list(body["levels"]) == LEVELS and list(body["log_types"]) == TYPES
    # zeros included
    empty = facets(data, start_time=z(BASE - datetime.timedelta(hours=9)), end_time=z(BASE - datetime.timedelta(hours=8)))
    assert empty["levels"] == {lv: 0 for lv in LEVELS} and empty["log_types"] == {t: 0 for t in TYPES}


def test_facets_with_q_and_filters(data):
    has = lambda w: (lambda r: w in r["words"])
    body = facets(data, q="timeout")
    rows = data.select(pred=has("timeout"))
    assert body["levels"] == count_by(rows, "level", LEVELS)
    assert body["log_types"] == count_by(rows, "log_type", TYPES)
    # Each facet applies every filter but its own.
    body = facets(data, q="payment", level="error,warning", log_type="console")
    by_type = data.select(pred=lambda r: "payment" in r["words"] and r["log_type"] == "console")
    by_level = data.select(pred=lambda r: "payment" in r["words"] and r["level"] in ("error", "warning"))
    assert body["levels"] == count_by(by_type, "level", LEVELS)
    assert body["log_types"] == count_by(by_level, "log_type", TYPES)
    # The histogram of the same question applies both: it sums to the selected cells.
    h = hist(data, interval_s=7200, q="payment", level="error,warning", log_type="console").json()
    total = sum(sum(b[lv] for lv in LEVELS) for b in h["buckets"])
    assert total == body["levels"]["error"] + body["levels"]["warning"]


def test_facets_parameter_errors(data):
    r = data.get(FACETS, {"project_id": data.p1})
    assert r.status_code == 422
    r = data.get(FACETS, {"project_id": data.p1, "period": "last24h", "level": "loud"})
    assert r.status_code == 422
    r = data.get(FACETS, {"project_id": data.p1, "period": "last24h", "start_time": z(BASE)})
    assert r.status_code == 400

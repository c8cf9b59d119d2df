"""The gateway serves the built web app ([gateway] web_enabled, web_dir; docs/web.md).

Each test builds a small fake dist directory in tmp_path (what `vite build` leaves: index.html,
hashed bundles under assets/ with precompressed .gz siblings, a few unhashed files) and talks raw
HTTP, so paths reach the server exactly as written (no client-side dot-segment cleanup).
"""

import gzip

import pytest

from ldg_http import RawConn, exchange, request

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
IMMUTABLE = "public, max-age=31536000, immutable"

INDEX = b"<!doctype html><html><head><script type=module src=/assets/app-abc123.js></script></head></html>"
APP_JS = b"export const answer = 42;\n" * 40
APP_CSS = b"body { color: black; }\n"


@pytest.fixture
def dist(tmp_path):
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / "index.html").write_bytes(INDEX)
    (d / "assets" / "app-abc123.js").write_bytes(APP_JS)
    (d / "assets" / "app-abc123.js.gz").write_bytes(gzip.compress(APP_JS))
    (d / "assets" / "app-def456.css").write_bytes(APP_CSS)
    (d / "assets" / "app-abc123.js.map").write_bytes(b'{"version":3}')
    (d / "assets" / "font-1.woff2").write_bytes(b"wOF2")
    (d / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    (d / "logo.svg").write_bytes(b"<svg/>")
    (d / "logo.png").write_bytes(b"\x89PNG")
    (d / "robots.txt").write_bytes(b"User-agent: *\n")
    (d / "site.webmanifest").write_bytes(b"{}")
    (d / "config.json").write_bytes(b"{}")
    (d / "mod.mjs").write_bytes(b"export {}")
    (tmp_path / "secret.txt").write_bytes(b"TOP-SECRET")
    (d / "leak.txt").symlink_to(tmp_path / "secret.txt")
    return d


@pytest.fixture
def web(ledgerd, dist):
    return ledgerd(extra_ini={"gateway": {"web_dir": str(dist)}})


def get(port, path, headers=None, method="GET"):
    return exchange(port, request(method, path, headers), head=(method == "HEAD"))


def assert_policy(r):
    assert r.header("content-security-policy") == CSP, r
    assert r.header("x-content-type-options") == "nosniff", r
    assert r.header("referrer-policy") == "same-origin", r


def assert_json_error(r, status):
    assert r.status == status, r
    assert r.header("content-type") == "application/json", r
    assert set(r.json()) == {"detail"}, r


def test_root_serves_index_html_no_cache(web):
    r = get(web.port, "/")
    assert r.status == 200, r
    assert r.body == INDEX
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.header("cache-control") == "no-cache"
    assert r.header("etag").startswith('"') and r.header("etag").endswith('"')
    assert not r.header("etag").startswith("W/")
    assert r.header("content-encoding") is None
    assert_policy(r)
    assert get(web.port, "/index.html").body == INDEX


def test_hashed_asset_is_immutable_and_gzip_when_accepted(web):
    plain = get(web.port, "/assets/app-abc123.js")
    assert plain.status == 200 and plain.body == APP_JS
    assert plain.header("content-type") == "text/javascript; charset=utf-8"
    assert plain.header("cache-control") == IMMUTABLE
    assert plain.header("vary") == "Accept-Encoding"
    assert plain.header("content-encoding") is None
    assert_policy(plain)

    gz = get(web.port, "/assets/app-abc123.js", {"Accept-Encoding": "br, gzip;q=0.8, deflate"})
    assert gz.status == 200
    assert gz.header("content-encoding") == "gzip"
    assert gz.header("vary") == "Accept-Encoding"
    assert gz.header("content-type") == "text/javascript; charset=utf-8"
    assert int(gz.header("content-length")) == len(gz.body) < len(APP_JS)
    assert gzip.decompress(gz.body) == APP_JS
    assert gz.header("etag") != plain.header("etag")  # one tag per representation
    assert gz.header("cache-control") == IMMUTABLE

    for refused in ("identity", "gzip;q=0", "*;q=0", "br"):
        r = get(web.port, "/assets/app-abc123.js", {"Accept-Encoding": refused})
        assert r.header("content-encoding") is None and r.body == APP_JS, refused
    star = get(web.port, "/assets/app-abc123.js", {"Accept-Encoding": "*"})
    assert star.header("content-encoding") == "gzip"


def test_no_gz_sibling_means_identity_without_vary(web):
    r = get(web.port, "/assets/app-def456.css", {"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.body == APP_CSS
    assert r.header("content-encoding") is None
    assert r.header("vary") is None
    assert r.header("cache-control") == IMMUTABLE
    assert r.header("content-type") == "text/css; charset=utf-8"


@pytest.mark.parametrize("path,ctype", [
    ("/favicon.ico", "image/x-icon"),
    ("/logo.svg", "image/svg+xml"),
    ("/logo.png", "image/png"),
    ("/robots.txt", "text/plain; charset=utf-8"),
    ("/site.webmanifest", "application/manifest+json"),
    ("/config.json", "application/json"),
    ("/mod.mjs", "text/javascript; charset=utf-8"),
    ("/assets/app-abc123.js.map", "application/json"),
    ("/assets/font-1.woff2", "font/woff2"),
])
def test_content_types_and_cache_classes(web, path, ctype):
    r = get(web.port, path)
    assert r.status == 200, r
    assert r.header("content-type") == ctype
    assert r.header("cache-control") == (IMMUTABLE if path.startswith("/assets/") else "no-cache")
    assert_policy(r)


def test_etag_revalidation_gives_304(web):
    first = get(web.port, "/assets/app-abc123.js")
    tag = first.header("etag")
    r = get(web.port, "/assets/app-abc123.js", {"If-None-Match": tag})
    assert r.status == 304 and r.body == b""
    assert r.header("etag") == tag
    assert r.header("cache-control") == IMMUTABLE
    assert_policy(r)
    # A list, a weak form of the same tag, and "*" all match; another tag does not.
    assert get(web.port, "/assets/app-abc123.js", {"If-None-Match": f'"nope", W/{tag}'}).status == 304
    assert get(web.port, "/assets/app-abc123.js", {"If-None-Match": "*"}).status == 304
    assert get(web.port, "/assets/app-abc123.js", {"If-None-Match": '"nope"'}).status == 200
    # The gzip representation has its own tag: the identity tag does not validate it.
    gz = get(web.port, "/assets/app-abc123.js", {"Accept-Encoding": "gzip"})
    assert get(web.port, "/assets/app-abc123.js", {"Accept-Encoding": "gzip", "If-None-Match": tag}).status == 200
    r = get(web.port, "/assets/app-abc123.js", {"Accept-Encoding": "gzip", "If-None-Match": gz.header("etag")})
    assert r.status == 304 and r.header("content-encoding") == "gzip"
    # index.html revalidates too (no-cache means "ask every time").
    idx = get(web.port, "/")
    r = get(web.port, "/", {"If-None-Match": idx.header("etag")})
    assert r.status == 304 and r.header("cache-control") == "no-cache"


def test_head_sends_headers_only(web):
    with RawConn(web.port) as c:
        c.send(request("HEAD", "/assets/app-abc123.js", {"Accept-Encoding": "gzip"}))
        r = c.response(head=True)
        assert r.status == 200
        assert int(r.header("content-length")) == len(gzip.compress(APP_JS))
        assert r.header("content-encoding") == "gzip"
        assert_policy(r)
        c.send(request("GET", "/robots.txt"))  # nothing stray before the next response
        assert c.response().body == b"User-agent: *\n"
        c.send(request("HEAD", "/some/app/route"))
        r = c.response(head=True)
        assert r.status == 200 and int(r.header("content-length")) == len(INDEX)


@pytest.mark.parametrize("path", ["/logs", "/errors/12", "/projects/3/keys?tab=new", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o",
                                  "/HEALTH", "/favicon.png"])
def test_spa_routes_fall_back_to_index(web, path):
    r = get(web.port, path)
    assert r.status == 200, r
    assert r.body == INDEX
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.header("cache-control") == "no-cache"
    assert_policy(r)


def test_missing_asset_is_404_not_index(web):
    for path in ("/assets/app-old999.js", "/assets/", "/assets/app-abc123.js.gz"):
        r = get(web.port, path)
        assert_json_error(r, 404)
        assert r.body != INDEX
        assert_policy(r)


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/assets/%2E%2E/%2e%2e/secret.txt",
    "/..%2fsecret.txt", "/assets/..%5c..%5csecret.txt", "/index.html%00.js", "/./index.html", "/a/%0d%0a",
])
def test_traversal_and_bad_paths_are_rejected(web, path):
    r = get(web.port, path)
    assert_json_error(r, 400)
    assert b"TOP-SECRET" not in r.body


def test_symlink_out_of_the_directory_is_never_served(web):
    r = get(web.port, "/leak.txt")
    assert b"TOP-SECRET" not in r.body
    assert r.status == 200 and r.body == INDEX  # not a file of the app: an app route


def test_api_paths_keep_their_json_answers(ledgerd, dist):
    on = ledgerd(extra_ini={"gateway": {"web_dir": str(dist)}})
    off = ledgerd(extra_ini={"gateway": {"web_enabled": False, "web_dir": str(dist)}})
    cases = [("GET", "/api/v1/no-such-route"), ("GET", "/api"), ("GET", "/v1/x"), ("GET", "/health/nope"),
             ("GET", "/healthz"), ("GET", "/metrics/x"), ("GET", "/_debug/x"), ("POST", "/health"),
             ("POST", "/"), ("PUT", "/index.html"), ("GET", "/api/v1/projects")]
    for method, path in cases:
        a, b = get(on.port, path, method=method), get(off.port, path, method=method)
        assert a.status == b.status and a.status in (401, 404, 405), (method, path, a)
        assert a.header("content-type") == "application/json", (method, path, a)
        assert a.json() == b.json(), (method, path)
        assert a.header("content-security-policy") is None
    assert get(on.port, "/health").json() == {"status": "healthy"}


def test_web_disabled_leaves_root_to_the_api(ledgerd, dist):
    s = ledgerd(extra_ini={"gateway": {"web_enabled": False, "web_dir": str(dist)}})
    for path in ("/", "/index.html", "/assets/app-abc123.js", "/logs"):
        r = get(s.port, path)
        assert_json_error(r, 401)
        assert r.header("content-security-policy") is None
    assert "web app" not in s.log_text()


def test_missing_dir_answers_root_with_dashboard_not_built(ledgerd, tmp_path):
    s = ledgerd(extra_ini={"gateway": {"web_dir": str(tmp_path / "nowhere")}})
    r = get(s.port, "/")
    assert_json_error(r, 404)
    assert "not built" in r.json()["detail"]
    assert_policy(r)
    assert get(s.port, "/logs").status == 401  # everything else as without the app
    warnings = [l for l in s.log_text().splitlines() if "web app not served" in l]
    assert len(warnings) == 1 and "level=warn" in warnings[0], s.log_text()


def test_dir_without_index_is_not_built(ledgerd, tmp_path):
    d = tmp_path / "half"
    (d / "assets").mkdir(parents=True)
    (d / "assets" / "x.js").write_bytes(b"1")
    s = ledgerd(extra_ini={"gateway": {"web_dir": str(d)}})
    r = get(s.port, "/")
    assert r.status == 404 and "not built" in r.json()["detail"]
    assert get(s.port, "/assets/x.js").status == 401


def test_relative_web_dir_is_resolved_against_the_working_directory(ledgerd, dist):
    # The test server runs in tmp_path/ledgerd0 (its INI's directory); dist is tmp_path/dist.
    s = ledgerd(extra_ini={"gateway": {"web_dir": "../dist"}})
    r = get(s.port, "/")
    assert r.status == 200 and r.body == INDEX


def test_files_are_read_once_at_start(web, dist):
    # Served from memory: changing or deleting files does not change answers until a restart.
    (dist / "robots.txt").write_bytes(b"changed")
    (dist / "index.html").unlink()
    assert get(web.port, "/robots.txt").body == b"User-agent: *\n"
    assert get(web.port, "/").body == INDEX


def test_cors_and_request_id_still_apply(ledgerd, dist):
    s = ledgerd(extra_ini={"gateway": {"web_dir": str(dist)}, "server": {"cors_origins": "https://app.example"}})
    r = get(s.port, "/", {"Origin": "https://app.example", "X-Request-ID": "web-1"})
    assert r.status == 200
    assert r.header("x-request-id") == "web-1"
    assert r.header("access-control-allow-origin") == "https://app.example"


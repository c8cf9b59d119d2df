"""What the framework integrations share: path normalisation and the scanner ignore list."""

from __future__ import annotations

import re

_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{24}"
    r"|[A-Za-z0-9_-]{20,})$")
_SCANNER_EXACT = frozenset(("/robots.txt", "/favicon.ico", "/sitemap.xml", "/ads.txt"))
_SCANNER_PREFIXES = ("/.env", "/.git/", "/.well-known/", "/wp-admin/", "/wp-content/", "/wp-includes/", "/admin/",
                     "/.aws/", "/.ssh/")
_SCANNER_SUFFIXES = (".php", ".asp", ".aspx", ".jsp", ".cgi")


def normalize_path(path: str) -> str:
    """A raw path with ids (digits, UUIDs, 24-hex ids, 20+ character tokens) replaced by ``{id}``, so
    that unmatched requests (404s) group by shape instead of one entry per id."""
    if not path:
        return "/"
    return "/".join("{id}" if seg and _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


def is_scanner_noise(path: str) -> bool:
    """Paths that bots probe on every public server; not worth an endpoint log when nothing matched."""
    if path in _SCANNER_EXACT:
        return True
    if path.startswith(_SCANNER_PREFIXES) or path.endswith(_SCANNER_SUFFIXES):
        return True
    return path.startswith("/apple-touch-icon") and path.endswith(".png")


def exception_attributes(method, path, duration_ms, query):
    attrs = {"method": method, "path": path, "duration_ms": round(duration_ms, 2)}
    if query:
        attrs["query_params"] = query
    return attrs

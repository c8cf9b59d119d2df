"""A small client of the v1 API for integration tests.

    api = Api(srv.url)
    alice = api.register()             # a new account with a unique email; returns a Session
    alice.get("/api/v1/accounts/me")   # requests.Response, Authorization: Bearer <access token>
    p = alice.create_project()         # dict (ProjectResponse)
    key = alice.create_key(p["project_id"])   # dict with full_key
    sdk = api.with_key(key["full_key"])       # a client authenticating with X-API-Key

Every call has a bounded timeout. Nothing here asserts except the create_* helpers, which
require the expected 201, and detail_422, which requires a FastAPI 422 with one error.
"""

import itertools
import os

import requests

from conftest import scaled

_seq = itertools.count()
PASSWORD = "Sup3rSecret!"


def unique(prefix="u"):
    return f"{prefix}{os.getpid()}x{next(_seq)}x{os.urandom(3).hex()}"


def detail_422(r):
    """The single error of a FastAPI-shaped 422 response."""
    assert r.status_code == 422, (r.status_code, r.text)
    d = r.json()["detail"]
    assert isinstance(d, list) and len(d) == 1, d
    return d[0]


class Client:
    def __init__(self, base, headers=None):
        self.base = base
        self.headers = dict(headers or {})
        self.s = requests.Session()

    def request(self, method, path, **kw):
        kw.setdefault("timeout", scaled(10))
        headers = dict(self.headers)
        headers.update(kw.pop("headers", None) or {})
        return self.s.request(method, self.base + path, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Session(Client):
    """A dashboard user: access token in Authorization, refresh token kept."""

    def __init__(self, base, body, email, password):
        super().__init__(base, {"Authorization": "Bearer " + body["access_token"]})
        self.body = body
        self.email = email
        self.password = password
        self.account_id = body["account_id"]
        self.access_token = body["access_token"]
        self.refresh_token = body.get("refresh_token")

    def create_project(self, name=None, slug=None, environment=None):
        body = {"name": name or "Project", "slug": slug or unique("p")}
        if environment:
            body["environment"] = environment
        r = self.post("/api/v1/projects", json=body)
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()

    def create_key(self, project_id, name=None):
        r = self.post(f"/api/v1/projects/{project_id}/api-keys", json={"name": name or unique("k")})
        assert r.status_code == 201, (r.status_code, r.text)
        return r.json()


class Api(Client):
    def __init__(self, base):
        super().__init__(base)

    def register(self, email=None, password=PASSWORD, name="Test User"):
        email = email or unique("user") + "@example.com"
        r = self.post("/api/v1/accounts/register", json={"email": email, "password": password, "name": name})
        assert r.status_code == 201, (r.status_code, r.text)
        return Session(self.base, r.json(), email, password)

    def login(self, email, password=PASSWORD):
        r = self.post("/api/v1/accounts/login", json={"email": email, "password": password})
        assert r.status_code == 200, (r.status_code, r.text)
        return Session(self.base, r.json(), email, password)

    def with_key(self, key):
        return Client(self.base, {"X-API-Key": key})

    def with_bearer(self, token):
        return Client(self.base, {"Authorization": "Bearer " + token})

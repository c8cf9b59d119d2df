"""demo_account.py URL VARDIR: make (or reuse) the demo account, its project and an API key.

Used by `scripts/ledger up`. The account is demo@example.com with a random password kept in
VARDIR/demo.password; the API key is shown once by the server, so it is kept in VARDIR/demo.key
(mode 0600) and printed again on later runs while it still works.
"""

import os
import secrets
import sys

import requests


def main():
    url, var = sys.argv[1], sys.argv[2]
    api = url + "/api/v1"

    def put(name, text):
        fd = os.open(os.path.join(var, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")

    def get(name):
        try:
            with open(os.path.join(var, name)) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    key = get("demo.key")
    if key and requests.get(api + "/settings", headers={"X-API-Key": key}, timeout=10).status_code == 200:
        print(f"ledger: demo API key: {key}")
        return 0
    email = "demo@example.com"
    password = get("demo.password")
    if not password:
        password = "Demo-" + secrets.token_urlsafe(12) + "9a"
        put("demo.password", password)
    r = requests.post(api + "/accounts/register", json={"email": email, "password": password, "name": "Demo"},
                      timeout=30)
    if r.status_code == 409:
        r = requests.post(api + "/accounts/login", json={"email": email, "password": password}, timeout=30)
    r.raise_for_status()
    auth = {"Authorization": "Bearer " + r.json()["access_token"]}
    r = requests.get(api + "/projects/demo", headers=auth, timeout=10)
    if r.status_code == 404:
        r = requests.post(api + "/projects", json={"name": "Demo", "slug": "demo"}, headers=auth, timeout=10)
    r.raise_for_status()
    pid = r.json()["project_id"]
    r = requests.post(f"{api}/projects/{pid}/api-keys", json={"name": "demo-" + secrets.token_hex(3)},
                      headers=auth, timeout=30)
    r.raise_for_status()
    key = r.json()["full_key"]
    put("demo.key", key)
    print(f"ledger: demo account: {email} (password in var/demo.password)")
    print(f"ledger: demo API key: {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

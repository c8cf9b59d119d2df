"""Every ```python block of README.md runs as written (against the fake server, through the
LEDGER_API_KEY / LEDGER_BASE_URL environment variables the README exports), and sends what it says."""

import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "README.md")
BLOCKS = re.findall(r"```python\n(.*?)```", open(README, encoding="utf-8").read(), re.S)


def needs(code):
    return [m for m in ("fastapi", "flask", "django") if re.search(rf"^(from|import) {m}\b", code, re.M)]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(fake, index):
    code = BLOCKS[index]
    for mod in needs(code):
        pytest.importorskip(mod)
    env = dict(os.environ, LEDGER_API_KEY="ledger_readme", LEDGER_BASE_URL=fake.url,
               PYTHONPATH=os.path.join(HERE, ".."))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ledger:" not in r.stderr, r.stderr  # no complaint from the SDK
    if "log_" in code or "log." in code:
        assert fake.logs(), "the example sent nothing"


def test_examples_compile():
    d = os.path.join(HERE, "..", "examples")
    for name in sorted(os.listdir(d)):
        if name.endswith(".py"):
            compile(open(os.path.join(d, name), encoding="utf-8").read(), name, "exec")

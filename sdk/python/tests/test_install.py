"""`pip install ./sdk/python` into a fresh virtual environment, then the installed package imports with
nothing but the standard library. The venv sees the system's site-packages, so Debian's pip and
setuptools do the install (--no-build-isolation: no package index needed) and no pip is copied in."""

import os
import shutil
import subprocess
import sys

import pytest

SRC = os.path.join(os.path.dirname(__file__), "..")


def test_pip_install_in_a_venv(tmp_path):
    try:
        import pip  # noqa: F401  (Debian's python3-pip)
    except ImportError:
        pytest.skip("python3-pip is not installed")
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_CACHE_DIR="1")
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index", "--no-deps",
                        str(src)], capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import sys, ledger, ledger.integrations.fastapi, ledger.integrations.flask, "
            "ledger.integrations.django\n"
            "assert 'site-packages' in ledger.__file__, ledger.__file__\n"
            "third = [m for m in ('fastapi', 'flask', 'django', 'starlette') if m in sys.modules]\n"
            "assert not third, third\n"
            "print(ledger.__version__)")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    import ledger
    assert r.stdout.strip() == ledger.__version__

"""The package builds: sdist, then a wheel from that sdist, and a plain install.

Each build is installed into a throw-away directory and imported from there
in a fresh interpreter, so a file missing from ``package_data`` (templates,
migrations, the ``.pyx``) or a broken extension build fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Run from the install directory: the compiled tokenizer and batch socket, a
#: template and the migrations must all be found inside it.
CHECK = """
import sys, pathlib
import sleigh, sleigh.core_ext as c, sleigh.webapp.views as v, sleigh.webapp.db.migrate as m
assert pathlib.Path(sleigh.__file__).is_relative_to(sys.argv[1]), sleigh.__file__
assert c.NATIVE, "the compiled tokenizer did not import"
assert c.tokenize("Crème brûlée") == ["creme", "brulee"]
import sleigh.core_ext.mmsg as mm
assert mm.NATIVE, "the compiled mmsg did not import"
assert (v.TEMPLATES / "base.mako").is_file()
import sleigh.daemons.control.nginx_cmd as n
assert "proxy_cache_path {{cache_dir}}" in n.template_text()
assert m.head_revision()
print("ok")
"""


def _run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900, env=_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SLEIGH_NO_EXTENSIONS"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _check_install(target: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(target)!r})\n" + CHECK,
            str(target),
        ],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "ok", result.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_built_from_the_sdist_works(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(dist))
    [sdist] = dist.glob("sleigh-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("core_ext/_tokenizer.pyx") for n in names)
    assert any(n.endswith("migrations/versions/0001_initial.py") for n in names)

    unpacked = tmp_path / "src"
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, filter="data")
    [source] = unpacked.iterdir()
    _run(
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        str(dist),
        cwd=source,
    )
    [wheel] = dist.glob("sleigh-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        members = whl.namelist()
    assert any(m.startswith("sleigh/core_ext/_tokenizer") and m.endswith(".so") for m in members)
    assert "sleigh/webapp/templates/base.mako" in members
    assert "sleigh/py.typed" in members

    target = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel))
    _check_install(target)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_install_from_the_checkout_works(tmp_path: Path) -> None:
    target = tmp_path / "site"
    _run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(target),
        str(ROOT),
    )
    _check_install(target)

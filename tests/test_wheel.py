"""Packaging: the wheel, built outside the checkout, installs an arrctl that works on its own.

No network: the wheel is built with the test venv's setuptools (--no-build-isolation) and
installed with --no-index --no-deps into a fresh venv that sees the test venv's dependencies
through a .pth file (site.addsitedir), not its editable arrctl: the installed copy must be used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "arrctl", "man")
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources: the checkout gets no build/ or dist/."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, src / name)
    had_build = (ROOT / "build").exists()
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(root / "dist"), str(src)], capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (ROOT / "build").exists() == had_build  # nothing written into the checkout
    return next((root / "dist").glob("arrctl-*.whl"))


def test_the_wheel_holds_the_man_page_the_scenarios_and_py_typed(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert any(n.endswith(".data/data/share/man/man1/arrctl.1") for n in names), sorted(names)
    assert "arrctl/py.typed" in names  # setup.cfg declares it
    for scenario in ("default", "hostile", "launch-stuck", "launch-crowded", "launch-idle"):
        assert f"arrctl/sandbox/scenarios/{scenario}/scenario.json" in names
    assert "arrctl/sandbox/scenarios/default/logs/launch-ok.log" in names
    assert "arrctl/sandbox/scenarios/default/wandb.json" in names


def test_an_installed_wheel_runs_the_demo(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-deps",
                           "-q", str(wheel)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]  # the test venv's: click, the Google and W&B clients, ...
    Path(site, "zz_test_dependencies.pth").write_text(f"import site; site.addsitedir({deps!r})\n")
    where = subprocess.run([str(python), "-c", "import arrctl; print(arrctl.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(site), where  # the installed copy, not the checkout's
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_", "WANDB_"))}
    done = subprocess.run([str(venv / "bin" / "arrctl"), "--demo", "--state-dir", str(tmp_path / "state"),
                           "get", "--json"], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    sources = {r["source"]: r["state"] for r in records if r["type"] == "source"}
    assert sources == dict.fromkeys(("runner", "builds", "vertex", "active", "completed"), "ok")
    assert sum(r["type"] == "row" for r in records) > 20

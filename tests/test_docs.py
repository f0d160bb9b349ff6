"""Every command and option is documented: in --help, in the man page, and in the README."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
import pytest

from arrctl.cli import cli
from arrctl.manpage import commands, render

ROOT = Path(__file__).resolve().parent.parent


def all_options():
    for name, command in [("", cli), *commands(cli)]:
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                yield name, max(param.opts, key=len)


def test_man_page_in_the_repo_is_the_generated_one():
    assert (ROOT / "man" / "arrctl.1").read_text() == render(), "run `make man`"


@pytest.mark.parametrize("name", [name for name, _ in commands(cli)])
def test_every_command_is_in_the_man_page_and_readme(name):
    assert f".SS arrctl {name}" in render()
    assert f"arrctl {name}" in (ROOT / "README.md").read_text() or f"{name}" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("command, option", list(all_options()))
def test_every_option_is_in_the_man_page(command, option):
    assert option.replace("-", "\\-") in render(), (command, option)


@pytest.mark.skipif(shutil.which("mandoc") is None, reason="mandoc not installed")
def test_man_page_is_clean_under_mandoc_lint(tmp_path: Path):
    page = tmp_path / "arrctl.1"
    page.write_text(render())
    done = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(page)], capture_output=True, text=True)
    assert done.stdout.strip() == "" and done.returncode == 0, done.stdout

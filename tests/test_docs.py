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


def test_the_man_page_has_records_check_formats_config_files_and_environment():
    from arrctl import health
    from arrctl.manpage import config_sample, environment
    from arrctl.model import ROW_KEYS

    page = render()
    readme = (ROOT / "README.md").read_text()
    for section in ("RECORDS", "CHECK OUTPUT", "CONFIGURATION", "ENVIRONMENT", "FILES", "EXIT STATUS"):
        assert f"\n.SH {section}\n" in page, section
    records = page.split(".SH RECORDS")[1].split(".SH CHECK OUTPUT")[0]
    assert all(f'"{key}"' in records for key in ROW_KEYS)
    verdict = health.Verdict(0, "ok")
    metrics = {line.split()[2] for line in health.prometheus(verdict, 0.0).splitlines() if line.startswith("# TYPE")}
    assert metrics and all(name in page for name in metrics), metrics
    sample = config_sample(readme)
    assert 'project = "my-gcp-project"' in sample and "retention_days = 30          # terminal facts older than " \
        "this are forgotten" in sample
    assert all(line in page for line in sample if line)
    variables = [name for name, _ in environment(readme)]
    assert "ARRCTL_KILL_GRACE" in variables and "NO_COLOR" in variables
    assert all(f".B {name}" in page for name in variables)


def test_the_readme_says_how_to_read_the_man_page_from_the_clone():
    assert "man ./man/arrctl.1" in (ROOT / "README.md").read_text()


def test_the_man_page_follows_the_readme():
    """Change the README's environment table or config sample, and the page follows (make man)."""
    readme = (ROOT / "README.md").read_text()
    changed = readme.replace("| `ARRCTL_DEBUG` | show tracebacks of internal errors |",
                             "| `ARRCTL_DEBUG` | show tracebacks of internal errors |\n| `ARRCTL_NEW` | something new |")
    changed = changed.replace("limit = 5                    # newest executions shown", "limit = 6")
    page = render(changed)
    assert ".B ARRCTL_NEW\nsomething new" in page and "\nlimit = 6\n" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff not installed")
def test_man_page_renders_without_warnings(tmp_path: Path):
    page = tmp_path / "arrctl.1"
    page.write_text(render())
    done = subprocess.run(["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stderr == "", done.stderr

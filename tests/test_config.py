"""Configuration: TOML plus environment, one-line errors naming file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from arrctl.config import ConfigError, default_config_path, default_state_dir, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_full_file_is_read(tmp_path: Path):
    path = write(tmp_path, """
project = "p1"
regions = ["us-central1", "europe-west2"]
[runner]
job = "launcher"
limit = 7
[builds]
recent = 3
queued_warn_s = 120
[vertex]
limit = 4
[wandb]
entity = "team"
project = "proj"
completed_limit = 5
heartbeat_warn_s = 300
[deadlines]
runner = 12
[watch]
interval = 10
heartbeat = 20
""")
    c = load_config(path, {}, explicit=True)
    assert (c.project, c.regions, c.runner_job, c.runner_limit) == ("p1", ["us-central1", "europe-west2"], "launcher", 7)
    assert (c.builds_recent, c.builds_queued_warn_s, c.vertex_limit) == (3, 120.0, 4)
    assert (c.wandb_entity, c.wandb_project, c.wandb_completed_limit, c.wandb_heartbeat_warn_s) == ("team", "proj", 5, 300.0)
    assert c.deadlines["runner"] == 12.0 and c.deadlines["vertex"] == 30.0
    assert (c.watch_interval, c.watch_heartbeat) == (10.0, 20.0)


def test_environment_fills_what_the_file_leaves_out(tmp_path: Path):
    path = write(tmp_path, 'project = "from-file"\n')
    env = {"GOOGLE_CLOUD_PROJECT": "from-env", "WANDB_ENTITY": "e", "WANDB_PROJECT": "p", "WANDB_API_KEY": "k" * 40}
    c = load_config(path, env, explicit=True)
    assert (c.project, c.wandb_entity, c.wandb_project, c.wandb_api_key) == ("from-file", "e", "p", "k" * 40)


def test_missing_default_file_is_fine_but_missing_explicit_file_is_an_error(tmp_path: Path):
    assert load_config(tmp_path / "nope.toml", {"GOOGLE_CLOUD_PROJECT": "x"}, explicit=False).project == "x"
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.toml", {}, explicit=True)
    assert str(err.value) == f"{tmp_path / 'nope.toml'}: no such config file (create it, or drop --config/ARRCTL_CONFIG)"


@pytest.mark.parametrize("text, message", [
    ('regions = "us-central1"', 'regions: expected a non-empty list of region names, e.g. ["us-central1", "europe-west2"], got "us-central1"'),
    ('regions = [""]', 'regions: expected a non-empty list of region names, e.g. ["us-central1", "europe-west2"], got [""]'),
    ("project = true", "project: expected a non-empty string, got true"),
    ("[runner]\nlimit = 2.5", "[runner] limit: expected a whole number of at least 1, got 2.5"),
    ("[wandb]\nentity = {name = 'x', \"a b\" = [1, false]}",
     '[wandb] entity: expected a non-empty string, got {name = "x", "a b" = [1, false]}'),
    ("[runner]\njob = 1979-05-27T07:32:00Z", "[runner] job: expected a non-empty string, got 1979-05-27T07:32:00+00:00"),
    ("[runner]\nlimit = 0", "[runner] limit: expected a whole number of at least 1, got 0"),
    ("[runner]\nlimt = 3", "[runner] limt: unknown key (expected one of: job, limit, region)"),
    ("[deadlines]\nrunnr = 3", "[deadlines] runnr: unknown source (expected one of: runner, builds, vertex, active, completed)"),
    ("[watch]\ninterval = -1", "[watch] interval: expected a number of seconds greater than 0 and at most 86400, got -1"),
    ("[deadlines]\nrunner = inf", "[deadlines] runner: expected a number of seconds from 0.1 to 3600 (as --deadline), got inf"),
    ("[deadlines]\nvertex = 86400", "[deadlines] vertex: expected a number of seconds from 0.1 to 3600 (as --deadline), got 86400"),
    ("[vertx]\nlimit = 3", "unknown table [vertx] (expected one of: builds, check, deadlines, runner, state, vertex, wandb, watch)"),
    ("projct = 'x'", "projct: unknown key (expected project, regions, or a table such as [runner])"),
])
def test_bad_values_name_file_key_and_expectation(tmp_path: Path, text: str, message: str):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, {}, explicit=True)
    assert str(err.value) == f"{path}: {message}"


def test_invalid_toml_is_one_line(tmp_path: Path):
    path = write(tmp_path, "project = \n")
    with pytest.raises(ConfigError) as err:
        load_config(path, {}, explicit=True)
    assert str(err.value).startswith(f"{path}: invalid TOML: ") and "\n" not in str(err.value)


def test_default_paths_follow_xdg():
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/arrctl/config.toml")
    assert default_config_path({"ARRCTL_CONFIG": "/c.toml", "XDG_CONFIG_HOME": "/x"}) == Path("/c.toml")
    assert default_config_path({"HOME": "/h"}) == Path("/h/.config/arrctl/config.toml")
    assert default_state_dir({"XDG_STATE_HOME": "/s"}) == Path("/s/arrctl")
    assert default_state_dir({"ARRCTL_STATE_DIR": "/d"}) == Path("/d")
    assert default_state_dir({"HOME": "/h"}) == Path("/h/.local/state/arrctl")


def test_runner_region_is_where_launch_runs_the_job(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('project = "p"\nregions = ["us-central1", "europe-west2"]\n[runner]\nregion = "europe-west2"\n')
    assert load_config(path, {}, explicit=True).job_region() == "europe-west2"
    path.write_text('project = "p"\nregions = ["asia-east1", "europe-west2"]\n')
    assert load_config(path, {}, explicit=True).job_region() == "asia-east1"  # default: the first of regions
    path.write_text('project = "p"\n[runner]\nregion = ""\n')
    with pytest.raises(ConfigError, match=r"\[runner\] region: expected a non-empty string"):
        load_config(path, {}, explicit=True)


def test_deadlines_have_the_bounds_of_the_deadline_option(tmp_path: Path):
    from arrctl.cli import get
    from arrctl.options import deadline_option

    assert load_config(write(tmp_path, "[deadlines]\nrunner = 3600\nvertex = 0.1"), {}, explicit=True).deadlines[
        "runner"] == 3600.0
    option = next(p for p in get.params if p.name == "deadline")
    assert (option.type.low, option.type.high) == (0.1, 3600.0)
    assert deadline_option is not None


def test_no_regions_key_is_said_once_on_stderr(tmp_path: Path):
    from click.testing import CliRunner

    from arrctl.cli import cli

    path = write(tmp_path, 'project = "p"\n')
    assert load_config(path, {}, explicit=True).regions_defaulted
    assert not load_config(write(tmp_path, 'regions = ["europe-west2"]\n'), {}, explicit=True).regions_defaulted
    path = write(tmp_path, 'project = "p"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(path), "--state-dir", str(tmp_path / "s"), "explain", "x-1"],
                           env={"ARRCTL_GCP_ENDPOINT": "http://127.0.0.1:9"})
    warning = (f"arrctl: warning: {path}: no `regions` key, so only us-central1 is watched "
               '(set e.g. regions = ["us-central1", "europe-west2"])')
    assert result.stderr.splitlines().count(warning) == 1, result.stderr


def test_relative_xdg_directories_are_ignored():
    # XDG Base Directory spec: a relative path in these variables is invalid and must be ignored
    assert default_state_dir({"XDG_STATE_HOME": "state", "HOME": "/h"}) == Path("/h/.local/state/arrctl")
    assert default_state_dir({"XDG_STATE_HOME": "", "HOME": "/h"}) == Path("/h/.local/state/arrctl")
    assert default_config_path({"XDG_CONFIG_HOME": "./cfg", "HOME": "/h"}) == Path("/h/.config/arrctl/config.toml")


def test_first_window_is_read_and_bounded(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("[check]\nfirst_window_s = 7200\n")
    assert load_config(path, {}, explicit=True).check_first_window_s == 7200.0
    assert load_config(tmp_path / "none.toml", {}, explicit=False).check_first_window_s == 3600.0
    path.write_text("[check]\nfirst_window_s = -1\n")
    with pytest.raises(ConfigError, match=r"\[check\] first_window_s: expected a number of seconds from 0"):
        load_config(path, {}, explicit=True)


def test_build_failure_severity_is_one_of_three_words(tmp_path: Path):
    path = tmp_path / "c.toml"
    assert load_config(tmp_path / "none.toml", {}, explicit=False).builds_failure_severity == "warning"
    for word in ("warning", "critical", "ignore", "Critical"):
        path.write_text(f'[builds]\nfailure_severity = "{word}"\n')
        assert load_config(path, {}, explicit=True).builds_failure_severity == word.lower()
    path.write_text('[builds]\nfailure_severity = "page"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, {}, explicit=True)
    assert str(err.value) == (f'{path}: [builds] failure_severity: expected one of "warning", "critical", "ignore", '
                              'got "page"')


def test_vertex_start_timeout_is_the_agents_and_configurable(tmp_path):
    assert load_config(tmp_path / "none.toml", {}, explicit=False).vertex_start_timeout_s == 1800.0
    assert load_config(write(tmp_path, "[vertex]\nstart_timeout_s = 600"), {}, explicit=True).vertex_start_timeout_s == 600
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[vertex]\nstart_timeout_s = 0"), {}, explicit=True)
    assert "[vertex] start_timeout_s" in str(caught.value)

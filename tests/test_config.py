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
    ('regions = "us-central1"', 'regions: expected a non-empty list of region names, e.g. ["us-central1", "europe-west2"], got \'us-central1\''),
    ("[runner]\nlimit = 0", "[runner] limit: expected a whole number of at least 1, got 0"),
    ("[runner]\nlimt = 3", "[runner] limt: unknown key (expected one of: job, limit)"),
    ("[deadlines]\nrunnr = 3", "[deadlines] runnr: unknown source (expected one of: runner, builds, vertex, active, completed)"),
    ("[watch]\ninterval = -1", "[watch] interval: expected a number of seconds greater than 0 and at most 86400, got -1"),
    ("[deadlines]\nrunner = inf", "[deadlines] runner: expected a number of seconds greater than 0 and at most 86400, got inf"),
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

"""`arrctl doctor`: one line per check; a refused call names the role that grants it; never hangs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from arrctl import doctor
from arrctl.config import Config
from arrctl.doctor import Check, Verdict
from arrctl.model import SourceResult
from arrctl.sources import FetchContext, probes

from test_sources_gcp import FakeEmitter

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)

GREEN = [
    "ok    config: built in for --demo: project arr-demo, 18 regions, runner job vertex-ai-launcher in us-central1, "
    "W&B arr-demo/arr-coc-0-1",
    "ok    Google credentials: anonymous, for the local endpoint http://127.0.0.1:PORT (ARRCTL_GCP_ENDPOINT)",
    "ok    project: arr-demo reachable (5 of 5 Google calls answered)",
    "ok    runner: run.executions.list allowed (vertex-ai-launcher in us-central1: executions listed)",
    "ok    builds: cloudbuild.builds.list allowed",
    "ok    vertex: aiplatform.customJobs.list allowed (us-central1)",
    "ok    Cloud Logging: logging.logEntries.list allowed",
    "ok    runner job: vertex-ai-launcher exists in us-central1 (6 executions so far)",
    "ok    W&B host: http://127.0.0.1:PORT answers (HTTP 404)",
    "ok    W&B key: valid (default entity arr-demo)",
    "ok    W&B project: arr-demo/arr-coc-0-1 readable",
    "ok    state directory: STATE/demo usable",
    "info  last answers: runner never, builds never, vertex never, active never, completed never",
]
DENIED = "403 Forbidden: Permission '{p}' denied on resource '//{d}/{r}' (or it may not exist). — grant {role}"
JOB = "projects/arr-demo/locations/us-central1/jobs/vertex-ai-launcher"
# each permission removed in turn (the fake answers that service's calls with the real 403): the lines that change
REMOVED = {
    "run": {
        3: "ok    project: arr-demo reachable (5 of 5 Google calls answered)",
        4: "FAIL  runner: " + DENIED.format(p="run.executions.list", d="run.googleapis.com", r=JOB,
                                             role="roles/run.viewer"),
        8: "FAIL  runner job: " + DENIED.format(p="run.jobs.get", d="run.googleapis.com", r=JOB,
                                                 role="roles/run.viewer"),
    },
    "vertex": {6: "FAIL  vertex: " + DENIED.format(p="aiplatform.customJobs.list", d="aiplatform.googleapis.com",
                                                    r="projects/arr-demo/locations/us-central1",
                                                    role="roles/aiplatform.viewer")},
    "build": {5: "FAIL  builds: " + DENIED.format(p="cloudbuild.builds.list", d="cloudbuild.googleapis.com",
                                                   r="projects/arr-demo", role="roles/cloudbuild.builds.viewer")},
    "logging": {7: "FAIL  Cloud Logging: " + DENIED.format(p="logging.logEntries.list", d="logging.googleapis.com",
                                                            r="projects/arr-demo", role="roles/logging.viewer")},
    "wandb": {
        9: "ok    W&B host: http://127.0.0.1:PORT answers (HTTP 403)",
        10: "FAIL  W&B key: W&B: authentication failed (403) at 127.0.0.1:PORT: check WANDB_API_KEY",
        11: "FAIL  W&B project: not checked",
    },
}


def run_doctor(tmp_path: Path, *args: str, **env: str) -> tuple[int, list[str], str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path / "state"), *args], capture_output=True,
                          text=True, timeout=90, env={**clean, **env})
    lines = [re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line).replace(str(tmp_path / "state"), "STATE")
             for line in done.stdout.splitlines()]
    return done.returncode, lines, done.stderr


def test_all_green_against_the_fake_cloud_exits_0(tmp_path: Path) -> None:
    code, lines, err = run_doctor(tmp_path, "doctor")
    assert (code, err) == (0, "")
    assert lines == GREEN


@pytest.mark.parametrize("service", sorted(REMOVED))
def test_each_permission_removed_in_turn_names_its_role_and_exits_1(tmp_path: Path, service: str) -> None:
    code, lines, err = run_doctor(tmp_path, "doctor", ARRCTL_SANDBOX_FAULTS=f"{service}:status:403")
    expected = list(GREEN)
    for index, text in REMOVED[service].items():
        expected[index - 1] = text
    assert (code, err) == (1, "")
    assert lines == expected


def test_a_hung_api_is_one_failed_line_within_the_deadline(tmp_path: Path) -> None:
    code, lines, _err = run_doctor(tmp_path, "doctor", "--deadline", "10", ARRCTL_SANDBOX_FAULTS="vertex:hang")
    assert code == 1
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1 and re.fullmatch(r"FAIL  vertex: no answer within [0-9.]+s", failed[0]), failed
    assert lines[2] == "ok    project: arr-demo reachable (4 of 5 Google calls answered)"
    assert lines[:2] + lines[3:5] + lines[6:] == GREEN[:2] + GREEN[3:5] + GREEN[6:]  # every other check answered


def test_the_last_answers_come_from_the_stores_last_good_rows(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path / "state"), "get", "runner", "builds"],
                   capture_output=True, timeout=90, env=clean, check=True)
    _code, lines, _err = run_doctor(tmp_path, "doctor")
    assert re.fullmatch(r"info  last answers: runner \d+s ago, builds \d+s ago, vertex never, active never, "
                        r"completed never", lines[-1]), lines[-1]


def test_a_bad_config_is_the_failed_config_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('project = "p"\nregions = "us-central1"\n')
    done = subprocess.run([ARRCTL, "--config", str(config), "--state-dir", str(tmp_path / "s"), "doctor"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == (f"FAIL  config: {config}: regions: expected a non-empty list of region names, e.g. "
                           '["us-central1", "europe-west2"], got "us-central1"\n')


# --- pure parts -----------------------------------------------------------------------------------

def fact(check: str, ok: bool, detail: str, status: int | None = None, permission: str | None = None) -> dict:
    return {"check": check, "ok": ok, "detail": detail, "status": status, "permission": permission}


def test_a_403_names_the_role_and_the_permission_when_the_api_did_not() -> None:
    assert doctor.from_fact(fact("vertex", False, "403 Forbidden: denied", 403, "aiplatform.customJobs.list")) == \
        Check("vertex", Verdict.FAIL, "403 Forbidden: denied — grant roles/aiplatform.viewer")
    assert doctor.from_fact(fact("builds", False, "403 Forbidden: The caller does not have permission", 403)) == \
        Check("builds", Verdict.FAIL, "403 Forbidden: The caller does not have permission — needs "
                                      "cloudbuild.builds.list: grant roles/cloudbuild.builds.viewer")
    assert doctor.from_fact(fact("builds", False, "503 Service Unavailable", 503)).text == "503 Service Unavailable"


def test_a_probe_that_timed_out_fails_every_check_it_was_to_answer() -> None:
    results = {"wandb": SourceResult(source="wandb", state="timeout", error="no answer within 15s")}
    checks = doctor.from_results(results)
    assert [doctor.line(checks[n]) for n in doctor.WANDB_CHECKS] == [
        "FAIL  W&B host: no answer within 15s", "FAIL  W&B key: no answer within 15s",
        "FAIL  W&B project: no answer within 15s"]
    assert doctor.exit_code(list(checks.values())) == 1
    assert doctor.exit_code([Check("answers", Verdict.INFO, "x"), Check("config", Verdict.OK, "y")]) == 0


def test_the_config_line_says_where_the_configuration_came_from(tmp_path: Path) -> None:
    found = tmp_path / "config.toml"
    found.write_text("")
    config = Config(project="p", regions=["europe-west2"], path=str(found), wandb_entity="e", wandb_project="w")
    assert doctor.config_check(config, False).text == (
        f"{found} is valid: project p, 1 regions, runner job vertex-ai-launcher in europe-west2, W&B e/w")
    env_only = Config(project="p", path=str(tmp_path / "none.toml"))
    assert doctor.config_check(env_only, False).text.startswith(
        f"no file at {tmp_path / 'none.toml'}; the environment sets the project: project p, 1 regions")
    nothing = doctor.config_check(Config(path=str(tmp_path / "none.toml")), False)
    assert nothing.verdict is Verdict.FAIL and "no project" in nothing.text


def ctx(**extra: Any) -> FetchContext:
    return FetchContext(config=Config(project="p"), deadline_s=5, call_timeout_s=2, **extra)


def test_credentials_say_which_kind_which_account_and_from_where(tmp_path: Path, monkeypatch: Any) -> None:
    key = tmp_path / "adc.json"
    key.write_text(json.dumps({"type": "authorized_user", "client_id": "c.apps.googleusercontent.com",
                               "client_secret": "s", "refresh_token": "r", "account": "me@example.com"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    from arrctl.sources import clients

    clients._credentials_cache.clear()
    emit = FakeEmitter()
    probes.credentials(ctx(), emit)
    clients._credentials_cache.clear()
    assert emit.results_sent == [fact("credentials", True, "user credentials (gcloud auth application-default login), "
                                                         f"account me@example.com, from {key} "
                                                         "(GOOGLE_APPLICATION_CREDENTIALS)")]
    missing = FakeEmitter()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "gone.json"))
    probes.credentials(ctx(), missing)
    clients._credentials_cache.clear()
    assert missing.results_sent[0]["ok"] is False
    assert missing.results_sent[0]["detail"] == (f"Google credentials: File {tmp_path / 'gone.json'} was not found "
                                               "(set by GOOGLE_APPLICATION_CREDENTIALS)")
    local = FakeEmitter()
    probes.credentials(ctx(gcp_endpoint="http://127.0.0.1:9"), local)
    assert local.results_sent[0]["detail"] == ("anonymous, for the local endpoint http://127.0.0.1:9 "
                                             "(ARRCTL_GCP_ENDPOINT)")


def test_a_runner_job_missing_from_its_region_names_where_it_is_and_wandb_unset_fails(tmp_path: Path) -> None:
    from arrctl.sandbox.server import SandboxServer

    config = tmp_path / "config.toml"
    config.write_text('project = "arr-demo"\nregions = ["europe-north1", "us-central1"]\n')  # not deployed in the first
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    with SandboxServer("default") as server:
        done = subprocess.run([ARRCTL, "--config", str(config), "--state-dir", str(tmp_path / "s"), "doctor"],
                              capture_output=True, text=True, timeout=90,
                              env={**clean, "ARRCTL_GCP_ENDPOINT": server.url})
    lines = {line.split(":")[0]: line for line in done.stdout.splitlines()}
    assert done.returncode == 1
    assert lines["FAIL  runner job"] == ("FAIL  runner job: job vertex-ai-launcher not found in europe-north1 "
                                         "([runner] region); it is in us-central1: set [runner] region")
    assert lines["FAIL  W&B host"] == ("FAIL  W&B host: not checked: W&B API key not set: export WANDB_API_KEY "
                                       "(or use --demo)")
    assert lines["FAIL  W&B project"].startswith("FAIL  W&B project: W&B entity/project not configured")


def test_an_unusable_state_directory_fails_its_line(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file, not a directory")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(blocker), "doctor"], capture_output=True, text=True,
                          timeout=90, env=clean)
    assert done.returncode == 1
    assert f"FAIL  state directory: {blocker}/demo unusable: running without persistence (re-reads logs; " \
           "check says UNKNOWN)" in done.stdout.splitlines()
    assert "is unusable" in done.stderr

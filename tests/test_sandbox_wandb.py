"""The fake W&B GraphQL service, driven by the real `wandb.Api` (run in a forked child, as a worker)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import time
from typing import Any, Iterator

import pytest

from conftest import in_child

from arrctl.sandbox import wandb as fake_wandb
from arrctl.sandbox.base import Request, Response
from arrctl.sandbox.faults import parse_faults
from arrctl.sandbox.clock import ManualClock
from arrctl.sandbox.server import SandboxServer

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "arrctl" / "sandbox" / "scenarios" / "default"
KEY = "demo" + "0" * 36
ENTITY, PROJECT = "arr-demo", "arr-coc-0-1"
START = 1_795_000_000.0  # 2026-11-18T...Z: any fixed epoch, so stamps are exact


def wire(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


class RecordingService:
    """The W&B service, with every request it was asked kept for the test to read."""

    name = "wandb"

    def __init__(self, inner: Any) -> None:
        self.inner, self.log = inner, []

    def handle(self, request: Request) -> Response | None:
        self.log.append({"path": request.path, "headers": request.headers,
                         "body": json.loads(request.body or b"{}"), "pages": request.pages})
        return self.inner.handle(request)


@contextlib.contextmanager
def serve(service: Any, root: pathlib.Path, faults: tuple[str, ...] = ()
          ) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The service behind the sandbox's real HTTP core (faults applied there); yields (url, log)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "scenario.json").write_text('{"description": "W&B only"}')
    recorder = RecordingService(service)
    with SandboxServer(root, parse_faults(faults), clock=service.clock, services=[recorder]) as server:
        yield server.url, recorder.log


def list_runs(url: str, filters: dict[str, Any] | None, per_page: int = 50, lazy: bool = False,
              entity: str = ENTITY, order: str = "-created_at") -> list[dict[str, Any]]:
    """In the child: the real wandb.Api against the fake; plain data back."""
    tmp = tempfile.mkdtemp(prefix="arrctl-wandb-test-")
    os.environ.update({
        "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false", "WANDB__GRAPHQL_RETRY_MAX": "1",
        "WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS": "1", "WANDB_HTTP_TIMEOUT": "5",
        "WANDB_DIR": tmp, "WANDB_CACHE_DIR": tmp, "WANDB_CONFIG_DIR": tmp,
    })
    os.environ.pop("WANDB_BASE_URL", None)
    tempfile.tempdir = tmp  # wandb's import-time temporary folders, which os._exit would leave
    try:
        import wandb

        api = wandb.Api(api_key=KEY, overrides={"base_url": url}, timeout=5)
        runs = api.runs(f"{entity}/{PROJECT}", filters=filters, order=order, per_page=per_page, lazy=lazy)
        return [{
            "id": r.id, "name": r.name, "state": r.state, "config": dict(r.config),
            "summary": dict(r.summary_metrics), "created_at": r.created_at,
            "heartbeat_at": r.heartbeat_at, "user": r.user.username, "tags": list(r.tags),
            "url": r.url, "group": r.group, "job_type": r.job_type,
        } for r in runs]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def operations(log: list[dict[str, Any]]) -> list[str]:
    """The `query NAME` of every request, in order."""
    return [fake_wandb._OPERATION.search(entry["body"]["query"]).group(2) for entry in log]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(now=START)


@pytest.fixture
def service(clock: ManualClock) -> fake_wandb.WandbService:
    return fake_wandb.create(SCENARIO, clock)


def test_running_runs_through_the_real_client(service, tmp_path):
    with serve(service, tmp_path) as (url, log):
        runs = in_child(list_runs, url, {"state": "running"})
    assert [r["id"] for r in runs] == ["r8f2w6ny", "p6z3k9mh", "n4c1t7ek"]  # newest first
    stale = runs[1]
    assert stale == {
        "id": "p6z3k9mh", "name": "bright-ember-54", "state": "running",
        "config": {"lr": 0.0004, "batch_size": 64, "epochs": 12, "model": "arr-coc-base", "seed": 54},
        "summary": {"loss": 1.204, "epoch": 2, "_step": 610, "_runtime": 1500,
                    "_timestamp": START - 1500, "_wandb": {"runtime": 1500}},
        "created_at": wire(START - 3000), "heartbeat_at": wire(START - 1500), "user": "arr-demo",
        "tags": ["launch", "l4", "spot"], "url": f"{url}/{ENTITY}/{PROJECT}/runs/p6z3k9mh",
        "group": "coc-0-1", "job_type": "train",
    }
    assert runs[0]["heartbeat_at"] == wire(START)  # a live run beats now
    assert operations(log) == ["Viewer", "GetDefaultEntity", "Runs"]
    auth = base64.b64encode(f"api:{KEY}".encode()).decode()
    assert {entry["headers"]["authorization"] for entry in log} == {f"Basic {auth}"}
    variables = log[-1]["body"]["variables"]
    assert json.loads(variables["filters"]) == {"state": "running"}
    assert (variables["order"], variables["perPage"], variables["cursor"]) == ("-created_at", 50, None)


def test_terminal_filter_and_order(service, tmp_path):
    terminal = {"state": {"$in": ["finished", "failed", "crashed", "killed"]}}
    with serve(service, tmp_path) as (url, _log):
        runs = in_child(list_runs, url, terminal)
    assert [(r["id"], r["state"]) for r in runs] == [
        ("s4d8f2gh", "crashed"), ("m2x8v5jd", "finished"), ("l9h6r3qc", "killed"), ("p2t6v9jx", "failed"),
        ("k7n2b4wf", "finished"),
        ("j1e5u8ot", "crashed"), ("i6w3s9ga", "finished"), ("h0q4z7lx", "failed"),
        ("g5y8c1vd", "finished"), ("f3r6j2nb", "crashed"), ("e8p1m5hu", "finished"),
        ("d2k9f6rs", "failed"), ("c4t7w0ye", "killed"), ("9vbn3q1z", "finished"),
        ("1h8d2k4p", "finished"),
    ]
    failed = runs[11]
    assert failed["summary"]["error"].startswith("torch.OutOfMemoryError: CUDA out of memory.")
    assert failed["created_at"] == wire(START - 129600)
    assert failed["heartbeat_at"] == wire(START - 129600 + 312)
    assert failed["summary"]["_runtime"] == 312


def test_or_filter_and_ascending_order(service, tmp_path):
    query = {"$or": [{"state": "killed"}, {"state": "failed"}]}
    with serve(service, tmp_path) as (url, _log):
        runs = in_child(list_runs, url, query, 50, False, ENTITY, "+created_at")
    assert [r["id"] for r in runs] == ["c4t7w0ye", "d2k9f6rs", "h0q4z7lx", "p2t6v9jx", "l9h6r3qc"]


def test_pages_fault_splits_the_list_over_cursor_pages(service, tmp_path):
    with serve(service, tmp_path, ("wandb:pages:3",)) as (url, log):
        runs = in_child(list_runs, url, {})
    assert len(runs) == 18 and len({r["id"] for r in runs}) == 18
    assert runs[0]["id"] == "r8f2w6ny" and runs[-1]["id"] == "1h8d2k4p"
    pages = [entry["body"]["variables"] for entry in log if "query Runs" in entry["body"]["query"]]
    assert [p["cursor"] for p in pages] == [None, fake_wandb._cursor(5), fake_wandb._cursor(11)]
    assert {entry["pages"] for entry in log} == {3}


def test_per_page_paging_without_fault(service, tmp_path):
    with serve(service, tmp_path) as (url, log):
        runs = in_child(list_runs, url, {"state": {"$ne": "running"}}, 4)
    assert len(runs) == 15
    assert len([e for e in log if "query Runs" in e["body"]["query"]]) == 4


def test_lazy_listing_loads_config_with_a_run_query(service, tmp_path):
    with serve(service, tmp_path) as (url, log):
        runs = in_child(list_runs, url, {"state": "running"}, 50, True)
    assert runs[2]["config"]["seed"] == 53
    assert operations(log).count("Run") == 3


def test_scenario_moves_with_the_clock(service, clock, tmp_path):
    with serve(service, tmp_path) as (url, _log):
        clock.set(9)
        at_9 = {r["id"]: r for r in in_child(list_runs, url, {})}
        clock.set(15)
        at_15 = {r["id"]: r for r in in_child(list_runs, url, {})}
    assert at_9["n4c1t7ek"]["state"] == "finished"
    assert at_9["n4c1t7ek"]["heartbeat_at"] == wire(START + 8)
    assert at_9["n4c1t7ek"]["summary"]["_step"] == 4320
    assert at_9["r8f2w6ny"]["state"] == "running"
    assert at_9["r8f2w6ny"]["heartbeat_at"] == wire(START + 4)  # it fell silent at t=4
    assert "s3j7d1qu" not in at_9
    assert at_15["r8f2w6ny"]["state"] == "crashed"
    assert at_15["s3j7d1qu"]["state"] == "running"
    assert at_15["s3j7d1qu"]["created_at"] == wire(START + 10)
    assert at_15["p6z3k9mh"]["heartbeat_at"] == wire(START - 1500)  # still stale


def test_unknown_project_is_project_not_found(service, tmp_path):
    with serve(service, tmp_path) as (url, _log):
        with pytest.raises(RuntimeError, match="Could not find project arr-coc-0-1"):
            in_child(list_runs, url, {}, 50, False, "someone-else")


# --- handle() directly: the answers the client never provokes --------------------------------

def _post(service: Any, body: Any, auth: str | None = KEY) -> Response:
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["authorization"] = "Basic " + base64.b64encode(f"api:{auth}".encode()).decode()
    return service.handle(Request("POST", "/graphql", {}, headers, json.dumps(body).encode()))


def test_other_paths_are_not_ours(service):
    assert service.handle(Request("GET", "/v2/projects/p/locations/r/jobs/j/executions", {}, {})) is None


def test_missing_credentials_are_401(service):
    answer = _post(service, {"query": "query Viewer { viewer { id } }"}, auth=None)
    assert (answer.status, answer.body) == (401, {"errors": [{"message": "user is not logged in"}]})


def test_unknown_operation_is_a_graphql_error(service):
    answer = _post(service, {"query": "query ServerInfo { serverInfo { cliVersionInfo } }"})
    assert answer.status == 200
    assert answer.body == {"data": None, "errors": [
        {"message": "operation ServerInfo is not served by the arrctl sandbox"}]}
    mutation = _post(service, {"query": "mutation UpsertBucket($id: String!) { x }"})
    assert mutation.body["errors"][0]["message"].startswith("operation UpsertBucket is not served")


def test_bad_filters_and_order_are_graphql_errors(service):
    base = {"query": "query Runs { project { runs { edges { node { name } } } } }"}
    variables = {"entity": ENTITY, "project": PROJECT, "filters": "{not json"}
    assert "filters is not valid JSON" in _post(service, {**base, "variables": variables}).body["errors"][0]["message"]
    variables = {"entity": ENTITY, "project": PROJECT, "filters": json.dumps({"state": {"$where": 1}})}
    assert _post(service, {**base, "variables": variables}).body["errors"] == [
        {"message": "unsupported filter operator $where"}]
    variables = {"entity": ENTITY, "project": PROJECT, "order": "-bogus"}
    assert _post(service, {**base, "variables": variables}).body["errors"] == [
        {"message": "unsupported order '-bogus'"}]


def test_nodes_carry_json_strings_and_only_requested_fields(service):
    query = "query Runs { project { runs { edges { node { name state config createdAt } cursor } } } }"
    variables = {"entity": ENTITY, "project": PROJECT, "filters": json.dumps({"name": "d2k9f6rs"})}
    node = _post(service, {"query": query, "variables": variables}).body["data"]["project"]["runs"]["edges"][0]["node"]
    assert set(node) == {"name", "state", "config", "createdAt"}
    assert json.loads(node["config"])["batch_size"] == {"value": 256, "desc": None}
    assert node["createdAt"] == wire(START - 129600)


def test_filter_language_subset():
    doc = {"state": "running", "tags": ["a100", "spot"], "config.lr": 0.001, "displayName": "quiet-1"}
    assert fake_wandb.matches(doc, {"tags": "spot"})
    assert fake_wandb.matches(doc, {"tags": {"$in": ["l4", "a100"]}})
    assert not fake_wandb.matches(doc, {"tags": {"$nin": ["a100"]}})
    assert fake_wandb.matches(doc, {"config.lr": {"$gte": 0.001, "$lt": 1}})
    assert fake_wandb.matches(doc, {"$and": [{"state": "running"}, {"displayName": {"$regex": "^quiet"}}]})
    assert not fake_wandb.matches(doc, {"$nor": [{"state": "running"}]})
    assert fake_wandb.matches(doc, {"group": {"$exists": False}})


# --- a run's files: the RunFiles query and the storage behind it -----------------------------

def files_of(url: str, run_id: str, names: list[str] | None = None) -> list[dict[str, Any]]:
    """In the child: `run.files()` of the real client, as the nodes it keeps."""
    tmp = tempfile.mkdtemp(prefix="arrctl-wandb-test-")
    os.environ.update({"WANDB_SILENT": "true", "WANDB__GRAPHQL_RETRY_MAX": "1", "WANDB_HTTP_TIMEOUT": "5",
                       "WANDB_DIR": tmp, "WANDB_CACHE_DIR": tmp, "WANDB_CONFIG_DIR": tmp})
    tempfile.tempdir = tmp
    try:
        import wandb

        api = wandb.Api(api_key=KEY, overrides={"base_url": url}, timeout=5)
        return [dict(f._attrs) for f in api.run(f"{ENTITY}/{PROJECT}/{run_id}").files(names=names or [])]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_run_files_list_output_log_with_its_urls_once_the_run_has_ended(service, clock, tmp_path):
    log_bytes = (SCENARIO / "logs" / "wandb-p2t6v9jx-output.log").read_bytes()
    with serve(service, tmp_path) as (url, log):
        [node] = in_child(files_of, url, "p2t6v9jx", ["output.log"])
        assert in_child(files_of, url, "p2t6v9jx", ["wandb-summary.json"]) == []
        assert in_child(files_of, url, "r8f2w6ny") == []  # still running: nothing uploaded yet
        clock.advance(15)  # it crashes at 14 s
        assert [n["name"] for n in in_child(files_of, url, "r8f2w6ny")] == ["output.log"]
    assert (node["name"], node["sizeBytes"], node["mimetype"]) == ("output.log", len(log_bytes), "text/plain")
    assert node["url"] == f"{url}/files/arr-demo/arr-coc-0-1/p2t6v9jx/output.log"
    assert node["directUrl"].startswith(f"{url}/wandb-production.appspot.com/arr-demo/arr-coc-0-1/p2t6v9jx/output.log"
                                        "?Expires=")
    assert "&GoogleAccessId=" in node["directUrl"] and "&Signature=" in node["directUrl"]
    assert node["md5"] == base64.b64encode(__import__("hashlib").md5(log_bytes).digest()).decode()
    queries = [e["body"]["variables"] for e in log if "query RunFiles" in e["body"].get("query", "")]
    assert queries[0]["fileNames"] == ["output.log"] and queries[0]["name"] == "p2t6v9jx"


def test_storage_answers_ranges_as_http_says(service, tmp_path):
    import requests

    data = (SCENARIO / "logs" / "wandb-p2t6v9jx-output.log").read_bytes()
    with serve(service, tmp_path) as (url, _log):
        [node] = in_child(files_of, url, "p2t6v9jx", ["output.log"])
        direct = node["directUrl"]
        tail = requests.get(direct, headers={"Range": "bytes=-100"}, timeout=5)
        middle = requests.get(direct, headers={"Range": "bytes=10-19"}, timeout=5)
        whole = requests.get(direct, timeout=5)
        beyond = requests.get(direct, headers={"Range": f"bytes={len(data)}-"}, timeout=5)
        redirected = requests.get(node["url"], headers={"Range": "bytes=-100"}, timeout=5)
        forged = requests.get(direct.replace("Signature=", "Signature=x"), timeout=5)
    assert (tail.status_code, tail.content, tail.headers["Content-Range"]) == (
        206, data[-100:], f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}")
    assert (middle.status_code, middle.content, middle.headers["Content-Range"]) == (206, data[10:20],
                                                                                    f"bytes 10-19/{len(data)}")
    assert (whole.status_code, whole.content, whole.headers["Accept-Ranges"]) == (200, data, "bytes")
    assert (beyond.status_code, beyond.headers["Content-Range"]) == (416, f"bytes */{len(data)}")
    assert (redirected.status_code, redirected.content) == (206, data[-100:])
    assert [r.status_code for r in redirected.history] == [302]
    assert forged.status_code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in forged.content
    assert service.seen["download"] == 6 and service.seen["RunFiles"] == 1

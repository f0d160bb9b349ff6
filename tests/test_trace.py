"""`arrctl trace` (pure): ids into hops, the chain from any hop, each link's proof, hops behind failed sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from arrctl import trace
from arrctl.links import join_links, launch_config_links, runner_links, with_remembered
from arrctl.model import SourceResult, epoch, make_row
from arrctl.trace import BadTarget, Found, Target, build_chain, parse_target

ITEM = "UnVuUXVldWVJdGVtOjkwMjE0Mw=="  # base64("RunQueueItem:902143")
JOB, RUN, EXECUTION = "1428571428571428013", "p2t6v9jx", "vertex-ai-launcher-q7m2x"
LOG = Path(__file__).parents[1] / "arrctl/sandbox/scenarios/default/logs/vertex-ai-launcher-q7m2x.log"


def execution(links: dict | None = None, **fields):
    return make_row("runner", fields.pop("id", EXECUTION), fields.pop("status", "SUCCEEDED"),
                    created="2026-12-04T10:00:00Z", started="2026-12-04T10:00:08Z",
                    finished=fields.pop("finished", "2026-12-04T10:30:00Z"),
                    links=links if links is not None else {"vertex_jobs": [JOB], "queue_items": [ITEM]},
                    url="https://console.cloud.google.com/run/x", **fields)


def job(links: dict | None = None, **fields):
    return make_row("vertex", fields.pop("id", JOB), fields.pop("status", "FAILED"), created="2026-12-04T10:10:00Z",
                    started="2026-12-04T10:12:00Z", message="The replica workerpool0-0 exited", category="exit",
                    links=links if links is not None else {"wandb_run": RUN, "queue_item": ITEM}, **fields)


def run(links: dict | None = None, **fields):
    return make_row("completed", fields.pop("id", RUN), fields.pop("status", "FAILED"),
                    raw_status=fields.pop("raw_status", "failed"),
                    created="2026-12-04T10:12:10Z", started="2026-12-04T10:12:10Z",
                    links=links if links is not None else {"queue_item": ITEM}, **fields)


def found(*rows, failed=None) -> Found:
    out = Found(failed=dict(failed or {}))
    for row in rows:
        out.add({"runner": "runner", "vertex": "vertex"}.get(row["source"], "wandb"), [row])
    return out


def summary(chain) -> list[tuple]:
    return [(h.kind, h.id, h.status, h.via, h.parent) for h in chain.hops]


WHOLE = [("queue_item", ITEM, "SUCCEEDED", "log", None),
         ("execution", EXECUTION, "SUCCEEDED", "log", ITEM),
         ("vertex_job", JOB, "FAILED", "log", EXECUTION),
         ("wandb_run", RUN, "FAILED", "label", JOB)]


@pytest.mark.parametrize("target", [Target(("wandb_run",), RUN), Target(("vertex_job",), JOB),
                                    Target(("queue_item",), ITEM), Target(("wandb_run", "execution"), EXECUTION)])
def test_every_kind_of_id_reaches_the_same_chain_with_the_expected_proofs(target):
    chain = build_chain(found(execution(), job(), run()), target)
    assert summary(chain) == WHOLE
    assert chain.complete and chain.unknown == [] and chain.wanted == {}
    assert trace.records(chain)[-1] == {"type": "trace", "complete": True, "unknown": []}
    assert trace.records(chain)[2] == {
        "type": "hop", "kind": "vertex_job", "id": JOB, "status": "FAILED", "message": "The replica workerpool0-0 exited",
        "category": "exit", "url": None, "via": "log", "from": EXECUTION}


def test_without_the_execution_logs_the_job_hangs_off_the_queue_item_by_config_and_time_is_the_fallback():
    no_links = execution(links={})
    chain = build_chain(found(no_links, job(), run()), Target(("wandb_run",), RUN))
    # the execution ran when the job was created and its logs name no other job: the time window only
    assert summary(chain) == [("queue_item", ITEM, "UNKNOWN", "config", None),
                              ("execution", EXECUTION, "SUCCEEDED", "time", ITEM),
                              ("vertex_job", JOB, "FAILED", "label", EXECUTION),
                              ("wandb_run", RUN, "FAILED", "label", JOB)]
    busy = execution(links={"vertex_jobs": ["999999999"], "queue_items": []})
    chain = build_chain(found(busy, job(), run()), Target(("wandb_run",), RUN))
    assert [(h.kind, h.id, h.found) for h in chain.hops][:2] == [("queue_item", ITEM, True), ("execution", None, False)]
    assert chain.missing == ["execution"] and chain.unknown == []


def test_a_hop_behind_a_failed_source_is_unknown_with_the_reason_never_hidden():
    chain = build_chain(found(execution(), run(), failed={"vertex": "vertex timeout: no answer within 3s"}),
                        Target(("wandb_run",), RUN))
    assert summary(chain) == [("queue_item", ITEM, "SUCCEEDED", "log", None),
                              ("execution", EXECUTION, "SUCCEEDED", "log", ITEM),
                              ("vertex_job", JOB, "UNKNOWN", None, EXECUTION),
                              ("wandb_run", RUN, "FAILED", "config", EXECUTION)]
    assert chain.hops[2].message == "vertex timeout: no answer within 3s"
    assert chain.unknown == ["vertex_job"] and not chain.complete
    assert trace.records(chain)[-1] == {"type": "trace", "complete": False, "unknown": ["vertex_job"]}


def test_what_a_round_learns_is_what_the_next_one_asks():
    chain = build_chain(found(execution()), Target(("execution",), EXECUTION))
    assert chain.wanted == {"vertex": {JOB}}
    assert trace.next_asks(chain.wanted, {"vertex": set(), "vertex-label": set(), "wandb": set()}, {}) == {
        "vertex": {"jobs": [JOB], "runs": []}}
    chain = build_chain(found(execution(), job()), Target(("execution",), EXECUTION))
    assert chain.wanted == {"wandb": {RUN}}
    assert trace.next_asks(chain.wanted, {"vertex": set(), "vertex-label": set(), "wandb": {RUN}}, {}) == {}
    assert trace.next_asks({"wandb": {RUN}}, {"vertex": set(), "vertex-label": set(), "wandb": set()},
                           {"wandb": "wandb error: 503"}) == {}  # a system that failed is not asked again
    assert trace.first_asks(Target(("wandb_run",), RUN)) == {
        "runner": {"executions": []}, "vertex": {"jobs": [], "runs": [RUN]}, "wandb": {"runs": [RUN]}}


def test_an_execution_that_launched_several_jobs_heads_its_tree():
    second = job(id="1428571428571428012", status="PENDING", links={"wandb_run": "u7m3x9ka"})
    heads = execution(links={"vertex_jobs": [JOB, "1428571428571428012"], "queue_items": [ITEM, "UnVuUXVldWVJdGVtOjkwMjE0Mg=="]})
    chain = build_chain(found(heads, job(), second, run()), Target(("execution",), EXECUTION))
    assert summary(chain) == [
        ("queue_item", ITEM, "SUCCEEDED", "log", None),
        ("queue_item", "UnVuUXVldWVJdGVtOjkwMjE0Mg==", "SUCCEEDED", "log", None),
        ("execution", EXECUTION, "SUCCEEDED", "log", None),
        ("vertex_job", JOB, "FAILED", "log", EXECUTION), ("wandb_run", RUN, "FAILED", "label", JOB),
        ("vertex_job", "1428571428571428012", "PENDING", "log", EXECUTION),
        ("wandb_run", "u7m3x9ka", "UNKNOWN", "label", "1428571428571428012")]
    assert chain.wanted == {"wandb": {"u7m3x9ka"}}


def test_text_is_a_small_tree_with_status_age_error_link_and_proof():
    chain = build_chain(found(execution(), job(url="https://console.cloud.google.com/vertex-ai/j"), run()),
                        Target(("wandb_run",), RUN))
    now = epoch("2026-12-04T12:10:00Z")
    assert trace.text_lines(chain, now) == [
        f"queue item {ITEM}  SUCCEEDED  taken by {EXECUTION}  [its logs name it]",
        f"└─ execution {EXECUTION}  SUCCEEDED  2h09m ago  [its logs name it]",
        "      https://console.cloud.google.com/run/x",
        f"   └─ Vertex job {JOB}  FAILED  1h58m ago  The replica workerpool0-0 exited  (exit)  [its logs name it]",
        "         https://console.cloud.google.com/vertex-ai/j",
        f"      └─ W&B run {RUN}  FAILED  1h57m ago  [label wandb-run-id]",
    ]


@pytest.mark.parametrize("text, expected", [
    (RUN, Target(("wandb_run", "execution"), RUN)),  # a run id may also be an execution's name
    ("RunWith_Caps", Target(("wandb_run",), "RunWith_Caps")),
    ("arr-demo/arr-coc-0-1/p2t6v9jx", Target(("wandb_run",), RUN)),
    ("https://wandb.ai/arr-demo/arr-coc-0-1/runs/p2t6v9jx/overview?nw=1", Target(("wandb_run",), RUN)),
    (JOB, Target(("vertex_job",), JOB)),
    (f"projects/123456789012/locations/us-central1/customJobs/{JOB}", Target(("vertex_job",), JOB)),
    (f"https://console.cloud.google.com/vertex-ai/locations/us-central1/training/{JOB}/cpu?project=p",
     Target(("vertex_job",), JOB)),
    (EXECUTION, Target(("execution",), EXECUTION)),
    (f"projects/p/locations/us-central1/jobs/vertex-ai-launcher/executions/{EXECUTION}", Target(("execution",), EXECUTION)),
    (f"https://console.cloud.google.com/run/jobs/executions/details/us-central1/{EXECUTION}/tasks?project=p",
     Target(("execution",), EXECUTION)),
    (ITEM, Target(("queue_item",), ITEM)),
    ("other-job-x1", Target(("wandb_run", "execution"), "other-job-x1")),
])
def test_ids_and_urls_of_every_hop(text, expected):
    assert parse_target(text, "vertex-ai-launcher") == expected


@pytest.mark.parametrize("text", ["", "a b", "https://example.com/nothing/here"])
def test_what_names_no_hop_is_a_usage_error(text):
    with pytest.raises(BadTarget):
        parse_target(text, "vertex-ai-launcher")


# --- links ---------------------------------------------------------------------------------

def test_runner_links_from_the_agents_real_log_shapes():
    lines = LOG.read_text().splitlines()
    assert runner_links(lines) == {
        "vertex_jobs": ["1428571428571428011", "1428571428571428013", "1428571428571428012"],
        "queue_items": ["UnVuUXVldWVJdGVtOjkwMjE0MQ==", ITEM, "UnVuUXVldWVJdGVtOjkwMjE0Mg=="]}
    # `Job finished with ID:` alone names a job too (the agent prints it when the job ends)
    assert runner_links(["wandb: launch: Job finished with ID: 1428571428571428077"]) == {
        "vertex_jobs": ["1428571428571428077"], "queue_items": []}


def test_a_runs_config_names_its_queue_item_wrapped_or_not():
    assert launch_config_links({"_wandb": {"value": {"launch_trace_id": ITEM, "cli_version": "0.31.0"}}}) == {
        "queue_item": ITEM}
    assert launch_config_links({"_wandb": {"launch_trace_id": ITEM}}) == {"queue_item": ITEM}
    assert launch_config_links({"_wandb": {"value": {"cli_version": "0.31.0"}}}) == {}
    assert launch_config_links({"lr": 0.1}) == {}


def test_join_gives_each_wandb_row_its_job_and_queue_item_and_remembered_links_fill_runner_rows():
    results = {"vertex": SourceResult("vertex", rows=[job()]),
               "completed": SourceResult("completed", rows=[run(links={}), run(id="other", links={})])}
    join_links(results)
    assert [r["links"] for r in results["completed"].rows] == [{"vertex_job": JOB, "queue_item": ITEM}, {}]
    rows = with_remembered([execution(links={}), execution(id="x2", links={})],
                           {EXECUTION: {"vertex_jobs": [JOB], "queue_items": [ITEM]}})
    assert [r["links"] for r in rows] == [{"vertex_jobs": [JOB], "queue_items": [ITEM]}, {}]


def test_the_text_says_where_the_systems_of_the_launch_disagree():
    crashed = run(raw_status="crashed", links={"queue_item": ITEM})
    running = job(status="RUNNING")
    chain = build_chain(found(execution(), running, crashed), Target(("wandb_run",), RUN))
    notes = trace.disagreements(found(execution(), running, crashed), chain, epoch("2026-12-04T12:10:00Z"), 1800)
    assert notes == [f"W&B run {RUN}: W&B says crashed, but its Vertex AI job {JOB} is still RUNNING"]
    assert trace.text_lines(chain, epoch("2026-12-04T12:10:00Z"), notes=notes)[-1] == "! " + notes[0]


def test_the_store_remembers_links_per_scope(tmp_path):
    from arrctl.store import Store

    store = Store(tmp_path, scope="one")
    store.save_links("runner", {EXECUTION: {"vertex_jobs": [JOB], "queue_items": [ITEM]}})
    store.save_links("runner", {})
    assert store.links("runner") == {EXECUTION: {"vertex_jobs": [JOB], "queue_items": [ITEM]}}
    assert Store(tmp_path, scope="another").links("runner") == {}  # memory of another project is never read
    assert store.links("vertex") == {}

"""arrctl/explain.py: what an ID or URL names (pure), and the --json object."""

from __future__ import annotations

import pytest

from arrctl.explain import as_json
from arrctl.ids import Kind, NotAnId, Target, parse_target

BUILD = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"


@pytest.mark.parametrize("text, target", [
    ("vertex-ai-launcher-x7k2p", Target((Kind.EXECUTION,), "vertex-ai-launcher-x7k2p")),
    ("projects/p/locations/europe-west2/jobs/vertex-ai-launcher/executions/vertex-ai-launcher-kbflt",
     Target((Kind.EXECUTION,), "vertex-ai-launcher-kbflt", region="europe-west2")),
    ("p2t6v9jx", Target((Kind.EXECUTION, Kind.WANDB_RUN), "p2t6v9jx")),  # both shapes: looked up as both
    ("2x8v5jdq", Target((Kind.WANDB_RUN,), "2x8v5jdq")),  # a digit first: no Cloud Run name
    ("1428571428571428013", Target((Kind.VERTEX_JOB,), "1428571428571428013")),
    ("projects/arr-demo/locations/us-central1/customJobs/1428571428571428013",
     Target((Kind.VERTEX_JOB,), "1428571428571428013", region="us-central1", project="arr-demo")),
    ("https://console.cloud.google.com/vertex-ai/locations/us-central1/training/1428571428571428013/cpu?project=arr-demo",
     Target((Kind.VERTEX_JOB,), "1428571428571428013", region="us-central1", project="arr-demo")),
    ("https://console.cloud.google.com/agent-platform/locations/us-central1/training/12345?project=test-proj",
     Target((Kind.VERTEX_JOB,), "12345", region="us-central1", project="test-proj")),
    ("https://console.cloud.google.com/vertex-ai/locations/us-central1/training/customJobs/264856?project=p",
     Target((Kind.VERTEX_JOB,), "264856", region="us-central1", project="p")),
    ("https://console.cloud.google.com/vertex-ai/locations/europe-west4/training/77",
     Target((Kind.VERTEX_JOB,), "77", region="europe-west4")),
    (BUILD, Target((Kind.BUILD,), BUILD)),
    (f"projects/arr-demo/locations/global/builds/{BUILD}", Target((Kind.BUILD,), BUILD, region="global",
                                                                  project="arr-demo")),
    (f"https://console.cloud.google.com/cloud-build/builds;region=us-central1/{BUILD}?project=123456789012",
     Target((Kind.BUILD,), BUILD, region="us-central1", project="123456789012")),
    (f"https://console.cloud.google.com/cloud-build/builds/{BUILD}?project=arr-demo",
     Target((Kind.BUILD,), BUILD, project="arr-demo")),
    ("arr-demo/arr-coc-0-1/p2t6v9jx", Target((Kind.WANDB_RUN,), "p2t6v9jx", entity="arr-demo",
                                             wandb_project="arr-coc-0-1")),
    ("arr-demo/arr-coc-0-1/runs/my_Run-1", Target((Kind.WANDB_RUN,), "my_Run-1", entity="arr-demo",
                                                  wandb_project="arr-coc-0-1")),
    ("https://wandb.ai/arr-demo/arr-coc-0-1/runs/p2t6v9jx", Target((Kind.WANDB_RUN,), "p2t6v9jx", entity="arr-demo",
                                                                   wandb_project="arr-coc-0-1")),
    ("https://wandb.example.com/team/proj/runs/abc123/logs?nw=1", Target((Kind.WANDB_RUN,), "abc123", entity="team",
                                                                         wandb_project="proj")),
    ("  vertex-ai-launcher-x7k2p\n", Target((Kind.EXECUTION,), "vertex-ai-launcher-x7k2p")),
])
def test_each_kind_is_told_by_its_shape(text: str, target: Target):
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ['x" OR "y', "Vertex-AI", "a/b", "trailing-", "x" * 64, "", "9c8b7a6d-0000",
                                  "projects/p/locations/r/jobs/j/executions/Bad_Name"])
def test_what_is_no_kind_is_one_usage_line(text: str):
    with pytest.raises(NotAnId) as error:
        parse_target(text)
    assert str(error.value) == (f"ID {text!r} names nothing arrctl can explain: expected a Cloud Run execution name "
                                "(vertex-ai-launcher-x7k2p), a Vertex AI job id or console URL, a build id (UUID) or "
                                "console URL, a W&B run id, ENTITY/PROJECT/ID or run URL")


@pytest.mark.parametrize("url", ["https://console.cloud.google.com/run/jobs?project=p", "https://example.com/x",
                                 "https://wandb.ai/arr-demo/arr-coc-0-1", "http://console.cloud.google.com/logs"])
def test_a_url_of_no_kind_says_which_urls_are(url: str):
    with pytest.raises(NotAnId, match=r"^URL .* is not one arrctl can explain: expected an execution's, a Vertex AI "
                                      r"job's or a build's Google Cloud console URL, or a W&B run URL"):
        parse_target(url)


def test_json_has_exactly_specs_keys_in_order():
    analysis = {"verdict": "failed", "message": "m", "rule": "r", "line": 3, "jobs": None, "context": ("a",),
                "category": "oom", "found": True, "where": "us-central1", "entries": 9, "note": None}
    assert as_json(analysis) == {"verdict": "failed", "message": "m", "category": "oom", "rule": "r", "line": 3,
                                 "jobs": None, "context": ["a"]}
    assert list(as_json(analysis)) == ["verdict", "message", "category", "rule", "line", "jobs", "context"]


class FakeRefresher:
    """Records the worker fetches explain asks for, and answers each as told."""

    def __init__(self, config, answers):
        from arrctl.store import Store

        self.config, self.answers, self.asked = config, answers, []
        self.store = Store(None)

    def deadline(self, source):
        return 30.0

    def run_many(self, fetches, deadline):
        from arrctl.model import SourceResult

        self.asked.append(sorted(fetches))
        return {name: SourceResult(source=name, state="ok", results=[self.answers[name]]) for name in fetches}


def test_an_id_of_two_shapes_is_looked_up_as_both_at_once_and_the_one_found_answers():
    from arrctl.config import Config
    from arrctl.explain import explain

    analysis = {"verdict": "failed", "message": "m", "category": "oom", "rule": "r", "line": 1, "jobs": None,
                "context": [], "found": True, "where": "arr-demo/arr-coc-0-1", "note": None}
    refresher = FakeRefresher(Config(project="arr-demo", regions=["us-central1"], wandb_entity="arr-demo",
                                     wandb_project="arr-coc-0-1"),
                              {"execution": {"found": False}, "W&B run": analysis})
    assert explain(refresher, parse_target("p2t6v9jx")) == (analysis, None, "W&B run p2t6v9jx in arr-demo/arr-coc-0-1")
    assert refresher.asked == [["W&B run", "execution"]]  # one batch of workers
    no_google = FakeRefresher(Config(wandb_entity="arr-demo", wandb_project="arr-coc-0-1"), {"W&B run": analysis})
    assert explain(no_google, parse_target("p2t6v9jx"))[2] == "W&B run p2t6v9jx in arr-demo/arr-coc-0-1"
    assert no_google.asked == [["W&B run"]]  # no Google project: Cloud Run is not asked

"""The fake W&B GraphQL API: `POST /graphql` answering what `wandb.Api().runs()` sends.

wandb 0.31 sends, through its `wandb-core` helper: `Viewer` (the login check inside `Api()`),
`GetDefaultEntity` (only when no entity was given), `Runs` (cursor pages of runs), and `Run` /
`RunState` (one run, when a lazily listed run's config is read), `RunFiles` (`run.files()`) — and
serves the files themselves (`sandbox/wandb_files.py`). The operation is found by the
`query NAME` in the text, because operationName is often sent empty. Anything else gets a
GraphQL error, never silence. Values follow the real service: ids are strings, `config`,
`summaryMetrics` and `systemMetrics` are JSON *strings*, config values are wrapped as
`{"value": ..., "desc": null}`, and times are UTC without a zone (`2026-11-22T05:34:24`).

The runs come from `wandb.json` in the scenario directory; see its `_doc` for the time rules.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import pathlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from arrctl.sandbox.base import Clock, Request, Response

DEFAULT_ENTITY = "arr-demo"
DEFAULT_PROJECT = "arr-coc-0-1"
LIVE_HEARTBEAT_S = 10  # a running run's heartbeat moves in steps, as the real one is periodic
MAX_PER_PAGE = 1000

_OPERATION = re.compile(r"\b(query|mutation|subscription)\s+([A-Za-z_]\w*)")
_NODE_FIELDS = (
    "projectId", "id", "tags", "name", "displayName", "sweepName", "state", "config", "group",
    "jobType", "commit", "readOnly", "createdAt", "heartbeatAt", "description", "notes",
    "systemMetrics", "summaryMetrics", "historyLineCount", "user", "historyKeys",
)


class GraphQLError(Exception):
    """A request the fake answers with a GraphQL `errors` entry (HTTP 200, as W&B does)."""


@dataclass
class RunSpec:
    """One run of the scenario, in scenario seconds."""

    id: str
    name: str
    state: str
    created: float
    runtime: float | None = None
    heartbeat: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    group: str | None = None
    job_type: str | None = None
    user: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    """name -> a file of the scenario directory; each exists once the run has ended (see wandb_files)."""


@dataclass
class RunView:
    """A run as it is at one moment: what the API shows."""

    spec: RunSpec
    state: str
    created_epoch: float
    heartbeat_epoch: float
    summary: dict[str, Any]


def _wire_time(epoch: float) -> str:
    """W&B's timestamp format: UTC, whole seconds, no zone suffix."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def _cursor(index: int) -> str:
    """The opaque cursor of the edge at `index` (a page after it starts at index + 1)."""
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def _cursor_index(cursor: str | None) -> int:
    """Where the page after `cursor` starts."""
    if not cursor:
        return 0
    try:
        kind, _, index = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind == "cursor":
            return int(index) + 1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise GraphQLError(f"invalid cursor {cursor!r}")


def _api_key(headers: dict[str, str]) -> str | None:
    """The key of `Authorization: Basic base64("api:" + key)`, or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, key = base64.b64decode(token.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key if user == "api" and key else None


# --- filters: the subset of W&B's Mongo-like language that monitors use ---------------------

def _document(view: RunView) -> dict[str, Any]:
    """The fields a filter or an order can name, in both spellings W&B accepts."""
    spec = view.spec
    doc: dict[str, Any] = {
        "state": view.state, "name": spec.id, "displayName": spec.name, "display_name": spec.name,
        "createdAt": _wire_time(view.created_epoch), "created_at": view.created_epoch,
        "heartbeatAt": _wire_time(view.heartbeat_epoch), "heartbeat_at": view.heartbeat_epoch,
        "tags": list(spec.tags), "group": spec.group, "jobType": spec.job_type,
        "username": spec.user, "duration": view.heartbeat_epoch - view.created_epoch,
    }
    for key, value in spec.config.items():
        doc[f"config.{key}"] = doc[f"config.{key}.value"] = value
    for key, value in view.summary.items():
        doc[f"summary_metrics.{key}"] = value
    return doc


_MISSING = object()


def _compare(op: str, value: Any, operand: Any) -> bool:
    """One operator applied to one field value (lists match when any element does)."""
    if isinstance(value, list) and op not in ("$exists", "$size"):
        if op in ("$ne", "$nin"):
            return all(_compare(op, item, operand) for item in value) if value else True
        return any(_compare(op, item, operand) for item in value)
    if op == "$eq":
        return value is not _MISSING and value == operand
    if op == "$ne":
        return value is _MISSING or value != operand
    if op == "$in":
        return value is not _MISSING and value in operand
    if op == "$nin":
        return value is _MISSING or value not in operand
    if op == "$exists":
        return (value is not _MISSING and value is not None) == bool(operand)
    if op == "$regex":
        return isinstance(value, str) and re.search(str(operand), value) is not None
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if value is _MISSING or value is None:
            return False
        try:
            return {"$gt": value > operand, "$gte": value >= operand,
                    "$lt": value < operand, "$lte": value <= operand}[op]
        except TypeError:
            return False
    raise GraphQLError(f"unsupported filter operator {op}")


def matches(doc: dict[str, Any], query: Any) -> bool:
    """Whether a run's document satisfies a Mongo-like filter."""
    if not isinstance(query, dict):
        raise GraphQLError("filters must be a JSON object")
    for key, condition in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, list):
                raise GraphQLError(f"{key} needs a list")
            results = [matches(doc, sub) for sub in condition]
            ok = all(results) if key == "$and" else any(results) if key == "$or" else not any(results)
        elif key.startswith("$"):
            raise GraphQLError(f"unsupported filter operator {key}")
        else:
            value = doc.get(key, _MISSING)
            if isinstance(condition, dict) and any(k.startswith("$") for k in condition):
                ok = all(_compare(op, value, operand) for op, operand in condition.items())
            else:
                ok = _compare("$eq", value, condition)
        if not ok:
            return False
    return True


def _order_key(order: str) -> tuple[str, bool]:
    """The document field and direction of a W&B `order` ("-created_at", "+heartbeat_at", ...)."""
    text = order or "+created_at"
    descending = text.startswith("-")
    name = text.lstrip("+-")
    aliases = {"createdAt": "created_at", "heartbeatAt": "heartbeat_at", "displayName": "display_name"}
    name = aliases.get(name, name)
    if name in ("created_at", "heartbeat_at", "name", "display_name", "state") \
            or name.startswith(("config.", "summary_metrics.")):
        return name, descending
    raise GraphQLError(f"unsupported order {order!r}")


# --- the service -----------------------------------------------------------------------------

class WandbService:
    """Answers W&B GraphQL from a scenario that moves with the sandbox clock."""

    name = "wandb"

    def __init__(self, scenario: dict[str, Any], clock: Clock, directory: pathlib.Path | None = None) -> None:
        from arrctl.sandbox.wandb_files import RunFiles

        self.clock = clock
        self.entity: str = scenario.get("entity") or DEFAULT_ENTITY
        self.project: str = scenario.get("project") or DEFAULT_PROJECT
        self.project_id = str(scenario.get("project_id") or "418207")
        self.viewer: dict[str, Any] = scenario.get("viewer") or {}
        self.api_key: str | None = scenario.get("api_key")
        self.runs = [RunSpec(**spec) for spec in scenario.get("runs", [])]
        # Past times are anchored once, so a row's `created` never drifts between refreshes, and
        # are NOT scaled by the scenario speed: a heartbeat 25 minutes old must look 25 minutes
        # old to a health rule. Future offsets are scaled, so they happen when the clock says.
        self.speed = float(getattr(clock, "speed", 1.0) or 1.0)
        self.epoch0 = clock.now() - clock.t() / self.speed
        self.operations: dict[str, Callable[[str, dict[str, Any], Request], dict[str, Any]]] = {
            "Viewer": self._viewer, "GetDefaultEntity": self._default_entity,
            "Runs": self._runs, "Run": self._run, "RunState": self._run,
        }
        self.files = RunFiles(self, directory or pathlib.Path("."))
        self.seen: dict[str, int] = {}  # operations and downloads answered, for /_sandbox/stats
        self._seen_lock = threading.Lock()
        self.operations["RunFiles"] = self.files.query

    # scenario time -> what the API shows

    def stamp(self, offset: float) -> float:
        """Epoch seconds of a scenario time; the future runs at the clock's speed."""
        return self.epoch0 + (offset if offset <= 0 else offset / self.speed)

    def view(self, spec: RunSpec, t: float, now: float) -> RunView | None:
        """The run at scenario time `t` (None before it is created)."""
        if spec.created > t:
            return None
        state, heartbeat, ended = spec.state, spec.heartbeat, None
        summary = dict(spec.summary)
        for change in sorted(spec.changes, key=lambda c: c["at"]):
            if change["at"] > t:
                break
            if "heartbeat" in change:
                heartbeat = change["heartbeat"]
            if "state" in change:
                state = change["state"]
                ended = change["at"] if state not in ("running", "pending", "preempting") else None
            summary.update(change.get("summary", {}))
        created = self.stamp(spec.created)
        if heartbeat is not None:
            beat = self.stamp(heartbeat)
        elif ended is not None:
            beat = self.stamp(ended)
        elif state in ("running", "preempting"):
            beat = max(created, math.floor(now / LIVE_HEARTBEAT_S) * LIVE_HEARTBEAT_S)
        else:
            beat = created + (spec.runtime or 0.0)
        runtime = max(0, int(beat - created))
        summary.update({"_runtime": runtime, "_timestamp": round(beat, 3),
                        "_wandb": {"runtime": runtime}})
        return RunView(spec, state, created, beat, summary)

    def visible_runs(self) -> list[RunView]:
        """Every run that exists now."""
        t, now = self.clock.t(), self.clock.now()
        return [v for v in (self.view(spec, t, now) for spec in self.runs) if v is not None]

    def node(self, view: RunView, query: str) -> dict[str, Any]:
        """The GraphQL `Run` node, with only the fields the query names (as a server would)."""
        spec = view.spec
        step = view.summary.get("_step", 0)
        config = {key: {"value": value, "desc": None} for key, value in spec.config.items()}
        config["_wandb"] = {"value": {"cli_version": "0.31.0", "python_version": "3.11.9"}, "desc": None}
        user = spec.user or self.viewer.get("username") or self.entity
        full: dict[str, Any] = {
            "projectId": self.project_id,
            "id": base64.b64encode(f"Run:v1:{spec.id}:{self.project}:{self.entity}".encode()).decode(),
            "tags": list(spec.tags), "name": spec.id, "displayName": spec.name, "sweepName": None,
            "state": view.state, "config": json.dumps(config), "group": spec.group,
            "jobType": spec.job_type, "commit": None, "readOnly": False,
            "createdAt": _wire_time(view.created_epoch), "heartbeatAt": _wire_time(view.heartbeat_epoch),
            "description": None, "notes": None, "systemMetrics": json.dumps({}),
            "summaryMetrics": json.dumps(view.summary), "historyLineCount": step,
            "user": {"name": self.viewer.get("name") or user, "username": user},
            "historyKeys": {"lastStep": step, "keys": {}},
        }
        return {key: full[key] for key in _NODE_FIELDS
                if key == "name" or re.search(rf"\b{key}\b", query)}

    # HTTP

    def handle(self, request: Request) -> Response | None:
        """Answer `/graphql`; None for every other path."""
        if request.path.rstrip("/") != "/graphql":
            return self.files.download(request)
        if request.method != "POST":
            return Response(405, {"errors": [{"message": "method not allowed"}]})
        key = _api_key(request.headers)
        if key is None or (self.api_key is not None and key != self.api_key):
            return Response(401, {"errors": [{"message": "user is not logged in"}]})
        try:
            payload = request.json()
        except (ValueError, UnicodeDecodeError):
            return Response(400, {"errors": [{"message": "request body is not JSON"}]})
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return Response(400, {"errors": [{"message": "no query in request"}]})
        query = payload["query"]
        variables = payload.get("variables") or {}
        found = _OPERATION.search(query)
        operation = found.group(2) if found else (payload.get("operationName") or "")
        answer = self.operations.get(operation) if not found or found.group(1) == "query" else None
        self.count(operation or "(anonymous)")
        if answer is None:
            return Response(200, {"data": None, "errors": [
                {"message": f"operation {operation or '(anonymous)'} is not served by the arrctl sandbox"}]})
        try:
            data = answer(query, variables if isinstance(variables, dict) else {}, request)
        except GraphQLError as exc:
            return Response(200, {"data": None, "errors": [{"message": str(exc)}]})
        return Response(200, {"data": data})

    def count(self, what: str) -> None:
        """One more answer of `what` (an operation, or `download`)."""
        with self._seen_lock:
            self.seen[what] = self.seen.get(what, 0) + 1

    # operations

    def _viewer(self, query: str, variables: dict[str, Any], request: Request) -> dict[str, Any]:
        username = self.viewer.get("username") or self.entity
        teams = self.viewer.get("teams") or [self.entity]
        return {"viewer": {
            "id": base64.b64encode(f"User:{username}".encode()).decode(), "entity": self.entity,
            "username": username, "email": self.viewer.get("email"), "flags": json.dumps({}),
            "teams": {"edges": [{"node": {"name": team}} for team in teams]},
        }}

    def _default_entity(self, query: str, variables: dict[str, Any], request: Request) -> dict[str, Any]:
        return {"viewer": {"id": base64.b64encode(b"User:" + self.entity.encode()).decode(),
                           "entity": self.entity}}

    def _known(self, variables: dict[str, Any]) -> bool:
        """Whether the variables name the scenario's project (else W&B answers project: null)."""
        return variables.get("entity") == self.entity and variables.get("project") == self.project

    def _runs(self, query: str, variables: dict[str, Any], request: Request) -> dict[str, Any]:
        if not self._known(variables):
            return {"project": None}
        raw_filters = variables.get("filters") or "{}"
        try:
            filters = json.loads(raw_filters) if isinstance(raw_filters, str) else raw_filters
        except ValueError as exc:
            raise GraphQLError(f"filters is not valid JSON: {exc}") from None
        field_name, descending = _order_key(str(variables.get("order") or ""))
        views = [v for v in self.visible_runs() if matches(_document(v), filters)]
        views.sort(key=lambda v: v.spec.id, reverse=descending)  # stable tie-break
        views.sort(key=lambda v: _sortable(_document(v).get(field_name)), reverse=descending)
        per_page = variables.get("perPage") or 50
        if not isinstance(per_page, int) or per_page < 1:
            raise GraphQLError("perPage must be a positive integer")
        per_page = min(per_page, MAX_PER_PAGE)
        if request.pages:  # the pages:N fault: the same list, cut into N pieces
            per_page = min(per_page, max(1, math.ceil(len(views) / request.pages)))
        start = _cursor_index(variables.get("cursor"))
        page = views[start:start + per_page]
        edges = [{"node": self.node(v, query), "cursor": _cursor(start + i)} for i, v in enumerate(page)]
        return {"project": {
            "internalId": base64.b64encode(f"Project:{self.project_id}".encode()).decode(),
            "runCount": len(views), "readOnly": False,
            "runs": {"edges": edges, "pageInfo": {
                "endCursor": edges[-1]["cursor"] if edges else None,
                "hasNextPage": start + per_page < len(views),
            }},
        }}

    def _run(self, query: str, variables: dict[str, Any], request: Request) -> dict[str, Any]:
        if not self._known(variables):
            return {"project": None}
        view = self.find(variables.get("name"))
        return {"project": {"run": self.node(view, query) if view is not None else None}}

    def find(self, run_id: Any) -> RunView | None:
        """The run `run_id` as it is now (None when it does not exist yet)."""
        return next((view for view in self.visible_runs() if view.spec.id == run_id), None)


def _sortable(value: Any) -> tuple[int, Any]:
    """A sort key that puts missing values last and never compares unlike types."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (2, value)
    return (1, str(value))


def create(scenario_dir: pathlib.Path, clock: Clock) -> WandbService:
    """The W&B service of a scenario (an empty project when it has no wandb.json)."""
    path = pathlib.Path(scenario_dir) / "wandb.json"
    scenario = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return WandbService(scenario, clock, pathlib.Path(scenario_dir))

"""Worker side of `arrctl doctor`: one cheap call per check, each in its own killable worker.

Every probe sends one or more facts `{"check": name, "ok": bool, "detail": str, "status": int|None,
"permission": str|None}`; `status` is the HTTP status of a refused call (403: a permission is
missing, and `permission` is the one the API named in its ErrorInfo, when it did). A probe never
raises for what it is checking: the failure is the answer.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from typing import Any, Callable

from arrctl.sources import Emitter, FetchContext, SourceError


def _fact(check: str, ok: bool, detail: str, exc: BaseException | None = None) -> dict[str, Any]:
    status = getattr(exc, "code", None) if exc is not None else None
    metadata = getattr(exc, "metadata", None) if exc is not None else None
    permission = metadata.get("permission") if isinstance(metadata, dict) else None
    return {"check": check, "ok": ok, "detail": detail,
            "status": int(status) if isinstance(status, int) else None, "permission": permission}


def _call(ctx: FetchContext, emit: Emitter, check: str, api: str, call: Callable[[], str]) -> None:
    """Run one API call; its success text, or the one-line reason it failed, as the check's fact."""
    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import describe_error

    try:
        clients.credentials(ctx)
        emit.call(api)
        emit.results([_fact(check, True, call())])
    except SourceError as exc:  # no credentials: said by the credentials check, repeated here in short
        emit.results([_fact(check, False, str(exc))])
    except Exception as exc:  # noqa: BLE001 — the failure is the answer
        emit.results([_fact(check, False, describe_error(exc, ctx.call_timeout_s), exc)])


# The class of the credentials google.auth.default() found -> what a person calls them.
CREDENTIAL_KINDS = {
    "google.oauth2.credentials.Credentials": "user credentials (gcloud auth application-default login)",
    "google.oauth2.service_account.Credentials": "service account key",
    "google.auth.compute_engine.credentials.Credentials": "the metadata server's service account",
    "google.auth.impersonated_credentials.Credentials": "impersonated service account",
    "google.auth.identity_pool.Credentials": "workload identity federation",
    "google.auth.aws.Credentials": "workload identity federation (AWS)",
    "google.auth.pluggable.Credentials": "workload identity federation (executable)",
    "google.auth.external_account_authorized_user.Credentials": "workforce identity federation",
}


def describe_credentials(creds: Any, env_file: str | None) -> str:
    """Which kind of credentials, which account, from where (pure over the credentials object)."""
    cls = type(creds)
    kind = CREDENTIAL_KINDS.get(f"{cls.__module__}.{cls.__name__}", f"{cls.__module__}.{cls.__name__}")
    account = getattr(creds, "service_account_email", None) or getattr(creds, "account", None) or \
        getattr(creds, "_target_principal", None)
    who = f"account {account}" if account and account != "default" else "account not named by the credentials"
    where = f"from {env_file} (GOOGLE_APPLICATION_CREDENTIALS)" if env_file else "from Application Default Credentials"
    return f"{kind}, {who}, {where}"


def credentials(ctx: FetchContext, emit: Emitter) -> None:
    """Google credentials: anonymous for a local endpoint, else what google.auth.default() finds."""
    if ctx.gcp_endpoint:
        emit.results([_fact("credentials", True, f"anonymous, for the local endpoint {ctx.gcp_endpoint} "
                                               "(ARRCTL_GCP_ENDPOINT)")])
        return
    from arrctl.sources import clients

    try:
        creds = clients.credentials(ctx)
    except SourceError as exc:
        emit.results([_fact("credentials", False, str(exc))])
        return
    emit.results([_fact("credentials", True, describe_credentials(creds, os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")))])


def runner(ctx: FetchContext, emit: Emitter) -> None:
    """run.executions.list on the runner job in its region (one page of one execution)."""
    from arrctl.sources import clients

    config = ctx.config
    region = config.job_region()
    parent = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}"

    def call() -> str:
        pager = clients.run_executions_client(ctx).list_executions(request={"parent": parent, "page_size": 1},
                                                                   **clients.call_kwargs(ctx))
        seen = len(list(next(iter(pager.pages)).executions))
        return f"run.executions.list allowed ({config.runner_job} in {region}: " + \
            ("executions listed)" if seen else "no executions yet)")

    _call(ctx, emit, "runner", "run", call)


def runner_job(ctx: FetchContext, emit: Emitter) -> None:
    """The runner job exists in `[runner] region` (else: which configured regions have it)."""
    from google.api_core import exceptions as api_exceptions

    from arrctl.sources import clients

    config = ctx.config
    region = config.job_region()

    def get(where: str) -> Any:
        emit.call("run")
        return clients.run_jobs_client(ctx).get_job(
            request={"name": f"projects/{config.project}/locations/{where}/jobs/{config.runner_job}"},
            **clients.call_kwargs(ctx))

    def call() -> str:
        try:
            job = get(region)
        except api_exceptions.NotFound:
            others = [r for r in config.regions if r != region]
            found = [r for r, answer, _ in clients.fan_out(others, get, max(1.0, ctx.deadline_s * 0.5))
                     if answer is not None]
            hint = f"; it is in {', '.join(sorted(found))}: set [runner] region" if found else ""
            raise SourceError(f"job {config.runner_job} not found in {region} ([runner] region){hint}") from None
        count = getattr(job, "execution_count", 0)
        return f"{config.runner_job} exists in {region} ({count} executions so far)"

    _call(ctx, emit, "runner_job", "run", call)


def builds(ctx: FetchContext, emit: Emitter) -> None:
    """cloudbuild.builds.list on the project (one build)."""
    from arrctl.sources import clients

    def call() -> str:
        pager = clients.build_client(ctx).list_builds(request={"project_id": ctx.config.project, "page_size": 1},
                                                       **clients.call_kwargs(ctx))
        next(iter(pager.pages))
        return "cloudbuild.builds.list allowed"

    _call(ctx, emit, "builds", "build", call)


def vertex(ctx: FetchContext, emit: Emitter) -> None:
    """aiplatform.customJobs.list in the first configured region (one job)."""
    from arrctl.sources import clients

    region = ctx.config.regions[0]

    def call() -> str:
        pager = clients.vertex_job_client(ctx, region).list_custom_jobs(
            request={"parent": f"projects/{ctx.config.project}/locations/{region}", "page_size": 1},
            **clients.call_kwargs(ctx))
        next(iter(pager.pages))
        return f"aiplatform.customJobs.list allowed ({region})"

    _call(ctx, emit, "vertex", "vertex", call)


def logging(ctx: FetchContext, emit: Emitter) -> None:
    """logging.logEntries.list: one page of one entry of the runner job's last hour (sources/logs.py)."""
    from arrctl.model import iso_z
    from arrctl.sources import logs
    from arrctl.sources.runner import filter_string

    started = time.monotonic()
    if ctx.logging_hold_s > 0:
        emit.results([_fact("logging", False, f"reads held {ctx.logging_hold_s:.0f}s more after a 429 (rate limited)")])
        return
    since = iso_z(_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(hours=1)) or ""
    text = logs.bounded(f'resource.type="cloud_run_job" AND resource.labels.job_name='
                        f'{filter_string(ctx.config.runner_job)}', since)
    try:
        from arrctl.sources import clients

        clients.credentials(ctx)
    except SourceError as exc:
        emit.results([_fact("logging", False, str(exc))])
        return
    read = logs.read_entries(ctx, emit, text, deadline_at=started + ctx.deadline_s - 0.5, max_pages=1, page_size=1)
    emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
    if read.cut in (None, logs.Cut.PAGES):  # answered (a page cap is an answer)
        emit.results([_fact("logging", True, "logging.logEntries.list allowed")])
    else:
        emit.results([_fact("logging", False, read.reason or "no answer", read.error)])


def wandb_probe(ctx: FetchContext, emit: Emitter) -> None:
    """W&B: the host answers, the key is valid (the Viewer query), the entity/project can be read."""
    import contextlib

    from arrctl.sources import wandb_client as w

    api_key = ctx.config.wandb_api_key  # the config read WANDB_API_KEY
    base_url = w.chosen_base_url(ctx, os.environ) or ""
    missing = ""
    try:
        entity, project = w.target(ctx.config)
        path: str | None = f"{entity}/{project}"
    except SourceError as exc:
        path, missing = None, str(exc)
    if not api_key:
        emit.results([_fact("wandb_host", False, f"not checked: {w.NO_API_KEY}"),
                    _fact("wandb_key", False, w.NO_API_KEY),
                    _fact("wandb_project", False, missing if path is None else "not checked without a key")])
        return
    timeout_s = w.timeout_for(ctx)
    overrides: dict[str, Any] = {"base_url": base_url} if base_url else {}
    if path is not None:
        overrides.update(entity=entity, project=project)
    with w.private_wandb_env(timeout_s):
        import wandb

        base_url = base_url or w._library_base_url(wandb)
        host = _host_answers(emit, base_url, timeout_s)
        if not host["ok"]:
            emit.results([host, _fact("wandb_key", False, "not checked: the host did not answer"),
                        _fact("wandb_project", False, missing if path is None else "not checked")])
            return
        facts = [host]
        emit.call("wandb")
        try:  # Api() checks the key with the Viewer query (wandb/sdk/wandb_login.py _verify_login)
            api = wandb.Api(api_key=api_key, overrides=overrides, timeout=timeout_s)
            emit.call("wandb")
            facts.append(_fact("wandb_key", True, f"valid (default entity {api.default_entity or 'none'})"))
        except Exception as exc:  # noqa: BLE001 — the failure is the answer
            reason = w.describe_error(exc, base_url=base_url, timeout_s=timeout_s, secret=api_key)
            emit.results(facts + [_fact("wandb_key", False, reason),
                                _fact("wandb_project", False, missing if path is None else "not checked")])
            return
        if path is None:
            facts.append(_fact("wandb_project", False, missing))
        else:
            emit.call("wandb")
            try:
                next(iter(api.runs(path, per_page=1)), None)
                facts.append(_fact("wandb_project", True, f"{path} readable"))
            except Exception as exc:  # noqa: BLE001
                facts.append(_fact("wandb_project", False, w.describe_error(
                    exc, base_url=base_url, timeout_s=timeout_s, secret=api_key, path=path)))
        with contextlib.suppress(Exception):
            wandb.teardown()
    emit.results(facts)


def _host_answers(emit: Emitter, base_url: str, timeout_s: float) -> dict[str, Any]:
    """Whether anything answers HTTP at the W&B server's address (any status counts as an answer)."""
    import requests

    from arrctl.sources.gcp_errors import describe_error

    emit.call("wandb")
    try:
        answer = requests.get(base_url, timeout=timeout_s, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        return _fact("wandb_host", False, f"{base_url}: {describe_error(exc, timeout_s)}")
    return _fact("wandb_host", True, f"{base_url} answers (HTTP {answer.status_code})")


PROBES: dict[str, Callable[[FetchContext, Emitter], None]] = {
    "credentials": credentials, "runner": runner, "builds": builds, "vertex": vertex, "logging": logging,
    "runner_job": runner_job, "wandb": wandb_probe,
}

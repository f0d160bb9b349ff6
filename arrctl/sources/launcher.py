"""Worker-side calls of `arrctl launch`: start the runner job, look at one execution and its logs."""

from __future__ import annotations

import time
from typing import Any

from arrctl.sources import Emitter, FetchContext, SourceError


def start_execution(ctx: FetchContext, emit: Emitter) -> None:
    """Run the job once (Cloud Run v2 RunJob) and report the new execution's name."""
    from arrctl import clients
    from arrctl.sources.gcp_errors import describe_error

    config = ctx.config
    region = ctx.extra["region"]
    name = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}"
    clients.credentials(ctx)
    emit.call("run")
    try:
        operation = clients.run_jobs_client(ctx).run_job(request={"name": name}, **clients.call_kwargs(ctx))
        execution = operation.metadata.name if operation.metadata is not None else ""
    except Exception as exc:  # noqa: BLE001 — one line for the user
        raise SourceError(f"could not start {config.runner_job} in {region}: {describe_error(exc)}") from None
    if not execution:
        raise SourceError(f"{config.runner_job} started but the operation named no execution")
    emit.facts([{"execution": execution.rsplit("/", 1)[-1], "name": execution, "at": time.time()}])


def watch_execution(ctx: FetchContext, emit: Emitter) -> None:
    """The execution's state and the first fatal line of its logs so far (one log query)."""
    from arrctl import clients
    from arrctl.extract import first_fatal, lines_from_entries
    from arrctl.sources.gcp_errors import describe_error
    from arrctl.sources.runner import judge_attempts, last_attempts, log_filter, parse_execution
    import datetime as _dt

    config = ctx.config
    full_name, short = ctx.extra["execution_name"], ctx.extra["execution"]
    clients.credentials(ctx)
    emit.call("run")
    try:
        execution = clients.run_executions_client(ctx).get_execution(request={"name": full_name},
                                                                      **clients.call_kwargs(ctx))
        row = parse_execution(execution, _dt.datetime.now(_dt.timezone.utc))
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"execution {short}: {describe_error(exc)}") from None
    emit.rows([row])
    emit.call("logging")
    body: dict[str, Any] = {"resourceNames": [f"projects/{config.project}"],
                            "filter": log_filter(config.runner_job, [short]),
                            "orderBy": "timestamp desc", "pageSize": 1000}
    try:
        answer = clients.logging_connection(ctx, config.project).api_request(
            method="POST", path="/entries:list", data=body, timeout=ctx.call_timeout_s)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"logs of {short}: {describe_error(exc)}") from None
    entries = answer.get("entries") or []
    lines = lines_from_entries(last_attempts(entries))  # a retried task's earlier attempts are history
    if row["status"] in ("FAILED", "CANCELLED", "TIMEOUT"):
        # the execution ended: its whole log names the root error better than Cloud Run's condition
        analysis = judge_attempts(row, entries)
        message = analysis.message if analysis.verdict == "failed" else row["extra"].get("condition")
        emit.rows([{**row, "message": message or row["message"]}])  # type: ignore[misc]
        return
    fatal = first_fatal(lines)
    if fatal is not None:
        emit.facts([{"fatal": fatal.message, "rule": fatal.rule}])


def explain_execution(ctx: FetchContext, emit: Emitter) -> None:
    """All logs of one execution (bounded paging), analysed in the worker."""
    from arrctl import clients
    from arrctl.extract import analyze, lines_from_entries
    from arrctl.sources.gcp_errors import describe_error
    from arrctl.sources.runner import last_attempts, log_filter

    config = ctx.config
    short = ctx.extra["execution"]
    clients.credentials(ctx)
    connection = clients.logging_connection(ctx, config.project)
    body: dict[str, Any] = {"resourceNames": [f"projects/{config.project}"],
                            "filter": log_filter(config.runner_job, [short]),
                            "orderBy": "timestamp desc", "pageSize": 1000}
    entries: list[dict[str, Any]] = []
    try:
        for _ in range(10):
            emit.call("logging")
            answer = connection.api_request(method="POST", path="/entries:list", data=body,
                                            timeout=ctx.call_timeout_s)
            entries.extend(answer.get("entries") or [])
            if not answer.get("nextPageToken"):
                break
            body = {**body, "pageToken": answer["nextPageToken"]}
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"logs of {short}: {describe_error(exc)}") from None
    analysis = analyze(lines_from_entries(last_attempts(entries)))  # each task's last attempt
    emit.facts([{**analysis.to_dict(), "entries": len(entries)}])

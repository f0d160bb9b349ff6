"""The console log of W&B runs that failed or crashed: the tail of `output.log`, read once.

W&B keeps what a run's process printed as the run file `output.log`, uploaded when the run ends
(https://github.com/wandb/wandb/issues/373); a run whose process died may have none
(https://github.com/wandb/wandb/issues/9667), and then the row keeps what W&B itself says.

How it is read, through wandb's public API: `run.files(names=["output.log"])` sends one `RunFiles`
GraphQL query and gives the file's `directUrl` (a signed Cloud Storage URL) and `url` (the file
under the W&B API, which redirects there) with `sizeBytes` (wandb/apis/public/files.py).
`File.download()` would fetch the whole file through wandb-core; only its end names the error,
so the tail is asked for with an HTTP Range request (`bytes=-N`, RFC 9110 §14.1.2), which Cloud
Storage honours except "in certain circumstances" (e.g. a compressed object it decompresses:
https://cloud.google.com/storage/docs/xml-api/get-object-download). A server that ignores the
Range sends the whole file: it is read up to MAX_BODY_BYTES and its end kept; beyond that the
read counts as cut.

Like the runner's log reads: only runs not remembered yet are read, at most MAX_RUNS per refresh
(the newest first), within the worker's deadline; a read that fails or is cut is retried with the
store's backoff (sources/logs.py `retry_delay_s`), and after logs.MAX_TRIES the run is concluded
with W&B's own words. Until then the row shows W&B's words marked `extra.logs_unread`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from arrctl.model import Row, TerminalFact, apply_facts, by_id, epoch
from arrctl.sources import Emitter, FetchContext, logs

OUTPUT_LOG = "output.log"
TAIL_BYTES = 128 * 1024  # the extractor keeps 20 lines before the error and 80 after it
MAX_BODY_BYTES = 4 * 1024 * 1024  # a whole file sent despite the Range is read this far at most
MAX_RUNS = 10  # console logs read per refresh; the rest wait for the next one
READ_STATES = ("failed", "crashed")  # W&B's words for a run that ended badly
SETTLE_S = 120.0  # a run that ended this recently may not have uploaded output.log yet


@dataclass(frozen=True)
class Tail:
    """What one read of a run's console log found."""

    text: str | None = None  # the tail's text; None when the run has no output.log
    cut: str | None = None  # why the read did not finish (a one-line reason), None when it did
    size: int | None = None  # the file's size in bytes


# --- pure ----------------------------------------------------------------------------------

def needs_console(rows: list[Row], known: frozenset[str]) -> list[Row]:
    """Runs whose console log must be read: failed or crashed, not remembered yet, newest first."""
    return [r for r in rows if r["raw_status"] in READ_STATES and r["id"] not in known]


def provisional(rows: list[Row], unread: set[str]) -> list[Row]:
    """Rows whose console log is not read yet keep W&B's words, marked `extra.logs_unread`."""
    return [{**r, "extra": {**r["extra"], "logs_unread": True}} if r["id"] in unread else r  # type: ignore[misc]
            for r in rows]


def tail_request(node: dict[str, Any], base_url: str, tail_bytes: int = TAIL_BYTES,
                 start: int | None = None) -> tuple[str, dict[str, str], bool]:
    """(URL, headers, whether to send the W&B key) to fetch the end of a file node (from byte `start` on, if given).

    The signed storage URL needs no credentials, so none are sent to it; the W&B API's URL gets
    them only on the W&B host itself (requests drops them on a redirect to another host).
    """
    from urllib.parse import urlsplit

    headers = {"Range": f"bytes=-{tail_bytes}" if start is None else f"bytes={start}-"}
    direct = node.get("directUrl")
    if isinstance(direct, str) and direct:
        return direct, headers, False
    url = str(node.get("url") or "")
    same_host = urlsplit(url).netloc.lower() == urlsplit(base_url).netloc.lower() if base_url else False
    return url, headers, same_host


def content_start(content_range: str | None) -> int | None:
    """The first byte of a `Content-Range: bytes FIRST-LAST/SIZE` answer, None if there is none."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    first = content_range[len("bytes "):].split("-", 1)[0]
    return int(first) if first.isdigit() else None


def tail_text(data: bytes, starts_mid_file: bool, tail_bytes: int = TAIL_BYTES) -> str:
    """The last `tail_bytes` of a log as text, from the first whole line (a cut line is dropped)."""
    cut = starts_mid_file or len(data) > tail_bytes
    data = data[-tail_bytes:]
    if cut:
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else b""
    return data.decode("utf-8", "replace")


def settled(row: Row, now: float) -> bool:
    """Whether the run ended long enough ago for a missing output.log to mean there is none."""
    ended = epoch(row["finished"])
    return ended is None or now - ended >= SETTLE_S


def conclude(row: Row, analysis: Any | None) -> TerminalFact:
    """The terminal fact of a run: the root error its log names, else W&B's own words."""
    found = analysis if analysis is not None and analysis.verdict == "failed" and analysis.message else None
    return {"source": row["source"], "id": row["id"], "status": row["status"], "verdict": "failed",
            "message": found.message if found is not None else row["message"],
            "rule": found.rule if found is not None else None, "jobs": None,
            "line": found.line if found is not None else None, "finished": row["finished"],
            "category": found.category if found is not None else None}


def analyse(text: str, outcome: str | None = "failed") -> Any:
    """The extractor's analysis of a run's console log (`outcome`: what W&B says of the run)."""
    from arrctl.extract import analyze, split_text

    return analyze(split_text(text), outcome)


def read_outcome(due: list[Row], tails: dict[str, Tail], retry: dict[str, tuple[int, float, str | None]],
                 now: float) -> tuple[list[TerminalFact], dict[str, Any]]:
    """The facts the reads prove, and their report for the store's backoff (pure).

    A run read to the end is concluded (without output.log: with W&B's words, once it settled);
    a cut read is retried later, unless it was the last try: then W&B's words conclude it.
    """
    facts: list[TerminalFact] = []
    cut: dict[str, str] = {}
    for row in due:
        tail = tails.get(row["id"], Tail(cut="not read within the deadline"))
        if tail.cut is None and tail.text is not None:
            facts.append(conclude(row, analyse(tail.text)))
        elif tail.cut is None:
            if settled(row, now):
                facts.append(conclude(row, None))
        elif retry.get(row["id"], (0, 0.0, None))[0] + 1 >= logs.MAX_TRIES:
            facts.append(conclude(row, None))
        else:
            cut[row["id"]] = tail.cut
    return facts, {"read": [f["id"] for f in facts], "cut": cut}


# --- I/O -------------------------------------------------------------------------------------

def file_node(api_run: Any, emit: Emitter) -> dict[str, Any] | None:
    """The `output.log` node of a run (one RunFiles query), None when the run has none."""
    emit.call("wandb")
    for found in api_run.files(names=[OUTPUT_LOG], per_page=1):
        if found.name == OUTPUT_LOG:
            return dict(found._attrs)  # the GraphQL node, as the public File object keeps it
    return None


def whole_lines(data: bytes, start: int) -> Tail:
    """What a read from byte `start` adds (pure): its whole lines, and `size` = where the next read starts."""
    end = data.rfind(b"\n") + 1
    return Tail(text=data[:end].decode("utf-8", "replace"), size=start + end)


def fetch_tail(node: dict[str, Any], *, base_url: str, api_key: str, timeout_s: float,
               emit: Emitter, tail_bytes: int = TAIL_BYTES, start: int | None = None) -> Tail:
    """The end of the file behind `node`, asked for with a Range request; bounded in bytes and time.

    With `start` (`arrctl logs -f`, which reads a console log on by offset): the whole lines from
    byte `start` on, and `size` the offset after them (a line still being written waits for the next read).
    """
    import requests

    size = node.get("sizeBytes")
    if size == 0 or (start is not None and isinstance(size, int) and start >= size):
        return Tail(text="", size=0 if start is None else start)
    url, headers, send_key = tail_request(node, base_url, tail_bytes, start)
    emit.call("storage")
    try:
        with requests.get(url, headers=headers, timeout=timeout_s, stream=True,
                          auth=("api", api_key) if send_key else None) as answer:
            if answer.status_code == 416:  # an empty file has no last bytes (nor any after `start`)
                return Tail(text="", size=0 if start is None else start)
            if answer.status_code not in (200, 206):
                return Tail(cut=f"output.log: HTTP {answer.status_code} from {_host(url)}")
            data = bytearray()
            for chunk in answer.iter_content(64 * 1024):
                data.extend(chunk)
                if len(data) > MAX_BODY_BYTES:
                    return Tail(cut=f"output.log: the storage ignored the Range and sent more than "
                                    f"{MAX_BODY_BYTES // (1024 * 1024)} MiB")
                if start is None and answer.status_code == 200 and len(data) > 2 * tail_bytes:
                    del data[:len(data) - 2 * tail_bytes]  # only the end is kept
            ranged = answer.status_code == 206
            first = content_start(answer.headers.get("Content-Range")) if ranged else 0
    except requests.RequestException as exc:
        return Tail(cut=f"output.log: {type(exc).__name__} from {_host(url)}")
    if start is not None:  # the whole file when the server ignored the Range: what follows `start`
        return whole_lines(bytes(data) if ranged else bytes(data)[start:], start)
    return Tail(text=tail_text(bytes(data), bool(first), tail_bytes), size=size if isinstance(size, int) else None)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or "the storage"


def read_console_logs(ctx: FetchContext, emit: Emitter, api_runs: dict[str, Any], rows: list[Row], *,
                      base_url: str, api_key: str, timeout_s: float, deadline_at: float,
                      clock: Callable[[], float] = time.monotonic) -> tuple[list[Row], str | None]:
    """Read the console logs of the newly failed runs among `rows`; emit facts; the rows with them,
    and a one-line problem when some could not be read.

    The file queries go one after another (one wandb-core connection); the downloads at once.
    Runs not reached before the deadline are not counted as tries: the next refresh reads them.
    """
    from arrctl.sources import clients

    todo = needs_console(rows, ctx.known_terminal)
    if not todo:
        return rows, None
    due = [r for r in todo if ctx.log_retry.get(r["id"], (0, 0.0, None))[1] <= 0][:MAX_RUNS]
    waiting = [r for r in todo if ctx.log_retry.get(r["id"], (0, 0.0, None))[1] > 0]
    emit.rows(provisional(rows, {r["id"] for r in todo}))  # complete already, should the reads be cut
    nodes: dict[str, dict[str, Any] | None] = {}
    tails: dict[str, Tail] = {}
    tried: list[Row] = []
    for row in due:
        if deadline_at - clock() < 1.0:
            break
        tried.append(row)
        try:
            nodes[row["id"]] = file_node(api_runs[row["id"]], emit)
        except Exception as exc:  # noqa: BLE001 — a failed query is a cut read of that run
            tails[row["id"]] = Tail(cut=f"output.log: {type(exc).__name__} listing the run's files")
    for run_id, node in nodes.items():
        if node is None:
            tails[run_id] = Tail()
    wanted = [run_id for run_id, node in nodes.items() if node is not None]
    budget = max(0.5, deadline_at - clock())
    fetch = lambda run_id: fetch_tail(nodes[run_id] or {}, base_url=base_url, api_key=api_key,  # noqa: E731
                                      timeout_s=min(timeout_s, budget), emit=emit)
    for run_id, tail, error in clients.fan_out(wanted, fetch, budget):
        tails[run_id] = tail if tail is not None else Tail(cut=f"output.log: {error}")
    facts, report = read_outcome(tried, tails, ctx.log_retry, time.time())
    emit.log_reads(report)
    if facts:
        emit.facts(facts)
    done = {f["id"] for f in facts}
    return provisional(apply_facts(rows, by_id(facts)), {r["id"] for r in todo} - done), problem(report, waiting, ctx.log_retry)


def problem(report: dict[str, Any], waiting: list[Row], retry: dict[str, tuple[int, float, str | None]]) -> str | None:
    """The one line a source reports when console logs were left unread (None when none was)."""
    parts = []
    if report["cut"]:
        parts.append(f"console logs of {len(report['cut'])} runs not read: {next(iter(report['cut'].values()))}")
    if waiting:
        wait = min(retry[r["id"]][1] for r in waiting)
        parts.append(f"console logs of {len(waiting)} runs wait for a retry in {wait:.0f}s")
    return "; ".join(parts) or None

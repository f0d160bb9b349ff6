"""`arrctl get`: one refresh of the chosen sources, filtered, printed as tables or NDJSON."""

from __future__ import annotations

import time
from typing import Any

from arrctl.kinds import ExitStatus, SourceState
from arrctl.output import Output, config_errors, say, signals_handled


def run_get(app: Any, chosen: list[str], flags: dict[str, Any], *, as_json: bool, shape: str | None,
            headers: bool, deadline: float | None) -> int:
    """Refresh, filter and print; exit 0 when every source answered, 1 when any did not."""
    from arrctl import filters, render

    out = Output()
    with signals_handled() as receiver, config_errors(ExitStatus.USAGE):
        select = filters.parse_filter(**flags)
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            results = filters.apply(refresher.refresh(chosen), select, time.time())
    if as_json:
        out.bytes(b"".join(render.ndjson_records(results)))
    else:
        lines, notes = render.get_text(results, time.time(), render.Style(app.color), shape=shape,
                                       headers=headers, width=out.columns())
        for line in lines:
            out.line(line)
        for note in notes:
            say(note)
    return ExitStatus.OK if all(r.state == SourceState.OK for r in results.values()) else ExitStatus.ERROR

"""`arrctl trace`: one launch followed across the four systems.

target.py (what ID|URL names), chain.py (the chain from what was found), render.py (NDJSON and
the text tree): pure; follow.py: the rounds of look-ups, in workers (arrctl/sources/tracing.py).

queue item → runner execution → Vertex AI job → W&B run. Each system names a part of the chain
(arrctl/links.py says where each link is read); `build_chain` joins the rows the look-ups found
and says for every hop how it was tied to the chain (SPEC `via`):
- `log`: the execution's logs name it (the queue item it received, the job it created);
- `label`: the Vertex job's label `wandb-run-id` names the W&B run;
- `config`: the job's env or the run's config `_wandb` names the queue item;
- `time`: only the time window (an execution running when the job was created, nothing better).
A hop whose system could not be asked (its source failed or timed out) is UNKNOWN with the reason;
`wanted` says which ids a further round of look-ups should ask about.
"""

from arrctl.trace.chain import (KIND_WORDS, KINDS, PROBE_OF, VIA_WORDS, Found, Hop, Trace,
                                build_chain)
from arrctl.trace.follow import MAX_ROUNDS, first_asks, follow, next_asks
from arrctl.trace.render import disagreements, records, text_lines
from arrctl.trace.target import BadTarget, Target, parse_target

__all__ = ["KINDS", "KIND_WORDS", "MAX_ROUNDS", "PROBE_OF", "VIA_WORDS", "BadTarget", "Found", "Hop", "Target",
           "Trace", "build_chain", "disagreements", "first_asks", "follow", "next_asks", "parse_target",
           "records", "text_lines"]

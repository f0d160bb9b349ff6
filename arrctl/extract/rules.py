"""Rules that LABEL a line: what kind of line it is, its category, whether it dooms a run.

A rule never decides which line is the root error (scoring does, over every candidate): it says
"this is a CUDA OOM (oom, a specific cause)", "this is Cloud Build's summary of a failed step (a
wrapper)", "this is a retry (what came before may recover)". The table is ordered: the first rule
whose pattern matches a line labels it, so more specific rules come first.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from arrctl.extract.literals import Literals
from arrctl.extract.patterns import anchored_at_start, parsed


class Kind(enum.Enum):
    """What a labelled line is."""

    CAUSE = "cause"          # names what went wrong
    ERROR = "error"          # an error in general words
    WRAPPER = "wrapper"      # says that something failed, not why
    FAILED = "failed"        # the run's own statement that it failed (a wrapper, and a verdict)
    TRANSIENT = "transient"  # a retry or back-off: what came just before may still recover
    NOISE = "noise"          # never a failure, whatever words it holds
    TEARDOWN = "teardown"    # cleanup noise follows (Exception ignored in ...)
    SUCCESS = "success"      # the run says it ended well
    STEP_SUCCESS = "step"    # one step or task of the run ended well (later ones may fail)
    SUMMARY = "summary"      # the launch wrapper's `Runs: N`
    INTRO = "intro"          # announces the cause on the next line (NCCL's `Last error:`)


# statuses whose words often name the real kind (`InvalidArgument: 400 You do not have permission`,
# `RESOURCE_EXHAUSTED: Attempting to reserve 6.48G at the bottom of memory`,
# kaniko's push check that ends in `UNAUTHORIZED` or `no route to host`)
WORDY_STATUSES = frozenset({"gcp.invalid_argument", "gcp.quota", "kaniko.push_check", "tf.retries_exhausted",
                            "go.panic"})  # (a panic's words may name its cause: `panic: ...: could not find default credentials`)
SPECIFICITY = {Kind.CAUSE: 3.0, Kind.ERROR: 2.0, Kind.WRAPPER: 1.0, Kind.FAILED: 0.9}


@dataclass(frozen=True)
class Rule:
    """One named kind of line."""

    name: str
    """Dotted name, origin first: `cuda.oom`, `gcp.permission_denied`, `build.step_failed`."""
    kind: Kind
    category: str | None
    """The failure category (CATEGORIES), or None for kinds that are not failures."""
    patterns: tuple[re.Pattern[str], ...]
    fatal: bool = False
    """Seeing it in live logs means the run is doomed (launch's slow path stops on it)."""
    gcp: bool = False
    """The message is the GCP error record found on or around the line (extract/gcp.py)."""
    weight: float = 0.0
    """Added to the score: among lines of one kind, a rule whose lines say more ranks higher."""
    guards: tuple[tuple[frozenset[str], bool], ...] = ()
    """Per pattern, substrings one of which every match holds (and whether case-folded): a
    cheap prefilter. An empty set: the pattern has no such substring and is always searched."""

    def match(self, text: str, lower: str | None = None) -> re.Match[str] | None:
        """The first pattern's match on this (normalised) line, or None."""
        for pattern, (literals, folded) in zip(self.patterns, self.guards):
            if literals:
                haystack = (lower if lower is not None else text.lower()) if folded else text
                if not any(literal in haystack for literal in literals):
                    continue  # a substring test is ~50x cheaper than the search it saves
            found = pattern.search(text)
            if found:
                return found
        return None


_MIN_LITERAL = 3


def _required(items: Any, shortest: int = _MIN_LITERAL) -> frozenset[str] | None:
    """Substrings one of which every match of a parsed sequence holds, or None (pure).

    A run of plain characters is one such set of one; a group or a repeat taken at least once
    passes on its content's; a branch whose every arm has a set gives their union. Of the sets
    found, the one whose shortest member is longest wins (fewest members on a tie)."""
    from re import _parser  # type: ignore[attr-defined]

    found: list[frozenset[str]] = []
    run = ""
    for op, arg in items:
        if op is _parser.LITERAL:
            run += chr(arg)
            continue
        if op is _parser.AT and arg in (_parser.AT_BOUNDARY, _parser.AT_BEGINNING):
            continue  # \b and ^ take no characters: the run goes on across them
        if len(run) >= shortest:
            found.append(frozenset([run]))
        run = ""
        inner: frozenset[str] | None = None
        if op is _parser.SUBPATTERN:
            inner = _required(arg[-1], shortest)
        elif op in (_parser.MAX_REPEAT, _parser.MIN_REPEAT) and arg[0] >= 1:
            inner = _required(arg[2], shortest)
        elif op is _parser.BRANCH:
            arms = [_required(arm, shortest) for arm in arg[1]]
            if arms and all(arms):
                inner = frozenset().union(*arms)  # type: ignore[arg-type]
        if inner:
            found.append(inner)
    if len(run) >= shortest:
        found.append(frozenset([run]))
    if not found:
        return None
    return max(found, key=lambda lits: (min(map(len, lits)), -len(lits)))


def required_literals(pattern: re.Pattern[str]) -> tuple[frozenset[str], bool]:
    """Substrings one of which every match of the pattern holds, and whether they must be
    looked for case-folded; (frozenset(), False) when there are none (pure)."""
    folded = bool(pattern.flags & re.IGNORECASE)
    literals = _required(parsed(pattern))
    if not literals:
        return frozenset(), False
    return (frozenset(lit.lower() for lit in literals) if folded else literals), folded


def _r(name: str, kind: Kind, category: str | None, patterns: Sequence[str], *,
       fatal: bool = False, gcp: bool = False, weight: float = 0.0) -> Rule:
    compiled = tuple(re.compile(p) for p in patterns)
    return Rule(name, kind, category, compiled, fatal, gcp, weight,
                tuple(required_literals(p) for p in compiled))


C, E, W, F, T, N, D, S = (Kind.CAUSE, Kind.ERROR, Kind.WRAPPER, Kind.FAILED, Kind.TRANSIENT,
                          Kind.NOISE, Kind.TEARDOWN, Kind.SUCCESS)
I = re.IGNORECASE
_VERTEX_CREATE = r"\bFailed to create (?:Vertex|custom) job: "
# a Go gRPC status before its words, when one was printed (`rpc error: code = X desc = ...`): a message
# group that starts with it, else with the words
_RPC = r"(?P<msg>(?:\brpc error: code = \w+ desc = )?"

RULES: tuple[Rule, ...] = (
    # Typer's and Rich's error panel (`╭─ Error ───╮`, the error boxed below it): its frame is
    # drawn like any other, its title says the box holds the error
    _r("intro.error_panel", Kind.INTRO, None, [r"^╭─+ Error\b.*─"]),
    # Keras' TerminateOnNaN stopping the run, glued to the progress bar it printed over
    # (`  3/234 [....] - ETA: 33:37:24 - loss: 44.4110Batch 3: Invalid loss, terminating training`)
    _r("training.nan_loss", C, "code", [r"\bInvalid loss, terminating training\b"], fatal=True),
    # ── lines that are never the failure ──────────────────────────────────────────────────
    _r("noise.progress", N, None, [r"\d{1,3}(?:\.\d+)?%\|", r"^\s*[━╸╺]{3,}", r"\|[█▏▎▍▌▋▊▉ ]{6,}\|",
                                   r"^\s*\d+/\d+ \[[=>.]+\]"]),
    _r("noise.pip_resolver", N, None, [
        r"pip's dependency resolver does not currently take into account",
        r"^This behaviour is the source of the following dependency conflicts\.",  # its second sentence, on a line of its own
        r"^ERROR: pip's legacy dependency resolver", r"\bAfter October 2020 you may experience errors\b",
        # pip before 20.3 checking what it installed, and going on: `ERROR: x 1.2 has requirement y<2,
        # but you'll have y 2.1 which is incompatible.`
        r"^ERROR: \S+ \S+ has requirement \S+, but you'll have "]),
    # TensorFlow's BFC allocator retrying a smaller allocation (its own words say so)
    _r("noise.tf_allocator", N, None, [r"\bThe caller indicates that this is not a failure\b"]),
    _r("noise.python_warning", N, None, [r"^(?:[\w./\\:-]+:\d+: )?[A-Z]\w*Warning: ",
                                         r"^\s*warnings\.warn\(", r"^[\w.]+Warning: "]),
    # a notice that a feature will go away, at whatever level it is printed (GitHub Actions'
    # `Error: The `add-path` command is deprecated and will be disabled on November 16th.`)
    _r("noise.deprecation", N, None, [r"(?i)\bis deprecated and will be (?:disabled|removed)\b"]),
    # JAX's coordination agent leaving at the process's exit (`Failed to disconnect from coordination
    # service with status: DEADLINE_EXCEEDED ... Proceeding with agent shutdown anyway`): whatever
    # ended the process came before it
    _r("noise.coordination_exit", N, None, [r"\bFailed to disconnect from coordination service\b"]),
    # the detail gRPC appends to a status on its own line: the line above says what failed
    _r("noise.grpc_detail", N, None, [r"^Additional GRPC error information(?: from remote target \S+)?:?$"]),
    # advice about an error that may come, not one that came (google-auth's warning about end user
    # credentials, its line wrapped by the terminal: `... you might receive a "quota exceeded" or
    # "API not enabled" error.`)
    _r("noise.advice", N, None, [r"\byou (?:might|may|could) (?:receive|get|see|encounter|run into) an? \"[^\"]+(?:\" or (?:an? )?\"[^\"]+)*\" error\b"]),
    _r("noise.info", N, None, [r"^\s*(?:⏱|⏳|ℹ|🔍)",
                               r"(?i)^\W*(?:monitoring|checking|watching|looking) for\b"]),
    _r("noise.nccl_info", N, None, [r"\bNCCL (?:INFO|VERSION)\b"]),
    # a server's access log: the status a client was answered with (uvicorn's `127.0.0.1:40418 - "GET /
    # HTTP/1.1" 404 Not Found`), not the server's failure
    _r("noise.access_log", N, None, [r"^\s*\S+:\d+ - \"(?:GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) \S+ HTTP/[\d.]+\" \d{3}\b"]),
    # TensorFlow's graph optimizer logging a pass that gave up (grappler/optimizers/meta_optimizer.cc:
    # `layout failed: Invalid argument: ...`): the graph runs unoptimised by that pass
    _r("noise.tf_grappler", N, None, [
        r"^(?:layout|remapper|constant_folding|arithmetic_optimizer|dependency_optimizer|loop_optimizer|"
        r"shape_optimizer|memory_optimizer|common_subgraph_elimination|implementation_selector|"
        r"scoped_allocator_optimizer|pin_to_host_optimizer|auto_mixed_precision\w*|function_optimizer|"
        r"model_pruner|debug_stripper|tfg_optimizer(?:\{.*\})?) failed: "]),
    # c10d trying each address of a host, IPv6 first, on a machine without it: a warning per address,
    # then the next (torch/csrc/distributed/c10d/socket.cpp: `[W socket.cpp:401] [c10d] The server
    # socket cannot be initialized on [::]:29500 (errno: 97 - Address family not supported by protocol).`)
    # (torch 2.x: `... has failed to bind to [::]:29500 (errno: 97 - ...)`; one message only, its own line's)
    _r("noise.c10d_ipv6", N, None, [
        r"(?:^|\] )\[c10d\] The (?:server|client) socket (?:cannot be initialized|has failed to (?:bind|connect)) "
        r"[^()]*\(errno: 97 - [^)]*\)\.?$"]),
    # JAX probing the backends it was built with (`Unable to initialize backend 'tpu': ...`), then
    # running on the one it found; raised (`RuntimeError: Unable to ...`) it is the failure
    # IPython's traceback header (`ValueError    Traceback (most recent call last)`): the exception's
    # own line ends the block
    _r("noise.ipython_header", N, None, [r"^[A-Z]\w*\s{2,}Traceback \(most recent call last\)"]),
    # a command about to run, as a runner or `set -x` echoes it: its words are not its outcome
    # (`Running command echo "Build completed successfully!"`, `+ echo done`)
    # a build asking git for its version outside a checkout (setuptools-scm, versioneer, `git
    # describe` in a Dockerfile): it falls back to a default version
    _r("noise.no_git_repo", N, None, [r"^fatal: not a git repository\b"]),
    _r("noise.command_echo", N, None, [r"^Running command ", r"^\++ (?:echo|printf) "]),
    _r("noise.jax_backend", N, None, [r"^(?:[\w.]+\.py:\d+\] )?Unable to initialize backend '\w+'"]),
    # W&B's system monitor on hardware whose counters it cannot read: printed at ERROR, harmless
    _r("noise.wandb_monitor", N, None, [r"\bFailed to sample metric\b"]),
    # Neptune's background sender on a data point it drops (`Error occurred during asynchronous
    # operation processing: Timestamp must be non-decreasing ...`): the run goes on
    # `sky check`'s reason a cloud is disabled, its exception's class in brackets (`Cudo: disabled`,
    # `Reason [compute]: Cudo tools are not installed.`, `[ImportError] cannot import name ...`): a report
    # pydantic's pointer to its docs under a validation error's detail
    _r("noise.pydantic_link", N, None, [r"^For further information visit https://errors\.pydantic\.dev/"]),
    _r("noise.check_reason", N, None, [r"^\[(?=[A-Z][a-z])\w+(?:Error\] |Exception\] )"]),
    _r("noise.tracker_async", N, None, [r"\bError occurred during asynchronous operation processing\b"]),
    # a header whose next line says what went wrong (the category is the detail's default):
    # NCCL's `ncclSystemError: ...` then `Last error:` then `socketStartConnect: ... failed`;
    # Gradle's `* What went wrong:` then `Task 'build' not found in root project 'src'.`
    _r("intro.nccl_last_error", Kind.INTRO, "distributed", [r"^Last error:$"]),
    _r("intro.gradle", Kind.INTRO, "build", [r"^\* What went wrong:$"]),
    # TensorFlow's op error (after `Graph execution error:`): `Node: 'name'`, the error, `[[{{node name}}]]`
    _r("intro.tf_node", Kind.INTRO, "code", [r"^Node: '[^']+'$"]),
    # SkyPilot's provisioner, at W, before the cloud's error for a region or zone it gives up on
    # torch.distributed.elastic's ChildFailedError summary: `Root Cause (first observed failure):`,
    # then the failed rank's fields, of which `exitcode  : 1 (pid: 78970)` says how it ended
    _r("intro.torchrun_root_cause", Kind.INTRO, "exit", [r"^Root Cause \(first observed failure\):$"]),
    _r("intro.skypilot_zone", Kind.INTRO, None, [r"^Got error\(s\) in (?:all zones of )?[\w-]+:$"]),
    # TensorFlow's start-up lines at E level, printed by every healthy TF process since 2.14
    _r("noise.tf_startup", N, None, [
        r"\bUnable to register cu(?:DNN|FFT|BLAS) factory\b", r"\bcomputation placer already registered\b",
        r"\bTF-TRT Warning\b", r"\bCould not find TensorRT\b", r"\bcould not open file to read NUMA node\b",
        r"\bsuccessful NUMA node read from SysFS had negative value\b"]),
    # (not uv's tree of reasons: `╰─▶ Because there is no version of ...`)
    _r("noise.rich_frame", N, None, [r"^\s*(?:[│╭┃┏┗]|╰(?!─▶))"]),
    # Python's threading prints `Exception in thread NAME:` and the traceback after it; Java's
    # `Exception in thread "main" cls: msg` is the error itself, not a header
    # (Python 2 prints the type itself of what a daemon thread raised at interpreter shutdown:
    # `<type 'exceptions.AttributeError'>: 'NoneType' object has no attribute 'x'`)
    _r("noise.thread", N, None, [r"^Exception in thread (?![\"“”])[^\"“”]*:$", r"^<type 'exceptions\.\w+'>: "]),
    _r("noise.deferral", N, None, [r"\(task deferral\)"]),
    # Flask logging the exception one request raised (`Exception on /get-artifact [GET]`, then its
    # traceback): the server answered 500 and went on serving
    _r("noise.request", N, None, [r"\bException on /\S* \[[A-Z]+\]$"]),
    # npm's report of a script that ended: where it ran and how, never why (`npm error code ...` is)
    _r("noise.npm_detail", N, None, [
        r"^npm (?:ERR!|error) (?:path|command(?: sh -c| failed$)|signal|errno|cwd|A complete log|Log files)\b"]),
    # Pub/Sub's streaming pull on an error it reopens the stream after (`Observed recoverable stream
    # error 504 Deadline Exceeded`, then `Re-established stream`)
    _r("noise.recoverable", N, None, [r"\bObserved recoverable stream error\b"]),
    # (not the kubelet's `Error syncing pod, skipping: failed to "StartContainer" ...`, nor its newer
    # `Error syncing pod <uid> ("<pod>(<uid>)"), skipping: ...`: the pod is what it skips, and the
    # reason it failed follows)
    # unittest's verdict below `Ran 49 tests in 71.898s` (`FAILED (errors=1, skipped=3)` else; scan
    # keeps it only there); ahead of noise.handled, which would take its `(skipped=3)` for a skip
    _r("success.unittest", S, None, [
        r"^OK(?: \((?:skipped|expected failures|unexpected successes)=\d+"
        r"(?:, (?:skipped|expected failures|unexpected successes)=\d+)*\))?$"]),
    _r("noise.handled", N, None, [
        r"(?i)(?<!syncing pod)(?<!\"\))[,;:(-] *(?:ignoring|ignored|skipping|skipped|continuing|falling back\b|using (?:defaults?\b|anonymous|cached))",
        r"[,;:] going to \S+ instead$"]),  # slurmstepd's `couldn't chdir to `/x': No such file or directory: going to /tmp instead`
    # an optional part missing, said so, and what the program does without it (xformers' `A
    # matching Triton is not available, some optimizations will not be enabled`, then `Error
    # caught was: No module named 'triton'` or the traceback it caught); google-cloud-logging's
    # background transport dropping a batch (it logs the traceback and goes on): what such a
    # line introduces was handled
    _r("noise.went_without", N, None, [
        r"(?i)\bis not available, some \w+ will not be (?:enabled|available|used)\b", r"^Error caught was: ",
        r"^Failed to submit \d+ logs\.?$"]),
    # google-auth's default() finding no metadata server: it logs this at WARNING and goes on to its
    # next source of credentials (google/auth/_default.py, _get_gce_credentials returns None, None);
    # DefaultCredentialsError follows if none is left
    _r("noise.auth_fallback", N, None, [
        r"\bAuthentication failed using Compute Engine authentication due to unavailable metadata server\b"]),
    _r("noise.wandb_links", N, None, [r"^(?:🚀 |⭐️? )?View (?:run|project|sweep) (?:\S+ )?at: ", r"^(?:🚀 )?View run at "]),
    _r("noise.clean_exit", N, None, [r"^SystemExit(?:: 0)?$", r"^(?:builtins\.)?StopIteration$"]),
    # source lines and frames of a traceback whose header was cut off
    # (IPython numbers its frames' source lines: `592   raise FileNotFoundError(...)`, `--> 594   raise ...`)
    _r("noise.source_line", N, None, [r"^(?:-*>\s*)?(?:\d{1,5}\s+)?raise [\w.]+(?:\(|$)", r"^File \"[^\"]+\", line \d+(?:, in \S+)?\s*$", r"^[\^~]+$"]),
    _r("teardown.ignored", D, None, [r"^Exception ignored (?:in|on)\b",
                                     r"^Error in atexit\._run_exitfuncs:",
                                     # google-cloud-logging's background transport flushing at exit
                                     r"^Program shutting down, attempting to send \d+ queued log entries\b",
                                     # wandb's atexit hook failing to stop its service (wandb_setup.py's
                                     # `Encountered an error while tearing down the service manager: ...`,
                                     # before it: `While tearing down the service manager. The following error ...`)
                                     r"(?i)\bwhile tearing down the service manager\b"]),
    # GitHub Actions' post-job steps (saving a cache, `actions/checkout`'s cleanup) after the job's own
    _r("teardown.post_job", D, None, [r"^Post job cleanup\.$"]),
    # ── retries: what came before may still recover ──────────────────────────────────────
    _r("transient.retry", T, None, [
        r"^Retrying \(Retry\(total=\d+",  # pip's urllib3 retry, whatever connection error it names
        r"(?i)\bretrying\b(?! (?:the \w+ )?may\b)(?! up to 0 more\b)(?!.*\b(?:failed|giving up|exhausted)\b)", r"(?i)\bentering retry loop\b",
        r"(?i)\bwill (?:be )?retr(?:y|ied)\b", r"(?i)\bretry(?:ing)? in [\d.]+ ?(?:s|ms|sec|seconds)\b",
        r"(?i)\battempt \d+ (?:of|/) ?\d+ failed\b.*\bretry", r"(?i)\bbacking off\b",
        r"(?i)\bMarking task as UP_FOR_RETRY\b", r"\bretrying the (?:request|call)\b",
        r"(?i)\bretry \d+ ?(?:/|of) ?\d+\b", r"(?i)\b(?:recovered|reconnected)\b",
        r"(?i)\b(?:error|issue|problem|failure)s? (?:was |were |has been |have been |is |are )?resolved\b"]),  # (wandb's `Network error resolved after 0:01:38`)
    _r("wrapper.bailout", W, "unknown", [
        r"^\s*(?:\[[\w.-]{1,20}\]\s*|[A-Z]{3,8}:\s*)?[^\w\s]{0,3}\s*FATAL ERROR DETECTED\b[\s:\-—]*(?P<msg>.*)",
        r"^\s*(?:\[[\w.-]{1,20}\]\s*|[A-Z]{3,8}:\s*)?[^\w\s]{0,3}\s*(?P<msg>Killing agent\b.*)"], fatal=True),
    # the kubelet's reason for a pull that failed says more than the back-off that follows it, and
    # more than the daemon's words it holds (`Failed to pull image "x": rpc error: ... Error response
    # from daemon: pull access denied ...`); an older kubelet's sync error says it after its reason
    # (`failed to "StartContainer" for "POD" with ErrImagePull: "image pull failed for x, ... details:
    # (API error (500): Get https://gcr.io/v1/_ping: dial tcp ...: i/o timeout)"`)
    _r("kubernetes.pull_failed", C, None, [r"(?P<msg>\bFailed to pull image \"[^\"]+\": .+)",
                                           r"\bwith ErrImagePull: \\?\"(?P<msg>.{20,})"], fatal=True, weight=0.2),
    _r("wandb.docker", C, None, [r"(?P<msg>\bError response from daemon: .+)"], fatal=True),
    # (skaffold's status check: `container x is waiting to start: <image> can't be pulled`)
    _r("kubernetes.pull_backoff", C, "not_found", [r"(?P<msg>\bBack-off pulling image \"[^\"]+\".*)",
                                                 r"\bis waiting to start: \S+ can't be pulled\b"], fatal=True,
       weight=0.1),
    # ── success ───────────────────────────────────────────────────────────────────────────
    _r("wrapper.summary", Kind.SUMMARY, None, [r"^\W*Runs:\s*(?P<jobs>\d+)\b"]),
    _r("success.statement", S, None, [
        r"(?i)\btraining (?:run )?(?:is )?(?:complete|completed|finished|done|succeeded)\b",
        r"\bMarking task as SUCCESS\b", r"\bFlow run '[^']*' - Finished in state Completed\(",
        r"^Ray runtime started\.$",  # `ray start`
        r"^Success!(?=\s|$)",  # a build script's own word after its retry (`Success! Application x built at appdir.`)
        r"^Status:\s{2,}Succeeded$",  # `argo get`, `kubectl describe pod` of what ended well
        r"(?i)\b(?:completed|finished|succeeded|exited) successfully\b",
        r"(?i)\bjob (?:has )?(?:completed|finished|succeeded)\b(?! with)(?! \(status: (?!SUCCEEDED\)))",
        r"^DONE$", r"\bContainer called exit\(0\)", r"\bexited with (?:exit )?code:? 0\b",
        r"\bProcess finished with exit code 0\b", r"\bTask exited with return code 0\b",
        r"(?i)\bwill exit with (?:exit |status )?code 0\b",  # Codecov's uploader after an upload it gave up
        r"\bJOB_STATE_SUCCEEDED\b", r"\bstate: (?:SUCCEEDED|SUCCESS)\b",
        r"'train_runtime': ", r"\bProgram ended successfully\b",
        r"\bWaiting for W&B process to finish\b.*\(success\)",
        r"`Trainer\.fit` stopped: `max_(?:epochs|steps)=\d+` reached", r"\bSTATUS: SUCCESS\b",
        r"^\s*\w+\s+\d\d:\d\d:\d\d\s+\S+\s+SUCCESS\b",
        # skaffold's status check (skaffold PR #2845, issue #6011): each resource `is ready.`, the
        # last with none pending, then `Deployments stabilized in 6.05s`; kubectl's rollout status
        r"\bDeployments stabilized in\b", r"^-? ?(?:deployment|statefulset|daemonset)/\S+ is ready\.$",
        r"\bsuccessfully rolled out\b",
        # LSF's report of a job that exited 0 (`Exited with exit code 1.` else)
        r"^Successfully completed\.$"]),
    _r("success.step", Kind.STEP_SUCCESS, None, [
        r"^Apply complete! Resources: \d+ added",  # Terraform's apply, after whatever warnings it boxed
        r"^Successfully (?:built|tagged|installed|pushed|uploaded|downloaded) \S",
        r"\bFinished in state Completed\("]),
    # a C++ abort: the `what():` line after it says why
    _r("process.terminate", W, "exit", [r"\bterminate called after throwing\b"]),
    # a kernel's own assertion (`...Kernel.cu:115: operator(): block: [0,0,0], thread: [1,0,0]
    # Assertion `idx_dim >= 0 && ...` failed.`) says more than the `device-side assert triggered`
    # the host raises for it, printed before or after it
    _r("cuda.assertion", C, "code", [r"\bAssertion `.+` failed\."], weight=0.5),
    # the GPU itself gone (the NVIDIA kernel module: `NVRM: ... has fallen off the bus and is not
    # responding to commands.`): hardware, no category of ours names it
    _r("gpu.lost", C, "unknown", [r"\bfallen off the bus\b", r"\bGPU is lost\b",
                                  r"\buncorrectable ECC error encountered\b"], fatal=True),  # (the GPU's memory failing)
    # a data file that cannot be read as what it claims to be: no category of ours names it either
    _r("data.corrupt", C, "unknown", [
        r"\bDataLossError\b", r"(?i)(?<!\bno )(?<!\b0 )\bcorrupt(?:ed)? (?:records?|footers?|files?|headers?|data|blocks?)\b",
        r"\bmagic bytes not found\b", r"\bInvalid thrift\b", r"\bHeaderTooLarge\b", r"\bInvalid parquet file\b",
        r"\bPytorchStreamReader failed reading zip archive\b"]),  # a checkpoint cut short
    # a native program's own assertion: glibc's assert() (`main.c:12: main: Assertion `n > 0' failed.`),
    # ggml's (llama.cpp, Ollama's runner: `GGML_ASSERT(tensor->op == GGML_OP_UNARY) failed`)
    _r("native.assertion", C, "code", [r"\bAssertion `[^`']+' failed\.", r"\bGGML_ASSERT\(.+\) failed\b"], weight=0.3),
    # ── out of memory ─────────────────────────────────────────────────────────────────────
    _r("memory.cuda_oom", C, "oom", [
        r"\bCUDA out of memory\b", r"\bOutOfMemoryError\b", r"\bCUDA error: out of memory\b",
        r"\bCUBLAS_STATUS_ALLOC_FAILED\b", r"\bOOM when allocating tensor\b",
        r"\bRESOURCE_EXHAUSTED: Out of memory\b", r"\bOut of memory while trying to allocate\b",
        # XLA's allocator on a device (`RESOURCE_EXHAUSTED: Failed to allocate request for 2.99GiB
        # (3206250496B) on device ordinal 0`)
        r"\bFailed to allocate request for [\d.]+ ?[KMGT]i?B\b",
        r"\bcudaErrorMemoryAllocation\b", r"\bResource exhausted: OOM\b",
        r"\bfailed to allocate \d+(?:\.\d+)? ?[KMG]i?B? .*\bout of memory\b",
        # vLLM: the GPU memory left after the weights holds no KV cache, or less than a sequence
        r"\bNo available memory for the cache blocks\b",
        r"\bmax seq len \(\d+\) is larger than the maximum number of tokens\b",
        # XLA's allocator on a TPU's HBM (`RESOURCE_EXHAUSTED: Attempting to allocate 31.06M. That
        # was not possible. There are 58.64M free.`)
        r"\bAttempting to (?:allocate|reserve) \S+(?: at the (?:bottom|top) of memory)?\. That was not possible\b"],
       fatal=True),
    _r("memory.limit", C, "oom", [
        r"\bMemory limit of \S+ ?\w* exceeded\b", r"\bOOMKilled\b", r"\bOut of memory: Kill(?:ed)? process\b",
        r"\bOut-of-memory event detected in container\b",  # Cloud Run's, before `Container terminated on signal 9.`
        r"\bCannot allocate memory\b", r"\bstd::bad_alloc\b", r"\bMemoryError\b",
        r"\bCUDA_ERROR_OUT_OF_MEMORY\b",  # the CUDA driver API's own status
        r"\bOutOfMemoryException\b",  # .NET's System.OutOfMemoryException
        r"(?i)\bkilled due to memory pressure\b",  # Ray's raylet: `12 Workers (tasks / actors) killed due to memory pressure (OOM)`
        r"\bkilled by signal: Killed\b", r"(?i)\bexceeded (?:its |the )?memory limit\b",
        r"(?i)\bmemory (?:limit|usage) (?:was )?exceeded\b", r"(?i)\bran out[- ]of[- ]memory\b",
        r"\blow on resource: memory\b", r"^\[\d+\]\s+\+?\s*\d+ killed\b",
        r"(?i)\bout of memory\b(?!.*\bretry)", r"^Killed$", r"^已杀死$", r"\bline \d+: +\d+ Killed\b",  # (the shell's Killed in a Chinese locale)
        r"\binsufficient shared memory\b",  # a DataLoader worker's bus error: /dev/shm too small
        r"(?i)\bout of shared memory\b",
        r"\bKilled signal terminated program \S+",  # gcc's driver on a compiler the kernel killed  # PyTorch's DataLoader worker killed by SIGBUS: /dev/shm is full
        # YARN's NodeManager (microsoft/pai issue #1151): `Container [pid=...] is running beyond virtual
        # memory limits. Current usage: ... Killing container.`
        r"\bis running beyond (?:virtual|physical) memory limits\b",
        # Slurm's step daemon on its cgroup's kills (`slurmstepd: error: Detected 1 oom-kill event(s)
        # in step 4718203.0 cgroup.`), before srun's `task 4: Out Of Memory` says it again
        r"\bDetected \d+ oom[-_]kill events?\b",
        r"\bfailed due to insufficient GPU memory\b",  # TensorRT-LLM's executor on a KV cache that does not fit
        r"^memory allocation of \d+ bytes failed$",  # Rust's allocator, out of host memory (a tokenizer's)
        r"^TERM_MEMLIMIT: job killed after reaching LSF memory usage limit\b",  # LSF's job report
        # Dataproc's account of a driver it killed (`Driver received SIGTERM/SIGKILL signal and exited with
        # 143 code, which potentially signifies a memory pressure.`)
        r"\bpotentially signifies a memory pressure\b",
        ], fatal=True),
    # the kernel's lines around its verdict (`python3 invoked oom-killer: ...`, `oom-kill:constraint=
    # ...,task=python3,pid=25315`): the same incident, in less words than `Out of memory: Killed process`
    _r("memory.oom_killer", C, "oom", [r"\boom[-_]kill"], fatal=True, weight=-0.3),
    # Spark on YARN (Dataproc) losing an executor to its memory limit: Spark retries the task on
    # another, so alone it does not end the job; when the job fails, it names why
    _r("memory.yarn_kill", C, "oom", [r"\bContainer killed by YARN for exceeding memory limits\b",
                                      # Dask's nanny, which restarts the worker it killed (`Worker exceeded 95%
                                      # memory budget. Restarting`; newer: `Worker tcp://x (pid=1) exceeded ...`)
                                      r"\bexceeded \d+% memory budget\b"], weight=-1.6),
    # ── distributed training ──────────────────────────────────────────────────────────────
    # ProcessGroupNCCL's notice before it takes the process down: the watchdog's own line says which
    # collective failed or timed out, and after how long
    _r("distributed.nccl_notice", C, "distributed", [r"\bSome NCCL operations have failed or timed out\b"], weight=-0.2),
    _r("distributed.nccl", C, "distributed", [
        r"\bHorovod has been shut down\b",  # one rank's failure, as every other rank's collective saw it
        r"\bWatchdog caught collective operation timeout\b", r"\bcollective operation timeout\b",
        r"\bNCCL (?:error|Error|communicator was aborted|timeout)\b", r"\bnccl(?:Internal|System|UnhandledCuda|Remote|InvalidUsage)Error\b",
        r"\bDistBackendError\b", r"\bProcessGroupNCCL\b.*\b(?:timeout|timed out|error|abort)",
        r"\bNCCL WARN\b.*\b(?:error|failed|refused|timeout)\b", r"\bNCCL WARN (?:Could not|Cuda failure|Duplicate GPU detected)\b",
        r"\bRendezvous(?:Timeout|Closed|Connection)?Error\b", r"\bDistNetworkError\b",
        r"\bTimed out initializing process group\b",
        # torch.distributed's own checks (`trying to initialize the default process group twice!`,
        # `Default process group has not been initialized, please make sure to call init_process_group.`)
        r"(?i)\bdefault process group (?:twice|has not been initialized)\b", r"\bcoordination service\b", r"\[c10d\]", r"\bThe client socket has timed out\b",
        r"\bconnect\(\) timed out\. Original timeout was\b",  # c10d's TCPStore client
        r"\bheartbeat monitor\b.*\b(?:timeout|abort|timed out)", r"\bdistributed\.DistError\b",
        r"(?i)\brendezvous\b.*\b(?:timed out|failed|closed)\b", r"\bDistStoreError\b",
        r"\bDetected mismatch between collectives on ranks\b",
        r"\bExpected to mark a variable ready only once\b",  # DDP's reducer
        r"/gloo/transport/\S*\] Timed out", r"(?i)\btimed out waiting \d+ ?ms for (?:recv|send) operation\b"], fatal=True),
    # ── capacity, preemption, quota ───────────────────────────────────────────────────────
    # wget's progress on a request the server refused (`HTTP request sent, awaiting response... 404
    # Not Found`): its verdict follows (`2024-01-01 10:00:00 ERROR 404: Not Found.`), unless cut
    _r("wget.response", C, None, [r"\bHTTP request sent, awaiting response\.\.\. [45]\d\d\b"], weight=-1.0),
    _r("wget.error", E, None, [r"^ERROR [45]\d\d: \S"], weight=0.5),
    _r("gcp.capacity", C, "capacity", [
        r"\bZONE_RESOURCE_POOL_EXHAUSTED(?:_WITH_DETAILS)?\b", r"\bdoes not have enough resources available\b",
        r"(?i)\bno more capacity in the zone\b",  # Cloud TPU
        r"\bResourcesUnavailableError\b", r"(?i)\bFailed to acquire resources\b",
        r"(?i)\binsufficient (?:instance )?capacity\b", r"\bInsufficientInstanceCapacity\b",
        r"(?i)\b(?:stockout|out of capacity|no (?:available )?capacity)\b",
        r"(?i)\bresources? (?:are |is )?(?:currently )?(?:unavailable|not available) in (?:the )?(?:zone|region)",
        r"(?i)\bcurrently unavailable in the zone\b", r"(?i)\bnot enough resources\b",
        r"\bMemory required by task is not available\b",  # Slurm's srun: the nodes have less than --mem asks
        # Volcano's gang scheduling: not enough resources for all of a job's pods, some still pending
        r"\btasks in gang unschedulable: pod group is not ready, \d+ Pending\b",
        # the Kubernetes scheduler's FailedScheduling: `0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`
        r"\b\d+/\d+ nodes are available: .*\bInsufficient \S+",
        r"\bResources are insufficient in region\b",  # Vertex AI training
        r"\bNo available node types can fulfill resource request\b"], gcp=True),  # Ray's autoscaler
    _r("cloud.preempted", C, "preempted", [
        r"(?i)\b(?:was|been|got|is being|is|were) preempted\b", r"(?i)\bpreemption (?:notice|event|detected)\b",
        r"\binstances\.preempted\b", r"(?i)\bspot (?:instance|vm|node|cluster)s? (?:was |were |is |has been )?(?:preempted|interrupted|reclaimed)",
        r"(?i)\bdue to (?:spot )?preemption\b", r"(?i)\bPreempted\b.*\b(?:job|node|instance|vm|task)\b",
        r"(?i)\b(?:job|node|instance|vm|task) (?:was )?preempted\b", r"(?i)\btermination (?:is )?imminent\b",
        r"(?i)\bin response to imminent node shutdown\b",
        r"\blame workers found\b"], fatal=True),
    _r("gcp.quota", C, "quota", [
        # (with the gRPC status before them, when the Go client printed one: `rpc error: code =
        # ResourceExhausted desc = Quota exceeded for quota metric ...`)
        _RPC + r"\bQuota '[\w.-]+' exceeded\b.*)", _RPC + r"\b(?:The following )?quota metrics exceed quota limits\b.*)",
        _RPC + r"\bQuota exceeded for quota\b.*)", r"\bRESOURCE_EXHAUSTED\b", r"\brpc error: code = ResourceExhausted\b",
        r"\b(?:ResourceExhausted|TooManyRequests): 429\b", r"<HttpError 429\b", _VERTEX_CREATE + r"429\b",
        r"(?i)\bquota (?:exceeded|limit (?:exceeded|reached))\b", r"(?i)\bexceeded (?:your |the )?(?:current )?quota\b",
        r"(?i)\binsufficient (?:regional |project |zonal )?quota\b", r"\bInsufficient '\w+' quota\b", r"\bExceeded limit '[A-Z_]+' on resource\b",
        r"\b429 (?:Too Many Requests|Client Error)\b", r"\bRate exceeded\b",
        r"(?i)\bdue to usage limits\b",  # Colab: `You cannot currently connect to a GPU due to usage limits in Colab`
        r"(?i)\brate[- ]limit(?:ed| exceeded| reached)\b", r"\bVcpuLimitExceeded\b", r"(?i)\bLimitExceeded\b",
        r"(?i)\btoo many requests\b", r"(?i)\bexceeded (?:the )?rate limits?\b", r"(?i)\brate limits? exceeded\b", r"\bError from server \(TooManyRequests\)",
        r"\btoomanyrequests: ", r"(?i)\breached your pull rate limit\b",  # Docker Hub's anonymous pull limit
        r"\b503:? Slow Down\b", r"\bSlowDown\b"],  # S3's throttling (`HTTP Error 503: Slow Down`)
       fatal=True, gcp=True),
    _r("network.connection", C, "network", [
        r"\bConnection(?:Refused|Reset|Aborted)?Error\b", r"(?i)\bConnection refused\b", r"(?i)\bConnection reset by peer\b",
        r"\bFailed to establish a new connection\b", r"\bMax retries exceeded with url\b",
        r"\bAll connection attempts failed\b",  # httpx/httpcore's ConnectError
        # wandb_manager's ManagerConnectionRefusedError: its local service refused the socket
        r"\bConnection to wandb service failed\b",
        r"\bnot reachable via ssh\b",  # DeepSpeed's launcher checking its hostfile's hosts
        r"\bFailed to connect to GCS\b",  # Ray's driver and workers reaching its global control store
        r"(?i)\bFailed to connect to \S+ port \d+\b",  # curl's error 7
        r"\bRequest failed after \d+ retries\b",  # reqwest-middleware (hf_xet's CAS client)
        r"\bserver misbehaving\b",  # Go's resolver: the DNS server answered SERVFAIL
        r"\btimed out while trying to connect\b",  # the docker daemon reaching a registry
        r"(?i)\bmax retries exceeded: \w",  # Ollama's puller: `max retries exceeded: EOF`
        r"\bNameResolutionError\b", r"\bTemporary failure in name resolution\b", r"\bTemporary failure resolving '[\w.-]+'", r"\bName or service not known\b",
        r"\bgetaddrinfo failed\b", r"\bSSLError\b", r"\bCERTIFICATE_VERIFY_FAILED\b", r"\bProxyError\b",
        r"\bReadTimeout(?:Error)?\b", r"\bRead timed out\b", r"\bConnectTimeout(?:Error)?\b",
        r"\bRemoteDisconnected\b", r"(?i)\bNetwork is unreachable\b", r"(?i)\bNo route to host\b",  # Go's syscall errors are lower case
        r"\bECONNRESET\b", r"\bETIMEDOUT\b", r"\bEAI_AGAIN\b", r"\bECONNREFUSED\b",
        r"\bWe couldn't connect to\b", r"\bx509: ", r"\bcertificate signed by unknown authority\b",
        r"\btls: failed to verify certificate\b", r"\bread operation timed out\b", r"(?i)\baddress already in use\b", r"\bIncompleteRead\b", r"\bChunkedEncodingError\b",
        r"\bfailed to connect to all addresses\b", r"\bStream removed\b", r"\bSocket closed\b", r"\bi/o timeout\b", r"\bdial tcp\b.*\b(?:timeout|refused)\b",
        r"(?i)\bnetwork error\b", r"\bLocalEntryNotFoundError\b", r"\bTLS handshake timeout\b",
        r"\b503 Connect Failed\b",  # gRPC's channel that never connected (UNAVAILABLE)
        r"\bCould not resolve host\b", r"\bDNS resolution failed\b",  # gRPC's resolver
        r"\bHandshake failed with fatal error\b",  # gRPC core's TLS (`... SSL_ERROR_SSL: ...:WRONG_VERSION_NUMBER.`)
        r"\bconnection unexpectedly closed\b", r"(?i)\bconnection timed out\b",  # ETIMEDOUT's words  # rsync's peer gone (`... (28 bytes received so far) [sender]`)
        r"\blookup \S+(?: on \S+)?: no such host\b",  # Go's resolver
        r"(?i)\b(?:could not|couldn't|unable to|failed to) connect to (?:the )?(?:server|host|endpoint|database|\S+:\d+)\b"]),
    # Go fetching a module: the network (above) or else the module itself is what failed
    _r("go.module", C, "dependency", [r"\bunrecognized import path\b", r"\bnot a known dependency\b",
                                        r"\bverifying \S+: checksum mismatch\b"]),  # go.sum disagrees with the module
    # protobuf's generated code older than its runtime (`TypeError: Descriptors cannot not be created
    # directly. If this call came from a _pb2.py file, your generated code is out of date ...`)
    _r("protobuf.version", C, "dependency", [r"\bDescriptors cannot (?:not )?be created directly\b"]),
    # a package registry that has no such package (npm's `npm ERR! 404 Not Found - GET ...`)
    _r("npm.not_found", C, "dependency", [r"\bnpm (?:ERR!|error) 404\b"]),
    # ── GCP status errors, in every printed form ──────────────────────────────────────────
    # (Go's gRPC clients print a status as `rpc error: code = PermissionDenied desc = ...`, with the
    # code's CamelCase name: grpc-go status.Error; seen printed in buildbuddy-io/buildbuddy PR #10966
    # and in kubelet's `Failed to pull image "...": rpc error: code = NotFound desc = ...`)
    _r("gcp.machine_type", C, "invalid_config", [
        r"(?P<msg>\bMachine type \\?[\"']?[\w.-]+\\?[\"']? is not supported\b.*)",
        r"(?P<msg>\b(?:GPU|[Aa]ccelerator(?: type)?|accelerator_type) \\?[\"']?[\w.-]+\\?[\"']? is not supported\b.*)"],
        fatal=True, gcp=True),
    # Hugging Face Hub answers 401 for a repository that does not exist (or that the caller may not
    # see): its exception's class says which
    _r("hub.not_found", C, "not_found", [r"\b(?:Repository|Revision|Entry)NotFoundError\b"]),
    # git and ssh without credentials: no identity at all, not a missing permission
    _r("git.auth", C, "auth", [r"\bPermission denied \(publickey[^)]*\)", r"\bcould not read Username for\b",
                                r"\bAuthentication failed for '[^']+'"], fatal=True),
    # ssh refusing a password it prompted for, before its final `Permission denied (publickey,password).`
    _r("ssh.retry", C, "auth", [r"^Permission denied, please try again\.$"], weight=-0.1),
    # an API the project has not enabled (Google's words, relayed by any client: `403 Vertex AI API
    # has not been used in project p before or it is disabled`; the ErrorInfo's `reason: SERVICE_DISABLED`)
    # Cloud Storage to a request with no credentials (`Anonymous caller does not have
    # storage.objects.get access to ...`, 401): who is asking is missing, not a permission
    _r("gcp.anonymous", C, "auth", [r"\bAnonymous caller does not have\b"], fatal=True, gcp=True),
    _r("gcp.api_disabled", C, "permission", [
        r"\bAPI has not been used in project \S+ before or it is disabled\b", r"^\s*reason: SERVICE_DISABLED$"],
       fatal=True),
    _r("gcp.permission_denied", C, "permission", [
        r"\bPERMISSION_DENIED\b", r"\b(?:PermissionDenied|Forbidden): 403\b", r"<HttpError 403\b",
        _VERTEX_CREATE + r"403\b", r"^(?P<msg>denied: .+)", r"\b403 (?:Forbidden|Client Error)\b",
        r"\bIAM_PERMISSION_DENIED\b", r"\bdenied: ", r"\bdoes not allow writing to\b", r"\bForbidden: https?://",
        r"\bneeds [\w. ]{1,60}? role in the project\b",  # a Google service agent missing its role (Serverless VPC Access)
        r"\bOperation not permitted\b", r"(?i)\bdoes not have (?:[\w.]+\.[\w.]+ )?(?:permission|access)\b", r"\bdo not have permission to act as\b",
        r"\bdoes not have `?\[?[\w.]+(?:, ?[\w.]+)*\]?`? IAM permission",  # Vertex AI's service agent on a bucket
        r"(?i)\bpermission(?:s)? denied\b", r"\bPermission \\?'[\w.]+\\?' denied\b", r"\bAccessDenied(?:Exception)?\b",
        r"\bAccess Denied\b", r"(?i)\bnot authorized to\b", r"\bPermissionError\b", r"\bEACCES\b",
        r"\bCaller does not have\b", r"\brpc error: code = PermissionDenied\b", r"\bstatus code 403\b",
        r"\bHTTP(?:Error)? 403\b", r"\b403: Forbidden\b",
        # the Go client's `googleapi: Error 403: Required 'compute.networks.create' permission for ...`,
        # Artifact Registry's `DENIED: Permission "artifactregistry.repositories.uploadArtifacts" denied`
        r"\bgoogleapi: Error 403\b", r"\bRequired '[\w.]+' permission\b", r"\bPermission \"[\w.]+\" denied\b",
        r"\bDENIED: ", r"\bis forbidden from accessing\b",  # gcloud builds submit's staging bucket
        r"\bResource not accessible by integration\b",  # GitHub's API refusing a workflow's token
        r"\b403 - Forbidden\b",  # the Kaggle CLI's `403 - Forbidden - Permission 'x' was denied`
        r"\bA required privilege is not held by the client\b",  # Windows' ERROR_PRIVILEGE_NOT_HELD (WinError 1314)
    # kubectl's account of the API server's refusal, `Error from server (Reason): ...` (the
    # reason is a metav1.StatusReason: k8s.io/kubectl/pkg/cmd/util/helpers.go StandardErrorMessage)
        r"\bError from server \(Forbidden\)", r"\bis forbidden: User \\?\"[^\"]*\" cannot\b"], fatal=True, gcp=True),
    # transformers' own account of a gated model (hub.py: `OSError: You are trying to access a gated
    # repo.`, then how to get access): what the 401 below it and its `Cannot access gated repo`
    # retell in HTTP terms
    _r("hf.gated", C, "auth", [r"\bYou are trying to access a gated repo\b"], weight=0.1),
    _r("gcp.unauthenticated", C, "auth", [
        r"\bUNAUTHENTICATED\b", r"\brpc error: code = Unauthenticated\b", r"\b(?:Unauthenticated|Unauthorized): 401\b", r"<HttpError 401\b",
        _VERTEX_CREATE + r"401\b", r"\b401 (?:Unauthorized|Client Error)\b", r"\bstatus code 401\b",
        r"\bDefaultCredentialsError\b", r"\bCould not automatically determine credentials\b",
        r"\bgoogle: could not find default credentials\b",  # Go's golang.org/x/oauth2/google
        r"(?i)\bAPI (?:token|key) is (?:invalid|not valid)\b",  # Neptune's `Your API token is invalid.`
        r"\bNo account authorized through gcloud\b",  # Kubernetes' GKE scripts on a gcloud with no login
        r"\bError performing token request\b",  # Rust's object_store (polars, ...): no credentials to get a token with
        r"\bJob credential expired\b",  # Slurm's launch credential, refused by the node's slurmd
        r"\bRefreshError\b", r"\binvalid_grant\b", r"(?i)\bapi[_ ]key (?:not configured|is invalid|must be)\b",
        r"(?i)\binvalid (?:api[_ ]key|credentials|authentication credentials|token)\b",
        r"\bAuthenticationError\b", r"\bLogin Required\b", r"(?i)\bnot logged in\b",
        r"(?i)\bauthentication (?:failed|required|error)\b", r"(?i)\btoken (?:has )?expired\b",
        r"\bGatedRepoError\b", r"\bCannot access gated repo\b", r"\bUNAUTHORIZED\b",
        r"\bHTTP(?:Error)? 401\b", r"(?i)\bunauthorized\b", r"(?i)\breauthentication (?:is )?(?:needed|required)\b",
        r"(?i)\bcredentials? (?:were not found|not found|are invalid|is invalid|could not be found)\b",
        r"(?i)\breauthentication failed\b", r"\bYou do not currently have an active account selected\b",
        r"\bthe server has asked for the client to provide credentials\b",  # the Kubernetes API's 401
        r"\bLocalTokenNotFoundError\b", r"(?i)\bno token found\b", r"(?i)\baccess requires login\b", r"\bError from server \(Unauthorized\)"],
        fatal=True, gcp=True),
    # Vertex AI's account of a model server that did not come up (`FailedPrecondition: 400 Model
    # server exited unexpectedly. Model server logs can be found at ...`): how it ended, its logs elsewhere
    _r("vertex.model_server", C, "exit", [r"\bModel server (?:exited unexpectedly|terminated|never became ready)\b"],
       fatal=True, gcp=True),
    _r("gcp.invalid_argument", C, "invalid_config", [
        r"\b(?:INVALID_ARGUMENT|OUT_OF_RANGE)\b", r"\brpc error: code = (?:InvalidArgument|FailedPrecondition|OutOfRange|AlreadyExists|Unimplemented)\b", r"\b(?:InvalidArgument|BadRequest|OutOfRange): 400\b",
        r"<HttpError 400\b", _VERTEX_CREATE + r"400\b", r"\b400 (?:Bad Request|Client Error)\b",
        r"\bFAILED_PRECONDITION\b", r"\bFailedPrecondition: 400\b", r"\bUNIMPLEMENTED\b",
        r"\bALREADY_EXISTS\b", r"\bAlreadyExists: 409\b", r"\bConflict: 409\b",
        r"\bError from server \((?:BadRequest|Invalid|AlreadyExists|Conflict)\)"], fatal=True, gcp=True),
    _r("gcp.not_found", C, "not_found", [
        r"\bNOT_FOUND\b", r"\brpc error: code = NotFound\b", r"\bNotFound: 404\b", r"<HttpError 404\b", _VERTEX_CREATE + r"404\b",
        r"\b404 (?:Not Found|Client Error)\b", r"\bstatus code 404\b", r"\bNotFoundException: 404\b", r"\bHTTP(?:Error)? 404\b", r"\bHTTP status:? 404\b", r"\bError from server \(NotFound\)"],
        fatal=True, gcp=True),
    _r("gcp.deadline", C, "timeout", [r"\bDEADLINE_EXCEEDED\b", r"\brpc error: code = DeadlineExceeded\b", r"\b(?:DeadlineExceeded|GatewayTimeout): 504\b",
                                  r"\bError from server \((?:Timeout|ServerTimeout)\)"],
       gcp=True),
    _r("gcp.service", C, "service", [
        r"\b(?:InternalServerError: 500|Unknown: 500|BadGateway: 502|ServiceUnavailable: 503|Aborted: 409)\b",
        r"\bstatus = StatusCode\.(?:INTERNAL|UNAVAILABLE|UNKNOWN|ABORTED|DATA_LOSS)\b",
        r"\brpc error: code = (?:Internal|Unavailable|Aborted|DataLoss)\b",
        r"\bcode=(?:INTERNAL|UNAVAILABLE), message=",  # Vertex AI's AiPlatformException
        r"[\"']status[\"']\s*:\s*[\"'](?:INTERNAL|UNAVAILABLE|ABORTED|UNKNOWN)[\"']",
        r"^(?:ERROR: \(gcloud\.[\w.-]+\) )?(?:INTERNAL|UNAVAILABLE|ABORTED|UNKNOWN): ",
        r"(?P<msg>\b500 Internal error (?:encountered|occurred)\b.*)", r"\bInternal error encountered\b",
        r"\bInternal error occurred for the current attempt\b",  # Vertex AI's job service log
        r"<HttpError 5\d\d\b", _VERTEX_CREATE + r"5\d\d\b", r"\b5\d\d (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out|Server Error)\b",
        r"\bbackendError\b", r"(?i)\bservice (?:is )?(?:currently |temporarily )?unavailable\b",
        # the API server calling an admission webhook whose Service has no ready pod
        r"\bno endpoints available for service \\?\"[\w.-]+\\?\"",
        r"\bstatus code 5\d\d\b", r"\bHTTP(?:Error)? 5\d\d\b",
        # a server's own words for its fault: GraphQL/JSON bodies, GCS's "Backend Error"
        r"(?i)\ban internal (?:server )?error (?:has )?occurred\b", r"(?i)\bencountered an internal error\b",
        r"\bInternal Server Error\b", r"\bBackend Error\b", r"\bError from server \((?:InternalError|ServiceUnavailable)\)"], gcp=True),
    _r("gcp.retry_error", C, "timeout", [r"(?P<msg>\bRetryError: .+)", r"\bTimeout of [\d.]+s exceeded\b"],
       gcp=True),
    # ── images and containers ─────────────────────────────────────────────────────────────
    _r("image.not_found", C, "not_found", [
        r"(?P<msg>\bImage '[^']+' not found\b.*)", r"\bmanifest (?:for \S+ )?(?:not found|unknown)\b",
        r"\bMANIFEST_UNKNOWN\b", r"\bpull access denied\b", r"\brepository does not exist\b",
        # docker pulling an image built for other platforms only (`no matching manifest for
        # linux/amd64 in the manifest list entries`)
        r"\bno matching manifest for\b"], fatal=True),
    # Kubernetes' status of a pod whose image was not pulled: the registry's answer, when printed,
    # says why (`manifest unknown`, `pull access denied`, `unauthorized`)
    _r("image.pull_status", C, "not_found", [r"\b(?:ImagePullBackOff|ErrImagePull)\b"], fatal=True, weight=-0.2),
    # Cloud Run's account of a container that did not start (`The user-provided container failed
    # to start and listen on the port ... Logs for this revision might contain more information.`):
    # the container's own words, when they are there, say why
    _r("container.not_started", C, "exit", [
        r"\bfailed to start and listen on the port\b", r"(?i)\bcontainer failed to start\b",
        r"\bDefault STARTUP TCP probe failed\b", r"(?i)\bstartup probe failed\b"], fatal=True, weight=-1.1),
    # a shell that found no such program (`bash: python: command not found`, `/bin/sh: 1: npm: not
    # found`): what is missing is named, unlike an exec that failed (the container's start below)
    _r("shell.command_missing", C, "not_found", [
        r"(?:^|: )command not found\b", r"^(?:/bin/)?(?:ba|da)?sh: (?:\d+: |line \d+: )?\S+: (?:command )?not found$"],
       fatal=True),
    _r("container.start", C, "exit", [
        r"\bexec format error\b", r"\bexecutable file not found in \$PATH\b",
        r"\bno such file or directory: unknown\b", r"\bOCI runtime (?:create|exec) failed\b",
        r"\bstandard_init_linux\.go:\d+: exec user process caused\b",
        r"\bApplication exec likely failed\b",  # Cloud Run: the container's entrypoint did not start
        r"^exec \S+: no such file or directory$",  # runc: the entrypoint is not in the image
        # an entrypoint script's `exec` that found no such program (`entrypoint.sh: line 25: exec:
        # prefect worker start ...: not found`: the arguments given as one word)
        r"^\S+: (?:line )?\d+: exec: .+: not found$"], fatal=True),
    # TensorFlow's file systems after their retries (`All 10 retry attempts failed. The last failure:
    # Unavailable: Error executing an HTTP request: HTTP response code 503`): the tail names the kind
    _r("tf.retries_exhausted", C, "service", [r"\bAll \d+ retry attempts failed\. The last failure: "], fatal=True),
    _r("process.signal", C, "exit", [
        r"^\*\*\* SIG(?:ABRT|SEGV|BUS|ILL|FPE) received by PID \d+",  # absl's failure signal handler (JAX, TensorFlow)
        r"(?i)\bSegmentation fault\b", r"\bSIGSEGV\b", r"\bcore dumped\b", r"\bIllegal instruction\b",
        r"\bBus error\b", r"\bFatal Python error\b",
        r"\bfatal signal\b", r"\breceived SIGTERM\b"]),
    # Ray's account of a worker gone, its exit type and the likely causes after it: what killed the
    # task when the run failed, and the raylet's note of a worker stopped at the end when it did not
    # (it alone shows no failure)
    _r("ray.worker_died", C, "exit", [r"\bA worker died or was killed while executing a task\b"], weight=-1.6),
    # the SDK's own process gone: what the run saw, after the error that made it go, when printed
    _r("wandb.backend_gone", E, "service", [r"(?i)\bwandb backend process has shutdown\b"]),
    _r("wandb.service", C, "service", [
        r"\bW&B process failed to launch\b",
        r"\bW&B process \(PID \d+\) did not respond\b", r"\bwandb-core\b.*\b(?:exited|crashed|failed)\b"]),
    # ── network ───────────────────────────────────────────────────────────────────────────
    # ── time limits ───────────────────────────────────────────────────────────────────────
    _r("task.timeout", C, "timeout", [
        r"(?i)\breadiness deadline exceeded\b",  # Cloud Run: `Resource readiness deadline exceeded.`
        r"\bPod never started\b",  # Prefect's Kubernetes job infrastructure after its pod watch timeout
        # Cloud Functions' account of one execution (`Function execution took 60016 ms, finished with
        # status: 'load timeout'`): the function's module did not load, or it ran, past its timeout
        r"\bfinished with status: '(?:load )?timeout'",
        r"^TERM_RUNLIMIT: job killed after reaching LSF run time limit\b",  # LSF's job report
        r"\bjob killed: walltime \d+ exceeded limit \d+\b",  # PBS/Torque's (`=>> PBS: job killed: walltime ...`)
        r"\bJob was active longer than specified deadline\b",  # a Kubernetes Job past activeDeadlineSeconds (its event)
        # Cloud Run's job task past its `--task-timeout`
        r"\bTerminating task because it has reached the maximum timeout of \d+ seconds\b",
        r"(?i)\btimeout of [\d.]+ ?(?:ms|s|sec|seconds|minutes) (?:hit|reached|exceeded)\b",  # `Final attempt failed. Timeout of 600000ms hit`
        r"(?i)\b(?:task|job|build|execution|run|step|operation|request|process|fetch) (?:has )?timed out\b",
        r"(?i)\btimed out after\b", r"(?i)\btimed out waiting for\b",
        r"(?i)\btimeout while waiting for\b",  # Terraform's `timeout while waiting for state to become 'success'`
        r"(?i)\bconfigured timeout (?:was|has been) reached\b",
        r"(?i)\bexceeded (?:the )?(?:maximum )?(?:execution |run ?)?(?:time|deadline|timeout)\b",
        r"\bTimeoutError\b", r"\bsocket\.timeout\b", r"(?i)\bhas timed out\b", r"\bServiceStartTimeoutError\b",
        r"(?i)\btimeout (?:exceeded|expired|reached)\b", r"\bstatus: TIMEOUT\b",
        r"(?i)\bBuild timed out\b", r"\bstatus: EXPIRED\b",  # Cloud Build's queue TTL gone
        r"\bCANCELLED AT \S+ DUE TO TIME LIMIT\b",  # Slurm's step daemon
        r"(?i)\bexceeded its progress deadline\b", r"\bProgressDeadlineExceeded\b",  # a Deployment's rollout
        r"\bTIMED_OUT\b", r"\bTimedOut\(", r"\bcontext deadline exceeded\b",
        r"\bstatus \"?TIMEOUT\b", r"^Timed out[:!] ",
        r"\bhas reached the maximum request timeout\b", r"(?i)\bexceeded (?:its|the) (?:configured )?timeout\b"]),  # Cloud Run ended a request at its timeout
    # ── dependencies ──────────────────────────────────────────────────────────────────────
    _r("python.pip_candidates", C, "dependency", [r"\bCould not find a version that satisfies the requirement\b"],
       weight=-0.1),
    # a full disk is out of storage (`No space left on device (os error 28)`, npm's `ENOSPC: no space
    # left on device`); a user's quota on it (`Disk quota exceeded`) is gcp.quota's `quota exceeded`
    _r("disk.full", C, "capacity", [r"(?i)\bNo space left on device\b",
        # the kubelet evicting a pod: `The node was low on resource: ephemeral-storage.` (memory is oom's)
        r"\blow on resource: (?!memory\b)\S",
        r"\bThe node had condition: \[DiskPressure\]"]),  # https://github.com/fluxcd/flagger/issues/665
    _r("python.pip", C, "dependency", [
        r"^ERROR: (?P<msg>(?:No matching distribution found for|Could not find a version that satisfies"
        r"|Could not install packages due to|Cannot install|ResolutionImpossible|Failed building wheel"
        r"|Could not build wheels|Invalid requirement|Failed to build) .*)",
        r"\bNo matching distribution found for\b", r"\bResolutionImpossible\b",
        r"\bCould not find a version that matches\b",  # pip-tools' resolver (pip-compile)
        r"\b(?:LibMamba)?UnsatisfiableError\b",  # conda's and mamba's solver
        r"\bNumpy is not available\b",  # torch built against another NumPy ABI
        r"\bruntime_env setup failed\b",  # Ray installing a job's runtime environment (its pip packages)
        r"\bPackages installed from PyPI cannot depend on packages which are not also hosted on PyPI\b",
        r"\bCannot find a working triton installation\b",  # torch inductor without Triton
        r"\berror: externally-managed-environment\b",  # pip refusing a distribution's own Python (PEP 668)
        r"\bCould not build wheels for\b", r"\bunable to execute '[^']+': No such file", r"\bconflicting dependencies\b", r"\bdependency conflict",
        r"\bModuleNotFoundError\b", r"\bNo module named\b", r"\bcannot import name\b", r"^ImportError\b",
        r"\bcannot open shared object file\b", r"\bundefined symbol\b", r"\bGLIBC_[\d.]+' not found\b",
        r"\bnpm (?:ERR!|error) (?:ERESOLVE|Could not resolve dependency)",
        r"\bunable to resolve dependency tree\b", r"(?i)\bUnable to locate package\b", r"\bhas no installation candidate\b",
        r"\bUnmet dependencies\b", r"\bNO_PUBKEY\b", r"\bis not signed\b", r"\bWeights only load failed\b", r"\bunmet dependencies\b", r"\bmissing go\.sum entry\b", r"\bunknown revision\b",
        r"\bupdates to go\.(?:mod|sum) needed\b", r"\bunrecognized import path\b", r"\bResolutionTooDeep\b",
        r"(?i)\b(?:NVIDIA |GPU |CUDA )?driver (?:on your system )?is too old\b",
        # the GPU's driver missing or not matching the libraries that use it
        r"\bDriver/library version mismatch\b", r"\bcould not load NVML library\b",
        r"\bcould not select device driver \"[^\"]*\" with capabilities: \[\[gpu\]\]",  # Docker without the NVIDIA runtime
        r"\bcudaErrorInsufficientDriver\b", r"\bCUDA driver version is insufficient for CUDA runtime version\b",
        r"\bFound no NVIDIA driver on your system\b", r"\bhipErrorNoBinaryForGpu\b",
        # a build without kernels for this GPU's architecture (`CUDA error: no kernel image is available
        # for execution on the device`), a CUDA newer than the driver on a GPU without forward
        # compatibility (`Error 804: forward compatibility was attempted on non supported HW`)
        r"\bno kernel image is available for execution on the device\b", r"\bdevice kernel image is invalid\b",
        r"\bforward compatibility was attempted on non supported HW\b",
        r"\bis not a supported wheel on this platform\b",  # pip on a wheel of another Python or platform
        r"\bDataset scripts are no longer supported\b",  # datasets 4 on a dataset that ships a loading script
        # transformers without what converts a slow tokenizer (`... You need to have sentencepiece installed`)
        r"\bCouldn't instantiate the backend tokenizer\b",
        r"\bpg_config executable not found\b",  # psycopg2 built from source without libpq's headers
        # a model built with one TensorFlow and served by another: the serving binary lacks the op
        r"\bOp type not registered '\w+'",
        r"\b(?:ClassNotFoundException|NoClassDefFoundError)\b",  # the JVM without a class's jar on its classpath
        # the solver's own report, its reasons listed below it (mamba's `Encountered problems while
        # solving:` then `  - nothing provides requested x`; poetry's `The current project's Python
        # requirement (2.7.16) is not compatible with some of the required packages Python requirement:`)
        r"^Encountered problems while solving:$", r"\bPython requirement \([^)]*\) is not compatible with\b",
        r"\bA KerasTensor cannot be used as input to a TensorFlow function\b",  # Keras 3 under tf.keras code
        r"\bLoaded runtime CuDNN library: \S+ but source was compiled with\b",  # XLA's cuda_dnn.cc
        r"\bcannot find module providing package\b", r"\bno required module provides package\b",
        r"\brequires Python\b", r"\brequires a different Python\b", r"\bpip: (?:command )?not found\b", r"\bgcc(?:-\d+)?: (?:command )?not found\b",
        r"\berror: command '[^']*gcc[^']*' failed\b", r"\bPackage requirements? .* (?:not met|were not met)\b",
        r"\bVersionConflict\b", r"\bDistributionNotFound\b", r"\bInvalid requirement\b",
        r"\bDistribution not found\b", r"\bCould not parse version constraint\b",
        r"\bwhich doesn't match any versions\b", r"\bversion solving failed\b", r"\bPackagesNotFoundError\b",
        r"\bResolvePackageNotFound\b", r"\bUnsatisfiableError\b", r"\bNo solution found when resolving\b", r"\bincompatible with\b.*\b(?:version|requires)\b"]),
    # ── builds ────────────────────────────────────────────────────────────────────────────
    # BuildKit on a COPY source missing from the build context (`failed to compute cache key: failed to
    # calculate checksum of ref ...: "/.git": not found`)
    _r("build.context_missing", C, "not_found", [r"\bfailed to compute cache key: .*\bnot found\b"]),
    # a script saved with Windows line ends, its `#!` line naming `bash\r` (`/bin/bash^M: bad
    # interpreter: No such file or directory`, env's `'bash\r': No such file or directory`): how the
    # image was built, not a file that is missing
    _r("script.crlf", C, "build", [r"\^M: bad interpreter\b", r"'\w+\\r': No such file or directory\b"]),
    _r("build.compile", C, "build", [
        r"\bfailed to export: layer \S",  # the buildpacks lifecycle's exporter (`... is cache=true but has no contents`)
        r"\bCould not find nvcc\b",  # CMake's FindCUDAToolkit: `Could not find nvcc, please set CUDAToolkit_ROOT`
        r"\.(?:c|cc|cpp|cxx|h|hpp|cu|go|rs|ts|js|java):\d+(?::\d+)?: (?:fatal )?error:",
        r"^error\[E\d+\]", r"^\S+\.go:\d+:\d+: \S", r"^error: (?:could not compile|failed to compile|aborting due to)",
        r"\bDockerfile parse error\b", r"\bfailed to read dockerfile\b", r"\bCOPY failed\b",
        r"\bfailed to compute cache key\b", r"\bunknown instruction\b", r"(?P<msg>\bfailed to solve: (?!process ).+)",
        r"^ERROR: (?P<msg>failed to build: (?!.*(?:exit status|executing lifecycle: failed with status code)).+)", r"\bNo buildpack groups passed detection\b",
        r"\bBUILD FAILED\b", r"\bno Go files in\b", r"\bCompilation failed\b", r"\bSyntaxError\b", r"\bIndentationError\b",
        r"\bno such file or directory\b.*\b(?:Dockerfile|COPY|ADD)\b",
        # a CUDA extension's build without its compiler (flash-attn, apex, deepspeed ops in setup.py)
        r"\bnvcc (?:was )?not found\b", r"\bonly supported on CUDA \d+(?:\.\d+)? and above\b",
        r"^nvcc fatal\s*: "]),  # nvcc's own errors (`nvcc fatal   : Unsupported gpu architecture 'compute_'`)
    # cargo's cause below its `error: failed to compile ...` (`Caused by:`): a crate that needs a
    # newer compiler than the image has
    _r("build.toolchain", C, "build", [
        r"\brequires rustc [\d.]+ or newer, while the currently active rustc version is\b"], weight=0.3),
    # ── not found, invalid input ──────────────────────────────────────────────────────────
    _r("resource.not_found", C, "not_found", [
        r"\bFileNotFoundError\b", r"\bNo such file or directory\b", r"\bRepositoryNotFoundError\b",
        r"\bmatched no objects\b",  # gsutil's `CommandException: One or more URLs matched no objects.`
        r"\bRESOURCE_DOES_NOT_EXIST\b",  # MLflow's REST error code (`RestException: RESOURCE_DOES_NOT_EXIST: Run with id=x not found`)
        r"\bEntryNotFoundError\b", r"\bfailed to find one or more images\b", r"\"[^\"]+\": not found\b", r"\bCan't load (?:tokenizer|config|the model|model|weights)\b", r"\bRevisionNotFoundError\b", r"\bdoes not appear to have a file named\b",
        r"(?i)\bthe specified (?:bucket|key|blob|object) does not exist\b", r"(?i)\b(?:bucket|blob|object|dataset|table|model|repo(?:sitory)?|file|resource|job|project|image|path|directory|secret|service account) (?:\S+ )?(?:was )?not found\b",
        r"\bNoSuchKey\b", r"\bNoSuchBucket\b", r"\bNotFoundError\b",
        r"\bcan't cd to\b",  # dash's `cd: can't cd to /app`
        r"\bOperation returned an invalid status '?Not Found\b",  # Azure's autorest clients
        # Go's os.PathError: `open /var/run/argo/outputs/x.tgz: no such file or directory`
        r"\b(?:open|stat|lstat|mkdir|chdir|readlink) /\S*: no such file or directory\b",
        r"\bNo such (?:container|image|volume|network|object)\b",  # the Docker daemon's answers
        r"\bis not a local folder and is not a valid model identifier\b", r"\bdoes not contain artifact\b",
        r"\bCould not find (?:run|artifact|project|sweep|entity|queue|job|image|model|Cloud Build config)\b",
        r"(?i)\bnot found\b(?=.*\b(?:404|resource|requested)\b)"]),
    # Broad phrases that ordinary output holds too ("checkpoint does not exist, starting from
    # scratch"; pip's conflict report before "Successfully installed"): they name a failure's
    # cause when the run failed, but alone they do not show that it did.
    _r("phrase.missing", C, "not_found", [r"(?i)\b(?:does not|doesn't) exists?\b"], weight=-1.6),
    _r("phrase.conflict", C, "dependency", [
        r"\brequires [\w.\[\]-]+ ?[<>=!~].*\bbut you(?:'ll)? have\b"], weight=-1.6),
    _r("config.invalid", C, "invalid_config", [
        r"\berror: (?:unrecognized arguments|the following arguments are required|argument \S+: invalid)",
        # argparse's other usage errors, as a program or gcloud prints them (`ERROR: (gcloud.run.deploy)
        # argument --image: expected one argument`)
        r"(?:\berror: |^\(gcloud\.[\w.-]+\) |^ERROR: \(gcloud\.[\w.-]+\) )(?:unrecognized arguments|argument -[\w-]+(?:/-[\w-]+)?: "
        r"(?:expected (?:one|at least one|\w+) arguments?|not allowed with|invalid))",
        r"(?i)\binvalid choice: ", r"\bScannerError\b", r"\bParserError\b", r"\bValidationError\b",
        r"\bConfigError\b", r"\bConfigAttributeError\b", r"\bMissingMandatoryValue\b",
        r"(?i)\binvalid value (?:for|specified)\b", r"(?i)\bis not a valid\b", r"(?i)\bunsupported (?:machine|accelerator|value|option|argument|parameter|region|zone|location)\b",
        r"(?i)\bis not supported\b", r"\bnot supported when\b", r"(?i)\bmust be (?:one of|a valid|at least|at most|between|specified)\b",
        r"(?i)\bmust be an? (?:list|dict|mapping|string|integer|number|boolean)\b",
        r"\bmust be divisible by\b",
        r"\bCheck batch related parameters\b",  # DeepSpeed's batch size arithmetic that does not add up
        r"\bInvalidConfig", r"(?i)\bmalformed\b(?!.*response)", r"(?i)\bunknown (?:flag|option|argument|field|shorthand flag)\b",
        r"\bunknown command \"[^\"]+\" for \"",
        r"\bunknown (?:model architecture|pre-tokenizer type): '",  # llama.cpp (and Ollama) on a model it cannot load
        r"\bThe required property \[[\w/]+\] is not currently set\b",  # gcloud's RequiredPropertyError
        # an organization policy the request breaks (Compute's `Error 412: Constraint
        # constraints/compute.requireShieldedVm violated for project ...`)
        r"\bConstraint constraints/[\w.]+ violated\b",
        r"\bThe job graph is too large\b",  # Dataflow refusing a job whose graph is over its limit
        r"\bError parsing text-format \w",  # protobuf's text format of a config file (Triton's `config.pbtxt`)
        r"^fusermount3?: mountpoint is not empty$",  # FUSE (gcsfuse, s3fs) on a directory that holds files
        # GradScaler on parameters that are fp16 themselves: fp16 weights with fp16 mixed precision
        r"\bAttempting to unscale FP16 gradients\b",
        r"\baccepts \d+ arg\(s\), received \d+\b",  # a Go CLI's (cobra's) argument count check
        r"\bno instance types satisfy requirements\b",  # Karpenter: a node pool's requirements no type meets
        r"\bThis prompt could not be answered because you are not in an interactive session\b",  # gcloud
        r"(?i)\bparameter validation failed\b", r"(?i)^error\b.*\bplease provide a valid\b",
        r"'reason': 'invalid(?:Query)?'",  # BigQuery's error result
        r"(?i)\bunrecognized (?:flag|option|argument|field)\b", r"(?i)\bviolates constraint\b", r"\btoo long \(max",
        r"\bMisconfiguration(?:Exception|Error)\b", r"(?i)\binvalid argument\b",
        r"(?i)\b(?:fp16|bf16|mixed precision|device|backend)\b.*\brequires an? (?:GPU|CUDA|TPU|NPU)\b",
        r"(?i)\bmixed precision requires\b",  # accelerate's `bf16 mixed precision requires PyTorch >= 1.10 and a supported device`
        r"(?:^|\s)--[\w-]+ (?:is|are) required\b", r"\bYou must give at least one requirement to install\b", r"(?i)\byour setup doesn't support\b",
        r"\bparse error at \(",  # Helm's template error: `parse error at (chart/templates/x.yaml:76): bad character ...`
        # docker's image name that is no reference (`invalid argument "r.pkg.dev/p//img:1" for "-t, --tag"
        # flag: invalid reference format`); buildpacks' runtime version that no release matches
        r"\binvalid reference format\b", r"(?i)\binvalid [\w.]+ version specified\b",
        r"\bno such option: --?[\w-]+",  # optparse's (pip's) `ERROR: no such option: --root-user-action`
        r"\bINVALID_PARAMETER_VALUE\b"]),  # MLflow's error code (`MlflowException: INVALID_PARAMETER_VALUE: ...`)
    # ── code ──────────────────────────────────────────────────────────────────────────────
    # a module without the name its caller wants (`AttributeError: module 'proto' has no attribute
    # 'module'`): an installed version other than the one the code was written for
    _r("python.module_attribute", C, "dependency", [r"\bmodule '[\w.]+' has no attribute '\w+'"]),
    # a library class that no longer takes a keyword (`Trainer.__init__() got an unexpected keyword
    # argument 'tokenizer'`): the installed version renamed or dropped it
    _r("python.keyword_removed", C, "dependency", [
        r"(?:^|[\s:(\"'])(?:[A-Z]\w*\.)?__init__\(\) got an unexpected keyword argument '\w+'"]),
    # CPython's own words for a bug, wherever they are relayed without their exception's class
    # (`... failed for component 'x': list index out of range`, `... caught unexpected exception
    # 'NoneType' object has no attribute 'from_call' and will exit.`): Objects/*.c, Python/ceval.c
    _r("python.message", C, "code", [
        r"\bYou must call wandb\.init\(\) before\b",
        r"'[\w.]+' object (?:has no attribute '\w+'|is not (?:subscriptable|callable|iterable|an iterator))",
        r"\bunsupported operand type\(s\) for\b", r"\bgot an unexpected keyword argument '\w+'",
        r"\b\w+\(\) (?:takes \d+ positional arguments? but \d+ (?:was|were) given|missing \d+ required "
        r"(?:positional|keyword-only) arguments?)", r"\b(?:list|tuple|string) index out of range\b",
        r"\bcan only concatenate \w+ \(not \"\w+\"\) to \w+", r"\b(?:not enough|too many) values to unpack\b",
        r"\bname '\w+' is not defined\b", r"\blocal variable '\w+' referenced before assignment\b",
        r"\binvalid literal for int\(\) with base \d+", r"\bcould not convert string to float\b",
        r"\bmaximum recursion depth exceeded\b"]),
    # a GPU index past the devices there are (`torch.cuda.set_device(local_rank)` with more
    # processes than GPUs): the launch's configuration, not the code
    _r("cuda.device_ordinal", C, "invalid_config", [r"\binvalid device ordinal\b"]),
    _r("cuda.device_assert", C, "code", [
        r"\bAssertion `.+` failed\.", r"\bdevice-side assert triggered\b", r"\billegal memory access\b", r"\bCUDA error: ", r"\bCUDNN_STATUS_\w+\b",
        r"\bsize mismatch\b", r"\bshape mismatch\b", r"\bExpected all tensors to be on the same device\b"]),
    # Go's runtime: `panic: <why>`, then `[signal SIGSEGV: ...]` and the goroutines; the panic's
    # words are the cause, the signal line only how it ended
    _r("go.panic", C, "code", [r"^(?P<msg>panic: .+)", r"^(?P<msg>fatal error: .+)"]),
    # Rust's panic: `thread 'main' panicked at src/x.rs:200:58:` with its payload on the next line
    # (Rust 1.73 and later), or `... panicked at 'payload', src/x.rs:2:5` before; the payload's
    # words name the cause (an `Err` unwrapped: `Could not get file ... Status(403, ...)`)
    _r("rust.panic", E, None, [r"^thread '[^']*' panicked at \S"]),
    # a Kubernetes Job's condition once its pods failed too often (`message: Job has reached the
    # specified backoff limit`, `reason: BackoffLimitExceeded`): the pods' exits are why
    _r("k8s.backoff_limit", W, "exit", [r"\bJob has reached the specified backoff limit\b",
                                        r"\bBackoffLimitExceeded\b"]),
    # `ray job submit` on a job that failed: its status and the message the job manager gave
    # (`Status message: runtime_env setup failed: ...`)
    _r("ray.status_message", E, None, [r"^Status message: (?P<msg>\S.+)"]),
    # ── wrappers: something failed, here is not why ──────────────────────────────────────
    # Airflow's scheduler on a task whose process stopped heartbeating (killed, evicted, lost)
    # Prefect 2's task runner: `Task run 'x' encountered exception:` (early 2.x), `Task run 'x' -
    # Encountered exception during execution:` (later), then the traceback of the task's code
    # Airflow's KubernetesPodOperator on a pod that ended failed (`Pod x returned a failure:
    # {...}`, the pod's whole status): the container's own last words, relayed above, say why
    # Hydra's report of a job whose function raised (`Error executing job with overrides: [...]`),
    # the exception's words below it
    _r("hydra.job_error", W, None, [r"^Error executing job with overrides: \["]),
    _r("orchestrator.pod_failure", W, "exit", [r"\bPod \S+ returned a failure\b"]),
    _r("orchestrator.task_exception", W, "code", [
        r"\bTask run '[^']+' encountered exception:", r"\bEncountered exception during execution:"]),
    # Cloud Build's own verdict on a line of its own, before the error that explains it
    _r("build.status_timeout", F, "timeout", [r"^TIMEOUT$"]),
    # Maven's verdict on the whole build (`[INFO] BUILD FAILURE`), after whatever its plugins said
    _r("build.failure", F, "build", [r"^BUILD FAILURE$"]),
    # SkyPilot's verdict on a job: `✓ Job finished (status: FAILED_SETUP).` (FAILED, FAILED_SETUP,
    # FAILED_DRIVER, FAILED_CONTROLLER, CANCELLED, ...: anything but SUCCEEDED)
    _r("skypilot.job_failed", F, None, [r"\bJob finished \(status: (?!SUCCEEDED\))[A-Z_]+\)"]),
    # Airflow's local task job stopping a task whose state someone (the scheduler, a user, the
    # UI) changed: the reason for the SIGTERM that follows; Airflow prints it at WARNING
    # kaniko's push check (`error checking push permissions -- make sure ...: checking push
    # permission for "...": ... UNAUTHORIZED` / `dial tcp ...: no route to host`): a permission
    # failure unless its tail names another cause; last of the causes so that tail's rule wins
    _r("kaniko.push_check", C, "permission", [r"(?i)\berror checking push permissions\b"], fatal=True),
    _r("orchestrator.externally_set", C, "unknown", [
        r"\bState of this instance has been externally set to \w+\b"], weight=1.0),
    # Kubernetes restarting a container that keeps exiting (`kubectl get pods` STATUS, the
    # kubelet's event): that it fails, not why
    _r("k8s.crashloop", W, "exit", [r"\bCrashLoopBackOff\b", r"\bBack-off restarting failed container\b"]),
    _r("orchestrator.zombie", F, "unknown", [r"\bDetected zombie job\b", r"\bMarked zombie job\b.*\bas failed\b"]),
    _r("orchestrator.failed", F, "exit", [
        r"\bMarking task as FAILED\b", r"\bFinished in state (?:Failed|Crashed|TimedOut)\(",
        r"\bTask exited with return code (?!0\b)-?\w+", r"\bCrash detected!", r"^ERROR$", r"^FAILURE$",
        r"(?i)\bThe DAG (?:run )?failed\b", r"\bDag run .*\bfailed\b", r"\bstate: (?:FAILED|FAILURE)\b",
        r"\bJOB_STATE_FAILED\b", r"\bJobState\.JOB_STATE_FAILED\b", r"\bPipelineState\.PIPELINE_STATE_FAILED\b",
        r"\bSTATUS: FAILURE\b", r"\bProgram failed with code -?\d+", r"\bWaiting for W&B process to finish\b.*\(failed\b",
        # a whole line that says only that the run ended failed (Metaflow's `Workflow failed.`): the
        # run's outcome, so a task's success before it does not make what follows teardown
        r"(?i)^(?:the )?(?:workflow|pipeline|flow|dag|job)(?: run)? (?:has )?failed[.!]?$",
        # a run's end with its status in parentheses (dstack's `vscode provisioning completed (failed)`)
        r"(?i)\b(?:completed|finished|ended|terminated) \((?:failed|error)\)$"]),
    # git's summary of a push it could not make: the reason is above it (`! [rejected] ...`,
    # `remote: error: ...`, git-lfs's `LFS: Client error: ...`)
    _r("git.push_failed", W, None, [r"\bfailed to push some refs to\b"]),
    _r("build.step_failed", W, "build", [
        r"^ERROR: (?P<msg>build step \d+ \"[^\"]+\" failed: .+)", r"(?P<msg>\bBuild step failure: build step \d+ .+)",
        r"(?P<msg>\bThe command '.+' returned a non-zero code: \d+)",
        r"(?P<msg>\bfailed to solve: process .+ did not complete successfully.*)", r"\berror building image\b",
        r"\bmake(?:\[\d+\])?: \*\*\* \[.*\] Error \d+", r"\bnpm (?:ERR!|error) code \w+",
        r"\bprocess \".+\" did not complete successfully\b",
        r"\bnpm (?:ERR!|error) (?:Failed at|errno|Lifecycle script)", r"(?i)^build failed\b", r"\bbuild completed with status \"?FAILURE",
        r"\berror: subprocess-exited-with-error\b", r"did not run successfully\.$", r"^ERROR: (?P<msg>\(gcloud\.builds\.[\w.-]+\) .+)",
        r"\bexecuting build steps? failed\b", r"\bERROR: failed to build\b",
        r"\bexecuting lifecycle: failed with status code\b"]),  # buildpacks' pack
    _r("exit.code", W, "exit", [
        r"^(?P<msg>Task \S+ failed with message: The container exited with an exit code of \d+.*)",
        r"^(?P<msg>Execution \S+ has failed to complete\b.*)", r"(?P<msg>\bContainer called exit\([1-9]\d*\)\.?)",
        r"(?P<msg>\bThe container exited with an exit code of [1-9]\d*\b.*)",
        r"(?P<msg>\bThe replica \S+ exited with a non-zero status of \d+.*)",
        r"\bexited with (?:a )?(?:non-zero )?(?:exit )?(?:status )?(?:code|status)(?: of)?:? [1-9-]\d*",
        r"\bexit (?:status|code):? [1-9]\d*\b", r"^Exit code [1-9]\d* returned from process\b", r"\bexit code \(-?[1-9]\d*\)", r"\breturn code = -?[1-9]\d*", r"\breturned non-zero exit status\b", r"\bCalledProcessError\b",
        r"\bChildFailedError\b", r"\bProcess completed with exit code (?:[1-9]|\*{3})", r"\bexitcode\s*:\s*-?[1-9]",  # GitHub masks the code as ***
        r"^SystemExit: [1-9]", r"(?i)\bAbnormal program exit\b", r"\bProcessExitedException\b",
        r"\bKeyboardInterrupt\b", r"(?i)^(?:job|run|task|pipeline|workflow|step) failed\b",
        r"(?i)\b(?:job|run|task|pipeline) (?:\S+ )?(?:has )?failed\b(?![-\w])", r"(?P<msg>\bTask \S+ failed with message: .+)",
        r"\bNonZeroExitCode\b", r"\bSignalException: Process \d+ got signal\b", r"(?i)\bfailed with exit code\b", r"\b(?:failed|exited) with return code:? -?[1-9]\d*\b", r"(?i)\bexited with an error\b",
        r"(?i)^ERROR: \(gcloud\.[\w.-]+\) (?:The )?(?:execution|job|build|operation|deployment)s? (?:has )?failed\.?$",
        r"(?i)\bterminated by signal\b", r"(?i)\bkilled by signal\b",
        r"(?i)\bterminated on signal \d+\b", r"\bexited on signal \d+\b",  # Open MPI's `mpirun noticed that process rank 1 ... exited on signal 9 (Killed).`
        r"\bworker \(pid\(s\) [\d, ]+\) exited unexpectedly\b",
        r"\bdependency failed to start: container \S+ (?:exited \(\d+\)|is unhealthy)",  # docker compose v2
        r"\bWorkerCrashedError\b", r"(?i)\bworker died unexpectedly\b",
        # a container's status as Kubernetes prints it (`kubectl get pod -o yaml`, Argo/KFP)
        r"^\s*exitCode: [1-9]\d*$", r"^\s*Exit Code:\s+[1-9]\d*$",  # (and `kubectl describe pod`'s)
        # Prefect's crash report of a run stopped by Ctrl-C or SIGTERM
        r"(?i)\bCrash detected! Execution was aborted by an interrupt signal\b"]),
    # ── errors in general words ───────────────────────────────────────────────────────────
    # the last link of a chain (Rust's anyhow, Java, uv): more specific than the error above it
    # (Java's `Caused by: cls: msg`; anyhow's and cargo's `Caused by:` alone, the cause indented below)
    _r("chain.caused_by", E, None, [r"^\s*Caused by: (?P<msg>\S.+)", r"^\s*Caused by:$"], weight=0.3),
    _r("gcloud.error", E, None, [r"^ERROR: (?P<msg>\(gcloud\.[\w.-]+\) .+)"]),
    # a client's words for the HTTP status a server answered (`The Neptune server returned the status
    # 404.`), above the server's own error page; the category is the status's
    _r("http.status", E, None, [r"(?i)\breturned (?:the |an? )?(?:HTTP )?(?:status|status code|error code) [45]\d\d\b"]),
    # W&B's own error lines (`wandb: ERROR ...`), made by the scanner from the line's carrier.
    _r("wandb.error", E, None, []),
    # gRPC's own error text: the core's `debug_error_string` with a non-zero `grpc_status`, and
    # Ruby's `1:CANCELLED. debug_error_string:{...} (GRPC::Cancelled)`
    _r("grpc.status", E, None, [r"\bdebug_error_string\b.*\bgrpc_status:\s*[1-9]\d?\b", r"\(GRPC::[A-Z]\w+\)$"]),
    # `kubectl describe` of a job (TFJob, PyTorchJob, Job): a condition's `Message:` field,
    # padded to its column, saying why the job failed
    _r("k8s.condition_message", E, None, [
        r"^Message:\s{2,}(?P<msg>.*\b(?:failed|[Ee]rror|[Kk]illed|OOMKilled|BackOff|[Ee]victed|[Dd]eadline)\b.*)"]),
    # pytest's short test summary (`FAILED tests/x.py::test_y - assert 11 == 0`): a test that failed, and why
    _r("pytest.failed", E, None, [r"^FAILED (?P<msg>[\w./-]+\.py::\S+(?: - .+)?)$"]),
    # torch's ExceptionWrapper re-raising a worker's exception (`RuntimeError: Caught RuntimeError in
    # DataLoader worker process 0.`, `Caught ValueError in replica 1 on device 1.`): the worker's own
    # traceback follows it, `Original Traceback (most recent call last):`
    _r("torch.worker_wrapper", W, None, [r"\bCaught [A-Z]\w* in (?:DataLoader worker process|replica) \d+\b"]),
    # gcsfuse's daemon reporting its mount's failure (`daemonize.Run: readFromProcess: Decode: EOF`)
    _r("gcsfuse.daemon", E, None, [r"^daemonize\.Run: (?P<msg>\S.+)"]),
    # a batch scheduler's account of how a job or step ended: Slurm's step daemon after one of its tasks
    # failed (`*** STEP 5.0 ON n1 CANCELLED AT 2026-04-29T23:36:37 DUE TO TASK FAILURE ***`, the tasks'
    # own errors above it), LSF's report of a `bkill`
    _r("batch.step_ended", E, "exit", [r"\bCANCELLED AT \S+ DUE TO TASK FAILURE\b",
                                       r"^TERM_OWNER: job killed by owner\b"]),
    # the docker CLI's own failure (reportError in cli/command/container/run.go prints `docker: <err>.`,
    # then `See 'docker run --help'.`), in the forms its errors take: a daemon's refusal, a pull
    # refused as deprecated, a bad flag (not a printed config's `docker: true`)
    _r("docker.cli_error", E, None, [
        r"^docker: (?P<msg>(?:Error response from daemon:|invalid |\[DEPRECATION NOTICE\] |failed to |[Cc]annot |"
        r"unknown (?:flag|shorthand flag): ).*)"]),
    _r("generic.error", E, None, [
        # (not a count: a status's `failed: 1`, `errors: 0`)
        r"^(?:Error|ERROR|error|Fatal|FATAL|fatal|Failed|FAILED|failed|Failure|Exception|E): (?!\d+$)(?P<msg>\S.*)",
        r"^(?:Error|Exception|Failure) (?:while|when|during|in|occurred|running|creating|calling|loading|executing)\b.+",
        # a C program's function or tool name, then its error (llama.cpp's `llama_model_load: error
        # loading model: ...`, `ld: error: ...`)
        r"^[a-z_][\w.-]*: (?:error|fatal error)(?::| (?:loading|while|when|during|in|reading|opening|parsing)\b)",
        r"^[a-z_][\w.-]*: [a-z]+ error: (?![-+]?\.?\d)\S",  # `nvidia-container-cli: initialization error: cuda error: ...` (not `eval: mean error: 0.03`)
        # Dataflow's cause of a failed work item (`Root cause: The worker lost contact with the service.`)
        r"^Root cause: (?P<msg>\S.+)",
        r"^(?P<msg>Check failed: .+)",
        # a job resource's own account of its failure (`gcloud ml-engine jobs describe`: `errorMessage: '...'`)
        r"^(?:errorMessage|error_message): (?P<msg>\S.*)",
        r"^(?:✗|×|✖|❌)\s*(?P<msg>\S.+)", r"^(?:\w+(?:\.|::))*\w+(?:Error|Exception|Failure|Fault): \S",
        # an exception printed with its module path: `google.resumable_media.common.InvalidResponse: `
        r"^(?:[a-z_]\w*\.)+[A-Z]\w+: ", r"^[A-Z]\w*(?:NotFound|Failed|Invalid\w*|Exhausted|Denied)(?:Error)?:(?: |$)"]),
    # The exception of a traceback that no rule above names (made by the traceback parser).
    _r("python.exception", E, None, []),
    # A line printed at ERROR level that no rule names (made by the scanner).
    _r("level.error", E, None, []),
    # The last words before a wrapper that says only that a step failed (made by the scanner).
    _r("wrapper.preceding", E, None, []),
    # The log's last words, when they say that something failed (made by the scanner).
    _r("log.last_words", E, None, []),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}

# Words whose presence makes an ERROR-level line with no rule a failure statement.
FAILURE_WORDS = re.compile(
    r"(?i)\b(?:fail(?:ed|s|ure)?|error|exception|cannot|can't|could not|couldn't|unable|invalid|"
    r"denied|refused|not found|missing|crash(?:ed)?|abort(?:ed)?|fatal|panic|unexpected|"
    r"terminated|killed|no longer|timed out)\b|\b[45]\d\d (?:response|error|status)\b|\bstatus(?: code)?:? [45]\d\d\b")

# An exception class's own words → its category, for exceptions no rule names.
_CLASS_CATEGORIES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), c) for p, c in (
    (r"(?:ModuleNotFound|Import)Error$", "dependency"),
    (r"(?:FileNotFound|NotFound|NoSuchKey|EntryNotFound|RepositoryNotFound)(?:Error|Exception)?$", "not_found"),
    (r"(?:Permission(?:Denied)?|Forbidden|AccessDenied)(?:Error|Exception)?$", "permission"),
    (r"(?:Unauthenticated|Unauthorized|Authentication|Auth|Credentials?)(?:Error|Exception)?$", "auth"),
    (r"(?:Timeout|DeadlineExceeded|TimedOut)(?:Error|Exception)?$", "timeout"),
    (r"(?:Connection\w*|Connect|SSL|Proxy|ReadTimeout|ConnectTimeout|Network|Socket|HTTP|Http|Comm)(?:Error|Exception)$", "network"),
    # a scheduler's worker gone (Dask's `distributed.scheduler.KilledWorker`, Ray's `RayActorError`)
    (r"^(?:KilledWorker|WorkerLost\w*|RayActorError|ActorDiedError|WorkerCrashedError)$", "distributed"),
    (r"(?:Memory|OutOfMemory|ResourceExhausted)(?:Error|Exception)?$", "oom"),
    (r"(?:Config|Validation|Usage|Argument|Parser|Scanner|InvalidUrl|InvalidRequest)(?:Error|Exception)$", "invalid_config"),
    (r"(?:CalledProcess|ChildFailed|SystemExit|ProcessExited)\w*$", "exit"),
    (r"(?:Error|Exception|Failure|Fault|Interrupt|Exit)$", "code"),
    (r"^[A-Z]\w+$", "code"),
))


def class_category(cls: str) -> str:
    """The category an exception class's name implies (`code` for an ordinary exception)."""
    for pattern, category in _CLASS_CATEGORIES:
        if pattern.search(cls):
            return category
    return "unknown"


_HTTP_CODE = re.compile(r"\b(400|401|403|404|409|412|429|5\d\d)\b(?! ?(?:ms|MB|KB|GB|bytes|s\b|%))")
# (412 Precondition Failed: a registry or bucket refusing the request's state: the service's side)
_HTTP_CATEGORIES = {"400": "invalid_config", "401": "auth", "403": "permission", "404": "not_found",
                    "409": "invalid_config", "412": "service", "429": "quota"}


def http_category(text: str) -> str | None:
    """The category an HTTP status code in an error line implies, if it holds one."""
    found = _HTTP_CODE.search(text)
    if not found:
        return None
    return _HTTP_CATEGORIES.get(found.group(1), "service")


CAUSES: tuple[Rule, ...] = tuple(rule for rule in RULES if rule.kind is Kind.CAUSE and rule.category)


class RuleIndex:
    """The rules' patterns that a line can match, found from their guard literals at once.

    Testing each pattern's guard in turn costs a Python loop over some 500 patterns per line;
    instead one pass finds every guard literal a line holds (extract/literals.py), and only the
    patterns they guard, with the unguarded ones, are searched, in table order, so the first
    match is the one the table gives."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.always: list[tuple[int, int]] = []
        guarded: dict[tuple[str, bool], list[tuple[int, int]]] = {}
        for r, rule in enumerate(self.rules):
            for p, (literals, folded) in enumerate(rule.guards):
                if not literals:
                    self.always.append((r, p))
                for literal in literals:
                    guarded.setdefault((literal, folded), []).append((r, p))
        # One pass over the line lower-cased finds every literal, a case-sensitive one as a
        # case-folded one (what it finds is only where to search: the pattern decides).
        self.guarded: dict[str, set[tuple[int, int]]] = {}
        for (literal, _folded), slots in guarded.items():
            self.guarded.setdefault(literal.lower(), set()).update(slots)
        self.finder = Literals(self.guarded)
        # The unguarded patterns would be searched on every line. Those anchored at the start
        # are tried at once, as one alternation matched at the line's start; the others keep
        # any shorter substring they need, tested with `in`.
        anchored = [slot for slot in self.always if anchored_at_start(self._pattern(slot))]
        self.gated = tuple(anchored)
        self.gate = re.compile("|".join(  # (their names dropped: a name may be used once)
            "(?:" + _NAMED_GROUP.sub("(?:", self._pattern(slot).pattern) + ")" for slot in anchored)) \
            if anchored else None
        loose = [(slot, _required(parsed(self._pattern(slot)), 1)) for slot in self.always if slot not in anchored]
        self.unfiltered = frozenset(slot for slot, needs in loose if not needs)
        self.needles = tuple((needle, slot) for slot, needs in loose for needle in sorted(needs or ()))

    def _pattern(self, slot: tuple[int, int]) -> re.Pattern[str]:
        return self.rules[slot[0]].patterns[slot[1]]

    def first(self, text: str) -> tuple[Rule, re.Match[str]] | None:
        """The first rule (in table order) with a pattern that matches the text, and its match."""
        slots = set(self.unfiltered)
        for needle, slot in self.needles:
            if needle in text:
                slots.add(slot)
        if self.gate is not None and self.gate.match(text):
            slots.update(self.gated)
        guarded = self.guarded
        for _end, word in self.finder.ends(text.lower()):
            slots.update(guarded[word])
        for r, p in sorted(slots):
            found = self.rules[r].patterns[p].search(text)
            if found:
                return self.rules[r], found
        return None


_NAMED_GROUP = re.compile(r"\(\?P<\w+>")


_ALL = RuleIndex(RULES)
_CAUSES = RuleIndex(CAUSES)


@functools.lru_cache(maxsize=4096)
def cause_in(text: str) -> Rule | None:
    """The first cause rule matching a text (a wrapper's words may name the cause)."""
    found = _CAUSES.first(text)
    return found[0] if found else None


@functools.lru_cache(maxsize=8192)
def label(text: str) -> tuple[Rule, re.Match[str]] | None:
    """The first rule that matches a normalised line, with its match."""
    return _ALL.first(text)

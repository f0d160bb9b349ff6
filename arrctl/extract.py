"""The root error (or success summary) of a run, from its log lines, by an ordered rule table.

Every rule is named, has an origin (who prints the text) and anchored patterns: a rule matches a
structure (an exception class with its status code, a gRPC status, a gcloud error line, a phrase
only that service prints), never a bare token such as "500" or "Error:" (seeds/002 did that and
showed progress bars and `errors_total=0` as root causes). Earlier rules are more specific: when
several lines match, the line of the earliest rule wins, and among lines of one rule, the first.

Messages of GCP errors take one form wherever they were printed (api_core exception, gRPC
status block, gcloud line, JSON error body): `<Class>: <code> <message>`, the way api_core names
the exception (`PermissionDenied: 403 Permission 'x' denied ...`), without its module path. When
only an HTTP code is printed (W&B's `Failed to create Vertex job: 403 ...`), the line is kept as
printed rather than guessing a class.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arrctl.sanitize import one_line, redact_lines, safe_line, strip_escapes

CONTEXT_BEFORE = 20
CONTEXT_AFTER = 80
SUCCESS_CONTEXT = 5
# Rules look at this many characters of a line: messages are cut to 300 anyway, and it keeps a
# 100 KB line from costing more than a normal one.
MATCH_LIMIT = 8192
CONTEXT_LINE_LIMIT = 2000

TRACEBACK_HEADER = "Traceback (most recent call last):"
CHAIN_SEPARATORS = frozenset({
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
})


@dataclass(frozen=True)
class Rule:
    """One named kind of log line: who prints it, whether it dooms a run, how to match it."""

    name: str
    """Dotted name, origin first: `gcp.machine_type`, `python.traceback`, `wrapper.bailout`."""
    origin: str
    """Who prints it: wrapper | gcp | wandb | kubernetes | python | cloudrun."""
    fatal: bool
    """Seeing it in live logs means the run is doomed (launch's slow path stops on it)."""
    patterns: tuple[re.Pattern[str], ...]
    """Anchored patterns; a group named `msg` marks where the meaningful part starts."""
    examples: tuple[str, ...]
    """Real lines this rule matches, one per pattern (the tests check each one)."""
    triggers: tuple[str, ...]
    """Literal substrings, one of which any matching line contains: a cheap prefilter."""
    kind: str = "error"
    """error | noise (a line that is never a failure) | success | marker | traceback."""
    on: str = "body"
    """What the patterns see: `body` (W&B and launch prefixes removed) or `line` (kept)."""
    gcp_record: bool = False
    """The message is the canonical GCP error found on or around the line, when there is one."""

    def match(self, line: str, body: str) -> re.Match[str] | None:
        """The first pattern's match on this line, or None."""
        subject = line if self.on == "line" else body
        if not any(t in subject for t in self.triggers):
            return None
        for pattern in self.patterns:
            found = pattern.search(subject)
            if found:
                return found
        return None


@dataclass(frozen=True)
class Analysis:
    """What a log says: the verdict, the one-line reason, the rule and line that decided it."""

    verdict: str
    message: str | None
    rule: str | None
    line: int | None
    jobs: int | None
    context: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of `arrctl explain --json` (keys fixed by SPEC)."""
        return {
            "verdict": self.verdict, "message": self.message, "rule": self.rule,
            "line": self.line, "jobs": self.jobs, "context": list(self.context),
        }


UNKNOWN = Analysis("unknown", None, None, None, None, [])


def _rule(name: str, origin: str, fatal: bool, patterns: Sequence[str],
          examples: Sequence[str], triggers: Sequence[str], **extra: Any) -> Rule:
    """A Rule with its patterns compiled."""
    return Rule(name, origin, fatal, tuple(re.compile(p) for p in patterns), tuple(examples),
                tuple(triggers), **extra)


# gRPC status → (api_core exception class, HTTP code), as google.api_core.exceptions maps them.
GRPC_STATUS: dict[str, tuple[str, int]] = {
    "INVALID_ARGUMENT": ("InvalidArgument", 400),
    "FAILED_PRECONDITION": ("FailedPrecondition", 400),
    "OUT_OF_RANGE": ("OutOfRange", 400),
    "UNAUTHENTICATED": ("Unauthenticated", 401),
    "PERMISSION_DENIED": ("PermissionDenied", 403),
    "NOT_FOUND": ("NotFound", 404),
    "ALREADY_EXISTS": ("AlreadyExists", 409),
    "ABORTED": ("Aborted", 409),
    "RESOURCE_EXHAUSTED": ("ResourceExhausted", 429),
    "CANCELLED": ("Cancelled", 499),
    "INTERNAL": ("InternalServerError", 500),
    "UNKNOWN": ("Unknown", 500),
    "DATA_LOSS": ("DataLoss", 500),
    "UNIMPLEMENTED": ("MethodNotImplemented", 501),
    "UNAVAILABLE": ("ServiceUnavailable", 503),
    "DEADLINE_EXCEEDED": ("DeadlineExceeded", 504),
}
_API_CORE_CLASSES = (
    "InvalidArgument|FailedPrecondition|OutOfRange|BadRequest|Unauthenticated|Unauthorized|"
    "PermissionDenied|Forbidden|NotFound|AlreadyExists|Conflict|Aborted|ResourceExhausted|"
    "TooManyRequests|InternalServerError|Unknown|DataLoss|MethodNotImplemented|BadGateway|"
    "ServiceUnavailable|DeadlineExceeded|GatewayTimeout"
)
_STATUS_NAMES = "|".join(GRPC_STATUS)
_VERTEX_CREATE = r"\bFailed to create (?:Vertex|custom) job: "

RULES: tuple[Rule, ...] = (
    # ── noise: lines that are never the failure, whatever words they contain ──────────────
    _rule("noise.progress", "python", False,
          [r"\d{1,3}(?:\.\d+)?%\|", r"^\s*[━╸╺]{3,}"],
          # tqdm bars on stderr, which Cloud Logging files under severity ERROR; pip's bar.
          ["Downloading model.safetensors:  45%|████▌     | 1.2G/2.6G [00:12<00:14, 98.0MB/s]",
           "   ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 887.5/887.5 MB 98.0 MB/s eta 0:00:00"],
          ["%|", "━"], kind="noise"),
    _rule("noise.retry", "gcp", False,
          [r"(?i)\bretrying\b|\bentering retry loop\b|\bwill (?:be )?retr(?:y|ied)\b"
           r"|\bretry(?:ing)? in [\d.]+ ?(?:s|ms|sec|seconds)\b"],
          # api_core's retry log, wandb's network retry: the call may still succeed.
          ["Retrying due to 503 Service Unavailable, sleeping 1.4s ..."],
          ["etry", "ETRY"], kind="noise"),
    _rule("noise.warning", "python", False,
          [r"^(?:wandb: WARNING\b|WARNING\b|W\d{4} \d\d:|(?:\S+:\d+: )?[A-Z]\w*Warning: )"],
          # warnings.warn() output, logging's WARNING level, W&B's warnings, absl's W-lines.
          ["/opt/conda/lib/python3.11/site-packages/torch/cuda/__init__.py:128: "
           "UserWarning: CUDA initialization: error 500"],
          ["WARNING", "Warning", "W1", "W0"], on="line", kind="noise"),
    _rule("noise.info", "wrapper", False,
          [r"^\s*(?:⏱|⏳|ℹ|🔍)", r"(?i)^\W*(?:monitoring|checking|watching|looking) for\b"],
          # The wrapper's own status lines (seeds/002 filtered the same emoji).
          ["⏳ Monitoring for fatal errors (500, quota, permission denied)...",
           "Monitoring for fatal errors in agent output"],
          ["⏱", "⏳", "ℹ", "🔍", "for"], kind="noise"),
    _rule("noise.exception_ignored", "python", False,
          [r"^Exception ignored in\b", r"^Error in atexit\._run_exitfuncs:"],
          # Teardown noise: Python prints these for errors in __del__ and atexit handlers.
          ["Exception ignored in: <function _ProactorBasePipeTransport.__del__ at 0x7f3a>",
           "Error in atexit._run_exitfuncs:"],
          ["Exception ignored", "atexit"], kind="noise"),
    # ── success ───────────────────────────────────────────────────────────────────────────
    _rule("wrapper.summary", "wrapper", False,
          [r"^\W*Runs:\s*(?P<jobs>\d+)\b"],
          # The wrapper's summary when the agent ends normally (seeds/000: "Runs: N").
          ["   Runs: 5"],
          ["Runs:"], kind="success"),
    # ── GCP: specific causes first ────────────────────────────────────────────────────────
    _rule("gcp.machine_type", "gcp", True,
          [r"(?P<msg>\bMachine type \\?[\"']?[\w.-]+\\?[\"']? is not supported\b.*)"],
          # Vertex AI CustomJob creation with a machine type the region does not offer.
          ['google.api_core.exceptions.InvalidArgument: 400 Machine type "a3-highgpu-1g" '
           'is not supported.'],
          ["Machine type"], gcp_record=True),
    _rule("gcp.accelerator", "gcp", True,
          [r"(?P<msg>\b(?:GPU|[Aa]ccelerator(?: type)?|accelerator_type) \\?[\"']?[\w.-]+\\?[\"']?"
           r" is not supported\b.*)"],
          # An accelerator that the machine type or the region cannot take.
          ["InvalidArgument: 400 GPU 'NVIDIA_L4' is not supported for machine type "
           "'n1-standard-4'."],
          ["GPU ", "ccelerator"], gcp_record=True),
    _rule("gcp.zone_exhausted", "gcp", False,
          [r"\bZONE_RESOURCE_POOL_EXHAUSTED(?:_WITH_DETAILS)?\b",
           r"(?P<msg>\b(?:The )?(?:zone|region) '?[\w/.-]+'? does not have enough resources"
           r" available\b.*)"],
          # A stockout: it clears up, and the agent retries the run, so it is not fatal.
          ["  \"reason\": \"ZONE_RESOURCE_POOL_EXHAUSTED\",",
           "ResourceExhausted: 429 The zone 'us-central1-a' does not have enough resources "
           "available to fulfill the request. Try a different zone, or try again later."],
          ["EXHAUSTED", "enough resources"], gcp_record=True),
    _rule("gcp.quota", "gcp", True,
          [r"(?P<msg>\bQuota '[\w.-]+' exceeded\b.*)",
           r"(?P<msg>\b(?:The following )?quota metrics exceed quota limits\b.*)",
           r"(?P<msg>\bQuota exceeded for quota metric\b.*)",
           r"\bRESOURCE_EXHAUSTED\b", r"\b(?:ResourceExhausted|TooManyRequests): 429\b",
           r"<HttpError 429\b", _VERTEX_CREATE + r"429\b"],
          # Compute Engine and Vertex AI quota errors, in their several wordings.
          ["Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2.",
           "ResourceExhausted: 429 The following quota metrics exceed quota limits: "
           "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus",
           "Quota exceeded for quota metric 'Create requests' and limit 'Create requests per "
           "minute per region' of service 'aiplatform.googleapis.com'",
           "ERROR: (gcloud.ai.custom-jobs.create) RESOURCE_EXHAUSTED: Insufficient quota",
           "google.api_core.exceptions.ResourceExhausted: 429 Insufficient quota",
           "<HttpError 429 when requesting https://x returned \"Rate exceeded\">",
           "Failed to create Vertex job: 429 Insufficient quota"],
          ["Quota", "quota", "RESOURCE_EXHAUSTED", ": 429", "HttpError 429", "job: 429"],
          gcp_record=True),
    # ── GCP: status errors, in every form (api_core, gRPC, gcloud, JSON body, HttpError) ──
    _rule("gcp.permission_denied", "gcp", True,
          [r"\bPERMISSION_DENIED\b", r"\b(?:PermissionDenied|Forbidden): 403\b",
           r"<HttpError 403\b", _VERTEX_CREATE + r"403\b", r"^(?P<msg>denied: .+)"],
          ["\tstatus = StatusCode.PERMISSION_DENIED",
           "google.api_core.exceptions.PermissionDenied: 403 Permission "
           "'aiplatform.customJobs.create' denied on resource '//aiplatform.googleapis.com/"
           "projects/p/locations/us-central1' (or it may not exist).",
           "googleapiclient.errors.HttpError: <HttpError 403 when requesting https://x "
           "returned \"Permission denied\">",
           "Failed to create Vertex job: 403 Permission denied",
           # docker push in Cloud Build without the Artifact Registry writer role
           'denied: Permission "artifactregistry.repositories.uploadArtifacts" denied on '
           'resource "projects/p/locations/us/repositories/r" (or it may not exist)'],
          ["PERMISSION_DENIED", ": 403", "HttpError 403", "job: 403", "denied: "],
          gcp_record=True),
    _rule("gcp.unauthenticated", "gcp", True,
          [r"\bUNAUTHENTICATED\b", r"\b(?:Unauthenticated|Unauthorized): 401\b",
           r"<HttpError 401\b", _VERTEX_CREATE + r"401\b"],
          ["  \"status\": \"UNAUTHENTICATED\"",
           "google.api_core.exceptions.Unauthenticated: 401 Request had invalid "
           "authentication credentials.",
           "<HttpError 401 when requesting https://x returned \"Login Required\">",
           "Failed to create Vertex job: 401 Request had invalid authentication credentials."],
          ["UNAUTHENTICATED", ": 401", "HttpError 401", "job: 401"], gcp_record=True),
    _rule("gcp.invalid_argument", "gcp", True,
          [r"\b(?:INVALID_ARGUMENT|OUT_OF_RANGE)\b",
           r"\b(?:InvalidArgument|BadRequest|OutOfRange): 400\b",
           r"<HttpError 400\b", _VERTEX_CREATE + r"400\b"],
          ["ERROR: (gcloud.ai.custom-jobs.create) INVALID_ARGUMENT: List of found errors:",
           "google.api_core.exceptions.InvalidArgument: 400 Invalid image URI",
           "<HttpError 400 when requesting https://x returned \"Invalid value\">",
           "Failed to create Vertex job: 400 Invalid image URI"],
          ["INVALID_ARGUMENT", "OUT_OF_RANGE", ": 400", "HttpError 400", "job: 400"],
          gcp_record=True),
    _rule("gcp.not_found", "gcp", True,
          [r"\bNOT_FOUND\b", r"\bNotFound: 404\b", r"<HttpError 404\b", _VERTEX_CREATE + r"404\b"],
          ["\tstatus = StatusCode.NOT_FOUND",
           "google.api_core.exceptions.NotFound: 404 The specified bucket does not exist.",
           "<HttpError 404 when requesting https://x returned \"Not found\">",
           "Failed to create Vertex job: 404 Service account not found"],
          ["NOT_FOUND", "NotFound: 404", "HttpError 404", "job: 404"], gcp_record=True),
    _rule("gcp.failed_precondition", "gcp", True,
          [r"\bFAILED_PRECONDITION\b", r"\bFailedPrecondition: 400\b"],
          ["ERROR: (gcloud.ai.custom-jobs.create) FAILED_PRECONDITION: The Vertex AI "
           "Service Agent does not have permission",
           "google.api_core.exceptions.FailedPrecondition: 400 The network is not peered"],
          ["FAILED_PRECONDITION", "FailedPrecondition: 400"], gcp_record=True),
    _rule("gcp.internal", "gcp", False,
          [r"\b(?:InternalServerError: 500|Unknown: 500|BadGateway: 502|"
           r"ServiceUnavailable: 503|DeadlineExceeded: 504|GatewayTimeout: 504)\b",
           r"(?P<msg>\bRetryError: .+)",
           r"\bstatus = StatusCode\.(?:INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|UNKNOWN)\b",
           r"[\"']status[\"']\s*:\s*[\"'](?:INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED)[\"']",
           r"^(?:ERROR: \(gcloud\.[\w.-]+\) )?(?:INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED): ",
           r"(?P<msg>\b500 Internal error encountered\b.*)",
           r"^(?P<msg>.*\bretries exhausted\b.*)",
           r"<HttpError 5\d\d\b", _VERTEX_CREATE + r"5\d\d\b"],
          # Raised only after api_core's retries gave up; a "retrying" line is noise instead.
          ["google.api_core.exceptions.InternalServerError: 500 Internal error encountered.",
           "google.api_core.exceptions.RetryError: Timeout of 600.0s exceeded, last exception: "
           "503 failed to connect to all addresses",
           "\tstatus = StatusCode.UNAVAILABLE",
           '    "status": "INTERNAL"',
           "ERROR: (gcloud.ai.custom-jobs.create) INTERNAL: Internal error encountered.",
           "Error creating job: 500 Internal error encountered.",
           "Deadline exceeded while waiting for the CustomJob to be created; retries exhausted",
           "<HttpError 503 when requesting https://x returned \"Backend Error\">",
           "Failed to create Vertex job: 503 The service is currently unavailable."],
          ["InternalServerError", "Unknown: 500", "BadGateway", "ServiceUnavailable",
           "DeadlineExceeded", "GatewayTimeout", "RetryError", "StatusCode.", "INTERNAL",
           "UNAVAILABLE", "DEADLINE_EXCEEDED", "Internal error encountered",
           "retries exhausted", "HttpError 5", "job: 5"], gcp_record=True),
    # ── images: Cloud Run, kubelet, the docker daemon ─────────────────────────────────────
    _rule("cloudrun.image_not_found", "cloudrun", True,
          [r"(?:^|^ERROR: \(gcloud[\w.-]*\) |: )(?P<msg>Image '[^']+' not found\b.*)"],
          # Cloud Run's condition message when the job's image does not exist: the message itself,
          # gcloud's `ERROR: (gcloud.x) ` form, or after a `reason: ` prefix; never mid-sentence.
          ["ERROR: (gcloud.run.jobs.execute) Image 'gcr.io/p/launcher:v9' not found."],
          ["Image '"]),
    _rule("kubernetes.pull_failed", "kubernetes", True,
          [r"(?P<msg>\bFailed to pull image \"[^\"]+\": .+)"],
          # The kubelet event with the registry's reason.
          ['  Warning  Failed     12s (x2 over 30s)  kubelet  Failed to pull image '
           '"gcr.io/p/trainer:v3": rpc error: code = NotFound desc = failed to pull and unpack '
           'image "gcr.io/p/trainer:v3": failed to resolve reference "gcr.io/p/trainer:v3": '
           'gcr.io/p/trainer:v3: not found'],
          ["Failed to pull image"]),
    _rule("kubernetes.pull_backoff", "kubernetes", True,
          [r"(?P<msg>\bBack-off pulling image \"[^\"]+\".*)"],
          # The kubelet's back-off event: names the image, when no line says why it failed.
          ['  Normal   BackOff    1s (x3 over 29s)   kubelet  Back-off pulling image '
           '"gcr.io/p/trainer:v3"'],
          ["Back-off pulling image"]),
    _rule("kubernetes.image_pull", "kubernetes", True,
          [r"(?P<msg>(?:\bError: )?\b(?:ImagePullBackOff|ErrImagePull)\b.*)"],
          # The bare reason, in an event or in `kubectl get pods`' STATUS column.
          ["  Warning  Failed     1s (x3 over 29s)   kubelet  Error: ImagePullBackOff"],
          ["ImagePullBackOff", "ErrImagePull"]),
    _rule("wandb.docker", "wandb", True,
          [r"(?P<msg>\bError response from daemon: .+)"],
          # The docker daemon's reason inside the agent's DockerError ("The content of stderr
          # is '...'"), which matters more than the agent's "see above output" line.
          ["wandb: ERROR The content of stderr is 'Error response from daemon: manifest for "
           "us-docker.pkg.dev/p/r/trainer:v3 not found: manifest unknown: manifest unknown"],
          ["Error response from daemon"]),
    # ── Python ────────────────────────────────────────────────────────────────────────────
    _rule("python.pip", "python", False,
          [r"^ERROR: (?P<msg>(?:No matching distribution found for|Could not install packages"
           r" due to|Cannot install) .+)", r"^ERROR: (?P<msg>ResolutionImpossible\b.*)"],
          # pip inside a Dockerfile RUN step: its last ERROR line names the package.
          ["ERROR: No matching distribution found for torch==9.9.9",
           "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/"],
          ["ERROR: "]),
    _rule("python.traceback", "python", False,
          [r"Traceback \(most recent call last\):$"],
          # The header; the message is the root exception of the chain that follows it.
          ["Traceback (most recent call last):"],
          ["Traceback"], kind="traceback"),
    # ── builds, gcloud, W&B, the wrapper, Cloud Run: least specific last ──────────────────
    _rule("gcp.build_command", "gcp", False,
          [r"(?P<msg>\bThe command '.+' returned a non-zero code: \d+)",
           r"^(?:ERROR: )?(?P<msg>failed to solve: .+)"],
          # docker build inside a Cloud Build step: the legacy builder, then BuildKit.
          ["Step #0 - \"build\": The command '/bin/sh -c pip install -r requirements.txt' "
           "returned a non-zero code: 1",
           'ERROR: failed to solve: process "/bin/sh -c pip install -r requirements.txt" '
           'did not complete successfully: exit code: 1'],
          ["returned a non-zero code", "failed to solve"]),
    _rule("gcp.gcloud", "gcp", False,
          [r"^ERROR: (?P<msg>\(gcloud\.[\w.-]+\) .+)"],
          # Any other gcloud failure; the status forms above catch the API errors.
          ['ERROR: (gcloud.builds.submit) build 8e7c completed with status "FAILURE"'],
          ["ERROR: (gcloud"]),
    _rule("gcp.build_step", "gcp", False,
          [r"^ERROR: (?P<msg>build step \d+ \"[^\"]+\" failed: .+)"],
          # Cloud Build's summary of the step that failed.
          ['ERROR: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with '
           'non-zero status: 1'],
          ["ERROR: build step"]),
    _rule("wandb.error", "wandb", False,
          [r"^wandb: ERROR (?:launch: )?"
           r"(?![ \t]|.*Traceback \(most recent call last\):$|The above exception|During handling)"
           r"(?P<msg>\S.*)"],
          # The agent's termerror() lines; tracebacks printed through it are parsed as such.
          ["wandb: ERROR launch: Error running job: Failed to create Vertex job: timed out"],
          ["wandb: ERROR"], on="line"),
    _rule("wrapper.bailout", "wrapper", True,
          [r"^\s*(?:\[[\w.-]{1,20}\]\s*|[A-Z]{3,8}:\s*)?[^\w\s]{0,3}\s*FATAL ERROR DETECTED\b[\s:\-—]*(?P<msg>.*)",
           r"^\s*(?:\[[\w.-]{1,20}\]\s*|[A-Z]{3,8}:\s*)?[^\w\s]{0,3}\s*(?P<msg>Killing agent\b.*)"],
          # The wrapper's bailout, at the start of its line (after its emoji, maybe a `[wrapper] `
          # or `INFO: ` prefix); the cause is looked for in the 20/80 lines around it.
          ["🚨 FATAL ERROR DETECTED: Machine type not supported",
           "❌ Killing agent (PID 17) - fatal error will not self-resolve"],
          ["FATAL ERROR DETECTED", "Killing agent"], kind="marker"),
    _rule("cloudrun.task_failed", "cloudrun", False,
          [r"^(?P<msg>Task \S+ failed with message: .+)",
           r"^(?P<msg>Execution \S+ has failed to complete\b.*)"],
          # Cloud Run's verdict on a task; not fatal live: a task may be retried.
          ["Task vertex-ai-launcher-abc-0 failed with message: The container exited with an "
           "exit code of 1.",
           "Execution vertex-ai-launcher-abc has failed to complete, 0/1 tasks were a success."],
          ["failed with message", "failed to complete"]),
    _rule("cloudrun.exit_code", "cloudrun", False,
          [r"^(?P<msg>Container called exit\([1-9]\d*\)\.?)$",
           r"(?P<msg>\bThe container exited with an exit code of [1-9]\d*\b.*)"],
          # Cloud Run's system log of a non-zero exit, when nothing says more.
          ["Container called exit(1).", "The container exited with an exit code of 137."],
          ["exit(", "exit code"]),
)

RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
_RANK: dict[str, int] = {rule.name: rank for rank, rule in enumerate(RULES)}
_BAILOUT = RULES_BY_NAME["wrapper.bailout"]


def _minimal_words(words: Iterable[str]) -> list[str]:
    """The words that hold no other word: enough to answer "does any of them occur"."""
    unique = sorted(set(words))
    return [w for w in unique if not any(o != w and o in w for o in unique)]


def _trie_pattern(words: Sequence[str]) -> str:
    """One regex for a set of literals, as a trie: the engine tests a few branches per position
    instead of every word (a flat alternation of ~60 words costs 3x more on a 10,000-line log).
    No word may hold another (see _minimal_words), so at most one matches at a position."""
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        if "" in node:
            return ""
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(tree)


# Only lines holding a trigger of a non-noise rule can matter; noise rules veto among those.
_PREFILTER = re.compile(_trie_pattern(_minimal_words(
    t for rule in RULES if rule.kind != "noise" for t in rule.triggers)))

# Prefixes that carry no meaning for the rules: timestamps (Cloud Logging exports, files),
# Cloud Build's `Step #N - "id": ` and W&B's `wandb: [ERROR ]launch: `.
_PREFIX = re.compile(
    r"(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?[ \t]+"
    r"|\[\d{4}-\d\d-\d\d[^\]]{0,40}\][ \t]*"
    r"|Step #\d+(?: - \"[^\"]*\")?: ?)+"
)
_CARRIER = re.compile(r"wandb: (?:(?:ERROR|WARNING|INFO) )?(?:launch: )?")
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*(?P<cls>[A-Za-z_]\w*)(?P<rest>:.*)?$")

# GCP error records, most canonical first.
_CLASS_FORM = re.compile(
    r"\b(?:[A-Za-z_]\w*\.)*(?P<cls>" + _API_CORE_CLASSES + r"): (?P<code>\d{3})\b ?(?P<msg>.*)")
_RETRY_FORM = re.compile(r"\b(?P<msg>RetryError: .+)")
_GRPC_STATUS = re.compile(r"\bstatus = StatusCode\.(?P<status>[A-Z_]+)\b")
_GRPC_DETAILS = re.compile(r"\bdetails = \"(?P<msg>.*)\"")
_STATUS_FORM = re.compile(r"(?:^|\) |: )(?P<status>" + _STATUS_NAMES + r"): (?P<msg>.+)")
_JSON_HINT = re.compile(r"[\"'](?:status|message|reason)[\"']\s*:")
_JSON_START = re.compile(r"[\"']error[\"']\s*:\s*\{")
_JSON_STATUS = re.compile(r"[\"']status[\"']\s*:\s*[\"'](?P<status>" + _STATUS_NAMES + r")[\"']")
_JSON_CODE = re.compile(r"[\"']code[\"']\s*:\s*(?P<code>\d{3})\b")
_JSON_MESSAGE = re.compile(
    r"[\"']message[\"']\s*:\s*(?:\"(?P<dq>(?:[^\"\\]|\\.)*)\"|'(?P<sq>(?:[^'\\]|\\.)*)')")
_HTTP_ERROR = re.compile(
    r"<HttpError (?P<code>\d{3}) when requesting \S+ returned \"(?P<msg>[^\"]*)\"")
_VERTEX_FORM = re.compile(r"(?P<msg>" + _VERTEX_CREATE + r"\d{3}\b.*)")
# api_core appends the error details' protobuf text ("[reason: ..."), which says nothing more.
_DETAILS_TAIL = re.compile(r"\s*\[(?:reason|type_url|field_violations|links|@type|violations)\b.*$")


@dataclass
class _Hit:
    """A line that a rule matched; the message is worked out only for the one that decides."""

    rank: int
    line: int
    rule: Rule
    match: re.Match[str] | None
    text: str | None = None  # a message known at scan time (tracebacks)


@dataclass
class _Scan:
    """What one pass over a log found."""

    hits: list[_Hit]
    markers: list[int]
    summary: tuple[int, int] | None  # (line, jobs) of the last "Runs: N"


class _Lines:
    """The log's lines with their normalised forms, computed once and only when needed."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.raw = lines
        self._norm: list[tuple[str, str] | None] = [None] * len(lines)

    def __len__(self) -> int:
        return len(self.raw)

    def norm(self, i: int) -> tuple[str, str]:
        """(line, body): escapes and prefixes removed; body also without W&B's prefix."""
        cached = self._norm[i]
        if cached is None:
            text = self.raw[i][:MATCH_LIMIT].rstrip("\r\n")
            if "\x1b" in text:
                text = strip_escapes(text)
            prefix = _PREFIX.match(text)
            if prefix:
                text = text[prefix.end():]
            body = text
            if text.startswith("wandb: "):
                carrier = _CARRIER.match(text)
                body = text[carrier.end():] if carrier else text
            cached = self._norm[i] = (text, body)
        return cached

    def body(self, i: int) -> str:
        """The body of line i."""
        return self.norm(i)[1]


def _classify(line: str, body: str) -> tuple[int, Rule, re.Match[str]] | None:
    """The most specific rule matching this line (noise and success rules included)."""
    # Rule.match inlined: this runs for every candidate line of every log.
    for rank, rule in enumerate(RULES):
        subject = line if rule.on == "line" else body
        for trigger in rule.triggers:
            if trigger in subject:
                for pattern in rule.patterns:
                    found = pattern.search(subject)
                    if found:
                        return rank, rule, found
                break
    return None


def _candidates(lines: Sequence[str]) -> list[int]:
    """Indexes of the lines holding any trigger: one regex pass over the joined text."""
    text = "\n".join(lines)
    if "\x1b" in text:
        # A colour code inside "wandb: ERROR" would hide the trigger (the rules see it removed).
        lines = [strip_escapes(line) if "\x1b" in line else line for line in lines]
        text = "\n".join(lines)
    starts: list[int] = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    found: list[int] = []
    search = _PREFILTER.search
    position = 0
    while True:
        hit = search(text, position)
        if hit is None:
            return found
        index = bisect.bisect_right(starts, hit.start()) - 1
        found.append(index)
        if index + 1 >= len(starts):
            return found
        position = starts[index + 1]


def _scan(log: _Lines) -> _Scan:
    """Classify every line that can matter; parse tracebacks; drop what is noise."""
    hits: dict[int, _Hit] = {}
    markers: list[int] = []
    summary: tuple[int, int] | None = None
    headers: list[int] = []
    for i in _candidates(log.raw):
        line, body = log.norm(i)
        found = _classify(line, body)
        is_marker = "FATAL ERROR DETECTED" in body or "Killing agent" in body
        if is_marker and _BAILOUT.match(line, body):
            markers.append(i)  # also when a more specific rule took the line
        if found is None:
            continue
        rank, rule, match = found
        if rule.kind == "noise":
            continue
        if rule.kind == "success":
            summary = (i, int(match.group("jobs")))
        elif rule.kind == "traceback":
            headers.append(i)
        else:
            hits[i] = _Hit(rank, i, rule, match)
    frames, ignored = _tracebacks(log, headers, hits)
    kept = [h for i, h in sorted(hits.items()) if i not in frames and i not in ignored]
    return _Scan(kept, [m for m in markers if m not in ignored], summary)


def _tracebacks(
    log: _Lines, headers: list[int], hits: dict[int, _Hit],
) -> tuple[set[int], set[int]]:
    """Add a hit for the root exception of each traceback chain; return frame and noise lines.

    The root is the first exception printed: Python prints a chain oldest first, and both
    "direct cause" (`raise B from A`) and "during handling" (B raised while handling A) mean A
    happened first and B is its consequence (api_core re-raising a gRPC error as its own class,
    W&B wrapping it in a LaunchError). The root is what went wrong; the rest is packaging.
    """
    rank = _RANK["python.traceback"]
    rule = RULES_BY_NAME["python.traceback"]
    frames: set[int] = set()
    ignored: set[int] = set()
    n = len(log)
    done = -1
    for header in headers:
        if header <= done:
            continue
        chain: list[tuple[int, str]] = []
        start, j, end = header, header, header
        while True:
            k = j + 1
            while k < n and log.body(k)[:1] in (" ", "\t"):
                frames.add(k)
                k += 1
            end = k - 1
            if k >= n or not _EXCEPTION_LINE.match(log.body(k)):
                break  # cut short, or something else interleaved: no exception line to show
            # An exception's message may go on over indented lines (gRPC's status block).
            m = k + 1
            more: list[str] = []
            while m < n and log.body(m)[:1] in (" ", "\t") and len(more) < 8:
                more.append(log.body(m).strip())
                m += 1
            chain.append((k, " ".join([_short_exception(log.body(k)), *more])))
            end = m - 1
            p = m
            while p < n and not log.body(p).strip():
                p += 1
            if p < n and log.body(p).strip() in CHAIN_SEPARATORS:
                q = p + 1
                while q < n and not log.body(q).strip():
                    q += 1
                if q < n and log.body(q).endswith(TRACEBACK_HEADER):
                    j = q
                    continue
            break
        done = end
        before = log.body(start - 1) if start > 0 else ""
        if before.startswith(("Exception ignored in", "Error in atexit._run_exitfuncs:")):
            ignored.update(range(start, end + 1))
        elif chain:
            line, text = chain[0]
            held = hits.get(line)
            if held is None or held.rank > rank:
                hits[line] = _Hit(rank, line, rule, None, text)
    return frames, ignored


def _short_exception(line: str) -> str:
    """`google.api_core.exceptions.NotFound: 404 x` → `NotFound: 404 x` (module path dropped)."""
    found = _EXCEPTION_LINE.match(line)
    if not found:
        return line
    return found.group("cls") + (found.group("rest") or "")


def _gcp_record(log: _Lines, i: int) -> str | None:
    """The canonical `Class: code message` of a GCP error on or around line i, if any."""
    body = log.body(i)
    found = _CLASS_FORM.search(body)
    if found:
        return f"{found.group('cls')}: {found.group('code')} {found.group('msg')}".rstrip()
    found = _RETRY_FORM.search(body)
    if found:
        return found.group("msg")
    if "StatusCode." in body or 'details = "' in body:
        record = _grpc_record(log, i)
        if record:
            return record
    found = _STATUS_FORM.search(body)
    if found:
        cls, code = GRPC_STATUS[found.group("status")]
        return f"{cls}: {code} {found.group('msg')}"
    if _JSON_HINT.search(body) or _JSON_START.search(body):
        record = _json_record(log, i)
        if record:
            return record
    found = _HTTP_ERROR.search(body)
    if found:
        return f"HttpError: {found.group('code')} {found.group('msg')}"
    found = _VERTEX_FORM.search(body)
    if found:
        return found.group("msg")
    return None


def _grpc_record(log: _Lines, i: int) -> str | None:
    """`status = StatusCode.X` and `details = "..."` of a gRPC error, a few lines apart."""
    status = details = None
    for j in range(max(0, i - 4), min(len(log), i + 5)):
        body = log.body(j)
        status = status or _GRPC_STATUS.search(body)
        details = details or _GRPC_DETAILS.search(body)
    if not status or status.group("status") not in GRPC_STATUS:
        return None
    cls, code = GRPC_STATUS[status.group("status")]
    # gRPC does not escape quotes inside details: the greedy match keeps them.
    return f"{cls}: {code} {details.group('msg') if details else status.group('status')}"


def _json_record(log: _Lines, i: int) -> str | None:
    """The status, code and message of a Google JSON error body around line i."""
    start = i
    for j in range(i, max(-1, i - 30), -1):
        if _JSON_START.search(log.body(j)):
            start = j
            break
    parts: list[str] = []
    depth = 0
    opened = False
    for j in range(start, min(len(log), start + 60)):
        body = log.body(j)
        parts.append(body)
        depth += body.count("{") - body.count("}")
        opened = opened or "{" in body
        if opened and depth <= 0 and j >= i:
            break
    block = "\n".join(parts)
    status = _JSON_STATUS.search(block)
    code = _JSON_CODE.search(block)
    message = _JSON_MESSAGE.search(block)
    if not message or not (status or code):
        return None
    text = message.group("dq") if message.group("dq") is not None else message.group("sq")
    try:
        text = json.loads(f'"{text}"')
    except ValueError:
        pass
    if status:
        cls, number = GRPC_STATUS[status.group("status")]
        return f"{cls}: {code.group('code') if code else number} {text}"
    return f"{code.group('code')} {text}"


def _message(log: _Lines, hit: _Hit) -> str:
    """The one-line message of a hit: redacted, printable, at most 300 characters."""
    text = hit.text
    if text is None and hit.rule.gcp_record:
        text = _gcp_record(log, hit.line)
    if text is None and hit.match is not None:
        match = hit.match
        if "msg" in match.re.groupindex and match.group("msg") is not None:
            text = match.group("msg")
        else:
            text = log.body(hit.line) if hit.rule.on == "body" else match.string
    text = _tidy(text or "")
    if not text and hit.rule is _BAILOUT:
        text = "FATAL ERROR DETECTED"
    return one_line(text)


def _tidy(text: str) -> str:
    """Drop quoting and protobuf tails left over from the form the error was printed in."""
    text = _DETAILS_TAIL.sub("", text).strip()
    while True:
        before = text
        if text.endswith("\\n"):
            text = text[:-2]
        text = text.removesuffix(",")
        for quote in ("'", '"'):
            # Only a closing quote whose opening one was cut off with the line's start.
            if text.endswith(quote) and text.count(quote) % 2 == 1:
                text = text[:-1]
        text = text.rstrip()
        if text == before:
            return text


def _context(lines: Sequence[str], start: int, end: int) -> list[str]:
    """lines[start:end], each redacted and printable; private-key blocks hidden line by line."""
    end = min(end, len(lines))
    if any("PRIVATE KEY-----" in line for line in lines[:end]):
        # A key block may begin before the window: redact from the top to know where it is.
        window = redact_lines([line[:CONTEXT_LINE_LIMIT] for line in lines[:end]])[start:end]
    else:
        window = [line[:CONTEXT_LINE_LIMIT] for line in lines[start:end]]
    return [safe_line(line) for line in window]


def _failed(log: _Lines, hit: _Hit) -> Analysis:
    """The Analysis of a failure decided by `hit`."""
    i = hit.line
    context = _context(log.raw, max(0, i - CONTEXT_BEFORE), i + CONTEXT_AFTER + 1)
    return Analysis("failed", _message(log, hit), hit.rule.name, i + 1, None, context)


def _bailout(log: _Lines, scan: _Scan, marker: int) -> Analysis:
    """The specific cause near the wrapper's bailout marker, else the wrapper's own words."""
    low, high = marker - CONTEXT_BEFORE, marker + CONTEXT_AFTER
    near = [h for h in scan.hits if low <= h.line <= high]
    best = min(near, key=lambda h: (h.rank, _bare(log, h), h.line), default=None)
    if best is None or best.rule is _BAILOUT or best.rank > _RANK[_BAILOUT.name]:
        # Prefer the "FATAL ERROR DETECTED: <reason>" line: it says why, "Killing agent" does not.
        wrapper = [h for h in near if h.rule is _BAILOUT]
        reasons = [h for h in wrapper if "FATAL ERROR DETECTED" in log.body(h.line)]
        best = (reasons or wrapper or [_Hit(_RANK[_BAILOUT.name], marker, _BAILOUT, None)])[0]
        if best.match is None:
            line, body = log.norm(marker)
            best.match = _BAILOUT.match(line, body)
    return _failed(log, best)


_BARE = re.compile(r"^\w+: \d{3} [A-Z_]+$")  # `ResourceExhausted: 429 RESOURCE_EXHAUSTED`: a status, no words


def _bare(log: _Lines, hit: _Hit) -> bool:
    """Whether a hit's message is a bare status with no detail (a gRPC repr without `details`).

    Among hits of the same rule, one that says what happened beats the bare one printed first:
    api_core re-raises `_InactiveRpcError ... StatusCode.RESOURCE_EXHAUSTED` as
    `ResourceExhausted: 429 Quota 'NVIDIA_L4_GPUS' exceeded ...` a few lines later.
    """
    return bool(_BARE.match(_message(log, hit)))


def _decide(log: _Lines, scan: _Scan) -> Analysis:
    """The verdict from a scan: bailout, else the most specific failure, else success."""
    if scan.markers:
        return _bailout(log, scan, scan.markers[0])
    hits = scan.hits
    if scan.summary is not None:
        # What comes after the success summary is teardown (cleanup errors, closing sockets).
        hits = [h for h in hits if h.line < scan.summary[0]]
    best = min(hits, key=lambda h: (h.rank, _bare(log, h), h.line), default=None)
    if best is not None:
        return _failed(log, best)
    if scan.summary is not None:
        line, jobs = scan.summary
        context = _context(log.raw, max(0, line - SUCCESS_CONTEXT), line + SUCCESS_CONTEXT + 1)
        noun = "job" if jobs == 1 else "jobs"
        return Analysis("succeeded", f"Completed: {jobs} {noun}", "wrapper.summary", line + 1,
                        jobs, context)
    return UNKNOWN


def analyze(lines: Sequence[str]) -> Analysis:
    """The verdict of a whole log: failed (with the root error), succeeded, or unknown."""
    log = _Lines(lines)
    return _decide(log, _scan(log))


def first_fatal(lines: Sequence[str]) -> Analysis | None:
    """The first line of a fatal rule in a live log, as a failed Analysis; None if none yet."""
    log = _Lines(lines)
    scan = _scan(log)
    if scan.markers:
        first = next((h for h in scan.hits if h.rule.fatal and h.line < scan.markers[0]), None)
        return _failed(log, first) if first else _bailout(log, scan, scan.markers[0])
    first = next((h for h in scan.hits if h.rule.fatal), None)
    return _failed(log, first) if first else None


def split_text(text: str) -> list[str]:
    """Raw log text → lines: \\n or \\r\\n ends a line; a final newline adds no empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def lines_from_entries(entries: Iterable[dict[str, Any]]) -> list[str]:
    """Cloud Logging LogEntry dicts (any order, newest first from the API) → lines, oldest first."""
    # The API lists newest first; reversing before a stable sort keeps entries that share a
    # timestamp in the order they were written.
    ordered = list(entries)[::-1]
    keys: list[tuple[int, int]] = []
    last = (0, 0)
    for entry in ordered:
        key = _timestamp_key(entry.get("timestamp")) if isinstance(entry, dict) else None
        last = key if key is not None else last  # no timestamp: stay beside its neighbour
        keys.append(last)
    order = sorted(range(len(ordered)), key=keys.__getitem__)
    lines: list[str] = []
    for index in order:
        entry = ordered[index]
        if isinstance(entry, dict):
            lines.extend(split_text(_entry_text(entry)))
    return lines


def _entry_text(entry: dict[str, Any]) -> str:
    """The text of one LogEntry: textPayload, jsonPayload's message, an audit log's status."""
    text = entry.get("textPayload")
    if isinstance(text, str):
        return text
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        for key in ("message", "msg"):
            if isinstance(payload.get(key), str):
                return payload[key]
        return ""
    proto = entry.get("protoPayload")
    if isinstance(proto, dict):
        status = proto.get("status")
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            return status["message"]
    return ""


_TIMESTAMP = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9})\d*)?(Z|[+-]\d\d:?\d\d)?$")


def _timestamp_key(value: Any) -> tuple[int, int] | None:
    """(epoch seconds, nanoseconds) of an RFC 3339 string or {seconds, nanos}; None if absent."""
    if isinstance(value, dict):
        try:
            return int(value.get("seconds", 0)), int(value.get("nanos", 0))
        except (TypeError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    found = _TIMESTAMP.match(value.strip())
    if not found:
        return None
    day, clock, fraction, zone = found.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        moment = _dt.datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError:
        return None
    return int(moment.timestamp()), int((fraction or "0").ljust(9, "0"))


__all__ = [
    "Analysis", "RULES", "Rule", "analyze", "first_fatal", "lines_from_entries", "split_text",
]

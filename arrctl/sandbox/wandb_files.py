"""A W&B run's files in the fake: the `RunFiles` GraphQL query and the downloads it points to.

What the real service does, and where it is written down:
- `run.files(names=[...])` sends `query RunFiles($project, $entity, $name, $fileCursor, $fileLimit,
  $fileNames, $upload, $pattern)` and reads `project.run.fileCount` and
  `project.run.files.edges[].node{id name url directUrl sizeBytes mimetype updatedAt md5}` with
  `pageInfo` (wandb/apis/public/files.py, `Files._get_query` and `FILE_FRAGMENT`); `pattern` is
  MySQL's LIKE syntax (its docstring).
- `url` is the file under the W&B API (`https://api.wandb.ai/files/ENTITY/PROJECT/RUN/NAME`), which
  redirects, even without credentials, to the storage URL; `directUrl` is that signed storage URL
  (`https://storage.googleapis.com/wandb-production.appspot.com/ENTITY/PROJECT/RUN/NAME?Expires=..&
  GoogleAccessId=..&Signature=..`), as a public README of a W&B client notes and as image links
  copied out of W&B show (search corpus `code`, "storage.googleapis.com/wandb-production").
- Cloud Storage answers a GET with a `Range` header "as defined in the HTTP 1.1 RFC" (206 and
  `Content-Range`), https://cloud.google.com/storage/docs/xml-api/get-object-download; the range
  forms are RFC 9110 §14.1.2 (`first-last`, `first-`, `-suffix`); an unsatisfiable one is 416
  with `Content-Range: bytes */SIZE` (§15.5.17).
- `output.log` is uploaded when the run ends ("0.8.2 uploads the entire log file at the end of
  your run", https://github.com/wandb/wandb/issues/373); so a running run has none yet, and a run
  whose process died may never get one (https://github.com/wandb/wandb/issues/9667): a scenario
  run lists only the files it names, each once the run has ended.
"""

from __future__ import annotations

import base64
import hashlib
import pathlib
import re
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from arrctl.sandbox.base import Request, Response

if TYPE_CHECKING:
    from arrctl.sandbox.wandb import RunView, WandbService

BUCKET = "wandb-production.appspot.com"
SIGNER = "gorilla-files-url-signer-man@wandb-production.iam.gserviceaccount.com"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_LIVE_STATES = frozenset({"running", "pending", "preempting"})


def like(pattern: str, name: str) -> bool:
    """MySQL LIKE: `%` any run of characters, `_` one character, the rest literal."""
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, re.DOTALL) is not None


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | Literal[False]:
    """(first, last) of a single-range `Range` header; None to send the whole file; False: unsatisfiable."""
    if not header:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:  # several ranges, another unit, nonsense: a server may ignore it (§14.2)
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size:
        return False
    return start, min(size - 1, int(last)) if last else size - 1


def signature(path: str, expires: str) -> str:
    """The fake's signature of a storage path (any stable value the client must send back)."""
    return base64.b64encode(hashlib.sha256(f"{path}\n{expires}".encode()).digest()).decode()


class RunFiles:
    """Lists and serves the files of the scenario's runs."""

    def __init__(self, service: "WandbService", directory: pathlib.Path) -> None:
        self.service = service
        self.directory = directory

    def content(self, spec_files: dict[str, str], name: str) -> bytes:
        """The bytes of one scenario file."""
        return (self.directory / spec_files[name]).read_bytes()

    def present(self, view: "RunView") -> list[str]:
        """The names of the run's files that exist now (once it has ended), in name order."""
        if view.state in _LIVE_STATES:
            return []
        return sorted(view.spec.files)

    def _object(self, run_id: str, name: str) -> str:
        svc = self.service
        return "/".join(quote(part, safe="") for part in (svc.entity, svc.project, run_id)) + "/" + quote(name)

    def node(self, view: "RunView", name: str, request: Request) -> dict[str, Any]:
        """One file node, its URLs on the host the client called."""
        host = f"http://{request.headers.get('host') or '127.0.0.1'}"
        data = self.content(view.spec.files, name)
        obj = self._object(view.spec.id, name)
        expires = str(int(self.service.clock.now()) + 3600)
        path = f"/{BUCKET}/{obj}"
        signed = f"/{BUCKET}/{self.service.entity}/{self.service.project}/{view.spec.id}/{name}"  # as received
        from arrctl.sandbox.wandb import _wire_time

        return {
            "id": base64.b64encode(f"File:{view.spec.id}:{name}".encode()).decode(),
            "name": name,
            "url": f"{host}/files/{obj}",
            "directUrl": (f"{host}{path}?Expires={expires}&GoogleAccessId={quote(SIGNER, safe='')}"
                          f"&Signature={quote(signature(signed, expires), safe='')}"),
            "sizeBytes": len(data), "mimetype": "text/plain",
            "updatedAt": _wire_time(view.heartbeat_epoch),
            "md5": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324 - W&B's checksum
        }

    def query(self, query: str, variables: dict[str, Any], request: Request) -> dict[str, Any]:
        """`query RunFiles`: one page of the run's files matching `fileNames` or `pattern`."""
        from arrctl.sandbox.wandb import GraphQLError, _cursor, _cursor_index

        svc = self.service
        if not svc._known(variables):
            return {"project": None}
        view = svc.find(variables.get("name"))
        if view is None:
            return {"project": {"internalId": None, "run": None}}
        names = self.present(view)
        wanted = variables.get("fileNames") or []
        pattern = variables.get("pattern")
        if wanted and pattern:
            raise GraphQLError("cannot filter files by both names and pattern")
        if wanted:
            names = [n for n in names if n in wanted]
        elif pattern:
            names = [n for n in names if like(str(pattern), n)]
        limit = variables.get("fileLimit") or 50
        if not isinstance(limit, int) or limit < 1:
            raise GraphQLError("fileLimit must be a positive integer")
        start = _cursor_index(variables.get("fileCursor"))
        page = names[start:start + limit]
        edges = [{"node": self.node(view, name, request), "cursor": _cursor(start + i)} for i, name in enumerate(page)]
        return {"project": {
            "internalId": base64.b64encode(f"Project:{svc.project_id}".encode()).decode(),
            "run": {"fileCount": len(self.present(view)), "files": {
                "edges": edges,
                "pageInfo": {"endCursor": edges[-1]["cursor"] if edges else None,
                             "hasNextPage": start + limit < len(names)},
            }},
        }}

    def _lookup(self, obj_path: str) -> tuple["RunView", str] | None:
        """The run and file name of `ENTITY/PROJECT/RUN/NAME`, when that file exists now."""
        svc = self.service
        parts = obj_path.split("/", 3)
        if len(parts) != 4 or parts[0] != svc.entity or parts[1] != svc.project:
            return None
        view = svc.find(parts[2])
        if view is None or parts[3] not in self.present(view):
            return None
        return view, parts[3]

    def download(self, request: Request) -> Response | None:
        """GET /files/... (a redirect to storage) and GET /BUCKET/... (the bytes, with Range)."""
        if request.method != "GET":
            return None
        if request.path.startswith("/files/"):
            found = self._lookup(request.path[len("/files/"):])
            if found is None:
                return Response(404, b"Not Found", "text/plain")
            node = self.node(found[0], found[1], request)
            return Response(302, b"", "text/plain", {"Location": node["directUrl"]})
        if not request.path.startswith(f"/{BUCKET}/"):
            return None
        self.service.count("download")
        expires = request.arg("Expires") or ""
        if request.arg("Signature") != signature(request.path, expires):
            return Response(403, _storage_error("SignatureDoesNotMatch", "The request signature we calculated "
                                                "does not match the signature you provided."), "application/xml")
        found = self._lookup(request.path[len(BUCKET) + 2:])
        if found is None:
            return Response(404, _storage_error("NoSuchKey", "The specified key does not exist."), "application/xml")
        data = self.content(found[0].spec.files, found[1])
        wanted = byte_range(request.headers.get("range"), len(data))
        if wanted is False:
            return Response(416, _storage_error("InvalidRange", "The requested range cannot be satisfied."),
                            "application/xml", {"Content-Range": f"bytes */{len(data)}"})
        if wanted is None:
            return Response(200, data, "text/plain", {"Accept-Ranges": "bytes"})
        first, last = wanted
        return Response(206, data[first:last + 1], "text/plain",
                        {"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{len(data)}"})


def _storage_error(code: str, message: str) -> bytes:
    """Cloud Storage's XML error body."""
    return (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>").encode()

"""A stand-in Hugging Face hub on 127.0.0.1 for the first-run tests.

It serves checkpoint folders as model repositories through the endpoints `huggingface_hub` calls, with
the headers the real hub sends, so downloads run on the library's real code path (``HF_ENDPOINT``):

- ``GET /api/models/{repo}[/revision/{rev}]``: the repository's info (commit sha, files);
- ``GET /api/models/{repo}/tree/{rev}``: the file listing, with sizes and LFS pointers for weights;
- ``HEAD|GET /{repo}/resolve/{rev}/{file}``: small files directly (ETag = git blob sha1); large
  (LFS) files by a redirect to ``/blobs/{sha256}`` on another loopback address (127.0.0.2, the "CDN")
  with ``X-Linked-Etag`` / ``X-Linked-Size``, as the hub redirects to its CDN (the client then takes
  the metadata from the redirect itself); ``Range`` requests are answered with 206.

Faults a user meets, switched on per test: a repository that does not exist (404 ``RepoNotFound``), a
gated one (401/403 ``GatedRepo``), a server that accepts connections and never answers, and a file whose
download the server cuts after a number of bytes. Every request is recorded for the tests to inspect.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Files stored with git LFS on the hub (the weights); everything else is a plain git blob.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".msgpack")


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    served: int = 0  # body bytes sent


@dataclass
class _File:
    data: bytes
    git_sha1: str
    sha256: str
    lfs: bool


@dataclass
class _Repo:
    commit: str
    files: dict[str, _File]
    gated: int | None = None  # 401 or 403 for every file, like a gated model without access


@dataclass
class Faults:
    hang: bool = False  # accept, read the request, never answer
    cut: dict[str, int] = field(default_factory=dict)  # file name -> bytes served before the connection drops


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _load_repo(folder: Path, repo_id: str) -> _Repo:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        rel = path.relative_to(folder).as_posix()
        files[rel] = _File(data, _git_blob_sha1(data), hashlib.sha256(data).hexdigest(), rel.endswith(LFS_SUFFIXES))
    commit = hashlib.sha1(repo_id.encode() + b"".join(f.git_sha1.encode() for f in files.values())).hexdigest()
    return _Repo(commit=commit, files=files)


class StandInHub:
    """Serves `repos` ({"Qwen/Qwen2-VL-2B-Instruct": folder, ...}) on an ephemeral loopback port."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos = {repo_id: _load_repo(Path(folder), repo_id) for repo_id, folder in repos.items()}
        self.faults = Faults()
        # The hub answers 401 for a repository it does not show to an anonymous user, 404 to a logged-in one.
        self.missing_status = 401
        self.requests: list[Request] = []
        self._stopping = threading.Event()
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._servers = [ThreadingHTTPServer((host, 0), Handler) for host in ("127.0.0.1", "127.0.0.2")]
        self._threads = []
        for server in self._servers:
            server.daemon_threads = True
            self._threads.append(threading.Thread(target=server.serve_forever, name="stand-in-hub", daemon=True))

    @property
    def url(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host}:{port}"

    @property
    def cdn_url(self) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"http://{host}:{port}"

    def commit(self, repo_id: str) -> str:
        return self.repos[repo_id].commit

    def gate(self, repo_id: str, status: int) -> None:
        self.repos[repo_id].gated = status

    def downloads(self, name_part: str = "") -> list[Request]:
        """GET requests for file contents (not metadata) whose path contains `name_part`."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and ("/resolve/" in r.path or r.path.startswith("/blobs/")) and name_part in r.path
        ]

    def bytes_served(self, filename: str) -> int:
        return sum(r.served for r in self.downloads(filename))

    def __enter__(self) -> StandInHub:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        for server, thread in zip(self._servers, self._threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_hub: StandInHub
    record: Request

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    # -- routing ---------------------------------------------------------------------------------

    def _handle(self, head: bool) -> None:
        hub = self.server_hub
        path = unquote(urlsplit(self.path).path)
        self.record = Request(self.command, unquote(self.path), self.headers.get("Range"))
        hub.requests.append(self.record)
        if hub.faults.hang:
            hub._stopping.wait(600)
            self.close_connection = True
            return
        if path.startswith("/api/models/"):
            self._api(path.removeprefix("/api/models/"))
        elif path.startswith("/blobs/"):
            self._blob(path.removeprefix("/blobs/"), head)
        elif "/resolve/" in path:
            repo_id, _, rest = path.lstrip("/").partition("/resolve/")
            revision, _, filename = rest.partition("/")
            self._resolve(repo_id, revision, filename, head)
        else:
            self._error(404, "EntryNotFound", "not a hub endpoint")

    def _repo(self, repo_id: str) -> _Repo | None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None:
            self._error(self.server_hub.missing_status, "RepoNotFound", "Repository not found")
        return repo

    def _api(self, rest: str) -> None:
        parts = rest.split("/")
        repo_id = "/".join(parts[:2])
        repo = self._repo(repo_id)
        if repo is None:
            return
        if len(parts) >= 4 and parts[2] == "tree":
            listing = [self._tree_entry(name, f) for name, f in repo.files.items()]
            self._json(listing)
            return
        info = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": repo.commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "tags": ["transformers", "safetensors"],
            "library_name": "transformers",
            "siblings": [{"rfilename": name, "size": len(f.data)} for name, f in repo.files.items()],
        }
        self._json(info)

    @staticmethod
    def _tree_entry(name: str, f: _File) -> dict:
        entry = {"type": "file", "oid": f.git_sha1, "size": len(f.data), "path": name}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 135}
        return entry

    def _resolve(self, repo_id: str, revision: str, filename: str, head: bool) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        if repo.gated:
            message = "Access to model is restricted. You must have access to it and be authenticated to access it."
            self._error(repo.gated, "GatedRepo", message)
            return
        f = repo.files.get(filename)
        if f is None:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        common = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
        if f.lfs:
            self.send_response(302)
            for key, value in common.items():
                self.send_header(key, value)
            self.send_header("X-Linked-Etag", f'"{f.sha256}"')
            self.send_header("X-Linked-Size", str(len(f.data)))
            self.send_header("ETag", f'"{f.git_sha1}"')
            self.send_header("Location", f"{self.server_hub.cdn_url}/blobs/{f.sha256}?name={filename}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_bytes(f.data, filename, head, {**common, "ETag": f'"{f.git_sha1}"'})

    def _blob(self, sha256: str, head: bool) -> None:
        for repo in self.server_hub.repos.values():
            for name, f in repo.files.items():
                if f.sha256 == sha256:
                    self._send_bytes(f.data, name, head, {"ETag": f'"{f.sha256}"', "Accept-Ranges": "bytes"})
                    return
        self._error(404, "EntryNotFound", "no such blob")

    # -- responses -------------------------------------------------------------------------------

    def _send_bytes(self, data: bytes, name: str, head: bool, headers: dict[str, str]) -> None:
        start = 0
        requested = self.headers.get("Range")
        if requested and requested.startswith("bytes="):
            first, _, last = requested.removeprefix("bytes=").partition("-")
            start = int(first or 0)
            end = int(last) + 1 if last else len(data)
            body = data[start:end]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        limit = self.server_hub.faults.cut.get(name)
        if limit is not None and start + len(body) > limit:
            # Serve up to the cut, then drop the connection mid-body, as a lost network does.
            part = body[: max(0, limit - start)]
            self._write(part)
            self.record.served = len(part)
            self.wfile.flush()
            time.sleep(0.05)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._write(body)
        self.record.served = len(body)

    def _write(self, body: bytes) -> None:
        for offset in range(0, len(body), 1 << 16):
            self.wfile.write(body[offset : offset + (1 << 16)])

    def _json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

"""A local stand-in for the Hugging Face Hub, speaking just enough of its HTTP API for
huggingface_hub's snapshot_download: repo info, recursive tree listing, HEAD/GET of
`/{repo}/resolve/{revision}/{path}` with Range support, and scripted failures.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class FakeRepo:
    commit: str
    files: dict[str, bytes]


@dataclass
class FakeHub:
    """Repos served over HTTP on 127.0.0.1; `requests` records (method, path, Range header)."""

    repos: dict[str, FakeRepo] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    # path in repo -> how many more GETs to cut off after half the body / answer with HTTP 500
    drop_midway: dict[str, int] = field(default_factory=dict)
    fail_with_500: dict[str, int] = field(default_factory=dict)

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> str:
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = FakeRepo(commit=commit, files=files)
        return commit

    def downloads_of(self, path: str) -> list[str | None]:
        """Range headers of the GETs of `path` (None for a full download)."""
        return [
            range_ for method, url, range_ in self.requests if method == "GET" and url.endswith("/" + path)
        ]

    def start(self) -> tuple[ThreadingHTTPServer, str]:
        hub = self

        class Handler(_HubHandler):
            fake = hub

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


def _is_lfs(path: str) -> bool:
    return path.endswith((".safetensors", ".bin", ".pth"))


def _etag(content: bytes, path: str) -> str:
    # The Hub's ETag is the sha256 for LFS files and the git blob id for the others.
    if _is_lfs(path):
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class _HubHandler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._record("GET")
        parts = unquote(urlsplit(self.path).path).strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
            self._api(parts)
        else:
            self._resolve(parts, send_body=True)

    def do_HEAD(self) -> None:
        self._record("HEAD")
        self._resolve(unquote(urlsplit(self.path).path).strip("/").split("/"), send_body=False)

    def _record(self, method: str) -> None:
        self.fake.requests.append((method, urlsplit(self.path).path, self.headers.get("Range")))

    def _repo(self, repo_id: str) -> FakeRepo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        return repo

    def _api(self, parts: list[str]) -> None:
        repo = self._repo(f"{parts[2]}/{parts[3]}")
        if repo is None:
            return
        if parts[4] == "revision":
            body = {
                "id": f"{parts[2]}/{parts[3]}",
                "sha": repo.commit,
                "siblings": [{"rfilename": path} for path in repo.files],
            }
        else:
            body = [self._tree_entry(path, content) for path, content in repo.files.items()]
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    @staticmethod
    def _tree_entry(path: str, content: bytes) -> dict[str, object]:
        entry: dict[str, object] = {
            "type": "file",
            "path": path,
            "size": len(content),
            "oid": _etag(content, path),
        }
        if _is_lfs(path):
            entry["lfs"] = {"oid": _etag(content, path), "size": len(content), "pointerSize": 134}
            entry["oid"] = hashlib.sha1(path.encode()).hexdigest()
        return entry

    def _resolve(self, parts: list[str], *, send_body: bool) -> None:
        # /{owner}/{name}/resolve/{revision}/{path...}
        if len(parts) < 5 or parts[2] != "resolve":
            self._send(404, b"", {})
            return
        repo = self._repo(f"{parts[0]}/{parts[1]}")
        if repo is None:
            return
        path = "/".join(parts[4:])
        content = repo.files.get(path)
        if content is None:
            self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit})
            return
        headers = {
            "X-Repo-Commit": repo.commit,
            "ETag": f'"{_etag(content, path)}"',
            "Accept-Ranges": "bytes",
        }
        if send_body and self._scripted(self.fake.fail_with_500, path):
            self._send(500, b"internal error", {})
            return
        start = 0
        range_header = self.headers.get("Range")
        if send_body and range_header:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        body = content[start:]
        status = 206 if start else 200
        if not send_body:
            self._send(status, b"", {**headers, "Content-Length": str(len(content))}, body_follows=False)
        elif self._scripted(self.fake.drop_midway, path):
            self._send_then_drop(status, body, headers)
        else:
            self._send(status, body, headers)

    @staticmethod
    def _scripted(failures: dict[str, int], path: str) -> bool:
        remaining = failures.get(path, 0)
        if remaining:
            failures[path] = remaining - 1
        return remaining > 0

    def _send(self, status: int, body: bytes, headers: dict[str, str], *, body_follows: bool = True) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if body_follows:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_follows:
            self.wfile.write(body)

    def _send_then_drop(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        """Promise the whole body, send half, and close the socket: a connection lost mid-transfer."""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

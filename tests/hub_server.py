"""A local stand-in for the part of the Hugging Face Hub API that ``ben-hub push`` and ``ben-hub verify`` use.

Implements: repo creation, README YAML validation, recursive tree listing, preupload (upload modes), the
git-LFS batch API with basic transfers, LFS object PUTs, and NDJSON commits (to a branch or a new
pull-request ref); for reading, a revision's commit (``dataset_info``) and file downloads (HEAD and GET, by
branch or commit, HTTP ranges), LFS files redirected to a second server, as the Hub redirects them to its CDN.
It records every LFS upload, file download and Authorization header so tests can check what was sent.  Xet
uploads are not implemented: tests set ``HF_HUB_DISABLE_XET`` so ``huggingface_hub`` uses its LFS protocol.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import yaml

LFS_SUFFIXES = (".parquet", ".png", ".pt")
KINDS = ("datasets", "models")  # api/<kind>/<owner>/<name>/...


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo -> ref -> path -> content
        self.lfs: dict[str, bytes] = {}
        self.lfs_puts: Counter[str] = Counter()
        self.lfs_batches = 0  # requests to the LFS batch API
        self.commits: list[dict[str, Any]] = []
        self.auth_headers: set[str] = set()
        self.snapshots: dict[str, tuple[str, dict[str, bytes]]] = {}  # commit oid -> (repo, path -> content)
        self.heads: dict[tuple[str, str], str] = {}  # (repo, ref) -> its last commit oid
        self.gets: list[tuple[str, str | None]] = []  # (path, Range header) of each file download
        self.storage_gets: list[tuple[str, str | None]] = []  # (sha256, Range header) of each GET at the storage
        self.sent = 0  # bytes of response bodies sent, both servers
        self.sent_lock = threading.Lock()  # not ``lock``: replies are also sent while it is held
        self.fail_commits_after: int | None = None  # answer 500 to commits once this many succeeded
        self.fail_lfs_puts_after: int | None = None  # answer 500 to LFS uploads once this many succeeded
        self.lose_commit_answers = 0  # apply this many commits but answer 502, as when a proxy loses the answer
        self.closed_prs: set[int] = set()  # pull requests (by number) listed as closed
        self.fail_downloads = 0  # answer this many file downloads with 503 first
        self.fail_api_reads = 0  # answer this many reads of a repository's info or file listing with 503 first
        self.expire_storage = 0  # answer this many range reads at the storage with 403 (a signed address expired)
        self.tree_page = 1000  # entries a page of a tree listing, as the Hub pages them (a cursor in a Link header)
        self.tree_pages = 0  # pages of tree listings served
        self.lock = threading.Lock()
        self.storage_auth: set[str] = set()  # Authorization headers that reached the storage (none should)
        self.server = Server(("127.0.0.1", 0), type("Handler", (_Handler,), {"hub": self}))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # LFS files are served from another origin, as the Hub's CDN serves them: no token may follow a redirect
        self.storage = Server(("127.0.0.1", 0), type("Storage", (_Handler,), {"hub": self, "cdn": True}))
        self.storage_url = f"http://127.0.0.1:{self.storage.server_address[1]}"
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self.server, self.storage)]

    def __enter__(self) -> FakeHub:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self.server, self.storage):
            server.shutdown()
            server.server_close()

    def files(self, repo_id: str, ref: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id][ref]

    def at(self, repo_id: str, revision: str) -> dict[str, bytes] | None:
        """The files at a branch (or PR ref) or at a commit of ``repo_id``; ``None`` if there is no such revision."""
        refs = self.repos.get(repo_id, {})
        if revision in refs:
            return refs[revision]
        owner, files = self.snapshots.get(revision, ("", {}))
        return files if owner == repo_id else None


class Server(ThreadingHTTPServer):
    """A listen backlog as a real server's: with the default 5, concurrent range requests (each a new connection
    to an HTTP/1.0 server) overflow it and wait a second for the client to send its SYN again."""

    request_queue_size = 128


@functools.lru_cache(maxsize=1024)
def digests(content: bytes) -> tuple[str, str]:
    """A file's git blob id and sha256, computed once per content (a shard is asked for many times)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest(), hashlib.sha256(content).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    cdn = False

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self._write(data)

    def _write(self, body: bytes) -> None:
        with self.hub.sent_lock:
            self.hub.sent += len(body)
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _route(self) -> tuple[list[str], dict[str, list[str]]]:
        url = urlparse(self.path)
        if self.headers.get("Authorization"):
            (self.hub.storage_auth if self.cdn else self.hub.auth_headers).add(self.headers["Authorization"])
        return url.path.strip("/").split("/"), parse_qs(url.query)

    def do_POST(self) -> None:
        parts, query = self._route()
        body = self._body()
        with self.hub.lock:
            if parts[:3] == ["api", "repos", "create"]:
                return self._create(json.loads(body))
            if parts[:2] == ["api", "validate-yaml"]:  # the client checks README.md front matter before committing
                content = json.loads(body)["content"]
                try:
                    yaml.safe_load(content.split("---")[1])
                except (yaml.YAMLError, IndexError) as err:
                    return self._reply(400, {"error": f"invalid YAML: {err}"})
                return self._reply(200, {"warnings": []})
            if parts[-4:] == ["info", "lfs", "objects", "batch"]:  # <datasets/>owner/name.git/info/lfs/...
                return self._batch(json.loads(body))
            if parts[0] == "api" and parts[1] in KINDS and parts[4] == "preupload":
                files = json.loads(body)["files"]
                modes = [{"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                          "shouldIgnore": False} for f in files]  # fmt: skip
                return self._reply(200, {"files": modes})
            if parts[0] == "api" and parts[1] in KINDS and parts[4] == "commit":
                return self._commit(f"{parts[2]}/{parts[3]}", unquote("/".join(parts[5:])), body, query)
        self._reply(404, {"error": f"no route {self.path}"})

    def do_GET(self) -> None:
        parts, query = self._route()
        if parts[0] == "api" and len(parts) == 4:  # a repository's info: at its main branch
            parts += ["revision", "main"]
        parts += [""] * (6 - len(parts))
        if parts[0] == "api" and parts[1] in KINDS and parts[4] in ("tree", "revision"):
            with self.hub.lock:
                failing, self.hub.fail_api_reads = self.hub.fail_api_reads > 0, max(0, self.hub.fail_api_reads - 1)
            if failing:
                return self._reply(503, {"error": "simulated outage"})
            repo_id, ref = f"{parts[2]}/{parts[3]}", unquote(parts[5])
            if repo_id not in self.hub.repos:
                return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            files = self.hub.at(repo_id, ref)
            sha = self.hub.heads.get((repo_id, ref), ref)  # a branch's last commit, or the commit named
            if files is None or (parts[4] == "revision" and sha not in self.hub.snapshots):
                return self._reply(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
            if parts[4] == "tree":
                return self._tree(sorted(files.items()), int(query.get("cursor", ["0"])[0]))
            return self._reply(200, {"id": repo_id, "sha": sha, "siblings": [{"rfilename": p} for p in sorted(files)]})
        if parts[0] == "api" and parts[1] in KINDS and parts[4] == "discussions":
            return self._pull_requests(f"{parts[2]}/{parts[3]}", parts[1][:-1], query)
        if parts[0] in KINDS and parts[3] == "resolve":  # <datasets>/owner/name/resolve/<revision>/<path>
            return self._resolve(parts, head=False)
        if parts[0] == "lfs-download" and parts[1] in self.hub.lfs:
            self.hub.storage_gets.append((parts[1], self.headers.get("Range")))
            wanted = self.headers.get("Range") or ""
            with self.hub.lock:  # a span read (bytes=A-B), not a tail: one the client reads from where it was sent
                expired = self.hub.expire_storage > 0 and wanted.startswith("bytes=") and wanted[6:7] != "-"
                self.hub.expire_storage -= expired
            if expired:
                return self._reply(403, {"error": "Request has expired"})
            return self._send(self.hub.lfs[parts[1]])
        self._reply(404, {"error": f"no route {self.path}"})

    def _pull_requests(self, repo_id: str, kind: str, query: dict[str, list[str]]) -> None:
        """The Hub's discussion listing, of pull requests only (one page): those ``create_pr`` commits opened."""
        if repo_id not in self.hub.repos:
            return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        numbers = sorted(int(ref.rsplit("/", 1)[1]) for ref in self.hub.repos[repo_id] if ref.startswith("refs/pr/"))
        status = query.get("status", ["all"])[0]
        shown = [n for n in numbers if status == "all" or ("closed" if n in self.hub.closed_prs else "open") == status]
        found = [{"num": n, "title": f"pull request {n}", "author": {"name": "someone"}, "isPullRequest": True,
                  "createdAt": "2026-11-28T00:00:00.000Z", "status": "closed" if n in self.hub.closed_prs else "open",
                  "repo": {"name": repo_id, "type": kind}} for n in shown]  # fmt: skip
        self._reply(200, {"discussions": found, "count": len(found), "start": 0, "numClosedDiscussions": 0})

    def _tree(self, files: list[tuple[str, bytes]], start: int) -> None:
        """One page of a recursive listing, from entry ``start``; a ``Link`` header names the next page."""
        end = start + self.hub.tree_page
        self.hub.tree_pages += 1
        more = (
            {"Link": f'<{self.hub.url}{urlparse(self.path).path}?cursor={end}>; rel="next"'} if end < len(files) else {}
        )
        self._reply(200, [self._entry(p, c) for p, c in files[start:end]], more)

    def do_HEAD(self) -> None:
        """What ``hf_hub_download`` asks before a download: the commit, the etag and the size."""
        parts, _ = self._route()
        parts += [""] * (6 - len(parts))
        if parts[0] in KINDS and parts[3] == "resolve":
            return self._resolve(parts, head=True)
        if parts[0] == "lfs-download" and parts[1] in self.hub.lfs:
            return self._send(self.hub.lfs[parts[1]], head=True)
        self._reply(404)

    def _resolve(self, parts: list[str], head: bool) -> None:
        with self.hub.lock:
            failing, self.hub.fail_downloads = self.hub.fail_downloads > 0, max(0, self.hub.fail_downloads - 1)
        if failing:
            return self._reply(503, {"error": "simulated outage"})
        repo_id, ref = f"{parts[1]}/{parts[2]}", unquote(parts[4])
        files, path = self.hub.at(repo_id, ref), unquote("/".join(parts[5:]))
        if files is None or path not in files:
            return self._reply(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
        content = files[path]
        blob = digests(content)[0]
        headers = {"X-Repo-Commit": self.hub.heads.get((repo_id, ref), ref), "ETag": f'"{blob}"'}
        if not head:
            self.hub.gets.append((path, self.headers.get("Range")))
        if path.endswith(LFS_SUFFIXES):  # the Hub answers LFS files with a redirect to its storage
            oid = digests(content)[1]
            with self.hub.lock:
                self.hub.lfs.setdefault(oid, content)  # a test may have changed the file in place
            headers.update({"Location": f"{self.hub.storage_url}/lfs-download/{oid}", "X-Linked-Etag": f'"{oid}"',
                            "X-Linked-Size": str(len(content))})  # fmt: skip
            return self._reply(302, None, headers)
        return self._send(content, head, headers)

    def _send(self, content: bytes, head: bool = False, headers: dict[str, str] | None = None) -> None:
        """``content``, or the part that a ``Range: bytes=A-B | A- | -N`` header asks for (206)."""
        wanted = self.headers.get("Range")
        start, end, status = 0, len(content), 200
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            if first:
                start, end = int(first), min(len(content), int(last) + 1 if last else len(content))
            else:
                start = max(0, len(content) - int(last))
            status = 206
        body = content[start:end]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(content)}")
        self.end_headers()
        if not head:
            self._write(body)

    def do_PUT(self) -> None:
        parts, _ = self._route()
        data = self._body()
        if parts[0] == "lfs-upload" and hashlib.sha256(data).hexdigest() == parts[1]:
            with self.hub.lock:  # uploads come in several threads: the count is checked and kept under the lock
                limit = self.hub.fail_lfs_puts_after
                failing = limit is not None and sum(self.hub.lfs_puts.values()) >= limit
                if not failing:
                    self.hub.lfs[parts[1]] = data
                    self.hub.lfs_puts[parts[1]] += 1
            return self._reply(500, {"error": "simulated outage"}) if failing else self._reply(200)
        self._reply(400, {"error": "bad upload"})

    def _entry(self, path: str, content: bytes) -> dict[str, Any]:
        blob, sha256 = digests(content)
        entry: dict[str, Any] = {"type": "file", "oid": blob, "size": len(content), "path": path}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": sha256, "size": len(content), "pointerSize": 134}
        return entry

    def _create(self, payload: dict[str, Any]) -> None:
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        if repo_id in self.hub.repos:
            return self._reply(
                409, {"error": "You already created this dataset repo", "url": f"{self.hub.url}/datasets/{repo_id}"}
            )
        self.hub.repos[repo_id] = {"main": {}}
        self._reply(200, {"url": f"{self.hub.url}/datasets/{repo_id}"})

    def _batch(self, payload: dict[str, Any]) -> None:
        self.hub.lfs_batches += 1
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._reply(200, {"transfer": "basic", "objects": objects}, {"Content-Type": "application/vnd.git-lfs+json"})

    def _commit(self, repo_id: str, ref: str, body: bytes, query: dict[str, list[str]]) -> None:
        if self.hub.fail_commits_after is not None and len(self.hub.commits) >= self.hub.fail_commits_after:
            return self._reply(500, {"error": "simulated outage"})
        if repo_id not in self.hub.repos:
            return self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        pr_url = None
        if query.get("create_pr") == ["1"]:
            number = sum(r.startswith("refs/pr/") for r in self.hub.repos[repo_id]) + 1
            self.hub.repos[repo_id][f"refs/pr/{number}"] = dict(self.hub.repos[repo_id].get(ref, {}))
            ref, pr_url = f"refs/pr/{number}", f"{self.hub.url}/datasets/{repo_id}/discussions/{number}"
        files = self.hub.repos[repo_id].setdefault(ref, {})
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    return self._reply(400, {"error": f"LFS object {value['oid']} was never uploaded"})
                files[value["path"]] = self.hub.lfs[value["oid"]]
            elif line["key"] == "deletedFile" and files.pop(value["path"], None) is None:  # deleted here, if there
                return self._reply(404, {"error": f"{value['path']} does not exist"})
        oid = hashlib.sha1(f"{len(self.hub.commits)}".encode()).hexdigest()
        self.hub.snapshots[oid] = (repo_id, dict(files))
        self.hub.heads[(repo_id, ref)] = oid
        self.hub.commits.append(
            {
                "ref": ref,
                "summary": lines[0]["value"]["summary"],
                "paths": sorted(line["value"]["path"] for line in lines[1:]),
            }
        )
        if self.hub.lose_commit_answers:
            self.hub.lose_commit_answers -= 1
            return self._reply(502, {"error": "simulated gateway timeout (the commit was applied)"})
        self._reply(
            200,
            {
                "commitUrl": f"{self.hub.url}/datasets/{repo_id}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": pr_url,
            },
        )

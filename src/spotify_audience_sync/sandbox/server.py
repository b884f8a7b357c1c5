"""The sandbox's HTTP front: routing, fault injection, rate limiting and error bodies.

stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 keep-alive: no dependency, real sockets, so
clients meet genuine connection drops and timeouts. Domain rules live in the sibling modules.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import secrets
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlsplit
from xml.sax.saxutils import escape

from spotify_audience_sync.sandbox.config import FaultRule
from spotify_audience_sync.sandbox.problem import Problem

if TYPE_CHECKING:
    from spotify_audience_sync.sandbox import Sandbox

__all__ = ["ROUTE_NAMES", "SandboxServer"]

log = logging.getLogger(__name__)

_AD_ACCOUNT = r"/ads/v3/ad_accounts/(?P<account>[^/]+)"
_ACCOUNT = _AD_ACCOUNT + r"/audiences"
_AUDIENCE = r"/(?P<audience>(?!upload_url$|datasets$)[^/]+)"  # literal segments route first
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/authorize"), "authorize"),
    ("POST", re.compile(r"/api/token"), "token"),
    ("GET", re.compile(_AD_ACCOUNT), "getAdAccount"),
    ("POST", re.compile(_ACCOUNT + r"/upload_url"), "createUploadUrl"),
    ("POST", re.compile(_ACCOUNT + r"/upload_url/(?P<audience>[^/]+)"), "replaceUploadUrl"),
    ("GET", re.compile(_ACCOUNT + r"/datasets"), "getAudienceEligibleDatasets"),
    ("POST", re.compile(_ACCOUNT), "createAudience"),
    ("GET", re.compile(_ACCOUNT), "batchGetAudiences"),
    ("GET", re.compile(_ACCOUNT + _AUDIENCE), "getAudience"),
    ("PATCH", re.compile(_ACCOUNT + _AUDIENCE), "editAudience"),
    ("DELETE", re.compile(_ACCOUNT + _AUDIENCE), "deleteAudience"),
    ("POST", re.compile(r"/upload/sandbox-audiences/(?P<upload>[^/]+)\.csv"), "gcsStart"),
    ("PUT", re.compile(r"/upload/sandbox-audiences/(?P<upload>[^/]+)\.csv"), "gcsPut"),
    ("DELETE", re.compile(r"/upload/sandbox-audiences/(?P<upload>[^/]+)\.csv"), "gcsCancel"),
    ("GET", re.compile(r"/_sandbox/health"), "adminHealth"),
    ("GET", re.compile(r"/_sandbox/config"), "adminConfig"),
    ("GET", re.compile(r"/_sandbox/stats"), "adminStats"),
    ("POST", re.compile(r"/_sandbox/faults"), "adminFaults"),
    ("DELETE", re.compile(r"/_sandbox/faults"), "adminClearFaults"),
    ("POST", re.compile(r"/_sandbox/reset"), "adminReset"),
    ("POST", re.compile(r"/_sandbox/tokens"), "adminTokens"),
    ("GET", re.compile(r"/_sandbox/audiences/(?P<audience>[^/]+)/membership"), "adminMembership"),
    ("GET", re.compile(r"/_sandbox/uploads/(?P<upload>[^/]+)"), "adminUpload"),
    ("POST", re.compile(r"/_sandbox/audiences/(?P<audience>[^/]+)/status"), "adminStatus"),
]

ROUTE_NAMES = frozenset(name for _, _, name in _ROUTES)


class _Window:
    """Sliding-window limiter per access token (1,500 per 30 s by default)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._lock = threading.Lock()
        self._seen: dict[str, deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    def admit(self, token: str) -> dict[str, str]:
        config, now = self._sandbox.config, time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(token, deque())
            while seen and seen[0] <= now - config.rate_window:
                seen.popleft()
            if len(seen) >= config.rate_limit:
                wait = str(max(1, math.ceil(seen[0] + config.rate_window - now)))
                raise Problem(
                    429,
                    "API rate limit exceeded",
                    code="RATE_LIMITED",
                    headers={
                        "Retry-After": wait,
                        "X-RateLimit-Limit": str(config.rate_limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": wait,
                    },
                )
            seen.append(now)
            remaining = config.rate_limit - len(seen)
        return {
            "X-RateLimit-Limit": str(config.rate_limit),
            "X-RateLimit-Remaining": str(remaining),
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines would carry signatures and codes in their query strings."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ----------------------------------------------------------------------------
    def _read_body(self, limit: int | None = None) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body or status not in (204, 304):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode("utf-8")
        self._send(status, body, "application/json", headers or {})

    def _problem(self, problem: Problem) -> None:
        if problem.kind == "gcs":
            xml = (
                "<?xml version='1.0' encoding='UTF-8'?><Error>"
                f"<Code>{escape(problem.code or 'Error')}</Code>"
                f"<Message>{escape(problem.message)}</Message></Error>"
            )
            self._send(problem.status, xml.encode(), "application/xml", problem.headers)
        elif problem.kind == "oauth":
            oauth = {"error": problem.code, "error_description": problem.message}
            self._json(problem.status, oauth, problem.headers)
        elif problem.kind == "text":
            self._send(problem.status, problem.message.encode(), "text/plain", problem.headers)
        else:
            codes = [{"code": problem.code or "ERROR", "definition": problem.message}]
            payload: dict[str, Any] = {
                "sp_trace_id": str(uuid.uuid4()),
                "messages": [problem.message],
                self.server.sandbox.config.error_codes_key: codes,
            }
            self._json(problem.status, payload, problem.headers)

    def _drop(self, partial: bool) -> None:
        if partial:
            length = int(self.headers.get("Content-Length") or 0)
            self._read_body(limit=length // 2)
        self.close_connection = True

    def _drop_gcs_chunk(self, rule: FaultRule, upload_id: str, query: str) -> None:
        """Hang up part-way through a chunk; the session keeps what arrived (256 KiB units)."""
        length = int(self.headers.get("Content-Length") or 0)
        prefix = self._read_body(limit=length // 2 if rule.drop_after is None else rule.drop_after)
        lowered = {k.lower(): v for k, v in self.headers.items()}
        with contextlib.suppress(Problem):  # an invalid chunk persists nothing
            self.server.sandbox.storage.receive_partial(
                upload_id, dict(parse_qsl(query)), lowered, prefix
            )
        self.close_connection = True

    def _fault_answer(self, rule: FaultRule, route: str) -> None:
        status = rule.status or 500
        headers: dict[str, str] = {}
        if status == 429:
            wait = str(rule.retry_after if rule.retry_after is not None else 1)
            headers = {
                "Retry-After": wait,
                "X-RateLimit-Limit": "1500",
                "X-RateLimit-Remaining": "0",
            }
        kind = "gcs" if route.startswith("gcs") else "oauth" if route == "token" else "ads"
        if kind == "gcs":  # say so, or a client may race to reuse the closing connection
            headers["Connection"] = "close"
        self._problem(Problem(status, f"injected fault ({status})", headers=headers, kind=kind))

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        name = ""
        for verb, pattern, route in _ROUTES:
            match = pattern.fullmatch(url.path)
            if match and verb == method:
                name = route
                break
        else:
            known = any(p.fullmatch(url.path) for _, p, _ in _ROUTES)
            self._read_body()
            self._problem(Problem(405 if known else 404, "No such route", code="NOT_FOUND"))
            return
        faults = self.server.sandbox.faults
        rule = faults.take(name, "before")
        if rule is not None:
            time.sleep(rule.delay)
            if rule.drop and name == "gcsPut":
                self._drop_gcs_chunk(rule, match.group("upload"), url.query)
                return
            if rule.drop:
                self._drop(partial=True)
                return
            if rule.status is not None:
                self._read_body()
                self._fault_answer(rule, name)
                return
        body = self._read_body()
        try:
            ack = rule.ack_bytes if rule is not None else None
            status, payload, headers = self._route(name, match.groupdict(), url.query, body, ack)
        except Problem as problem:
            self._problem(problem)
            return
        except Exception:  # a sandbox bug must look like a 500, not a dropped connection
            log.exception("sandbox: %s failed", name)
            self._problem(Problem(500, "internal sandbox error", code="INTERNAL"))
            return
        after = faults.take(name, "after")
        if after is not None:
            time.sleep(after.delay)
            if after.drop:
                self._drop(partial=False)
                return
            if after.status is not None:
                self._fault_answer(after, name)
                return
        if isinstance(payload, bytes):
            self._send(status, payload, "text/plain", headers)
        else:
            self._json(status, payload, headers)

    def _route(
        self, name: str, groups: dict[str, str], query: str, body: bytes, ack: int | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        sandbox = self.server.sandbox
        if name.startswith("admin"):
            self._check_admin_key()
            return sandbox.admin(name, groups, body)
        if name == "authorize":
            return 302, b"", {"Location": sandbox.accounts.authorize(dict(parse_qsl(query)))}
        if name == "token":
            form = dict(parse_qsl(body.decode("utf-8", "replace")))
            sandbox.accounts.check_client(self.headers.get("Authorization"), form)
            headers = {"Cache-Control": "no-store"}
            return 200, sandbox.accounts.grant(form), headers
        lowered = {k.lower(): v for k, v in self.headers.items()}
        if name == "gcsStart":
            params = dict(parse_qsl(query))
            session = sandbox.storage.start(groups["upload"], params, lowered, body)
            location = f"{sandbox.base_url}{urlsplit(self.path).path}?{query}&upload_id={session}"
            return 201, b"", {"Location": location}
        if name == "gcsPut":
            status, headers = sandbox.storage.put(
                groups["upload"], dict(parse_qsl(query)), lowered, body, ack
            )
            return status, b"", headers
        if name == "gcsCancel":
            status = sandbox.storage.cancel(groups["upload"], dict(parse_qsl(query)), lowered)
            return status, b"", {}
        token = sandbox.accounts.check_bearer(self.headers.get("Authorization"))
        limits = sandbox.window.admit(token)
        account = sandbox.audiences.check_account(groups["account"])
        status, payload = self._ads(name, account, groups.get("audience", ""), query, body)
        return status, payload, limits

    def _check_admin_key(self) -> None:
        """With an admin key set (a sandbox on the network), admin routes need it."""
        key = self.server.sandbox.admin_key
        if key is None:
            return
        given = self.headers.get("X-Sandbox-Key", "").encode("utf-8", "replace")
        if not secrets.compare_digest(given, key.encode("utf-8")):
            raise Problem(401, "admin routes need the X-Sandbox-Key header", code="UNAUTHENTICATED")

    def _ads(
        self, name: str, account: str, audience: str, query: str, body: bytes
    ) -> tuple[int, Any]:
        audiences, base = self.server.sandbox.audiences, self.server.sandbox.base_url
        if name == "getAdAccount":
            return 200, audiences.ad_account(account)
        if name == "createUploadUrl":
            return 200, audiences.new_upload(account, base)
        if name == "replaceUploadUrl":
            return 200, audiences.replacement_upload(account, audience, base)
        if name == "getAudienceEligibleDatasets":
            return 200, {
                "paging": {"page_size": 50, "total_results": 0, "offset": 0},
                "datasets": [],
            }
        if name == "batchGetAudiences":
            return 200, audiences.list(account, parse_qs(query))
        if name == "getAudience":
            return 200, audiences.get(account, audience)
        if name == "deleteAudience":
            return 200, audiences.delete(account, audience)
        try:
            document = json.loads(body or b"null")
        except ValueError:
            raise Problem(400, "request body is not JSON", code="INVALID_ARGUMENT") from None
        if name == "createAudience":
            return 201, audiences.create(account, document)
        return 200, audiences.edit(account, audience, document)


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its Sandbox (state, config, faults)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        handler: Callable[..., _Handler] = type(
            "Handler", (_Handler,), {"timeout": sandbox.config.request_timeout}
        )
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeouts, drop faults) is normal here: no traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

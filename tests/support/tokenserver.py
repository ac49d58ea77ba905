"""A Docker-registry token server (distribution "token" auth) for tests, on stdlib ``http.server``.

``GET /token?service=S&scope=repository:NAME:pull,push`` (Basic credentials optional) and the
OAuth2 form ``POST /token`` (``grant_type=password`` or ``refresh_token``) answer with an RS256 JWT
whose header carries ``x5c`` (the token-signing cert, chained to the test CA that the registry
trusts via ``rootcertbundle``). Anonymous callers get pull-only access (if ``anonymous_pull``);
callers with valid credentials get every action they ask for (``pull_only_users`` only pull).

Each request is recorded as a :class:`TokenRequest` (path, query, scopes, user; never passwords,
tokens or Authorization headers) so tests can assert scopes and token caching.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.certs import TLSCerts
from tests.support.procs import serve_http, stop_http

DEFAULT_SERVICE = "test-registry"
DEFAULT_ISSUER = "test-issuer"


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server saw (no secrets)."""

    method: str
    path: str  # path + query for GET; path only for POST
    service: str | None
    scopes: tuple[str, ...]  # as requested, e.g. "repository:test/pkg:pull,push"
    user: str | None  # authenticated user, None when anonymous
    grant_type: str | None  # POST only
    status: int
    granted: tuple[str, ...]  # e.g. "repository:test/pkg:pull"


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """Split ``type:name:a,b`` (name may itself contain ``:``) into parts; None if malformed."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first < 0 or last == first:
        return None
    actions = [a for a in scope[last + 1 :].split(",") if a]
    return scope[:first], scope[first + 1 : last], actions


class TokenServer:
    """Threaded token server on 127.0.0.1 (free port). Use as a context manager or start()/stop()."""

    def __init__(
        self,
        certs: TLSCerts,
        *,
        users: Mapping[str, str] | None = None,
        pull_only_users: Iterable[str] = (),
        anonymous_pull: bool = True,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        expires_in: int = 300,
    ) -> None:
        self.certs = certs
        self.users: dict[str, str] = dict(users if users is not None else {"testuser": "testpass"})
        self.pull_only_users = set(pull_only_users)
        self.anonymous_pull = anonymous_pull
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self._key_pem = certs.token_key.read_bytes()
        cert = x509.load_pem_x509_certificate(certs.token_cert.read_bytes())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        self._fail: list[int] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TokenServer:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        server = self

        class _Handler(_TokenHandler):
            token_server = server

        self._httpd, self._thread = serve_http(_Handler, "token-server")
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Idempotent."""
        if self._httpd is None:
            return
        stop_http(self._httpd, self._thread)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after start())."""
        assert self._httpd is not None, "token server not started"
        return int(self._httpd.server_address[1])

    @property
    def realm(self) -> str:
        """The realm URL the registry advertises (``http://127.0.0.1:PORT/token``)."""
        return f"http://127.0.0.1:{self.port}/token"

    # -- test controls -----------------------------------------------------------------------

    @property
    def requests(self) -> list[TokenRequest]:
        """A copy of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget recorded requests and pending failures."""
        with self._lock:
            self._requests.clear()
            self._fail.clear()

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (before checking credentials)."""
        with self._lock:
            self._fail.extend([status] * times)

    def issue_refresh_token(self, user: str) -> str:
        """A refresh token (docker ``identitytoken``) for ``user`` usable with grant_type=refresh_token."""
        tok = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[tok] = user
        return tok

    def issue(self, user: str | None, access: list[dict[str, Any]], *, expires_in: int | None = None) -> str:
        """Sign a registry JWT for ``user`` with the given ``access`` claim."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": self.service,
            "exp": now + (expires_in if expires_in is not None else self.expires_in),
            "nbf": now - 10,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "access": access,
        }
        return jwt.encode(
            claims, self._key_pem, algorithm="RS256", headers={"x5c": [self._x5c], "typ": "JWT"}
        )

    # -- request logic (called from handler threads) -----------------------------------------

    def _grant(self, user: str | None, scopes: Iterable[str]) -> list[dict[str, Any]]:
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            typ, name, actions = parsed
            if user is None:
                allowed = (
                    [a for a in actions if a == "pull"] if self.anonymous_pull and typ == "repository" else []
                )
            elif user in self.pull_only_users:
                allowed = [a for a in actions if a == "pull"]
            else:
                allowed = actions
            if allowed:
                access.append({"type": typ, "name": name, "actions": allowed})
        return access

    def _record(self, req: TokenRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _pop_failure(self) -> int | None:
        with self._lock:
            return self._fail.pop(0) if self._fail else None

    def _check_password(self, user: str, password: str) -> bool:
        expected = self.users.get(user)
        return expected is not None and secrets.compare_digest(expected, password)

    def _refresh_user(self, token: str) -> str | None:
        with self._lock:
            return self._refresh_tokens.get(token)


def _split_scopes(values: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out.extend(s for s in v.split(" ") if s)
    return tuple(out)


class _TokenHandler(BaseHTTPRequestHandler):
    token_server: TokenServer
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # library code never prints
        pass

    def _send_json(
        self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _basic_user(self) -> tuple[str | None, bool]:
        """(user, ok): user None + ok True means anonymous; ok False means bad credentials."""
        header = self.headers.get("Authorization")
        if not header:
            return None, True
        kind, _, value = header.partition(" ")
        if kind.lower() != "basic":
            return None, False
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, False
        return (user, True) if self.token_server._check_password(user, password) else (user, False)

    def _answer(self, req: TokenRequest, user: str | None, scopes: tuple[str, ...], refresh: bool) -> None:
        ts = self.token_server
        access = ts._grant(user, scopes)
        token = ts.issue(user, access)
        body: dict[str, Any] = {
            "token": token,
            "access_token": token,
            "expires_in": ts.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if refresh and user is not None:
            body["refresh_token"] = ts.issue_refresh_token(user)
        granted = tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
        ts._record(
            TokenRequest(req.method, req.path, req.service, scopes, user, req.grant_type, 200, granted)
        )
        self._send_json(200, body)

    def _reject(self, req: TokenRequest, status: int, message: str) -> None:
        self.token_server._record(dataclasses.replace(req, status=status))
        headers = {"WWW-Authenticate": 'Basic realm="test-token-server"'} if status == 401 else None
        code = "UNAUTHORIZED" if status == 401 else HTTPStatus(status).phrase.upper().replace(" ", "_")
        self._send_json(status, {"errors": [{"code": code, "message": message}]}, headers)

    def _refused(self, path: str, base: TokenRequest) -> bool:
        """Answer 404 off ``/token``, or the next injected failure; ``True`` when it answered."""
        if path != "/token":
            self._reject(base, 404, "not found")
            return True
        failure = self.token_server._pop_failure()
        if failure is not None:
            self._reject(base, failure, "injected failure")
            return True
        return False

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        scopes = _split_scopes(query.get("scope", []))
        service = query.get("service", [None])[0]
        base = TokenRequest("GET", self.path, service, scopes, None, None, 0, ())
        if self._refused(url.path, base):
            return
        user, ok = self._basic_user()
        base = TokenRequest("GET", self.path, service, scopes, user if ok else None, None, 0, ())
        if not ok:
            self._reject(base, 401, "invalid username or password")
            return
        self._answer(base, user, scopes, refresh=query.get("offline_token", ["false"])[0] == "true")

    def do_POST(self) -> None:
        ts = self.token_server
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode(errors="replace"))
        grant = form.get("grant_type", [None])[0]
        scopes = _split_scopes(form.get("scope", []))
        service = form.get("service", [None])[0]
        base = TokenRequest("POST", url.path, service, scopes, None, grant, 0, ())
        if self._refused(url.path, base):
            return
        user: str | None
        if grant == "password":
            user = form.get("username", [""])[0]
            if not ts._check_password(user, form.get("password", [""])[0]):
                self._reject(base, 401, "invalid username or password")
                return
        elif grant == "refresh_token":
            user = ts._refresh_user(form.get("refresh_token", [""])[0])
            if user is None:
                self._reject(base, 401, "invalid refresh token")
                return
        else:
            self._reject(base, int(HTTPStatus.BAD_REQUEST), f"unsupported grant_type {grant!r}")
            return
        base = TokenRequest("POST", url.path, service, scopes, user, grant, 0, ())
        self._answer(base, user, scopes, refresh=form.get("access_type", [""])[0] == "offline")

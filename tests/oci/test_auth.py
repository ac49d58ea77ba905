"""WWW-Authenticate parsing and the Bearer token flow against a real token server."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping

import httpx
import pytest

from tests.oci.test_client import Credentials, DictKeychain
from tests.support.tokenserver import TokenServer
from xplane.oci.auth import (
    Authenticator,
    Challenge,
    basic_header,
    parse_www_authenticate,
    pick_challenge,
    repository_scope,
)
from xplane.oci.errors import AuthenticationError, RegistryError

REG = "registry.test:5000"

# (header value, expected challenges as (scheme, params))
CHALLENGES = [
    (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
        [
            (
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:library/alpine:pull",
                },
            )
        ],
    ),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"})]),
    ("Basic realm=simple", [("basic", {"realm": "simple"})]),
    (
        'Bearer realm="https://r/t", scope="repository:a:pull repository:b:pull,push", error="insufficient_scope"',
        [
            (
                "bearer",
                {
                    "realm": "https://r/t",
                    "scope": "repository:a:pull repository:b:pull,push",
                    "error": "insufficient_scope",
                },
            )
        ],
    ),
    (
        'Basic realm="x, y", Bearer realm="https://t/token",service="s"',
        [("basic", {"realm": "x, y"}), ("bearer", {"realm": "https://t/token", "service": "s"})],
    ),
    ('BEARER REALM="a\\"b"', [("bearer", {"realm": 'a"b'})]),
    ("Negotiate", [("negotiate", {})]),
    ("", []),
]


@pytest.mark.parametrize(("header", "expected"), CHALLENGES)
def test_parse_www_authenticate(header: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    got = [(c.scheme, dict(c.params)) for c in parse_www_authenticate(header)]
    assert got == expected


def test_pick_challenge_prefers_bearer_across_headers() -> None:
    headers = httpx.Headers(
        [("WWW-Authenticate", 'Basic realm="r"'), ("WWW-Authenticate", 'Bearer realm="t"')]
    )
    ch = pick_challenge(headers)
    assert ch is not None and ch.scheme == "bearer" and ch.realm == "t"
    assert pick_challenge(httpx.Headers({"WWW-Authenticate": "Negotiate"})) is None
    assert Challenge("bearer", {"scope": "a b"}).scopes == ("a", "b")


def test_scope_and_basic_header() -> None:
    assert repository_scope("org/pkg", ("pull", "push")) == "repository:org/pkg:pull,push"
    assert basic_header("u", "p:w") == "Basic " + base64.b64encode(b"u:p:w").decode()


# -- token flow against tests.support.tokenserver -----------------------------------------------


@pytest.fixture
def tokens(token_server: TokenServer) -> Iterator[TokenServer]:
    token_server.reset()
    yield token_server
    token_server.reset()


def _authenticator(ts: TokenServer, keychain: DictKeychain | None) -> tuple[Authenticator, httpx.Client]:
    http = httpx.Client(timeout=5)

    def send(
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str],
        form: Mapping[str, str] | None,
        params: list[tuple[str, str]] | None,
    ) -> httpx.Response:
        return http.request(
            method, url, headers=dict(headers), data=dict(form) if form else None, params=params
        )

    auth = Authenticator(keychain, send)
    auth.set_challenge(REG, Challenge("bearer", {"realm": ts.realm, "service": ts.service}))
    return auth, http


def test_token_cached_per_scope(tokens: TokenServer) -> None:
    kc = DictKeychain({REG: Credentials(username="testuser", password="testpass")})
    auth, http = _authenticator(tokens, kc)
    with http:
        pull = [repository_scope("org/a")]
        h1 = auth.authorization(REG, "org/a", pull)
        h2 = auth.authorization(REG, "org/a", pull)
        assert h1 == h2 and h1 is not None and h1.startswith("Bearer ")
        assert len(tokens.requests) == 1
        push = [repository_scope("org/a", ("pull", "push"))]
        h3 = auth.authorization(REG, "org/a", push)
        assert h3 != h1
        reqs = tokens.requests
        assert [r.scopes for r in reqs] == [("repository:org/a:pull",), ("repository:org/a:pull,push",)]
        assert all(r.user == "testuser" and r.method == "GET" and r.service == tokens.service for r in reqs)
        assert reqs[1].granted == ("repository:org/a:pull,push",)
        # refresh ignores the cache
        auth.authorization(REG, "org/a", pull, refresh=True)
        assert len(tokens.requests) == 3


def test_token_expiry_refetches(tokens: TokenServer) -> None:
    auth, http = _authenticator(tokens, DictKeychain({}))
    now = [1000.0]
    auth._clock = lambda: now[0]
    with http:
        scope = [repository_scope("org/b")]
        auth.authorization(REG, "org/b", scope)
        now[0] += tokens.expires_in * 0.5
        auth.authorization(REG, "org/b", scope)
        assert len(tokens.requests) == 1
        now[0] += tokens.expires_in
        auth.authorization(REG, "org/b", scope)
        assert len(tokens.requests) == 2
        assert all(r.user is None for r in tokens.requests)  # anonymous


def test_identity_token_uses_oauth_post(tokens: TokenServer) -> None:
    refresh = tokens.issue_refresh_token("testuser")
    kc = DictKeychain({REG: Credentials(identity_token=refresh)})
    auth, http = _authenticator(tokens, kc)
    with http:
        assert auth.authorization(REG, "org/c", [repository_scope("org/c", ("pull", "push"))])
    (req,) = tokens.requests
    assert (req.method, req.grant_type, req.user, req.status) == ("POST", "refresh_token", "testuser", 200)
    assert req.granted == ("repository:org/c:pull,push",)


def test_bad_password_names_source_not_secret(tokens: TokenServer) -> None:
    kc = DictKeychain({REG: Credentials(username="testuser", password="wrong-s3cret")})
    auth, http = _authenticator(tokens, kc)
    with http, pytest.raises(AuthenticationError) as info:
        auth.authorization(REG, "org/d", [repository_scope("org/d")])
    text = str(info.value)
    assert "test keychain" in text and "rejected" in text
    assert f"xp registry login {REG}" in text
    assert "wrong-s3cret" not in text
    assert info.value.status == 401 and info.value.registry == REG


def test_token_server_failure_is_registry_error(tokens: TokenServer) -> None:
    auth, http = _authenticator(tokens, DictKeychain({}))
    tokens.fail_next(503)
    with http, pytest.raises(RegistryError, match="answered HTTP 503") as info:
        auth.authorization(REG, "org/e", [repository_scope("org/e")])
    assert not isinstance(info.value, AuthenticationError)


def test_registry_token_and_basic_need_no_token_server(tokens: TokenServer) -> None:
    kc = DictKeychain({REG: Credentials(registry_token="opaque-bearer")})
    auth, http = _authenticator(tokens, kc)
    with http:
        assert auth.authorization(REG, "org/f", ["x"]) == "Bearer opaque-bearer"
        kc2 = DictKeychain({REG: Credentials(username="u", password="p")})
        basic = Authenticator(kc2, auth._send)
        basic.set_challenge(REG, Challenge("basic", {"realm": "r"}))
        assert basic.authorization(REG, "org/f", []) == basic_header("u", "p")
        anon = Authenticator(DictKeychain({}), auth._send)
        anon.set_challenge(REG, Challenge("basic", {"realm": "r"}))
        assert anon.authorization(REG, "org/f", []) is None
        anon.set_challenge(REG, None)
        assert anon.authorization(REG, "org/f", []) is None
    assert tokens.requests == []


def test_missing_credentials_message_lists_searched_sources() -> None:
    auth = Authenticator(
        DictKeychain({}, searched=["/home/u/.docker/config.json", "$REGISTRY_AUTH_FILE"]), None
    )  # type: ignore[arg-type]
    err = auth.rejected(REG, "org/g", None)
    assert isinstance(err, AuthenticationError)
    assert "/home/u/.docker/config.json" in str(err) and "$REGISTRY_AUTH_FILE" in str(err)
    assert "no credentials found" in str(err) and f"xp registry login {REG}" in str(err)

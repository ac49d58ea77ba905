"""Registry authentication: ``WWW-Authenticate`` challenges, Basic, and the Bearer token flow.

The flow follows the distribution token spec and Docker's client: a registry answers ``/v2/``
(or any request) with ``401`` and a challenge; for ``Basic`` the keychain's username and password
go with each request; for ``Bearer`` a token is fetched from the challenge's ``realm`` for the
``service`` and the repository ``scope`` (GET with Basic credentials, anonymous GET without, or an
OAuth2 ``POST`` with ``grant_type=refresh_token`` for a Docker ``identitytoken``) and cached per
scope until it expires. A Docker ``registrytoken`` is used as the bearer token as-is.

Nothing here logs or formats a password, token or ``Authorization`` header: the debug log says
which credential *source* was used, and :class:`Credentials` redacts its own ``repr``.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import httpx

from xplane.oci.errors import AuthenticationError, AuthorizationError, InvalidJSONError, RegistryError
from xplane.oci.jsonbound import loads_bounded

if TYPE_CHECKING:
    from xplane.oci.credentials import CredentialMatch

log = logging.getLogger(__name__)

CLIENT_ID = "xplane"
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds; the token spec's default for a missing expires_in


class KeychainLike(Protocol):
    """What the client needs from ``xplane.oci.credentials.Keychain``."""

    def lookup(self, registry: str, repository: str) -> CredentialMatch | None: ...

    @property
    def searched(self) -> list[str]: ...


class TokenSender(Protocol):
    """Sends a request to a token realm for ``registry`` (the client routes it to the realm host's
    session, decides whether plain HTTP may carry credentials there, and caps the response)."""

    def __call__(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str],
        form: Mapping[str, str] | None,
        params: list[tuple[str, str]] | None,
    ) -> httpx.Response: ...


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a lower-case scheme and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        """The token endpoint URL (Bearer) or the realm name (Basic)."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` to request a token for."""
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes the registry asked for (space-separated in the header)."""
        return tuple(s for s in self.params.get("scope", "").split(" ") if s)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` header value into its challenges (RFC 7235).

    Handles several challenges in one value, quoted strings with escapes and commas inside
    quotes. Parameter names are lower-cased; unparseable tails are ignored.
    """
    challenges: list[Challenge] = []
    i, n = 0, len(value)
    scheme: str | None = None
    params: dict[str, str] = {}

    def skip(chars: str) -> None:
        nonlocal i
        while i < n and value[i] in chars:
            i += 1

    while i < n:
        skip(" \t,")
        start = i
        while i < n and value[i] not in " \t,=":
            i += 1
        token = value[start:i]
        if not token:
            break
        skip(" \t")
        if i < n and value[i] == "=" and scheme is not None:
            i += 1
            skip(" \t")
            if i < n and value[i] == '"':
                i += 1
                buf: list[str] = []
                while i < n and value[i] != '"':
                    if value[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(value[i])
                    i += 1
                i += 1
                params[token.lower()] = "".join(buf)
            else:
                vstart = i
                while i < n and value[i] not in " \t,":
                    i += 1
                params[token.lower()] = value[vstart:i]
        elif i < n and value[i] == "=":
            # token68 (e.g. "Negotiate abc==") without a scheme: not something we use.
            while i < n and value[i] != ",":
                i += 1
        else:
            if scheme is not None:
                challenges.append(Challenge(scheme, params))
            scheme, params = token.lower(), {}
    if scheme is not None:
        challenges.append(Challenge(scheme, params))
    return challenges


def pick_challenge(headers: httpx.Headers) -> Challenge | None:
    """The challenge to answer from a 401's headers: Bearer if offered, else Basic, else None."""
    found: list[Challenge] = []
    for value in headers.get_list("www-authenticate"):
        found.extend(parse_www_authenticate(value))
    for scheme in ("bearer", "basic"):
        for ch in found:
            if ch.scheme == scheme:
                return ch
    return None


def repository_scope(repository: str, actions: Iterable[str] = ("pull",)) -> str:
    """``repository:<name>:<actions>``, e.g. ``repository:org/pkg:pull,push``."""
    return f"repository:{repository}:{','.join(actions)}"


def basic_header(username: str, password: str) -> str:
    """The value of a Basic ``Authorization`` header."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    expires_at: float


class Authenticator:
    """Answers registry challenges with credentials from a keychain; caches tokens per scope.

    One instance per :class:`~xplane.oci.client.RegistryClient`. ``send`` performs token-realm
    requests (the client decides TLS and plain-HTTP rules for the realm's host).
    """

    def __init__(self, keychain: KeychainLike | None, send: TokenSender) -> None:
        self.keychain = keychain
        self._send = send
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge | None] = {}
        self._matches: dict[tuple[str, str], CredentialMatch | None] = {}
        self._tokens: dict[tuple[str, str, tuple[str, ...], str], _Token] = {}
        self._clock: Callable[[], float] = time.monotonic

    # -- challenges ---------------------------------------------------------------------------

    def known(self, registry: str) -> bool:
        """True once the registry's challenge (or its absence) has been learnt."""
        return registry in self._challenges

    def challenge(self, registry: str) -> Challenge | None:
        """The challenge last seen from ``registry`` (None: it asked for no auth)."""
        return self._challenges.get(registry)

    def set_challenge(self, registry: str, challenge: Challenge | None) -> None:
        """Remember how ``registry`` wants to be authenticated."""
        with self._lock:
            self._challenges[registry] = challenge

    # -- credentials --------------------------------------------------------------------------

    def credentials(self, registry: str, repository: str) -> CredentialMatch | None:
        """The keychain's credentials for ``registry/repository`` (looked up once, source logged)."""
        key = (registry, repository)
        with self._lock:
            if key in self._matches:
                return self._matches[key]
        match = self.keychain.lookup(registry, repository) if self.keychain is not None else None
        if match is None:
            log.debug("no credentials for %s/%s; using anonymous access", registry, repository)
        else:
            log.debug("credentials for %s/%s from %s", registry, repository, match.source)
        with self._lock:
            self._matches[key] = match
        return match

    def searched(self) -> list[str]:
        """Where the keychain looked for credentials (for 401 messages)."""
        if self.keychain is None:
            return []
        try:
            return list(self.keychain.searched)
        except Exception:  # a broken keychain must not hide the real error
            return []

    # -- authorization ------------------------------------------------------------------------

    def authorization(
        self,
        registry: str,
        repository: str,
        scopes: Sequence[str],
        *,
        refresh: bool = False,
    ) -> str | None:
        """The ``Authorization`` header value for a request, or None for anonymous.

        For Bearer challenges this fetches a token for ``scopes`` unless one is cached (``refresh``
        ignores the cache). Raises :class:`AuthenticationError` when the token realm refuses.
        """
        ch = self._challenges.get(registry)
        match = self.credentials(registry, repository)
        creds = match.credentials if match is not None else None
        if creds is not None and creds.registry_token:
            return f"Bearer {creds.registry_token}"
        if ch is None:
            return None
        if ch.scheme == "basic":
            if creds is not None and creds.username is not None and creds.password is not None:
                return basic_header(creds.username, creds.password)
            return None
        if ch.scheme == "bearer":
            token = self.token(registry, repository, ch, scopes, match, refresh=refresh)
            return f"Bearer {token}"
        return None

    def token(
        self,
        registry: str,
        repository: str | None,
        ch: Challenge,
        scopes: Sequence[str],
        match: CredentialMatch | None,
        *,
        refresh: bool = False,
    ) -> str:
        """A bearer token for ``scopes`` from the challenge's realm (cached per scope set)."""
        realm = ch.realm
        if not realm:
            raise RegistryError(
                f"registry {registry} sent a Bearer challenge without a realm",
                registry=registry,
                repository=repository,
                hint="the registry's token auth is misconfigured; ask its operator",
            )
        wanted = tuple(sorted(set(scopes)))
        source = match.source if match is not None else "anonymous"
        key = (realm, ch.service or "", wanted, source)
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and not refresh and cached.expires_at > now:
            return cached.value
        value, lifetime = self._fetch_token(registry, repository, ch, wanted, match)
        # Renew a little early so a token never expires between cache check and use.
        token = _Token(value, now + max(1.0, lifetime * 0.9 - 5.0))
        with self._lock:
            self._tokens[key] = token
        return value

    def _fetch_token(
        self,
        registry: str,
        repository: str | None,
        ch: Challenge,
        scopes: tuple[str, ...],
        match: CredentialMatch | None,
    ) -> tuple[str, float]:
        assert ch.realm is not None
        creds = match.credentials if match is not None else None
        service = ch.service
        via = f"credentials from {match.source}" if match is not None else "anonymous"
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": CLIENT_ID,
            }
            if service:
                form["service"] = service
            if scopes:
                form["scope"] = " ".join(scopes)
            log.debug(
                "requesting token from %s (POST, %s) for %s", ch.realm, via, " ".join(scopes) or "no scope"
            )
            resp = self._send("POST", ch.realm, registry=registry, headers={}, form=form, params=None)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scopes)
            headers: dict[str, str] = {}
            if creds is not None and creds.username is not None and creds.password is not None:
                headers["Authorization"] = basic_header(creds.username, creds.password)
                params.append(("account", creds.username))
            log.debug(
                "requesting token from %s (GET, %s) for %s", ch.realm, via, " ".join(scopes) or "no scope"
            )
            resp = self._send("GET", ch.realm, registry=registry, headers=headers, form=None, params=params)
        with closing(resp):
            status = resp.status_code
            body = resp.read()
        if status in (401, 403):
            raise self.rejected(registry, repository, match, status, detail="the token server refused them")
        if status != 200:
            raise RegistryError(
                f"token server {ch.realm} for registry {registry} answered HTTP {status}",
                registry=registry,
                repository=repository,
                status=status,
                hint="retry later; if it persists, the registry's token service is failing",
            )
        why = ""
        try:
            doc = loads_bounded(body, what="the token response")
            value = doc.get("token") or doc.get("access_token")
            lifetime = float(doc.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except InvalidJSONError as e:
            value, lifetime, why = None, 0.0, f": {e.message}"
        except (ValueError, AttributeError, TypeError, OverflowError):
            value, lifetime = None, 0.0
        if not isinstance(value, str) or not value:
            raise RegistryError(
                f"token server {ch.realm} for registry {registry} returned no token{why}",
                registry=registry,
                repository=repository,
                status=status,
                hint="the registry's token service is misbehaving; ask its operator",
            )
        return value, max(lifetime, DEFAULT_TOKEN_LIFETIME)

    # -- errors -------------------------------------------------------------------------------

    def rejected(
        self,
        registry: str,
        repository: str | None,
        match: CredentialMatch | None,
        status: int = 401,
        *,
        detail: str = "",
    ) -> RegistryError:
        """The error for a 401 (or a refused token request): which credentials were tried, where we
        looked, and what to do."""
        where = f" {registry}/{repository}" if repository else f" {registry}"
        hint = f"run `xp registry login {registry}`"
        if match is not None and match.given:
            user = match.credentials.username
            what = f"the password for user {user!r}" if user else "the token"
            why = f"; {detail}" if detail else ""
            msg = f"authentication to{where} failed (HTTP {status}): the registry rejected {what} ({match.source}{why})"
            hint = (
                "check the username and password; registries with access tokens (GitHub, GitLab, Docker Hub "
                "with two-factor authentication) want a token as the password"
            )
        elif match is not None:
            why = f": {detail}" if detail else ""
            msg = f"authentication to{where} failed (HTTP {status}): the credentials from {match.source} were rejected{why}"
        else:
            searched = self.searched()
            looked = (
                "; searched: " + ", ".join(searched) if searched else "; no credential sources configured"
            )
            msg = f"authentication to{where} required (HTTP {status}): no credentials found{looked}"
        return AuthenticationError(
            msg,
            registry=registry,
            repository=repository,
            status=status,
            hint=hint,
        )

    def denied(
        self,
        registry: str,
        repository: str | None,
        match: CredentialMatch | None,
        what: str,
        detail: str = "",
    ) -> AuthorizationError:
        """The error for a 403: whose access was denied and what to try."""
        where = f"{registry}/{repository}" if repository else registry
        if match is not None:
            who = f"the credentials from {match.source}"
            hint = "the account lacks permission for this repository or action; check its access rights"
        else:
            searched = ", ".join(self.searched()) or "no credential sources configured"
            who = f"anonymous access (no credentials found; searched: {searched})"
            hint = f"run `xp registry login {registry}` with an account that may access {where}"
        return AuthorizationError(
            f"{what} in {where}: access denied (HTTP 403) for {who}{detail}",
            registry=registry,
            repository=repository,
            status=403,
            hint=hint,
        )

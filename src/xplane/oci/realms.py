"""Token realms: the hosts a registry's Bearer challenge sends us to for tokens, and when plain HTTP
may carry credentials there.

A challenge names its realm as a URL, and the registry chooses it: a hostile or compromised
registry can point it anywhere. So a realm URL on ``http://`` is followed only when

- the user named the realm's host for plain HTTP (``plainHTTP: true`` for that ``host[:port]`` in
  xplane's config.yaml), or
- the realm is on the registry's own host name and xplane already speaks plain HTTP to that
  registry (as a registry on ``host:5000`` with its token service on ``host:5001`` does), or
- the request carries no credentials and the realm host's settings (``--plain-http`` included)
  allow plain HTTP: an anonymous token request gives nothing away.

``--plain-http`` alone therefore never sends a password or refresh token in cleartext to another
host. Realm responses are read with a cap (:data:`~xplane.oci.limits.MAX_TOKEN_BODY`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import httpx

from xplane.oci.errors import RegistryError
from xplane.oci.limits import MAX_TOKEN_BODY
from xplane.oci.settings import config_hint
from xplane.oci.transport import HostSession, RetryPolicy, SettingsLike, api_host


class ConfigLike(Protocol):
    """What realm routing needs from ``xplane.oci.settings.RegistryConfig``."""

    def for_registry(self, host: str) -> Any: ...

    def plain_http_by_name(self, host: str) -> bool: ...


def _hostname(netloc: str) -> str:
    """``host`` of ``host[:port]`` (``[v6]:port`` too), lower-cased."""
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[1 : host.find("]")].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


class RealmSessions:
    """One :class:`HostSession` per realm origin; sends token requests under the rule above.

    ``registry_scheme(registry)`` says which scheme the client speaks to a registry (None if it
    has no session with it yet).
    """

    def __init__(
        self,
        config: ConfigLike,
        registry_scheme: Callable[[str], str | None],
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
    ) -> None:
        self._config = config
        self._registry_scheme = registry_scheme
        self._transport = transport
        self._retry = retry
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._sessions: dict[str, HostSession] = {}

    def send(
        self,
        method: str,
        url: str,
        *,
        registry: str,
        headers: Mapping[str, str],
        form: Mapping[str, str] | None,
        params: list[tuple[str, str]] | None,
    ) -> httpx.Response:
        """Send a token request for ``registry`` to realm ``url``; the response comes back read."""
        parts = urlsplit(url)
        host = parts.netloc
        if parts.scheme not in ("http", "https") or not host:
            raise RegistryError(f"token realm {url!r} is not an http(s) URL", registry=host or url)
        plain = parts.scheme == "http"
        secret = "Authorization" in headers or form is not None
        settings = cast(SettingsLike, self._config.for_registry(host))
        if plain and not self._plain_allowed(registry, host, settings, secret):
            raise RegistryError(
                f"token realm http://{host}{parts.path} (from registry {registry}) uses plain HTTP; "
                "refusing to send credentials",
                registry=host,
                hint=(
                    f"if {host} really serves plain HTTP, set {config_hint('plain_http', host)} "
                    "(--plain-http covers the registries a command talks to, not the token services "
                    "they send credentials to on other hosts)"
                ),
            )
        if plain != settings.plain_http:
            settings = cast(SettingsLike, dataclasses.replace(cast(Any, settings), plain_http=plain))
        h = dict(headers)
        body: bytes | None = None
        if form is not None:
            body = str(httpx.QueryParams(form)).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        session = self._session(f"{parts.scheme}://{host}", host, settings)
        return session.send(method, url, headers=h, body=body, params=params, max_body=MAX_TOKEN_BODY)

    def _plain_allowed(self, registry: str, realm: str, settings: SettingsLike, secret: bool) -> bool:
        if self._config.plain_http_by_name(realm):
            return True
        same_host = _hostname(realm) == _hostname(api_host(registry))
        if same_host and self._registry_scheme(registry) == "http":
            return True
        return not secret and settings.plain_http

    def _session(self, key: str, host: str, settings: SettingsLike) -> HostSession:
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = HostSession(
                    settings,
                    registry=host,
                    transport=self._transport,
                    retry=self._retry,
                    user_agent=self._user_agent,
                )
                self._sessions[key] = session
        return session

    def close(self) -> None:
        """Close every realm session."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.close()


__all__ = ["RealmSessions"]

"""HTTP transport to one registry host: TLS from its settings, timeouts, bounded retries and reads.

One :class:`HostSession` per host wraps an ``httpx.Client`` built from the host's
``RegistrySettings``: HTTPS with the settings' ``SSLContext`` unless the settings say
``plain_http`` (never guessed, not even for loopback), the ``xplane/<version>`` User-Agent, and
retries with exponential backoff on connection failures, 429 and 5xx, honouring ``Retry-After``,
inside a total time budget so that a dead registry fails in seconds, and inside the current
pull's deadline (:mod:`xplane.oci.limits`). Connection and TLS failures become
:class:`RegistryUnavailableError` / :class:`TLSError` naming the registry and what to try.

Every body is read with a cap (:mod:`xplane.oci.bodies`): a response the caller does not stream
is read here, up to its cap, and handed back already read; error pages are read up to
:data:`~xplane.oci.limits.MAX_ERROR_BODY` and no further, whatever their size.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import ssl
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if "httpx" not in sys.modules:
    # httpx's __init__ imports its optional command-line tool, which loads click, rich and pygments
    # (~35 ms, a tenth of a cold pull) when they are installed. Nothing here uses it: a None entry
    # makes that import fail at once, and httpx falls back to a stub ``httpx.main``.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx

from xplane._version import __version__
from xplane.oci.bodies import Body, buffered, read_prefix
from xplane.oci.errors import (
    RegistryError,
    RegistryUnavailableError,
    ResponseTooLargeError,
    TLSError,
)
from xplane.oci.limits import (
    MAX_ERROR_BODY,
    MAX_SMALL_BODY,
    Deadline,
    TransferMeter,
    current_deadline,
    format_size,
)
from xplane.oci.netio import RegistryTransport
from xplane.oci.settings import config_hint, config_keys
from xplane.oci.tlscontext import DeferredTrustContext, make_ssl_context

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

USER_AGENT = f"xplane/{__version__}"
DOCKER_HUB_HOSTS = frozenset({"index.docker.io", "docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"

MAX_REDIRECTS = 20  # httpx's default; a blob redirect loop ends here


class SettingsLike(Protocol):
    """What the transport reads from ``xplane.oci.settings.RegistrySettings``."""

    @property
    def host(self) -> str: ...
    @property
    def plain_http(self) -> bool: ...
    @property
    def insecure_skip_verify(self) -> bool: ...
    @property
    def ca_files(self) -> tuple[Path, ...]: ...
    @property
    def source(self) -> str: ...
    @property
    def http_fallback(self) -> bool: ...
    @property
    def min_transfer_rate(self) -> int: ...
    @property
    def pull_timeout(self) -> float: ...


def api_host(registry: str) -> str:
    """The host that serves the distribution API for ``registry`` (Docker Hub is special)."""
    return DOCKER_HUB_API if registry in DOCKER_HUB_HOSTS else registry


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``max_attempts`` tries, no retry started after ``budget`` seconds.

    The wait before retry *n* (1-based) is ``backoff * 2**(n-1)`` capped at ``max_backoff``, or the
    server's ``Retry-After`` when it sent one (a ``Retry-After`` beyond the budget ends retrying).
    Inside a pull, no retry starts that could not finish its wait before the pull's deadline.
    ``rate_window`` is the span over which a response must average the host's minimum transfer
    rate (``minTransferRate``).
    """

    max_attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 2.0
    budget: float = 10.0
    connect_timeout: float = 3.0
    read_timeout: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    rate_window: float = 30.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return float(min(self.max_backoff, self.backoff * (2 ** (retry - 1))))

    @property
    def timeout(self) -> httpx.Timeout:
        """The httpx timeouts derived from this policy."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout, pool=self.connect_timeout)


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def describe_trust(settings: SettingsLike) -> str:
    """Which CA bundle a TLS connection trusted, for error messages."""
    if settings.insecure_skip_verify:
        return "certificate verification disabled (--insecure-skip-tls-verify or insecureSkipVerify)"
    if settings.ca_files:
        files = ", ".join(str(p) for p in settings.ca_files)
        return f"the system CA bundle plus {files}"
    paths = ssl.get_default_verify_paths()
    return f"the system CA bundle ({paths.cafile or paths.capath or 'OpenSSL default'})"


def _is_plain_http_answer(text: str) -> bool:
    """True when an SSL error means the server answered in plain HTTP."""
    return any(m in text for m in ("WRONG_VERSION_NUMBER", "record layer failure", "packet length too long"))


_HTTPS_ONLY_ANSWERS = (b"HTTP request to an HTTPS server", b"plain HTTP request was sent to HTTPS port")


def _https_only_answer(resp: httpx.Response) -> str | None:
    """The first line of the 400 page a TLS port gives a plain-HTTP request (Go's net/http, nginx)."""
    if resp.status_code != 400 or resp.request.url.scheme != "http":
        return None
    try:
        body = resp.content[:1024]  # error pages are read (up to MAX_ERROR_BODY) before this check
    except httpx.ResponseNotRead:
        return None
    if not any(text in body for text in _HTTPS_ONLY_ANSWERS):
        return None
    lines = [ln.strip() for ln in body.decode("utf-8", "replace").splitlines() if ln.strip()]
    return next((ln for ln in lines if "HTTP" in ln and "<" not in ln), lines[0] if lines else "")


def _unknown_host(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a host name the resolver says does not exist (``EAI_NONAME``): no
    retry makes it exist. A temporary resolver failure (``EAI_AGAIN``) is retried as usual."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return cur.errno == socket.EAI_NONAME
        cur = cur.__cause__ or cur.__context__
    return False


def _ssl_cause(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError | ssl.CertificateError):
            return cur
        cur = cur.__cause__ or cur.__context__
    text = str(exc)
    if "SSL" in text or "CERTIFICATE_VERIFY_FAILED" in text:
        return exc
    return None


class HostSession:
    """HTTP to one registry (or token realm) host, with the host's TLS settings and retries."""

    def __init__(
        self,
        settings: SettingsLike,
        *,
        registry: str | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
        ssl_context: Callable[[SettingsLike], ssl.SSLContext] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry or settings.host
        self.retry = retry or RetryPolicy()
        self.scheme = "http" if settings.plain_http else "https"
        self.base_url = f"{self.scheme}://{api_host(settings.host)}"
        self._sleep = time.sleep
        if transport is None:
            context = make_ssl_context(settings, ssl_context) if not settings.plain_http else None
            transport = RegistryTransport(context or DeferredTrustContext())
        self.client = httpx.Client(
            # identity: a compressed body is decoded in bounded steps (oci.bodies), never asked for
            headers={"User-Agent": user_agent or USER_AGENT, "Accept-Encoding": "identity"},
            timeout=self.retry.timeout,
            follow_redirects=False,
            max_redirects=MAX_REDIRECTS,
            trust_env=False,
            transport=transport,
        )

    def url(self, path: str) -> str:
        """An absolute URL on this host for ``path`` (absolute URLs pass through)."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        params: list[tuple[str, str]] | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
        repository: str | None = None,
        retry: bool = True,
        max_body: int = MAX_SMALL_BODY,
    ) -> httpx.Response:
        """Send a request, retrying connection errors, 429 and 5xx within the policy and deadline.

        Returns the final response whatever its status (callers map statuses to errors). With
        ``stream`` a successful (2xx) response is returned unread and must be closed by the caller;
        every other response comes back read: up to ``max_body`` bytes for a 2xx (more is a
        :class:`ResponseTooLargeError`), the first :data:`MAX_ERROR_BODY` bytes of anything else.
        Raises :class:`TLSError` or :class:`RegistryUnavailableError` when the host cannot be
        reached, :class:`PullTimeoutError` when the current pull's deadline passes.
        """
        policy = self.retry if retry else NO_RETRY
        deadline = current_deadline()
        start = time.monotonic()
        attempt = 0
        full = self.url(url)
        while True:
            attempt += 1
            if deadline is not None:
                deadline.check(f"{method} {_safe(full)}", repository)
            content: Any = body() if callable(body) else body
            request = self.client.build_request(
                method,
                full,
                headers=dict(headers or {}),
                content=content,
                params=httpx.QueryParams(tuple(params)) if params else None,
            )
            sent = time.monotonic()
            wait: float | None = None
            try:
                response = self._send_following(request, follow_redirects)
                if response.status_code in policy.retry_statuses:
                    ra = parse_retry_after(response.headers.get("Retry-After"))
                    wait = policy.delay(attempt, ra)
                    if not self._may_retry(policy, attempt, start, wait, deadline):
                        wait = None
                if wait is None:
                    response = self._settle(response, method, stream, max_body, repository)
            except httpx.TooManyRedirects:
                raise self._redirect_loop(method, full, repository) from None
            except httpx.TransportError as exc:
                if deadline is not None and deadline.expired():
                    raise deadline.error(f"{method} {_safe(full)}", repository) from exc
                tls = _ssl_cause(exc)
                if tls is not None and self._fall_back_to_http(tls):
                    full = (
                        self.url(url)
                        if not url.startswith("https://")
                        else "http://" + url[len("https://") :]
                    )
                    attempt -= 1
                    continue
                if tls is not None:
                    raise self._tls_error(tls, repository) from None
                wait = policy.delay(attempt)
                if _unknown_host(exc) or not self._may_retry(policy, attempt, start, wait, deadline):
                    raise self._unavailable(exc, attempt, repository) from None
                log.debug(
                    "%s %s: %s; retry %d in %.2fs", method, _safe(full), type(exc).__name__, attempt, wait
                )
                self._sleep(wait)
                continue
            log.debug(
                "%s %s: HTTP %d (%.0f ms)",
                method,
                _safe(full),
                response.status_code,
                (time.monotonic() - sent) * 1000,
            )
            if wait is None:
                answer = _https_only_answer(response)
                if answer is not None:
                    raise self._https_only_error(answer, repository)
                return response
            response.close()
            log.debug(
                "%s %s: HTTP %d; retry %d in %.2fs", method, _safe(full), response.status_code, attempt, wait
            )
            self._sleep(wait)

    def _send_following(self, request: httpx.Request, follow: bool) -> httpx.Response:
        """``request``'s response, unread; with ``follow``, that of the redirects after it.

        Redirects are followed here rather than by httpx, which reads each redirect's body whole:
        a redirect's body is never read. ``Authorization`` goes only to the same origin, as httpx
        does; after :data:`MAX_REDIRECTS` redirects, ``httpx.TooManyRedirects``.
        """
        for _ in range(MAX_REDIRECTS + 1):
            response = self.client.send(request, stream=True)
            location = response.headers.get("Location")
            if not (follow and response.is_redirect and location):
                return response
            response.close()
            try:
                url = request.url.join(location)
            except httpx.InvalidURL:
                raise httpx.RemoteProtocolError(f"redirect to an invalid URL {location[:200]!r}") from None
            status, old = response.status_code, request.url
            log.debug(
                "%s %s: HTTP %d, redirected to %s", request.method, _safe(str(old)), status, _safe(str(url))
            )
            if url.scheme not in ("http", "https"):
                raise httpx.UnsupportedProtocol(f"redirect to a {url.scheme!r} URL", request=request)
            dropped = {"host", "content-length"}
            if (url.scheme, url.host, url.port) != (old.scheme, old.host, old.port):
                dropped.add("authorization")  # credentials stay with the origin they were meant for
            headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
            method = "GET" if status == 303 and request.method != "HEAD" else request.method
            request = self.client.build_request(method, url, headers=headers)
        raise httpx.TooManyRedirects("too many redirects", request=request)

    def _settle(
        self, response: httpx.Response, method: str, stream: bool, max_body: int, repository: str | None
    ) -> httpx.Response:
        """``response`` as :meth:`send` returns it: unread if streamed and 2xx, else read with a cap."""
        if method == "HEAD":  # no body: reading completes the response, so the connection is reused
            try:
                read_prefix(response, MAX_ERROR_BODY)
            finally:
                response.close()
            return response
        if stream and response.is_success:
            return response
        limit = max_body if response.is_success else MAX_ERROR_BODY
        what = f"the answer to {method} {_safe(str(response.request.url))}"
        try:
            data, complete = read_prefix(response, limit, self.meter(what, repository))
        finally:
            response.close()
        if not complete and response.is_success:
            raise ResponseTooLargeError(
                f"{self.registry} answered {method} {_safe(str(response.request.url))} with more than "
                f"{format_size(limit)}; refusing to read it",
                registry=self.registry,
                repository=repository,
                status=response.status_code,
                hint="the registry (or a proxy in front of it) is misbehaving; report it to its operator",
            )
        return buffered(response, data)

    def meter(self, what: str, repository: str | None = None) -> TransferMeter:
        """A :class:`TransferMeter` for one body from this host (its minimum rate, the deadline)."""
        rate = self.settings.min_transfer_rate
        return TransferMeter(
            rate,
            self.retry.rate_window,
            what=what,
            registry=self.registry,
            repository=repository,
            hint=(
                f"the registry or the network path to it is stalling; to accept slower transfers, lower "
                f"--min-transfer-rate or set {config_hint('min_transfer_rate', self.settings.host)} "
                "(0 turns the minimum off)"
            ),
        )

    @staticmethod
    def _may_retry(
        policy: RetryPolicy, attempt: int, start: float, wait: float, deadline: Deadline | None = None
    ) -> bool:
        if attempt >= policy.max_attempts:
            return False
        if deadline is not None and wait >= deadline.remaining():
            return False
        return time.monotonic() - start + wait <= policy.budget

    def _redirect_loop(self, method: str, url: str, repository: str | None) -> RegistryError:
        return RegistryUnavailableError(
            f"{self.registry} redirected {method} {_safe(url)} more than {MAX_REDIRECTS} times "
            "(a redirect loop); gave up",
            registry=self.registry,
            repository=repository,
            hint="the registry or its storage backend is misconfigured; report it to the registry operator",
        )

    def _fall_back_to_http(self, cause: BaseException) -> bool:
        """registries.conf ``insecure = true`` allows plain HTTP when the host does not speak TLS."""
        if self.scheme != "https" or not getattr(self.settings, "http_fallback", False):
            return False
        if not _is_plain_http_answer(str(getattr(cause, "reason", None) or cause)):
            return False
        log.debug("%s answers plain HTTP; using http:// as %s allows", self.registry, self.settings.source)
        self.scheme = "http"
        self.base_url = f"http://{api_host(self.settings.host)}"
        return True

    def _tls_error(self, cause: BaseException, repository: str | None) -> TLSError:
        if isinstance(cause, ssl.SSLCertVerificationError):
            text = f"certificate verify failed: {cause.verify_message or cause.reason}"
        else:
            text = str(getattr(cause, "reason", None) or cause)
        trust = describe_trust(self.settings)
        if (
            "WRONG_VERSION_NUMBER" in text
            or "record layer failure" in text
            or "packet length too long" in text
        ):
            return TLSError(
                f"TLS handshake with {self.registry} failed: server gave HTTP response to HTTPS client",
                registry=self.registry,
                repository=repository,
                hint=(
                    f"if {self.registry} really serves plain HTTP, pass --plain-http or set "
                    f"{config_hint('plain_http', self.settings.host)} (settings from {self.settings.source})"
                ),
            )
        return TLSError(
            f"TLS handshake with {self.registry} failed: {text} (trusted: {trust}; "
            f"settings from {self.settings.source})",
            registry=self.registry,
            repository=repository,
            hint=(
                f"give the CA that signed {self.registry}'s certificate with --ca-file, with "
                f"{config_hint('ca_files', self.settings.host)}, or in a certs.d directory "
                "(see docs/registries.md)"
            ),
        )

    def _https_only_error(self, answer: str, repository: str | None) -> TLSError:
        keys = "/".join(config_keys("plain_http"))
        return TLSError(
            f"{self.registry} speaks HTTPS but was contacted over plain HTTP (it answered HTTP 400: {answer!r})",
            registry=self.registry,
            repository=repository,
            status=400,
            hint=(
                f"drop --plain-http, or {keys} for {self.settings.host} in xplane's config.yaml (settings from "
                f"{self.settings.source}); if the registry's certificate is not signed by a CA the system "
                "trusts, add that CA with --ca-file"
            ),
        )

    def _unavailable(self, exc: httpx.TransportError, attempts: int, repository: str | None) -> RegistryError:
        reason = str(exc) or type(exc).__name__
        return RegistryUnavailableError(
            f"cannot reach registry {self.registry} ({self.base_url}) after {attempts} attempt(s): {reason}",
            registry=self.registry,
            repository=repository,
            hint="check the host name and port, that the registry is running, and any proxy or firewall",
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def _safe(url: str) -> str:
    """``url`` without its query string (upload locations carry opaque state)."""
    return url.split("?", 1)[0]

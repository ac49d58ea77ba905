"""HTTP transport to one registry host: TLS from its settings, timeouts, bounded retries.

One :class:`HostSession` per host wraps an ``httpx.Client`` built from the host's
``RegistrySettings``: HTTPS with the settings' ``SSLContext`` unless the settings say
``plain_http`` (never guessed, not even for loopback), the ``xplane/<version>`` User-Agent, and
retries with exponential backoff on connection failures, 429 and 5xx, honouring ``Retry-After``,
inside a total time budget so that a dead registry fails in seconds. Connection and TLS failures
become :class:`RegistryUnavailableError` / :class:`TLSError` naming the registry and what to try.

Also the body plumbing of the blob fast path: :func:`body_chunks` (the connection's own chunks,
no re-chunking copies), :class:`BlobSink` (write and hash in one pass, hashing large blobs on a
helper thread), and the small helpers the client shares (:func:`read_limited`, :func:`rewind`...).
"""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

if "httpx" not in sys.modules:
    # httpx's __init__ imports its optional command-line tool, which loads click, rich and pygments
    # (~35 ms, a tenth of a cold pull) when they are installed. Nothing here uses it: a None entry
    # makes that import fail at once, and httpx falls back to a stub ``httpx.main``.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx

from xplane._version import __version__
from xplane.oci.errors import (
    DigestMismatchError,
    ManifestError,
    NotFoundError,
    OCIError,
    RegistryError,
    RegistryUnavailableError,
    TLSError,
)
from xplane.oci.models import new_hasher
from xplane.oci.settings import config_hint, config_keys

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

USER_AGENT = f"xplane/{__version__}"
DOCKER_HUB_HOSTS = frozenset({"index.docker.io", "docker.io", "registry-1.docker.io"})
DOCKER_HUB_API = "registry-1.docker.io"

READ_CHUNK = 1 << 20
THREADED_HASH_MIN = 8 << 20  # blobs at least this large are hashed on a helper thread
HASH_BATCH = 1 << 20  # bytes handed to that thread at a time

Body = bytes | Callable[[], Iterable[bytes]] | None
"""A request body: bytes, or a factory of a fresh chunk iterator (called again on each retry)."""


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


def api_host(registry: str) -> str:
    """The host that serves the distribution API for ``registry`` (Docker Hub is special)."""
    return DOCKER_HUB_API if registry in DOCKER_HUB_HOSTS else registry


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``max_attempts`` tries, no retry started after ``budget`` seconds.

    The wait before retry *n* (1-based) is ``backoff * 2**(n-1)`` capped at ``max_backoff``, or the
    server's ``Retry-After`` when it sent one (a ``Retry-After`` beyond the budget ends retrying).
    """

    max_attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 2.0
    budget: float = 10.0
    connect_timeout: float = 3.0
    read_timeout: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

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
    body = resp.read()[:1024]  # an error page of a few dozen bytes; later reads get it again
    if not any(text in body for text in _HTTPS_ONLY_ANSWERS):
        return None
    lines = [ln.strip() for ln in body.decode("utf-8", "replace").splitlines() if ln.strip()]
    return next((ln for ln in lines if "HTTP" in ln and "<" not in ln), lines[0] if lines else "")


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
        kwargs: dict[str, Any] = {}
        if transport is not None:
            kwargs["transport"] = transport
        elif not settings.plain_http:
            kwargs["verify"] = _make_ssl_context(settings, ssl_context)
        else:
            kwargs["verify"] = DeferredTrustContext()
        self.client = httpx.Client(
            headers={"User-Agent": user_agent or USER_AGENT},
            timeout=self.retry.timeout,
            follow_redirects=False,
            trust_env=False,
            **kwargs,
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
    ) -> httpx.Response:
        """Send a request, retrying connection errors, 429 and 5xx within the policy.

        Returns the final response whatever its status (callers map statuses to errors); a
        streamed response must be closed by the caller. Raises :class:`TLSError` or
        :class:`RegistryUnavailableError` when the host cannot be reached.
        """
        policy = self.retry if retry else NO_RETRY
        start = time.monotonic()
        attempt = 0
        full = self.url(url)
        while True:
            attempt += 1
            content: Any = body() if callable(body) else body
            request = self.client.build_request(
                method,
                full,
                headers=dict(headers or {}),
                content=content,
                params=httpx.QueryParams(tuple(params)) if params else None,
            )
            sent = time.monotonic()
            try:
                response = self.client.send(request, stream=stream, follow_redirects=follow_redirects)
            except httpx.TransportError as exc:
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
                if not self._may_retry(policy, attempt, start, wait):
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
            answer = _https_only_answer(response)
            if answer is not None:
                response.close()
                raise self._https_only_error(answer, repository)
            if response.status_code not in policy.retry_statuses:
                return response
            wait = policy.delay(attempt, parse_retry_after(response.headers.get("Retry-After")))
            if not self._may_retry(policy, attempt, start, wait):
                return response
            response.close()
            log.debug(
                "%s %s: HTTP %d; retry %d in %.2fs", method, _safe(full), response.status_code, attempt, wait
            )
            self._sleep(wait)

    @staticmethod
    def _may_retry(policy: RetryPolicy, attempt: int, start: float, wait: float) -> bool:
        if attempt >= policy.max_attempts:
            return False
        return time.monotonic() - start + wait <= policy.budget

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


class DeferredTrustContext(ssl.SSLContext):
    """The TLS context of a plain-HTTP session, verifying, with the system trust store loaded late.

    Such a session uses TLS only when the registry redirects to an ``https://`` URL (blob storage
    elsewhere). httpx would otherwise build a context with a CA bundle for every client, which
    costs ~15 ms of each plain-HTTP pull for a case that rarely happens; here the system store is
    loaded on the first TLS connection instead. Hostname checks and verification stay on.
    """

    _trust_lock = threading.Lock()
    _trust_loaded = False

    def __new__(
        cls, protocol: int = ssl.PROTOCOL_TLS_CLIENT, *args: Any, **kwargs: Any
    ) -> DeferredTrustContext:
        # PROTOCOL_TLS_CLIENT: certificate and hostname verification on (SSLContext()'s default is off)
        return super().__new__(cls, protocol, *args, **kwargs)

    def load_trust(self) -> None:
        """Load the system trust store once (done before the first TLS connection)."""
        with self._trust_lock:
            if not self._trust_loaded:
                self.load_default_certs(ssl.Purpose.SERVER_AUTH)
                self._trust_loaded = True

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_trust()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_trust()
        return super().wrap_bio(*args, **kwargs)


class BlobSink:
    """Writes a blob body to ``dest`` and hashes it, in one pass over the data.

    With ``threaded`` (large blobs) the hashing runs on a helper thread, about 1 MiB at a time,
    while this thread receives and writes the next batch: hashlib releases the GIL, so on a
    64 MiB layer most of the ~40 ms of SHA-256 overlaps with the network reads and file writes.
    At most two batches are in flight, and batches are hashed in order.
    """

    def __init__(
        self,
        digest: str,
        dest: BinaryIO,
        progress: Callable[[int], None] | None,
        *,
        threaded: bool = False,
    ) -> None:
        self.hasher = new_hasher(digest)
        self.written = 0
        self._dest = dest
        self._progress = progress
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._pending: Future[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="xplane-hash") if threaded else None

    def write(self, chunk: bytes) -> None:
        """Write ``chunk`` to the destination and hash it (now, or on the helper thread)."""
        self._dest.write(chunk)
        self.written += len(chunk)
        if self._progress is not None:
            self._progress(len(chunk))
        if self._pool is None:
            self.hasher.update(chunk)
            return
        self._batch.append(chunk)
        self._batch_bytes += len(chunk)
        if self._batch_bytes >= HASH_BATCH:
            self._submit()

    def _submit(self) -> None:
        assert self._pool is not None
        if self._pending is not None:
            self._pending.result()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        self._pending = self._pool.submit(_hash_all, self.hasher, batch)

    def finish(self) -> None:
        """Wait until everything written so far is hashed."""
        if self._pool is None:
            return
        if self._batch:
            self._submit()
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def close(self) -> None:
        """Stop the helper thread (waits for a batch being hashed). Idempotent."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _hash_all(hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


def content_length(resp: httpx.Response) -> int:
    """The response's ``Content-Length``, or 0 when it has none."""
    value = resp.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else 0


def body_chunks(resp: httpx.Response) -> Iterator[bytes]:
    """The body as the connection delivers it (no re-chunking copies); decoded only when the
    server applied a ``Content-Encoding`` (registries do not for blobs, but a proxy might)."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    return resp.iter_raw() if encoding in ("", "identity") else resp.iter_bytes()


def read_limited(resp: httpx.Response, limit: int, what: str) -> bytes:
    """The whole (small) body; :class:`ManifestError` once it passes ``limit`` bytes."""
    buf = bytearray()
    for chunk in resp.iter_bytes(READ_CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise ManifestError(f"{what} is larger than {limit} bytes; refusing to read it")
    return bytes(buf)


def tell(f: BinaryIO) -> int | None:
    """``f``'s position when it can be rewound to it, else None."""
    try:
        return f.tell() if f.seekable() else None
    except (OSError, AttributeError, ValueError):
        return None


def rewind(f: BinaryIO, start: int | None) -> None:
    """Truncate ``f`` back to ``start`` (no-op for None)."""
    if start is None:
        return
    f.seek(start)
    f.truncate()


def chunks_of(source: Callable[[], BinaryIO], progress: Callable[[int], None] | None) -> Body:
    """A request body that reads ``source()`` afresh on each (re)try, reporting progress."""

    def factory() -> Iterator[bytes]:
        with source() as stream:
            while chunk := stream.read(READ_CHUNK):
                if progress is not None:
                    progress(len(chunk))
                yield chunk

    return factory


def _make_ssl_context(
    settings: SettingsLike, factory: Callable[[SettingsLike], ssl.SSLContext] | None
) -> ssl.SSLContext:
    if factory is None:
        from xplane.oci.settings import ssl_context_for

        ctx: ssl.SSLContext = ssl_context_for(cast(Any, settings))
        return ctx
    return factory(settings)


def _safe(url: str) -> str:
    """``url`` without its query string (upload locations carry opaque state)."""
    return url.split("?", 1)[0]


def error_details(resp: httpx.Response) -> tuple[set[str], str]:
    """Distribution error codes and a short ``: CODE: message`` suffix from an error response."""
    try:
        if not resp.is_stream_consumed:
            resp.read()
        doc: Any = json.loads(resp.content[:65536])
        errors = doc.get("errors") or []
        codes = {str(e.get("code")) for e in errors if isinstance(e, Mapping)}
        parts = [f"{e.get('code')}: {e.get('message')}" for e in errors[:3] if isinstance(e, Mapping)]
    except (ValueError, AttributeError, httpx.HTTPError):
        return set(), ""
    text = "; ".join(parts)
    return codes, (f": {text[:300]}" if text else "")


def status_error(resp: httpx.Response, *, registry: str, repository: str | None, what: str) -> OCIError:
    """The error for an unexpected status other than 401/403 (those need the credentials' story)."""
    status = resp.status_code
    codes, detail = error_details(resp)
    where = f"{registry}/{repository}" if repository else registry
    if status == 404:
        return NotFoundError(
            f"{what} not found in {where} (HTTP 404){detail}",
            registry=registry,
            repository=repository,
            status=status,
            hint="check the repository name and the tag or digest",
        )
    if "DIGEST_INVALID" in codes:
        return DigestMismatchError(f"{what} in {where}: the registry rejected the content's digest{detail}")
    return RegistryError(
        f"{what} in {where} failed: HTTP {status}{detail}",
        registry=registry,
        repository=repository,
        status=status,
        hint="retry later" if status >= 500 or status == 429 else None,
    )

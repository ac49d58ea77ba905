"""The OCI distribution client: manifests, blobs, tags, uploads; verified and authenticated.

:class:`RegistryClient` speaks the distribution API to any number of registries. Per registry it
keeps a :class:`~xplane.oci.transport.HostSession` (TLS from ``RegistryConfig``, retries) and
learns the auth challenge from ``GET /v2/`` once; tokens are cached per scope by the
:class:`~xplane.oci.auth.Authenticator` (realms: :mod:`xplane.oci.realms`). Every byte fetched by
digest is verified against it, and HTTP failures become errors that name the registry, repository
and status (see ``oci.errors``). Nothing is read unbounded: blobs stop at their descriptor's size,
manifests, tag lists and other answers at the caps of :mod:`xplane.oci.limits`, all JSON at a depth
bound, and a pull's :meth:`RegistryClient.pull_deadline` bounds its time.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import urljoin

if "httpx" not in sys.modules:  # keep httpx's command-line tool (click, rich...) unloaded; see transport.py
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx

from xplane.oci.auth import Authenticator, KeychainLike, pick_challenge, repository_scope
from xplane.oci.bodies import (
    THREADED_HASH_MIN,
    TOO_LARGE_HINT,
    BlobSink,
    Body,
    body_chunks,
    chunks_of,
    content_length,
    read_limited,
    rewind,
    tell,
)
from xplane.oci.downloads import blob_too_large, blob_too_short, broke_off, check_declared_size, tag_page
from xplane.oci.errors import (
    DigestMismatchError,
    ManifestError,
    RegistryError,
    RegistryUnavailableError,
    ResponseTooLargeError,
    TLSError,
)
from xplane.oci.jsonbound import loads_bounded
from xplane.oci.limits import (
    MAX_MANIFEST_SIZE,
    MAX_SMALL_BODY,
    MAX_TAG_PAGE,
    MAX_TAGS,
    Deadline,
)
from xplane.oci.mirrors import check_not_blocked, registries_of
from xplane.oci.models import MANIFEST_TYPES, Descriptor, compute_digest
from xplane.oci.realms import RealmSessions
from xplane.oci.settings import config_hint
from xplane.oci.statuserrors import error_details, status_error
from xplane.oci.transport import HostSession, RetryPolicy, SettingsLike

if TYPE_CHECKING:
    from xplane.oci.reference import Reference
    from xplane.oci.settings import RegistryConfig

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)
_PULL = ("pull",)
_PUSH = ("pull", "push")


class RegistryClient:
    """A client for OCI distribution registries (see docs/dev/contracts.md).

    ``keychain`` supplies credentials (default: ``default_keychain()``), ``config`` the per-registry
    TLS settings (default: ``RegistryConfig.load()``), ``transport`` replaces the network for every
    host (tests), ``retry`` bounds retries. Use as a context manager or call :meth:`close`.
    A registry that ``config``'s registries.conf blocks is never contacted (BlockedRegistryError).
    """

    def __init__(
        self,
        *,
        keychain: KeychainLike | None = None,
        config: RegistryConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str | None = None,
    ) -> None:
        if keychain is None:
            from xplane.oci.credentials import default_keychain

            keychain = default_keychain()
        if config is None:
            from xplane.oci.settings import RegistryConfig

            config = RegistryConfig.load()
        self.config = config
        self._registries_conf = registries_of(config)
        self.retry = retry or RetryPolicy()
        self._transport = transport
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._sessions: dict[str, HostSession] = {}
        self._realms = RealmSessions(
            config, self._registry_scheme, transport=transport, retry=self.retry, user_agent=user_agent
        )
        self.auth = Authenticator(keychain, self._realms.send)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection pool."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.close()
        self._realms.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- manifests ----------------------------------------------------------------------------

    def head_manifest(self, ref: Reference) -> Descriptor:
        """The descriptor ``ref`` points at: HEAD, falling back to GET when HEAD fails or has no digest."""
        path = f"/v2/{ref.repository}/manifests/{ref.identifier}"
        head_problem: str
        try:
            resp = self._request(
                ref.registry, ref.repository, "HEAD", path, headers={"Accept": MANIFEST_ACCEPT}
            )
            with closing(resp):
                if resp.status_code == 200:
                    digest = resp.headers.get("Docker-Content-Digest")
                    length = resp.headers.get("Content-Length")
                    if digest and length is not None and length.isdigit():
                        if ref.digest and digest != ref.digest:
                            raise DigestMismatchError(
                                f"registry {ref.registry} answered HEAD {ref} with digest {digest}"
                            )
                        return Descriptor(media_type=_content_type(resp), digest=digest, size=int(length))
                    head_problem = "HEAD response had no Docker-Content-Digest"
                else:
                    head_problem = f"HEAD answered HTTP {resp.status_code}"
        except (RegistryUnavailableError, TLSError):
            raise
        except RegistryError as e:
            if e.status is None:
                raise
            head_problem = f"HEAD failed: {e.message}"
        log.debug("%s for %s; falling back to GET", head_problem, ref)
        try:
            _, desc = self.get_manifest(ref)
        except RegistryError as e:
            e.add_note(f"after a HEAD request that failed: {head_problem}")
            raise
        return desc

    def get_manifest(self, ref: Reference) -> tuple[bytes, Descriptor]:
        """The manifest or index bytes for ``ref``, verified against its digest (given or sent).

        At most :data:`~xplane.oci.limits.MAX_MANIFEST_SIZE` bytes are read (a larger
        ``Content-Length`` is refused unread), and the JSON nests at most
        :data:`~xplane.oci.jsonbound.DEFAULT_MAX_DEPTH` levels. A body that breaks off is fetched
        again within the retry policy and the current pull's deadline.
        """
        path = f"/v2/{ref.repository}/manifests/{ref.identifier}"
        what = f"manifest {ref}"
        attempt = 0
        while True:
            attempt += 1
            resp = self._request(
                ref.registry, ref.repository, "GET", path, headers={"Accept": MANIFEST_ACCEPT}, stream=True
            )
            meter = self._session(ref.registry).meter(what, ref.repository)
            try:
                with closing(resp):
                    self._check(resp, ref.registry, ref.repository, f"manifest {ref.identifier}")
                    if content_length(resp) > MAX_MANIFEST_SIZE:
                        raise ManifestError(
                            f"{what} from {ref.registry} is larger than {MAX_MANIFEST_SIZE} bytes "
                            f"(Content-Length: {content_length(resp)}); refusing to read it",
                            hint=TOO_LARGE_HINT,
                        )
                    data = read_limited(resp, MAX_MANIFEST_SIZE, what, meter)
                    header_digest = resp.headers.get("Docker-Content-Digest")
                    media_type = _content_type(resp)
                break
            except httpx.TransportError as exc:
                broke_off(ref, what, exc, attempt, self.retry.max_attempts, meter.total)
        expected = ref.digest or header_digest
        actual = compute_digest(data, expected or "sha256:")
        if expected and actual != expected:
            raise DigestMismatchError(
                f"manifest {ref} from {ref.registry} has digest {actual}, expected {expected}; discarded",
                hint="the registry or a proxy altered the content; retry, or report it to the registry operator",
            )
        doc = loads_bounded(data, what=f"{what} from {ref.registry}")
        declared = doc.get("mediaType") if isinstance(doc, dict) else None
        if isinstance(declared, str) and declared:
            media_type = declared
        return data, Descriptor(media_type=media_type, digest=actual, size=len(data))

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """Upload a manifest under ``ref``'s tag (or digest); returns its digest."""
        digest = compute_digest(data, ref.digest or "sha256:")
        if ref.digest and digest != ref.digest:
            raise DigestMismatchError(f"manifest bytes hash to {digest}, not to {ref.digest} of {ref}")
        target = ref.effective_tag if ref.tag is not None or ref.digest is None else ref.digest
        path = f"/v2/{ref.repository}/manifests/{target}"
        resp = self._request(
            ref.registry, ref.repository, "PUT", path, actions=_PUSH,
            headers={"Content-Type": media_type}, body=data,
        )  # fmt: skip
        with closing(resp):
            self._check(resp, ref.registry, ref.repository, f"manifest {target}", ok=(200, 201, 202))
        return digest

    # -- blobs --------------------------------------------------------------------------------

    def blob_exists(self, ref: Reference, digest: str) -> bool:
        """True when ``ref``'s repository has the blob ``digest``."""
        resp = self._request(
            ref.registry,
            ref.repository,
            "HEAD",
            f"/v2/{ref.repository}/blobs/{digest}",
            follow_redirects=True,
        )
        with closing(resp):
            if resp.status_code == 404:
                return False
            self._check(resp, ref.registry, ref.repository, f"blob {digest}")
        return True

    def fetch_blob(
        self,
        ref: Reference,
        digest: str,
        dest: BinaryIO,
        *,
        size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Stream blob ``digest`` into ``dest``, verifying it; returns the number of bytes.

        With ``size`` (the descriptor's), a larger ``Content-Length`` is refused before anything is
        read, and the download stops before writing byte ``size + 1``: :class:`BlobSizeError`.
        ``progress`` is called with the number of bytes just written (negative when a retry after a
        dropped connection rewinds ``dest``). On a digest or size mismatch, ``dest`` is truncated
        back to where it started (when seekable) and :class:`DigestMismatchError` is raised.
        """
        path = f"/v2/{ref.repository}/blobs/{digest}"
        start = tell(dest)
        attempts = self.retry.max_attempts if start is not None else 1
        what = f"blob {digest}"
        sink = BlobSink(digest, dest, progress)
        for attempt in range(1, attempts + 1):
            resp = self._request(
                ref.registry, ref.repository, "GET", path, stream=True, follow_redirects=True
            )
            sink = BlobSink(digest, dest, progress)
            try:
                self._check(resp, ref.registry, ref.repository, f"blob {digest}")
                check_declared_size(resp, ref, digest, size)
                sink = BlobSink(digest, dest, progress, threaded=content_length(resp) >= THREADED_HASH_MIN)
                meter = self._session(ref.registry).meter(what, ref.repository)
                for chunk in body_chunks(resp, meter):
                    if size is not None and sink.written + len(chunk) > size:
                        raise blob_too_large(ref, digest, size)
                    sink.write(chunk)
                sink.finish()
                break
            except httpx.TransportError as exc:
                sink.close()
                written = sink.written
                rewind(dest, start)
                if progress is not None and written:
                    progress(-written)
                broke_off(ref, what, exc, attempt, attempts, written)
            except DigestMismatchError:
                sink.close()
                rewind(dest, start)
                raise
            finally:
                sink.close()
                resp.close()
        hasher, written = sink.hasher, sink.written
        if size is not None and written != size:
            rewind(dest, start)
            raise blob_too_short(ref, digest, size, written)
        actual = f"{hasher.name}:{hasher.hexdigest()}"
        if actual != digest:
            rewind(dest, start)
            raise DigestMismatchError(
                f"blob from {ref.registry}/{ref.repository} has digest {actual}, expected {digest}; discarded",
                hint="the registry or a proxy altered the content; retry, or report it to the registry operator",
            )
        return written

    def push_blob(
        self,
        ref: Reference,
        digest: str,
        size: int,
        source: Callable[[], BinaryIO],
        *,
        mount_from: Reference | None = None,
        chunk_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Upload a blob unless the repository has it: mount from ``mount_from`` when it is on the
        same registry, else a monolithic upload, or PATCH chunks of ``chunk_size`` bytes.

        ``source`` opens the content afresh (it is called again if an upload is retried).
        """
        if self.blob_exists(ref, digest):
            log.debug("blob %s already in %s/%s", digest, ref.registry, ref.repository)
            return
        repo, reg = ref.repository, ref.registry
        start_path = f"/v2/{repo}/blobs/uploads/"
        scopes: tuple[str, ...] = ()
        params: list[tuple[str, str]] = []
        if mount_from is not None and mount_from.registry == reg and mount_from.repository != repo:
            params = [("mount", digest), ("from", mount_from.repository)]
            scopes = (repository_scope(mount_from.repository, _PULL),)
        resp = self._request(reg, repo, "POST", start_path, actions=_PUSH, extra_scopes=scopes, params=params)
        with closing(resp):
            if resp.status_code == 201 and params:
                log.debug("mounted blob %s into %s/%s from %s", digest, reg, repo, mount_from)
                if progress is not None:
                    progress(size)
                return
            self._check(resp, reg, repo, f"upload of blob {digest}", ok=(202,))
            location = self._location(resp, reg, repo)
        if chunk_size:
            location = self._upload_chunks(ref, location, source, chunk_size, progress)
            body: Body = b""
            headers = {"Content-Length": "0"}
        else:
            body = chunks_of(source, progress)
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        put_url = str(httpx.URL(location).copy_merge_params({"digest": digest}))
        resp = self._request(reg, repo, "PUT", put_url, actions=_PUSH, headers=headers, body=body)
        with closing(resp):
            self._check(resp, reg, repo, f"upload of blob {digest}", ok=(201, 204))

    def _upload_chunks(
        self,
        ref: Reference,
        location: str,
        source: Callable[[], BinaryIO],
        chunk_size: int,
        progress: Callable[[int], None] | None,
    ) -> str:
        reg, repo = ref.registry, ref.repository
        offset = 0
        with source() as stream:
            while True:
                chunk = stream.read(chunk_size)
                if not chunk:
                    break
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    "Content-Length": str(len(chunk)),
                }
                resp = self._request(reg, repo, "PATCH", location, actions=_PUSH, headers=headers, body=chunk)
                with closing(resp):
                    self._check(resp, reg, repo, f"chunk at offset {offset}", ok=(202,))
                    location = self._location(resp, reg, repo)
                offset += len(chunk)
                if progress is not None:
                    progress(len(chunk))
        return location

    # -- tags and auth ------------------------------------------------------------------------

    def list_tags(self, ref: Reference, *, page_size: int | None = None) -> list[str]:
        """Every tag of ``ref``'s repository, following ``Link`` pagination (``n``/``last``)."""
        url: str | None = f"/v2/{ref.repository}/tags/list"
        params = [("n", str(page_size))] if page_size else []
        tags: list[str] = []
        seen: set[str] = set()
        while url is not None:
            if url in seen:
                raise RegistryError(
                    f"registry {ref.registry} returned a tags page loop for {ref.repository}",
                    registry=ref.registry,
                    repository=ref.repository,
                )
            seen.add(url)
            resp = self._request(
                ref.registry, ref.repository, "GET", url, params=params or None, max_body=MAX_TAG_PAGE
            )
            with closing(resp):
                self._check(resp, ref.registry, ref.repository, "tag list")
                page = tag_page(resp, ref)
                tags.extend(str(t) for t in page)
                if len(tags) > MAX_TAGS:
                    raise ResponseTooLargeError(
                        f"registry {ref.registry} listed more than {MAX_TAGS} tags for {ref.repository}; gave up",
                        registry=ref.registry,
                        repository=ref.repository,
                    )
                nxt = resp.links.get("next", {}).get("url")
            url = urljoin(str(resp.url), nxt) if nxt else None
            params = []
        return tags

    def check_auth(self, registry: str, repository: str | None = None) -> None:
        """Verify that the keychain's credentials are accepted by ``registry`` (``xp registry login``).

        Raises :class:`AuthenticationError` when they are missing or rejected. A registry that asks
        for no authentication passes.
        """
        check_not_blocked(self._registries_conf, registry, repository or "")
        session = self._session(registry)
        self._ping(registry, session, force=True)
        ch = self.auth.challenge(registry)
        if ch is None:
            return
        match = self.auth.credentials(registry, repository or "")
        if match is None:
            raise self.auth.rejected(registry, repository, None)
        if ch.scheme == "bearer" and not match.credentials.registry_token:
            scopes = [repository_scope(repository, _PULL)] if repository else []
            self.auth.token(registry, repository, ch, scopes, match, refresh=True)
        if repository:
            resp = self._request(
                registry, repository, "GET", f"/v2/{repository}/tags/list", params=[("n", "1")]
            )
            with closing(resp):
                if resp.status_code != 404:
                    self._check(resp, registry, repository, "tag list")
            return
        if ch.scheme == "basic" or match.credentials.registry_token:
            header = self.auth.authorization(registry, "", [])
            resp = session.send("GET", "/v2/", headers={"Authorization": header} if header else None)
            with closing(resp):
                if resp.status_code in (401, 403):
                    raise self.auth.rejected(registry, None, match, resp.status_code)

    def pull_deadline(self, ref: Reference) -> Deadline:
        """The deadline of one pull of ``ref``: its registry's ``pull_timeout`` from now.

        It covers the whole pull, mirrors and retries included; enter it with ``.active()``.
        """
        seconds = self._settings(ref.registry).pull_timeout
        return Deadline(
            seconds,
            what=f"pull of {ref.original or ref}",
            registry=ref.registry,
            hint=(
                f"allow more time with --pull-timeout, or set {config_hint('pull_timeout', ref.registry)}; "
                "a registry this slow may be overloaded, or sending slowly on purpose"
            ),
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _settings(self, host: str) -> SettingsLike:
        return cast(SettingsLike, self.config.for_registry(host))

    def _session(self, registry: str) -> HostSession:
        with self._lock:
            session = self._sessions.get(registry)
        if session is not None:
            return session
        session = HostSession(
            self._settings(registry),
            registry=registry,
            transport=self._transport,
            retry=self.retry,
            user_agent=self._user_agent,
        )
        with self._lock:
            existing = self._sessions.setdefault(registry, session)
        if existing is not session:
            session.close()
        return existing

    def _ping(self, registry: str, session: HostSession, *, force: bool = False) -> None:
        """Learn how ``registry`` wants to be authenticated (``GET /v2/``), once."""
        if self.auth.known(registry) and not force:
            return
        resp = session.send("GET", "/v2/")
        with closing(resp):
            challenge = pick_challenge(resp.headers) if resp.status_code == 401 else None
            if resp.status_code >= 500:
                self._check(resp, registry, None, "API version check")
        self.auth.set_challenge(registry, challenge)

    def _request(
        self,
        registry: str,
        repository: str,
        method: str,
        url: str,
        *,
        actions: Sequence[str] = _PULL,
        extra_scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        params: list[tuple[str, str]] | None = None,
        stream: bool = False,
        follow_redirects: bool = False,
        max_body: int = MAX_SMALL_BODY,
    ) -> httpx.Response:
        """Send an authenticated request; on 401, answer the (new) challenge once and resend."""
        check_not_blocked(self._registries_conf, registry, repository)
        session = self._session(registry)
        self._ping(registry, session)
        scopes = [repository_scope(repository, actions), *extra_scopes]
        auth = self.auth.authorization(registry, repository, scopes)

        def send(authorization: str | None) -> httpx.Response:
            h = dict(headers or {})
            if authorization:
                h["Authorization"] = authorization
            return session.send(
                method, url, headers=h, body=body, params=params, stream=stream,
                follow_redirects=follow_redirects, repository=repository, max_body=max_body,
            )  # fmt: skip

        resp = send(auth)
        if resp.status_code != 401:
            return resp
        challenge = pick_challenge(resp.headers)
        if challenge is None:
            return resp
        if challenge != self.auth.challenge(registry):
            self.auth.set_challenge(registry, challenge)
        wanted = [*scopes, *(s for s in challenge.scopes if s not in scopes)]
        retry_auth = self.auth.authorization(registry, repository, wanted, refresh=True)
        if retry_auth is None or retry_auth == auth:
            return resp
        resp.close()
        return send(retry_auth)

    def _registry_scheme(self, registry: str) -> str | None:
        """The scheme the session with ``registry`` speaks (None before it has one)."""
        with self._lock:
            session = self._sessions.get(registry)
        return session.scheme if session is not None else None

    def _location(self, resp: httpx.Response, registry: str, repository: str) -> str:
        loc = resp.headers.get("Location")
        if not loc:
            raise RegistryError(
                f"registry {registry} started an upload to {repository} without a Location header",
                registry=registry,
                repository=repository,
                status=resp.status_code,
            )
        return str(urljoin(str(resp.url), loc))

    def _check(
        self,
        resp: httpx.Response,
        registry: str,
        repository: str | None,
        what: str,
        ok: Sequence[int] = (200,),
    ) -> None:
        """Raise the error matching ``resp``'s status unless it is in ``ok``."""
        status = resp.status_code
        if status in ok:
            return
        if status in (401, 403):
            match = self.auth.credentials(registry, repository or "")
            if status == 401:
                raise self.auth.rejected(registry, repository, match, status)
            raise self.auth.denied(registry, repository, match, what, error_details(resp)[1])
        raise status_error(resp, registry=registry, repository=repository, what=what)


def _content_type(resp: httpx.Response) -> str:
    value: str = resp.headers.get("Content-Type", "")
    return value.split(";")[0].strip()

"""Where a runner's functions come from: one :class:`FunctionSource` per load mode.

A source turns a load mode into a directory of function directories (a *snapshot*):

- ``local``: the functions directory itself.
- ``secret``: a mounted Kubernetes Secret volume (keys are files; ``..data`` symlink layout). Each
  key is copied into a fresh snapshot; keys ending in ``.tar.gz``/``.tgz`` are unpacked into it.
- ``http``: a ``.tar.gz`` bundle at ``FUNCTION_HTTP_URL``, fetched conditionally (``If-None-Match``
  with the ETag, ``If-Modified-Since`` with the ``Last-Modified`` date), so an unchanged bundle
  costs one 304; a bundle downloaded again with the same content (a server that sends neither
  header) is recognised by its hash and not unpacked or reloaded.

Sources are polled in a worker thread and never load functions; :mod:`xplane.fn.table` does, and
tells the source which snapshots its functions still use (:meth:`FunctionSource.prune`).

The modules only the staging sources use (``tarfile``, ``tempfile``, ``shutil``, ``httpx``, ``email``)
are imported when such a source is made or used: a runner in local mode never imports them (httpx
alone is 5-11 MiB; see Memory in docs/runner.md). A bundle URL is shown (``/functions``, logs,
errors) only as :func:`~xplane.fn.urls.redact_url` gives it; ``user:password@`` in it is sent as
HTTP basic auth.
"""

from __future__ import annotations

import abc
import hashlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xplane.errors import XplaneError
from xplane.fn.urls import redact_url, split_credentials

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_BUNDLE_BYTES",
    "FunctionSource",
    "FunctionSourceError",
    "HttpSource",
    "LocalSource",
    "SecretSource",
    "Snapshot",
    "make_source",
    "tree_fingerprint",
    "unpack_bundle",
]

MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class FunctionSourceError(XplaneError):
    """The function source (directory, Secret volume or HTTP bundle) cannot be read."""


@dataclass(frozen=True)
class Snapshot:
    """A directory of functions as the source looked at one moment."""

    root: Path
    fingerprint: str
    owned: bool = False  # the source made this directory and deletes it when no function uses it


def tree_fingerprint(root: Path, *, content: bool = False, limit: int = 20000) -> str:
    """Hash of the names, sizes and mtimes (or contents) of every file under ``root``.

    Bytecode caches and tool directories (:data:`~xplane.fn.base.SKIP_DIRS`) do not count: importing
    a function writes ``__pycache__``, which is no change to the function.
    """
    from xplane.fn.base import SKIP_DIRS

    h = hashlib.sha256()
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            rel = os.path.relpath(path, root)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mode & 0o111}\0".encode())
            if content:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
            else:
                h.update(str(st.st_mtime_ns).encode())
            count += 1
            if count >= limit:
                return h.hexdigest()
    return h.hexdigest()


class FunctionSource(abc.ABC):
    """Where functions come from. :meth:`poll` is blocking and runs in a worker thread."""

    mode: str = ""

    @abc.abstractmethod
    def describe(self) -> str:
        """Human description for logs and ``/functions``."""

    @abc.abstractmethod
    def poll(self, current: Snapshot | None) -> Snapshot | None:
        """A new snapshot if the source changed since ``current``, else ``None``.

        Raises :class:`FunctionSourceError` when the source cannot be read.
        """

    def prune(self, keep: Collection[Snapshot]) -> None:  # noqa: B027 - optional hook
        """Delete the snapshots this source made that are not in ``keep`` (no function uses them).

        Called on the event loop after every load and every close of a retired function, so it must
        be quick. The default (a source that makes no snapshots) does nothing.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the source holds (temporary directories)."""


class LocalSource(FunctionSource):
    """Functions read in place from a directory; changes are seen through file sizes and mtimes."""

    mode = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"local:{self.root}"

    def poll(self, current: Snapshot | None) -> Snapshot | None:
        if not self.root.is_dir():
            raise FunctionSourceError(
                f"functions directory {self.root} does not exist",
                hint="set FUNCTIONS_DIR or --functions-dir to a directory of functions",
            )
        fp = tree_fingerprint(self.root)
        if current is not None and current.fingerprint == fp:
            return None
        return Snapshot(self.root, fp)


class _StagingSource(FunctionSource):
    """A source that copies or unpacks functions into fresh directories under a work directory."""

    def __init__(self, work_dir: Path | None) -> None:
        import tempfile

        self._own_work_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="xfn-")) if work_dir is None else work_dir
        self._n = 0

    def _new_dir(self) -> Path:
        self._n += 1
        path = self.work_dir / f"snapshot-{os.getpid()}-{self._n}"
        path.mkdir(parents=True)
        return path

    def prune(self, keep: Collection[Snapshot]) -> None:
        if not self.work_dir.is_dir():
            return
        import shutil  # here: shutil loads zlib, bz2 and lzma, which a local-mode runner never needs

        roots = {s.root for s in keep}
        for child in self.work_dir.iterdir():
            if child.name.startswith("snapshot-") and child not in roots:
                shutil.rmtree(child, ignore_errors=True)

    def close(self) -> None:
        import shutil

        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def unpack_bundle(data: bytes, dest: Path, *, what: str) -> None:
    """Unpack a ``.tar.gz`` bundle into ``dest``, refusing paths or links that leave it."""
    import io
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise FunctionSourceError(
            f"cannot unpack {what}: {e}", hint="it must be a .tar.gz of function directories"
        ) from None


class SecretSource(_StagingSource):
    """A mounted Secret volume: keys are files (through ``..data`` symlinks); bundles are unpacked."""

    mode = "secret"

    def __init__(self, root: Path, work_dir: Path | None = None) -> None:
        super().__init__(work_dir)
        self.root = root

    def describe(self) -> str:
        return f"secret:{self.root}"

    def _keys(self) -> list[Path]:
        data = self.root / "..data"
        base = data.resolve() if data.exists() else self.root
        return sorted(p for p in base.iterdir() if not p.name.startswith(".") and p.is_file())

    def poll(self, current: Snapshot | None) -> Snapshot | None:
        if not self.root.is_dir():
            raise FunctionSourceError(
                f"Secret volume {self.root} is not mounted", hint="check the volumeMount"
            )
        keys = self._keys()
        h = hashlib.sha256()
        for key in keys:
            h.update(key.name.encode() + b"\0" + key.read_bytes() + b"\0")
        fp = h.hexdigest()
        if current is not None and current.fingerprint == fp:
            return None
        import shutil

        dest = self._new_dir()
        for key in keys:
            if key.name.endswith((".tar.gz", ".tgz")):
                unpack_bundle(key.read_bytes(), dest, what=f"Secret key {key.name}")
            else:
                shutil.copyfile(key, dest / key.name)
                os.chmod(dest / key.name, key.stat().st_mode & 0o755 | 0o400)
        return Snapshot(dest, fp, owned=True)


class HttpSource(_StagingSource):
    """A ``.tar.gz`` bundle over HTTP(S), fetched conditionally and reloaded only when its bytes change.

    Validators: the ``ETag`` (``If-None-Match``) and the ``Last-Modified`` date (``If-Modified-Since``),
    so servers without ETags (``python -m http.server``, many static hosts) answer 304 too. HTTP
    dates have one-second resolution: a bundle rewritten within the second it was fetched in would
    look unchanged, so (as RFC 9110 8.8.2.2 says of weak validators) a ``Last-Modified`` less than a
    second before the response's ``Date`` is not used. Whatever is downloaded is hashed (the
    snapshot's fingerprint), so a bundle sent again unchanged is neither unpacked nor reloaded.
    """

    mode = "http"

    def __init__(self, url: str, work_dir: Path | None = None, *, timeout: float = 30.0) -> None:
        #: How the URL is shown: no credentials, query or fragment.
        self.url = redact_url(url)
        try:
            self._target, self._auth = split_credentials(url)
        except ValueError as e:
            raise FunctionSourceError(f"the bundle URL {self.url} is not valid: {e}") from None
        super().__init__(work_dir)
        self.timeout = timeout
        self._etag: str | None = None
        self._last_modified: str | None = None
        self._http: httpx.Client | None = None

    def describe(self) -> str:
        return f"http:{self.url}"

    def _conditions(self, current: Snapshot | None) -> dict[str, str]:
        headers = {"Accept": "application/gzip, application/octet-stream, */*"}
        if current is not None:  # without a snapshot, a 304 would leave nothing to serve
            if self._etag:
                headers["If-None-Match"] = self._etag
            if self._last_modified:
                headers["If-Modified-Since"] = self._last_modified
        return headers

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx  # here, not at the top: a runner in another load mode never needs it

            self._http = httpx.Client(timeout=self.timeout, auth=self._auth, follow_redirects=True)
        return self._http

    def poll(self, current: Snapshot | None) -> Snapshot | None:
        import httpx

        try:
            with self._client().stream("GET", self._target, headers=self._conditions(current)) as resp:
                if resp.status_code == 304:
                    return None
                if not resp.is_success:
                    raise FunctionSourceError(
                        f"GET {self.url} answered {resp.status_code} {resp.reason_phrase}"
                    )
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_BUNDLE_BYTES:
                        raise FunctionSourceError(
                            f"the function bundle is larger than {MAX_BUNDLE_BYTES} bytes"
                        )
                headers = resp.headers
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as e:
            raise FunctionSourceError(
                f"cannot fetch the function bundle from {self.url}: {str(e) or type(e).__name__}",
                hint="check FUNCTION_HTTP_URL and that the server answers",
            ) from None
        data = b"".join(chunks)
        del chunks
        self._etag = headers.get("ETag")
        self._last_modified = _stable_last_modified(headers.get("Last-Modified"), headers.get("Date"))
        fp = "sha256:" + hashlib.sha256(data).hexdigest()
        if current is not None and current.fingerprint == fp:
            return None
        dest = self._new_dir()
        unpack_bundle(data, dest, what=f"the bundle from {self.url}")
        return Snapshot(dest, fp, owned=True)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        super().close()


def _http_time(value: str | None) -> float | None:
    if not value:
        return None
    import email.utils

    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _stable_last_modified(last_modified: str | None, date: str | None) -> str | None:
    """``Last-Modified`` if it is at least a second older than the response (``Date``, else now)."""
    modified = _http_time(last_modified)
    if modified is None:
        return None
    answered = _http_time(date) or time.time()
    return last_modified if answered - modified >= 1.0 else None


def make_source(
    mode: str, *, functions_dir: Path, http_url: str | None, timeout: float = 30.0
) -> FunctionSource:
    """The source for a ``FUNCTION_LOAD_MODE``."""
    if mode == "local":
        return LocalSource(functions_dir)
    if mode == "secret":
        return SecretSource(functions_dir)
    if mode == "http":
        if not http_url:
            raise FunctionSourceError("FUNCTION_LOAD_MODE=http needs FUNCTION_HTTP_URL")
        return HttpSource(http_url, timeout=timeout)
    raise FunctionSourceError(f"unknown FUNCTION_LOAD_MODE {mode!r}", hint="use local, http or secret")

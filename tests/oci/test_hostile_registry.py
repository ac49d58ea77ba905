"""Issue 8 against a hostile registry on 127.0.0.1: every read bounded in memory, disk and time.

Each test runs one attack from the issue (tests/support/hostile.py) and asserts the bound: bytes the
server got out (what the client read, plus at most the sockets' buffers), bytes written, peak
Python memory of the client, or wall time; and that the failure is one of xplane's own errors,
located and hinted. The same attacks through the ``xp`` command line (exit codes, RSS) are in
tests/cli/test_hostile_pull_cli.py.
"""

from __future__ import annotations

import io
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hostile import (
    Answer,
    Drip,
    Endless,
    HeaderDrip,
    HostileRegistry,
    RedirectLoop,
    Truncated,
    deep_json,
    hostile_registry,
)
from tests.support.images import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, TestImage, canonical_json, sha256
from xplane.oci.cache import ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.credentials import Credentials, ExplicitSource, Keychain
from xplane.oci.errors import (
    AuthenticationError,
    BlobSizeError,
    InvalidJSONError,
    ManifestError,
    NotFoundError,
    PullTimeoutError,
    RegistryError,
    RegistryUnavailableError,
    ResponseTooLargeError,
    TransferTooSlowError,
)
from xplane.oci.imagepull import PullPolicy, pull
from xplane.oci.limits import MAX_ERROR_BODY, MAX_MANIFEST_SIZE, MAX_TOKEN_BODY
from xplane.oci.reference import Reference
from xplane.oci.settings import SETTING_KEYS, RegistryConfig, RegistryOverrides
from xplane.oci.transport import RetryPolicy

SOCKET_SLACK = 8 << 20  # what kernel socket buffers on loopback may hold beyond what was read
GIB = 1 << 30
FAST = RetryPolicy(
    max_attempts=2, backoff=0.05, max_backoff=0.1, budget=3.0, connect_timeout=2.0, read_timeout=5.0
)
MANIFESTS = r"/manifests/"
BLOBS = r"/blobs/"


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    with hostile_registry() as server:
        yield server


def client_for(
    tmp_path: Path,
    *,
    retry: RetryPolicy = FAST,
    credentials: Credentials | None = None,
    config_yaml: str | None = None,
    **overrides: Any,
) -> RegistryClient:
    """A client speaking plain HTTP to every registry (``--plain-http``), with ``overrides``."""
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    if config_yaml is not None:
        (tmp_path / "config.yaml").write_text(config_yaml)
        env["XPLANE_CONFIG"] = str(tmp_path / "config.yaml")
    cfg = RegistryConfig.load(
        env=env, overrides=RegistryOverrides(plain_http=True, **overrides), system_root=tmp_path
    )
    keychain = Keychain([ExplicitSource(credentials)] if credentials else [])
    return RegistryClient(keychain=keychain, config=cfg, retry=retry)


def peak_memory(action: Callable[[], object]) -> tuple[int, BaseException | None]:
    """Peak Python memory (bytes) while ``action`` runs, and what it raised."""
    tracemalloc.start()
    try:
        action()
        raised: BaseException | None = None
    except Exception as e:  # the attacks make it raise; the caller checks what
        raised = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


def located(err: BaseException, *words: str) -> None:
    """An xplane error whose message names every one of ``words``, with a hint or a registry."""
    text = str(err)
    assert all(w in text for w in words), text
    assert "Traceback" not in text


def one_layer_image(hostile: HostileRegistry, repo: str, *, layer_size: int) -> tuple[str, str]:
    """A manifest whose layer descriptor says ``layer_size`` bytes; (reference, layer digest)."""
    config = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
    layer_digest = sha256(b"the real layer")
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": hostile.add_blob(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
        }
    )
    hostile.add_manifest(repo, "v1", manifest, OCI_MANIFEST)
    return hostile.ref(repo, "v1"), layer_digest


# -- 2. error and token bodies are read up to a cap --------------------------------------------


@pytest.mark.parametrize(
    ("status", "length"),
    [(404, None), (404, 3 * GIB // 2), (403, None), (400, None), (500, None)],
    ids=["404-endless", "404-1.5GB", "403-endless", "400-endless", "500-endless"],
)
def test_error_bodies_are_read_up_to_the_cap(
    hostile: HostileRegistry, tmp_path: Path, status: int, length: int | None
) -> None:
    hostile.attack(MANIFESTS, Endless(status, {"Content-Type": "application/json"}, content_length=length))
    ref = Reference.parse(hostile.ref("org/pkg", "v1"))
    start = time.monotonic()
    with client_for(tmp_path) as client:
        peak, raised = peak_memory(lambda: client.get_manifest(ref))
    assert isinstance(raised, RegistryError) and raised.status == status, raised
    located(raised, hostile.host, "org/pkg", f"HTTP {status}")
    assert hostile.sent(MANIFESTS) < FAST.max_attempts * (MAX_ERROR_BODY + SOCKET_SLACK)
    assert peak < 4 * MAX_ERROR_BODY + (2 << 20), f"peak Python memory {peak} bytes"
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("length", [None, 10**15], ids=["endless", "content-length-1e15"])
def test_an_oversized_manifest_is_refused_with_a_hint(
    hostile: HostileRegistry, tmp_path: Path, length: int | None
) -> None:
    hostile.attack(
        MANIFESTS, Endless(200, {"Content-Type": OCI_MANIFEST}, content_length=length), method="GET"
    )
    ref = Reference.parse(hostile.ref("org/big", "v1"))
    with client_for(tmp_path) as client, pytest.raises(ManifestError) as info:
        client.get_manifest(ref)
    located(info.value, "org/big", "refusing to read it")
    assert info.value.hint and "misbehaving" in info.value.hint
    assert hostile.sent(MANIFESTS) < FAST.max_attempts * (MAX_MANIFEST_SIZE + SOCKET_SLACK)


@pytest.mark.parametrize("length", [None, 3 * GIB // 2], ids=["endless", "1.5GB"])
def test_token_bodies_are_capped(tmp_path: Path, length: int | None) -> None:
    with hostile_registry(auth="token") as hostile:
        hostile.attack(r"^/token$", Endless(200, {"Content-Type": "application/json"}, content_length=length))
        ref = Reference.parse(hostile.ref("org/pkg", "v1"))
        with client_for(tmp_path) as client:
            peak, raised = peak_memory(lambda: client.get_manifest(ref))
        assert isinstance(raised, ResponseTooLargeError), raised
        located(raised, "/token", "256 KiB")
        assert hostile.sent(r"^/token$") < MAX_TOKEN_BODY + SOCKET_SLACK
        assert peak < 4 * MAX_TOKEN_BODY + (2 << 20)


def test_an_endless_token_error_is_capped_too(tmp_path: Path) -> None:
    with hostile_registry(auth="token") as hostile:
        hostile.attack(r"^/token$", Endless(401, {"Content-Type": "application/json"}))
        creds = Credentials(username="u", password="p")
        with client_for(tmp_path, credentials=creds) as client, pytest.raises(AuthenticationError) as info:
            client.get_manifest(Reference.parse(hostile.ref("org/pkg", "v1")))
        assert "token server refused" in str(info.value)
        assert hostile.sent(r"^/token$") < MAX_ERROR_BODY + SOCKET_SLACK


# -- 3. blob size is enforced while downloading ------------------------------------------------


class Recording(io.BytesIO):
    """A BytesIO that remembers the most bytes it ever held."""

    most = 0

    def write(self, data: Any) -> int:
        n = super().write(data)
        self.most = max(self.most, self.tell())
        return n


@pytest.mark.parametrize("length", [None, 10**15], ids=["no-length", "content-length-1e15"])
def test_a_blob_stops_at_its_descriptor_size(
    hostile: HostileRegistry, tmp_path: Path, length: int | None
) -> None:
    hostile.attack(BLOBS, Endless(200, {"Content-Type": "application/octet-stream"}, content_length=length))
    ref = Reference.parse(hostile.ref("org/pkg", "v1"))
    dest = Recording()
    with client_for(tmp_path) as client, pytest.raises(BlobSizeError) as info:
        client.fetch_blob(ref, sha256(b"x"), dest, size=1024)
    located(info.value, "1024", hostile.host)
    assert dest.getvalue() == b"" and dest.most <= 1024  # stopped at the size (+0), then discarded
    if length is not None:  # refused on the header, before reading the body
        assert dest.most == 0 and "refused without reading" in str(info.value)
    assert hostile.count(BLOBS) == 1, "a size mismatch is not retried"
    assert hostile.sent(BLOBS) < SOCKET_SLACK


def test_a_pull_with_an_oversized_blob_leaves_nothing_behind(
    hostile: HostileRegistry, tmp_path: Path
) -> None:
    ref, _ = one_layer_image(hostile, "org/pkg", layer_size=1024)
    hostile.attack(BLOBS + "sha256:" + sha256(b"the real layer")[7:], Endless(200))
    cache = ImageCache(tmp_path / "cache")
    with client_for(tmp_path) as client, pytest.raises(BlobSizeError):
        pull(ref, policy=PullPolicy.ALWAYS, cache=cache, client=client)
    leftovers = [p for p in cache.root.rglob("*") if p.is_file() and p.stat().st_size > 1024]
    assert leftovers == []
    assert cache.resolve_tag(Reference.parse(ref)) is None


# -- 5. a deadline for the whole pull, and a minimum transfer rate -------------------------------


def timed_pull(client: RegistryClient, ref: str, cache: ImageCache) -> tuple[float, BaseException]:
    start = time.monotonic()
    with pytest.raises(RegistryError) as info:
        pull(ref, policy=PullPolicy.ALWAYS, cache=cache, client=client)
    return time.monotonic() - start, info.value


@pytest.mark.parametrize(
    "attack",
    [
        Drip(b"{" + b" " * 1000 + b"}", interval=0.05, headers={"Content-Type": OCI_MANIFEST}),
        HeaderDrip(interval=0.05),
    ],
    ids=["body-drip", "header-drip"],
)
def test_a_dripping_manifest_ends_at_the_deadline(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage, attack: Any
) -> None:
    ref = hostile.serve_image(xpkg_image)
    hostile.attack(MANIFESTS, attack, method="GET")
    with client_for(tmp_path, pull_timeout=1.5, min_transfer_rate=0) as client:
        elapsed, err = timed_pull(client, ref, ImageCache(tmp_path / "cache"))
    assert isinstance(err, PullTimeoutError), err
    located(err, f"pull of {ref}", "did not finish within 1.5s", "time ran out during")
    assert err.hint and "--pull-timeout" in err.hint and "pullTimeout" in err.hint
    assert "pullTimeout" in SETTING_KEYS
    assert 1.4 < elapsed < 2.5


def test_a_stalled_blob_is_not_retried_past_the_deadline(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    ref = hostile.serve_image(xpkg_image)
    layer = xpkg_image.layer_digest
    hostile.attack(BLOBS + layer, Drip(xpkg_image.layer, interval=0.5), method="GET")  # minutes per attempt
    retry = RetryPolicy(max_attempts=4, backoff=0.05, budget=60.0, connect_timeout=2.0, read_timeout=60.0)
    with client_for(tmp_path, retry=retry, pull_timeout=2, min_transfer_rate=0) as client:
        elapsed, err = timed_pull(client, ref, ImageCache(tmp_path / "cache"))
    assert isinstance(err, PullTimeoutError), err
    located(err, "did not finish within 2s", "blob sha256:")
    assert elapsed < 3.0
    assert hostile.count(BLOBS + layer, "GET") == 1  # not retried (4 attempts allowed) past the deadline


def test_retries_count_against_the_deadline(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    ref = hostile.serve_image(xpkg_image)
    hostile.attack(MANIFESTS, Answer(503, b"{}", {"Retry-After": "1"}))
    retry = RetryPolicy(max_attempts=20, backoff=1.0, max_backoff=1.0, budget=60.0, connect_timeout=2.0)
    with client_for(tmp_path, retry=retry, pull_timeout=2.5) as client:
        elapsed, err = timed_pull(client, ref, ImageCache(tmp_path / "cache"))
    assert isinstance(err, RegistryError) and err.status == 503, err
    assert elapsed < 3.0, "no retry starts that cannot finish its wait before the deadline"
    # HEAD at 0 s, 1 s, 2 s, then the GET fallback once: without the deadline, 2 x 20 attempts (~40 s)
    assert 2 <= hostile.count(MANIFESTS) <= 4


def test_a_transfer_below_the_minimum_rate_fails(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    ref = hostile.serve_image(xpkg_image)
    hostile.attack(MANIFESTS, Drip(b"{" + b" " * 1000 + b"}", interval=0.1), method="GET")  # 10 bytes/s
    retry = RetryPolicy(max_attempts=2, backoff=0.05, connect_timeout=2.0, rate_window=1.0)
    with client_for(tmp_path, retry=retry, min_transfer_rate=100, pull_timeout=0) as client:
        elapsed, err = timed_pull(client, ref, ImageCache(tmp_path / "cache"))
    assert isinstance(err, TransferTooSlowError), err
    located(err, "below the minimum of 100 bytes/s", hostile.host)
    assert err.hint and "--min-transfer-rate" in err.hint and "minTransferRate" in err.hint
    assert elapsed < 2.0


def test_the_deadline_and_rate_leave_a_good_pull_alone(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    ref = hostile.serve_image(xpkg_image)
    retry = RetryPolicy(rate_window=0.5)
    with client_for(tmp_path, retry=retry, pull_timeout=5, min_transfer_rate=1 << 20) as client:
        image = pull(ref, policy=PullPolicy.ALWAYS, cache=ImageCache(tmp_path / "cache"), client=client)
    assert image.manifest_digest == xpkg_image.manifest_digest


# -- 9. hostile JSON, redirect loops and truncated bodies are xplane errors --------------------


def _manifest_with(xpkg_image: TestImage, **extra: Any) -> bytes:
    doc = json.loads(xpkg_image.manifest)
    doc.update(extra)
    return canonical_json(doc)


@pytest.mark.parametrize("where", ["manifest", "index"])
def test_deep_json_manifests_are_refused(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage, where: str
) -> None:
    deep = deep_json(100_000)
    if where == "manifest":
        data = deep
    else:
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
        data = canonical_json(idx).replace(b"[]", deep)
    hostile.add_manifest("org/deep", "v1", data, OCI_MANIFEST)
    with client_for(tmp_path) as client, pytest.raises(InvalidJSONError) as info:
        pull(hostile.ref("org/deep", "v1"), cache=ImageCache(tmp_path / "cache"), client=client)
    located(info.value, "manifest", "org/deep", hostile.host, "nested deeper than 64 levels")


@pytest.mark.parametrize(
    ("route", "attack", "error"),
    [
        (r"/tags/list$", Answer(200, deep_json(50_000, key="tags")), ManifestError),
        (r"/tags/list$", Answer(200, b'{"tags": {"a": 1}}'), ManifestError),
        (r"/tags/list$", Endless(200), ResponseTooLargeError),
        (r"/tags/list$", Answer(404, deep_json(50_000, key="errors")), NotFoundError),
    ],
    ids=["deep", "not-a-list", "endless", "deep-error-body"],
)
def test_hostile_tag_lists(
    hostile: HostileRegistry, tmp_path: Path, route: str, attack: Any, error: type
) -> None:
    hostile.attack(route, attack)
    with client_for(tmp_path) as client, pytest.raises(error) as info:
        client.list_tags(Reference.parse(hostile.ref("org/pkg")))
    located(info.value, "org/pkg")


def test_a_deep_token_response_is_a_registry_error(tmp_path: Path) -> None:
    with hostile_registry(auth="token") as hostile:
        hostile.attack(r"^/token$", Answer(200, deep_json(100_000, key="token")))
        with client_for(tmp_path) as client, pytest.raises(RegistryError) as info:
            client.get_manifest(Reference.parse(hostile.ref("org/pkg", "v1")))
    located(info.value, "returned no token", "nested deeper than 64 levels")


def test_a_blob_redirect_loop_is_a_registry_error(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    ref = hostile.serve_image(xpkg_image)
    hostile.attack(BLOBS, RedirectLoop())
    with client_for(tmp_path) as client, pytest.raises(RegistryUnavailableError) as info:
        pull(ref, cache=ImageCache(tmp_path / "cache"), client=client)
    located(info.value, "redirect loop", hostile.host, "/blobs/sha256:")
    assert info.value.hint
    assert hostile.count(BLOBS) <= 2 * 21  # two blobs, 20 redirects each at most


def test_a_redirect_body_is_never_read(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    layer = xpkg_image.layer_digest
    hostile.attack(
        BLOBS + layer, Endless(307, {"Location": f"/storage/{layer}"}, content_length=3 * GIB // 2)
    )
    hostile.attack(r"^/storage/", Answer(200, xpkg_image.layer))
    dest = io.BytesIO()
    with client_for(tmp_path) as client:
        peak, raised = peak_memory(
            lambda: client.fetch_blob(
                Reference.parse(hostile.ref("org/pkg")), layer, dest, size=len(xpkg_image.layer)
            )
        )
    assert raised is None and dest.getvalue() == xpkg_image.layer
    assert hostile.sent(BLOBS) < SOCKET_SLACK and peak < 2 << 20


def test_credentials_do_not_follow_a_redirect_to_another_origin(
    tmp_path: Path, xpkg_image: TestImage
) -> None:
    layer = xpkg_image.layer_digest
    with hostile_registry() as storage, hostile_registry(auth="token") as registry:
        storage.attack(r"^/storage/", Answer(200, xpkg_image.layer))
        registry.attack(
            BLOBS, Answer(307, headers={"Location": f"http://localhost:{storage.port}/storage/{layer}"})
        )
        ref = Reference.parse(registry.ref("org/pkg"))
        with client_for(tmp_path, credentials=CREDS) as client:
            client.fetch_blob(ref, layer, io.BytesIO(), size=len(xpkg_image.layer))
        [to_registry] = [s for s in registry.served if "/blobs/" in s.path]
        [to_storage] = storage.served
    assert to_registry.headers["Authorization"] == "Bearer hostile-token"
    assert "Authorization" not in to_storage.headers


def test_a_truncated_manifest_is_fetched_again(
    hostile: HostileRegistry, tmp_path: Path, xpkg_image: TestImage
) -> None:
    ref = hostile.serve_image(xpkg_image)
    # always truncated: a located error after the policy's attempts
    hostile.attack(MANIFESTS, Truncated(xpkg_image.manifest, at=100), method="GET")
    with client_for(tmp_path) as client, pytest.raises(RegistryUnavailableError) as info:
        client.get_manifest(Reference.parse(ref))
    located(info.value, "manifest", "broke off after 100 bytes", hostile.host)
    assert hostile.count(MANIFESTS, "GET") == FAST.max_attempts


def test_a_manifest_truncated_once_still_pulls(tmp_path: Path, xpkg_image: TestImage) -> None:
    class Once(Truncated):
        used = False

        def serve(self, h: Any, served: Any) -> None:
            if self.used:
                Answer(200, xpkg_image.manifest, {"Content-Type": xpkg_image.manifest_media_type}).serve(
                    h, served
                )
                return
            self.used = True
            super().serve(h, served)

    with hostile_registry() as hostile:
        ref = hostile.serve_image(xpkg_image)
        hostile.attack(
            MANIFESTS, Once(xpkg_image.manifest, at=50, headers={"Content-Type": OCI_MANIFEST}), method="GET"
        )
        with client_for(tmp_path) as client:
            image = pull(ref, cache=ImageCache(tmp_path / "cache"), client=client)
    assert image.manifest_digest == xpkg_image.manifest_digest


# -- 11. credentials never go in cleartext to another host -------------------------------------

CREDS = Credentials(username="victim", password="s3cret")


@pytest.fixture
def realm() -> Iterator[HostileRegistry]:
    """A token service on another port, reached by the name ``localhost`` (another host name)."""
    with hostile_registry() as server:
        yield server


def _token_requests(realm: HostileRegistry) -> list[dict[str, str]]:
    return [dict(s.headers) for s in realm.served if s.path == "/token"]


def test_plain_http_flag_does_not_send_credentials_to_another_host(
    tmp_path: Path, realm: HostileRegistry
) -> None:
    with (
        hostile_registry(auth="token", realm=f"http://localhost:{realm.port}/token") as registry,
        client_for(tmp_path, credentials=CREDS) as client,
        pytest.raises(RegistryError) as info,
    ):
        client.get_manifest(Reference.parse(registry.ref("org/pkg", "v1")))
    assert _token_requests(realm) == []
    located(info.value, f"localhost:{realm.port}", "refusing to send credentials")
    assert info.value.hint and "plainHTTP" in info.value.hint and f"localhost:{realm.port}" in info.value.hint


def test_a_realm_host_named_for_plain_http_gets_credentials(tmp_path: Path, realm: HostileRegistry) -> None:
    named = f'registries:\n  "localhost:{realm.port}": {{plainHTTP: true}}\n'
    with hostile_registry(auth="token", realm=f"http://localhost:{realm.port}/token") as registry:
        registry.add_manifest("org/pkg", "v1", b"{}", OCI_MANIFEST)
        with client_for(tmp_path, credentials=CREDS, config_yaml=named) as client:
            client.get_manifest(Reference.parse(registry.ref("org/pkg", "v1")))
    [sent] = _token_requests(realm)
    assert sent["Authorization"].startswith("Basic ")


def test_a_realm_on_the_registry_host_follows_the_registry(tmp_path: Path, realm: HostileRegistry) -> None:
    with hostile_registry(auth="token", realm=f"http://127.0.0.1:{realm.port}/token") as registry:
        registry.add_manifest("org/pkg", "v1", b"{}", OCI_MANIFEST)
        with client_for(tmp_path, credentials=CREDS) as client:
            client.get_manifest(Reference.parse(registry.ref("org/pkg", "v1")))
    [sent] = _token_requests(realm)
    assert sent["Authorization"].startswith("Basic ")


def test_anonymous_token_requests_may_use_plain_http(tmp_path: Path, realm: HostileRegistry) -> None:
    with hostile_registry(auth="token", realm=f"http://localhost:{realm.port}/token") as registry:
        registry.add_manifest("org/pkg", "v1", b"{}", OCI_MANIFEST)
        with client_for(tmp_path) as client:
            client.get_manifest(Reference.parse(registry.ref("org/pkg", "v1")))
    [sent] = _token_requests(realm)
    assert "Authorization" not in sent

"""Pull policies against real docker-registry processes (through a fault proxy to count requests)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.images import TestImage, make_test_image, make_test_index
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from xplane.oci.cache import TEMP_PREFIX, ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.errors import CacheMissError, DigestMismatchError, ManifestError, RegistryError
from xplane.oci.imagepull import PullPolicy, PullProgress, pull
from xplane.oci.reference import Reference


@dataclass(frozen=True)
class _PlainSettings:
    host: str
    plain_http: bool = True
    insecure_skip_verify: bool = False
    ca_files: tuple[Path, ...] = ()
    client_cert: Path | None = None
    client_key: Path | None = None
    source: str = "tests: plain HTTP"


class _PlainConfig:
    def for_registry(self, host: str) -> _PlainSettings:
        return _PlainSettings(host)


class _NoKeychain:
    def lookup(self, registry: str, repository: str) -> None:
        return None

    @property
    def searched(self) -> list[str]:
        return []


def make_client() -> RegistryClient:
    """A client that speaks plain HTTP to every registry (the test registries are HTTP)."""
    try:
        from xplane.oci.settings import RegistryConfig, RegistryOverrides

        config: Any = RegistryConfig.load(overrides=RegistryOverrides(plain_http=True), env={})
    except ImportError:  # settings.py not there yet
        config = _PlainConfig()
    return RegistryClient(keychain=_NoKeychain(), config=config)  # type: ignore[arg-type]


@pytest.fixture
def client() -> Any:
    c = make_client()
    yield c
    c.close()


@pytest.fixture
def pushed(xpkg_image: TestImage, registry_plain: RegistryServer, skopeo: Skopeo) -> TestImage:
    skopeo.push(xpkg_image, registry_plain)
    return xpkg_image


class Recorder(PullProgress):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def resolved(self, ref: Reference, digest: str, *, from_cache: bool) -> None:
        self.events.append(("resolved", from_cache))

    def blob_done(self, descriptor: Any) -> None:
        self.events.append(("blob", descriptor.digest))


def test_cold_then_warm_if_not_present_works_offline(
    pushed: TestImage, fault_proxy: FaultProxy, client: RegistryClient, tmp_path: Path
) -> None:
    cache = ImageCache(tmp_path / "cache")
    ref = fault_proxy.ref(pushed.name, pushed.tag)
    rec = Recorder()
    image = pull(ref, cache=cache, client=client, progress=rec)
    assert image.digest == image.manifest_digest == pushed.manifest_digest
    assert image.manifest_bytes() == pushed.manifest
    assert image.layer_path(0).read_bytes() == pushed.layer
    assert dict(image.config) == __import__("json").loads(pushed.config)
    assert ("resolved", False) in rec.events
    assert {e[1] for e in rec.events if e[0] == "blob"} == {pushed.config_digest, pushed.layer_digest}
    assert fault_proxy.count("/blobs/", "GET") == 2
    # warm: no request at all, even with the registry gone
    fault_proxy.stop()
    again = pull(ref, cache=cache, client=client, progress=rec)
    assert again.digest == image.digest
    assert rec.events[-1] == ("resolved", True)
    assert pull(ref, policy="Never", cache=cache, client=client).digest == image.digest


def test_never_on_a_miss_fails_naming_reference_and_policy(
    fault_proxy: FaultProxy, client: RegistryClient, tmp_path: Path
) -> None:
    ref = fault_proxy.ref("t/missing", "v1")
    with pytest.raises(
        CacheMissError, match=r"t/missing:v1 is not in the cache and the pull policy is Never"
    ) as e:
        pull(ref, policy=PullPolicy.NEVER, cache=ImageCache(tmp_path), client=client)
    assert e.value.exit_code == 3
    assert fault_proxy.requests == []


def test_always_re_resolves_and_fetches_only_missing_blobs(
    pushed: TestImage,
    registry_plain: RegistryServer,
    skopeo: Skopeo,
    fault_proxy: FaultProxy,
    client: RegistryClient,
    tmp_path: Path,
) -> None:
    cache = ImageCache(tmp_path / "cache")
    ref = fault_proxy.ref(pushed.name, pushed.tag)
    first = pull(ref, cache=cache, client=client)
    fault_proxy.reset()
    same = pull(ref, policy="Always", cache=cache, client=client)
    assert same.digest == first.digest
    assert fault_proxy.count("/manifests/", "HEAD") == 1
    assert fault_proxy.count("/blobs/") == 0 and fault_proxy.count("/manifests/", "GET") == 0
    # the tag moves upstream: IfNotPresent keeps what it has, Always follows
    moved = make_test_image(tmp_path / "v2", name=pushed.name, tag=pushed.tag, package_yaml="kind: Moved\n")
    skopeo.push(moved, registry_plain)
    assert pull(ref, cache=cache, client=client).digest == first.digest
    fault_proxy.reset()
    new = pull(ref, policy="Always", cache=cache, client=client)
    assert new.digest == moved.manifest_digest
    assert fault_proxy.count("/blobs/", "GET") == 2
    assert cache.resolve_tag(Reference.parse(ref)) == moved.manifest_digest
    assert pull(ref, policy="Never", cache=cache, client=client).digest == moved.manifest_digest


def test_pull_by_digest_is_recorded_and_served_offline(
    pushed: TestImage, fault_proxy: FaultProxy, client: RegistryClient, tmp_path: Path
) -> None:
    cache = ImageCache(tmp_path / "cache")
    ref = f"{fault_proxy.host}/{pushed.name}@{pushed.manifest_digest}"
    image = pull(ref, cache=cache, client=client)
    assert image.digest == pushed.manifest_digest
    assert fault_proxy.count("/manifests/", "HEAD") == 0  # a digest needs no resolution
    assert [(e.tag, e.digest) for e in cache.entries()] == [(None, pushed.manifest_digest)]
    fault_proxy.stop()
    assert pull(ref, policy="Never", cache=cache, client=client).digest == pushed.manifest_digest


def test_index_selects_platform_and_fetches_only_that_child(
    registry_plain: RegistryServer,
    skopeo: Skopeo,
    fault_proxy: FaultProxy,
    client: RegistryClient,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    idx = make_test_index(tmp_path / "src", name=unique_repo)
    skopeo.push(idx, registry_plain, repository=unique_repo)
    cache = ImageCache(tmp_path / "cache")
    ref = fault_proxy.ref(unique_repo, idx.tag)
    image = pull(ref, cache=cache, client=client)
    amd, arm = idx.images["linux/amd64"], idx.images["linux/arm64"]
    assert image.digest == idx.index_digest
    assert image.manifest_digest == amd.manifest_digest
    assert str(image.platform) == "linux/amd64"
    assert not cache.has_blob(arm.manifest_digest) and not cache.has_blob(arm.layer_digest)
    # arm64 is not cached yet: IfNotPresent fetches it, Never refuses offline
    with pytest.raises(CacheMissError):
        pull(ref, policy="Never", cache=cache, client=client, platform="linux/arm64")
    other = pull(ref, cache=cache, client=client, platform="linux/arm64")
    assert other.manifest_digest == arm.manifest_digest and other.digest == idx.index_digest
    with pytest.raises(ManifestError, match="linux/s390x"):
        pull(ref, cache=cache, client=client, platform="linux/s390x")


def test_corrupted_download_stores_nothing(
    pushed: TestImage, fault_proxy: FaultProxy, client: RegistryClient, tmp_path: Path
) -> None:
    cache = ImageCache(tmp_path / "cache")
    ref = fault_proxy.ref(pushed.name, pushed.tag)
    fault_proxy.corrupt(pushed.layer_digest, times=None)
    with pytest.raises(DigestMismatchError):
        pull(ref, cache=cache, client=client)
    assert not cache.has_blob(pushed.layer_digest)
    assert cache.resolve_tag(Reference.parse(ref)) is None
    assert [p for p in cache.blobs_dir.iterdir() if p.name.startswith(TEMP_PREFIX)] == []
    fault_proxy.reset()
    assert pull(ref, cache=cache, client=client).digest == pushed.manifest_digest


def test_unknown_tag_is_a_registry_error(
    fault_proxy: FaultProxy, client: RegistryClient, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError) as e:
        pull(fault_proxy.ref("t/nothing-here", "v0"), cache=ImageCache(tmp_path), client=client)
    assert e.value.exit_code == 3


def _pull_in_process(ref: str, root: str, q: Any) -> None:
    with make_client() as c:
        q.put(pull(ref, cache=ImageCache(Path(root)), client=c).digest)


def test_concurrent_processes_pull_the_same_image(
    pushed: TestImage, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    ref = registry_plain.ref(pushed.name, pushed.tag)
    procs = [ctx.Process(target=_pull_in_process, args=(ref, str(tmp_path), q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert {q.get(timeout=5) for _ in procs} == {pushed.manifest_digest}
    cache = ImageCache(tmp_path)
    assert all(
        cache.verify_blob(d) for d in (pushed.manifest_digest, pushed.config_digest, pushed.layer_digest)
    )
    assert [p for p in cache.blobs_dir.iterdir() if p.name.startswith(TEMP_PREFIX)] == []


def test_a_pull_killed_midway_leaves_nothing_read_as_valid(
    pushed: TestImage, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    ref = fault_proxy.ref(pushed.name, pushed.tag)
    fault_proxy.delay(pushed.layer_digest, 30, method="GET")
    script = (
        "import sys; from pathlib import Path; from tests.oci.test_pull import make_client; "
        "from xplane.oci.cache import ImageCache; from xplane.oci.imagepull import pull; "
        "pull(sys.argv[1], cache=ImageCache(Path(sys.argv[2])), client=make_client())"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", script, ref, str(tmp_path)], env=env)
    deadline = time.monotonic() + 20
    while fault_proxy.count(pushed.layer_digest, "GET") == 0:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    cache = ImageCache(tmp_path)
    assert cache.resolve_tag(Reference.parse(ref)) is None
    assert not cache.has_blob(pushed.layer_digest)
    with pytest.raises(CacheMissError):
        pull(ref, policy="Never", cache=cache)
    assert cache.prune().temp_files >= 1
    fault_proxy.reset()
    with make_client() as c:
        assert pull(ref, cache=cache, client=c).digest == pushed.manifest_digest

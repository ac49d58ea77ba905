"""registries.conf mirrors, location remapping and blocked registries against real docker-registry processes."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy
from tests.support.images import TestImage, make_test_image
from tests.support.procs import free_port
from tests.support.registry import RegistryServer
from xplane.oci.cache import ImageCache
from xplane.oci.client import RegistryClient
from xplane.oci.credentials import CredentialMatch, Credentials
from xplane.oci.errors import BlockedRegistryError, DigestMismatchError, NotFoundError
from xplane.oci.imagepull import PullPolicy, pull
from xplane.oci.push import push_image
from xplane.oci.reference import Reference
from xplane.oci.settings import RegistryConfig, RegistryOverrides
from xplane.oci.transport import RetryPolicy

FAST = RetryPolicy(max_attempts=2, backoff=0.05, max_backoff=0.1, budget=2.0, connect_timeout=2.0)
PLAIN = RegistryOverrides(plain_http=True)  # every test registry speaks plain HTTP


class RecordingKeychain:
    """Credentials per host; remembers which hosts were asked for."""

    def __init__(self, creds: Mapping[str, Credentials] | None = None) -> None:
        self.creds = dict(creds or {})
        self.asked: list[str] = []

    def lookup(self, registry: str, repository: str) -> CredentialMatch | None:
        self.asked.append(registry)
        found = self.creds.get(registry)
        return CredentialMatch(found, f"test keychain (key {registry})") if found else None

    @property
    def searched(self) -> list[str]:
        return ["test keychain"]


def registries_conf(tmp_path: Path, text: str) -> tuple[Path, RegistryConfig]:
    """A real RegistryConfig reading ``text`` as $CONTAINERS_REGISTRIES_CONF (plus plain HTTP)."""
    path = tmp_path / "registries.conf"
    path.write_text(text)
    env = {"CONTAINERS_REGISTRIES_CONF": str(path), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return path, RegistryConfig.load(env=env, overrides=PLAIN, system_root=tmp_path)


def client(config: RegistryConfig, keychain: RecordingKeychain | None = None) -> RegistryClient:
    return RegistryClient(keychain=keychain or RecordingKeychain(), config=config, retry=FAST)


def upload(ref: str, image: TestImage, creds: Mapping[str, Credentials] | None = None) -> None:
    """Put ``image`` at ``ref`` with a client that knows no registries.conf."""
    r = Reference.parse(ref)
    with client(RegistryConfig(overrides=PLAIN), RecordingKeychain(creds)) as c:
        for digest, data in image.blobs.items():
            c.push_blob(r, digest, len(data), lambda data=data: io.BytesIO(data))  # type: ignore[misc]
        c.put_manifest(r, image.manifest, image.manifest_media_type)


def messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_mirror_serves_the_pull_while_the_primary_is_down(
    registry_factory: Callable[..., RegistryServer],
    tmp_path: Path,
    xpkg_image: TestImage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="xplane")
    mirror = registry_factory(auth="basic")
    creds = {mirror.host: Credentials(username=mirror.username, password=mirror.password)}
    mirrored = f"{mirror.host}/mirrored/{xpkg_image.name}"
    upload(f"{mirrored}:{xpkg_image.tag}", xpkg_image, creds)
    primary = f"127.0.0.1:{free_port()}"  # nothing listens there
    _, cfg = registries_conf(
        tmp_path,
        f'[[registry]]\nlocation = "{primary}"\n[[registry.mirror]]\nlocation = "{mirror.host}/mirrored"\n',
    )
    cache = ImageCache(tmp_path / "cache")
    ref = Reference.parse(f"{primary}/{xpkg_image.name}:{xpkg_image.tag}")
    keychain = RecordingKeychain(creds)
    with client(cfg, keychain) as c:
        image = pull(ref, cache=cache, client=c)
    assert image.reference == ref and image.digest == xpkg_image.manifest_digest
    assert image.layer_path(0).read_bytes() == xpkg_image.layer
    # the cache knows the image by the name asked for, not by the mirror's
    assert cache.resolve_tag(ref) == xpkg_image.manifest_digest
    assert cache.resolve_tag(Reference.parse(f"{mirrored}:{xpkg_image.tag}")) is None
    assert [e.source for e in cache.entries_for(ref)] == [f"mirror:{mirrored}"]
    # credentials were looked up for the host actually contacted: the mirror
    assert keychain.asked and set(keychain.asked) == {mirror.host}
    assert any(mirrored in m and "[[registry.mirror]]" in m for m in messages(caplog, logging.INFO))
    assert all(mirror.password not in r.getMessage() for r in caplog.records)
    # and it is there offline under that name
    assert pull(ref, cache=cache, policy=PullPolicy.NEVER).digest == xpkg_image.manifest_digest


def test_a_mirror_without_the_image_falls_back_to_the_primary(
    registry_factory: Callable[..., RegistryServer],
    tmp_path: Path,
    xpkg_image: TestImage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="xplane")
    primary, mirror = registry_factory(), registry_factory()  # the mirror is empty: 404
    upload(primary.ref(xpkg_image.name, xpkg_image.tag), xpkg_image)
    _, cfg = registries_conf(
        tmp_path,
        f'[[registry]]\nlocation = "{primary.host}"\n[[registry.mirror]]\nlocation = "{mirror.host}"\n',
    )
    cache = ImageCache(tmp_path / "cache")
    ref = Reference.parse(primary.ref(xpkg_image.name, xpkg_image.tag))
    with client(cfg) as c:
        assert pull(ref, cache=cache, client=c).digest == xpkg_image.manifest_digest
        assert [e.source for e in cache.entries_for(ref)] == ["registry"]
        failed = [m for m in messages(caplog, logging.DEBUG) if "trying the next" in m]
        assert len(failed) == 1 and mirror.host in failed[0] and "HTTP 404" in failed[0]
        # when every source fails, the last error says what was tried before it
        with pytest.raises(NotFoundError) as info:
            pull(Reference.parse(primary.ref(xpkg_image.name, "missing")), cache=cache, client=c)
    assert primary.host in str(info.value) and f"tried before: {mirror.host}/" in str(info.value)


def test_a_failing_mirror_falls_back_but_a_bad_digest_does_not(
    registry_factory: Callable[..., RegistryServer],
    proxy_factory: Callable[[RegistryServer], FaultProxy],
    tmp_path: Path,
    xpkg_image: TestImage,
) -> None:
    primary, mirror_registry = registry_factory(), registry_factory()
    for server in (primary, mirror_registry):
        upload(server.ref(xpkg_image.name, xpkg_image.tag), xpkg_image)
    mirror = proxy_factory(mirror_registry)
    _, cfg = registries_conf(
        tmp_path,
        f'[[registry]]\nlocation = "{primary.host}"\n[[registry.mirror]]\nlocation = "{mirror.host}"\n',
    )
    ref = Reference.parse(primary.ref(xpkg_image.name, xpkg_image.tag))
    mirror.fail(r"/blobs/", 503, times=None)  # manifests fine, every blob 503
    with client(cfg) as c:
        image = pull(ref, cache=ImageCache(tmp_path / "c1"), client=c)
        assert image.digest == xpkg_image.manifest_digest and mirror.count(r"/blobs/") > 0
        assert [e.source for e in image.cache.entries_for(ref)] == ["registry"]
        mirror.reset()
        mirror.corrupt(r"/blobs/", times=None)  # wrong bytes are an attack or a bug, never a fallback
        with pytest.raises(DigestMismatchError, match=mirror.host):
            pull(ref, cache=ImageCache(tmp_path / "c2"), client=c)


def test_digest_only_mirror_is_skipped_for_tag_pulls(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path, xpkg_image: TestImage
) -> None:
    primary, mirror = registry_factory(), registry_factory()
    other = make_test_image(tmp_path / "other", name=xpkg_image.name, extra_files={"other.txt": b"other"})
    upload(primary.ref(xpkg_image.name, xpkg_image.tag), xpkg_image)
    upload(mirror.ref(xpkg_image.name, xpkg_image.tag), other)  # the same tag, another image
    _, cfg = registries_conf(
        tmp_path,
        f'[[registry]]\nlocation = "{primary.host}"\n'
        f'[[registry.mirror]]\nlocation = "{mirror.host}"\npull-from-mirror = "digest-only"\n',
    )
    cache = ImageCache(tmp_path / "cache")
    ref = Reference.parse(primary.ref(xpkg_image.name, xpkg_image.tag))
    with client(cfg) as c:
        assert pull(ref, cache=cache, client=c).digest == xpkg_image.manifest_digest  # not the mirror's tag
        by_digest = ref.with_digest(other.manifest_digest)  # only the mirror has it
        assert pull(by_digest, cache=cache, client=c).digest == other.manifest_digest
    sources = {e.digest: e.source for e in cache.entries_for(ref)}
    assert sources == {
        xpkg_image.manifest_digest: "registry",
        other.manifest_digest: f"mirror:{mirror.host}/{ref.repository}",
    }


def test_blocked_registry_is_refused_for_pull_and_push(
    registry_factory: Callable[..., RegistryServer],
    proxy_factory: Callable[[RegistryServer], FaultProxy],
    tmp_path: Path,
    xpkg_image: TestImage,
) -> None:
    proxy = proxy_factory(registry_factory())
    ref = Reference.parse(proxy.ref(xpkg_image.name, xpkg_image.tag))
    upload(str(ref), xpkg_image)
    cache = ImageCache(tmp_path / "cache")
    with client(RegistryConfig(overrides=PLAIN)) as c:
        pull(ref, cache=cache, client=c)  # before it was blocked
    path, cfg = registries_conf(tmp_path, f'[[registry]]\nlocation = "{proxy.host}"\nblocked = true\n')
    proxy.reset()
    with client(cfg) as c:
        # already cached: IfNotPresent does not contact the registry, so nothing is refused
        assert pull(ref, cache=cache, client=c).digest == xpkg_image.manifest_digest
        image = pull(ref, cache=cache, client=c)
        attempts: list[Callable[[], object]] = [
            lambda: pull(ref, cache=cache, client=c, policy=PullPolicy.ALWAYS),
            lambda: pull(ref.with_tag("other"), cache=cache, client=c),
            lambda: push_image(image, ref.with_tag("pushed"), client=c),
            lambda: c.head_manifest(ref),
        ]
        for attempt in attempts:
            with pytest.raises(BlockedRegistryError) as info:
                attempt()
            assert f"{path}:3" in str(info.value) and info.value.exit_code == 4
    assert proxy.count() == 0  # refused before any request


def test_location_remap_pulls_and_pushes_the_remapped_repository(
    registry_factory: Callable[..., RegistryServer], tmp_path: Path, xpkg_image: TestImage
) -> None:
    real = registry_factory()
    upload(f"{real.host}/mirrored/team/app:v1", xpkg_image)
    _, cfg = registries_conf(
        tmp_path,
        f'[[registry]]\nprefix = "registry.example.com/team"\nlocation = "{real.host}/mirrored/team"\n',
    )
    cache = ImageCache(tmp_path / "cache")
    ref = Reference.parse("registry.example.com/team/app:v1")  # a name only: never contacted
    with client(cfg) as c:
        image = pull(ref, cache=cache, client=c)
        assert image.digest == xpkg_image.manifest_digest and cache.resolve_tag(ref) == image.digest
        assert push_image(image, "registry.example.com/team/copy:v2", client=c) == image.digest
    with client(RegistryConfig(overrides=PLAIN)) as c:
        assert c.head_manifest(Reference.parse(f"{real.host}/mirrored/team/copy:v2")).digest == image.digest

"""Suite-wide pytest configuration: real registries, token server, fault proxy and skopeo.

Session-scoped servers are shared by every test: push to a repository of your own (use the
``unique_repo`` fixture) instead of wiping them. Servers start lazily, only when a test asks.
Tests needing a missing binary (``docker-registry``, ``skopeo``) are skipped with the reason.

Cheat sheet (helpers live in tests/support/)::

    def test_pull(registry_plain, skopeo, xpkg_image):          # xpkg_image: TestImage under unique_repo
        ref = skopeo.push(xpkg_image, registry_plain)           # "127.0.0.1:PORT/t/...:v0.1.0", bytes kept
        ...  # xpkg_image.manifest / .manifest_digest / .layer_digest / .package_yaml to compare

    registry_basic.username / .password / .creds              # testuser / testpass
    registry_tls.ca_file, tls_certs.certs_d (skopeo --cert-dir), tls_certs.client_context()
    registry_token + token_server: token_server.reset(); ...; token_server.requests -> scopes, users
    fault_proxy.fail(r"/manifests/", 500, times=1); .throttle(..., retry_after=2); .drop(...);
        .truncate(...); .corrupt(r"/blobs/"); .strip_digest(r"/manifests/"); .head_not_allowed();
        .delay(pattern, 0.5); then use fault_proxy.host instead of the registry's and assert
        fault_proxy.count(r"/blobs/", "GET")
    registry_factory(auth="basic") / proxy_factory(registry)   # fresh, per-test instances
    tests.support.authfiles.write_docker_config(dir, registries=[registry_basic])
    tests.support.images.make_test_image(tmp_path, name=..., media_types="docker") / make_test_index(...)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.certs import TLSCerts, make_test_certs
from tests.support.faultproxy import FaultProxy
from tests.support.images import TestImage, make_test_image
from tests.support.registry import RegistryServer, registry_binary
from tests.support.skopeo import Skopeo, skopeo_binary
from tests.support.tokenserver import TokenServer


def _need_registry() -> None:
    if registry_binary() is None:
        pytest.skip("docker-registry is not installed (apt-get install -y docker-registry)")


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory: pytest.TempPathFactory) -> TLSCerts:
    """A test CA with server (localhost, 127.0.0.1, ::1), client and token-signing certs."""
    return make_test_certs(tmp_path_factory.mktemp("certs"))


def _registry(tmp_path_factory: pytest.TempPathFactory, name: str, **kw: object) -> Iterator[RegistryServer]:
    _need_registry()
    server = RegistryServer(tmp_path_factory.mktemp(name), **kw)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain-HTTP registry, no auth."""
    yield from _registry(tmp_path_factory, "registry-plain")


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Plain-HTTP registry with htpasswd basic auth (``.username``/``.password``)."""
    yield from _registry(tmp_path_factory, "registry-basic", auth="basic")


@pytest.fixture(scope="session")
def registry_tls(tmp_path_factory: pytest.TempPathFactory, tls_certs: TLSCerts) -> Iterator[RegistryServer]:
    """HTTPS registry (test CA, ``.ca_file``) with basic auth."""
    yield from _registry(tmp_path_factory, "registry-tls", auth="basic", tls=True, certs=tls_certs)


@pytest.fixture(scope="session")
def token_server(tls_certs: TLSCerts) -> Iterator[TokenServer]:
    """The token server behind ``registry_token``; call ``.reset()`` before asserting on ``.requests``."""
    server = TokenServer(tls_certs).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_token(
    tmp_path_factory: pytest.TempPathFactory, token_server: TokenServer
) -> Iterator[RegistryServer]:
    """Plain-HTTP registry with token auth via ``token_server`` (user testuser/testpass)."""
    yield from _registry(tmp_path_factory, "registry-token", auth="token", token_server=token_server)


@pytest.fixture
def fault_proxy(registry_plain: RegistryServer) -> Iterator[FaultProxy]:
    """A fresh fault-injecting proxy in front of ``registry_plain`` (no rules, zero counts)."""
    proxy = FaultProxy(registry_plain.host).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., RegistryServer]]:
    """``registry_factory(**RegistryServer kwargs)`` starts a fresh, empty registry for this test only."""
    _need_registry()
    started: list[RegistryServer] = []

    def make(**kw: Any) -> RegistryServer:
        server = RegistryServer(tmp_path_factory.mktemp("registry"), **kw)
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[RegistryServer], FaultProxy]]:
    """``proxy_factory(registry)`` puts a fresh fault proxy in front of any plain-HTTP registry."""
    started: list[FaultProxy] = []

    def make(registry: RegistryServer) -> FaultProxy:
        if registry.tls:
            raise ValueError("the fault proxy speaks plain HTTP to its upstream; use a non-TLS registry")
        proxy = FaultProxy(registry.host).start()
        started.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    """``skopeo(*args, timeout=60, check=False)`` -> CompletedProcess; ``skopeo.push(image, registry)``."""
    if skopeo_binary() is None:
        pytest.skip("skopeo is not installed (apt-get install -y skopeo)")
    return Skopeo(tmp_path_factory.mktemp("skopeo-home"))


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses, e.g. ``t/test-push-retries-1a2b3c``."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"
    return f"t/{base}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def xpkg_image(tmp_path: Path, unique_repo: str) -> TestImage:
    """A small xpkg image (OCI layout + docker-save tarball) named ``unique_repo:v0.1.0``."""
    return make_test_image(tmp_path, name=unique_repo)

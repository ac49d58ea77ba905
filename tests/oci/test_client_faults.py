"""RegistryClient through the fault-injecting proxy: HEAD->GET, retries, budgets, corruption."""

from __future__ import annotations

import email.utils
import io
import socket
import time

import pytest

from tests.oci.test_client import FAST, fetch, make_client, plain, push_image
from tests.support.faultproxy import FaultProxy
from tests.support.images import TestImage
from tests.support.procs import free_port
from tests.support.registry import RegistryServer
from xplane.oci.errors import (
    AuthorizationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    RegistryUnavailableError,
)
from xplane.oci.reference import Reference
from xplane.oci.transport import RetryPolicy, parse_retry_after

BLOBS = r"/blobs/sha256:"
MANIFESTS = r"/manifests/"


@pytest.fixture
def pushed(registry_plain: RegistryServer, fault_proxy: FaultProxy, xpkg_image: TestImage) -> Reference:
    """``xpkg_image`` pushed straight to the registry; the reference goes through the proxy."""
    with make_client(plain(registry_plain.host)) as client:
        push_image(client, Reference.parse(registry_plain.ref(xpkg_image.name, xpkg_image.tag)), xpkg_image)
    return Reference.parse(fault_proxy.ref(xpkg_image.name, xpkg_image.tag))


def proxied(proxy: FaultProxy, retry: RetryPolicy = FAST):  # type: ignore[no-untyped-def]
    return make_client(plain(proxy.host), retry=retry)


# -- HEAD -> GET ------------------------------------------------------------------------------


def test_head_without_digest_falls_back_to_get(
    fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage
) -> None:
    fault_proxy.strip_digest(MANIFESTS)
    with proxied(fault_proxy) as client:
        desc = client.head_manifest(pushed)
    assert desc.digest == xpkg_image.manifest_digest and desc.size == len(xpkg_image.manifest)
    assert fault_proxy.count(MANIFESTS, "HEAD") == 1
    assert fault_proxy.count(MANIFESTS, "GET") == 1


def test_head_405_falls_back_to_get(
    fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage
) -> None:
    fault_proxy.head_not_allowed()
    with proxied(fault_proxy) as client:
        assert client.head_manifest(pushed).digest == xpkg_image.manifest_digest
    assert fault_proxy.count(MANIFESTS, "GET") == 1


def test_head_and_get_failing_reports_both(fault_proxy: FaultProxy, pushed: Reference) -> None:
    fault_proxy.head_not_allowed()
    fault_proxy.fail(MANIFESTS, 404, method="GET", times=None)
    with proxied(fault_proxy) as client, pytest.raises(NotFoundError) as info:
        client.head_manifest(pushed)
    text = str(info.value)
    assert "HTTP 404" in text and "HEAD answered HTTP 405" in text and pushed.repository in text


def test_head_with_digest_needs_no_get(fault_proxy: FaultProxy, pushed: Reference) -> None:
    with proxied(fault_proxy) as client:
        client.head_manifest(pushed)
    assert fault_proxy.count(MANIFESTS, "GET") == 0


# -- retries ----------------------------------------------------------------------------------


def test_retries_500_then_succeeds(fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage) -> None:
    fault_proxy.fail(BLOBS, 500, times=2, method="GET")
    with proxied(fault_proxy) as client:
        assert fetch(client, pushed, xpkg_image.layer_digest) == xpkg_image.layer
    assert fault_proxy.count(BLOBS, "GET") == 3


def test_persistent_500_gives_up_with_status(fault_proxy: FaultProxy, pushed: Reference) -> None:
    fault_proxy.fail(MANIFESTS, 503, method="GET", times=None)
    with proxied(fault_proxy) as client, pytest.raises(RegistryError) as info:
        client.get_manifest(pushed)
    assert info.value.status == 503
    assert fault_proxy.count(MANIFESTS, "GET") == FAST.max_attempts
    text = str(info.value)
    assert fault_proxy.host in text and pushed.repository in text and "HTTP 503" in text


def test_429_honours_retry_after(fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage) -> None:
    fault_proxy.throttle(MANIFESTS, retry_after=1, method="GET")
    with proxied(fault_proxy) as client:
        start = time.monotonic()
        data, _ = client.get_manifest(pushed)
        elapsed = time.monotonic() - start
    assert data == xpkg_image.manifest
    assert elapsed >= 0.9, "Retry-After: 1 must be waited for"
    assert fault_proxy.count(MANIFESTS, "GET") == 2


def test_retry_after_beyond_budget_fails_at_once(fault_proxy: FaultProxy, pushed: Reference) -> None:
    fault_proxy.throttle(MANIFESTS, retry_after=120, method="GET", times=None)
    with proxied(fault_proxy) as client:
        start = time.monotonic()
        with pytest.raises(RegistryError) as info:
            client.get_manifest(pushed)
    assert time.monotonic() - start < 2
    assert info.value.status == 429 and "retry later" in str(info.value)
    assert fault_proxy.count(MANIFESTS, "GET") == 1


def test_dropped_connection_is_retried(
    fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage
) -> None:
    fault_proxy.drop(MANIFESTS, method="GET", times=1)
    with proxied(fault_proxy) as client:
        data, desc = client.get_manifest(pushed)
    assert desc.digest == xpkg_image.manifest_digest and data == xpkg_image.manifest
    assert fault_proxy.count(MANIFESTS, "GET") == 2


def test_truncated_blob_is_refetched(
    fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage
) -> None:
    fault_proxy.truncate(BLOBS, times=1)
    progress: list[int] = []
    buf = io.BytesIO()
    with proxied(fault_proxy) as client:
        n = client.fetch_blob(pushed, xpkg_image.layer_digest, buf, progress=progress.append)
    assert buf.getvalue() == xpkg_image.layer and n == len(xpkg_image.layer)
    assert sum(progress) == len(xpkg_image.layer)
    assert fault_proxy.count(BLOBS, "GET") == 2


def test_upload_put_retried_after_500(
    fault_proxy: FaultProxy, xpkg_image: TestImage, unique_repo: str
) -> None:
    fault_proxy.fail(r"/blobs/uploads/", 500, method="PUT", times=1)
    ref = Reference.parse(fault_proxy.ref(unique_repo))
    with proxied(fault_proxy) as client:
        push_image(client, ref, xpkg_image)
        assert fetch(client, ref, xpkg_image.layer_digest) == xpkg_image.layer


def test_read_timeout_is_bounded(fault_proxy: FaultProxy, pushed: Reference) -> None:
    fault_proxy.delay(MANIFESTS, 2.0, method="GET", times=None)
    policy = RetryPolicy(max_attempts=2, backoff=0.05, budget=2.0, connect_timeout=1.0, read_timeout=0.3)
    with proxied(fault_proxy, policy) as client:
        start = time.monotonic()
        with pytest.raises(RegistryUnavailableError, match="after 2 attempt"):
            client.get_manifest(pushed)
    assert time.monotonic() - start < 1.5


def test_dead_registry_fails_fast() -> None:
    host = f"127.0.0.1:{free_port()}"  # a port nobody listens on
    start = time.monotonic()
    # the default policy, as the CLI uses it
    with (
        make_client(plain(host), retry=RetryPolicy()) as client,
        pytest.raises(RegistryUnavailableError) as info,
    ):
        client.head_manifest(Reference.parse(f"{host}/org/pkg:v1"))
    assert time.monotonic() - start < 5
    assert f"cannot reach registry {host}" in str(info.value) and info.value.registry == host


def test_a_host_that_does_not_exist_is_not_retried() -> None:
    host = "no-such-registry.invalid"  # RFC 2606: never resolves
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror as e:
        if e.errno != socket.EAI_NONAME:
            pytest.skip(f"this machine's resolver answers {e} (not 'no such name')")
    with (
        make_client(plain(host), retry=RetryPolicy()) as client,
        pytest.raises(RegistryUnavailableError) as info,
    ):
        client.head_manifest(Reference.parse(f"{host}/org/pkg:v1"))
    assert "after 1 attempt(s)" in str(info.value)


# -- corruption -------------------------------------------------------------------------------


def test_corrupt_blob_raises_and_keeps_nothing(
    fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage
) -> None:
    fault_proxy.corrupt(BLOBS, times=None)
    buf = io.BytesIO()
    buf.write(b"earlier content ")
    with proxied(fault_proxy) as client, pytest.raises(DigestMismatchError) as info:
        client.fetch_blob(pushed, xpkg_image.layer_digest, buf)
    assert buf.getvalue() == b"earlier content "
    assert xpkg_image.layer_digest in str(info.value)


def test_corrupt_manifest_detected(fault_proxy: FaultProxy, pushed: Reference, xpkg_image: TestImage) -> None:
    fault_proxy.corrupt(MANIFESTS, times=None)
    with proxied(fault_proxy) as client:
        with pytest.raises(DigestMismatchError):
            client.get_manifest(pushed.with_digest(xpkg_image.manifest_digest))
        with pytest.raises(DigestMismatchError):  # by tag: checked against Docker-Content-Digest
            client.get_manifest(pushed)


# -- distinct errors per status ---------------------------------------------------------------


def test_403_and_404_have_distinct_errors(fault_proxy: FaultProxy, pushed: Reference) -> None:
    fault_proxy.fail(MANIFESTS, 403, method="GET", times=1)
    with proxied(fault_proxy) as client:
        with pytest.raises(AuthorizationError) as denied:
            client.get_manifest(pushed)
        with pytest.raises(NotFoundError) as missing:
            client.get_manifest(pushed.with_tag("no-such-tag"))
    assert denied.value.status == 403 and "access denied (HTTP 403)" in str(denied.value)
    assert "xp registry login" in str(denied.value)
    assert missing.value.status == 404 and "not found" in str(missing.value)
    for err in (denied.value, missing.value):
        assert fault_proxy.host in str(err) and pushed.repository in str(err)


# -- the retry policy itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry", "retry_after", "expected"),
    [(1, None, 0.2), (2, None, 0.4), (3, None, 0.8), (5, None, 2.0), (1, 3.0, 3.0), (4, 0.0, 0.0)],
)
def test_retry_delay(retry: int, retry_after: float | None, expected: float) -> None:
    assert RetryPolicy().delay(retry, retry_after) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("header", "low", "high"),
    [("5", 5, 5), ("0", 0, 0), ("-3", 0, 0), ("soon", None, None), ("", None, None), (None, None, None)],
)
def test_parse_retry_after(header: str | None, low: float | None, high: float | None) -> None:
    got = parse_retry_after(header)
    if low is None:
        assert got is None
    else:
        assert got is not None and low <= got <= (high or 0)


def test_parse_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    got = parse_retry_after(when)
    assert got is not None and 25 <= got <= 31

"""Self-tests of the test infrastructure (tests/support): real registries, token server, fault proxy."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import ssl
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.support.authfiles import write_docker_config
from tests.support.certs import TLSCerts, ca_only_dir
from tests.support.faultproxy import FaultProxy
from tests.support.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    TestImage,
    make_test_image,
    make_test_index,
    sha256,
)
from tests.support.procs import TestServerError
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from tests.support.tokenserver import TokenServer, parse_scope

ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST])


def _manifest_url(host_url: str, repo: str, ref: str) -> str:
    return f"{host_url}/v2/{repo}/manifests/{ref}"


# -- certs and images ---------------------------------------------------------------------------


def test_certs_chain_and_sans(tls_certs: TLSCerts) -> None:
    cert = x509.load_pem_x509_certificate(tls_certs.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    ca = x509.load_pem_x509_certificate(tls_certs.ca_pem)
    for leaf in (tls_certs.server_cert, tls_certs.client_cert, tls_certs.token_cert):
        x509.load_pem_x509_certificate(leaf.read_bytes()).verify_directly_issued_by(ca)
    assert sorted(p.name for p in tls_certs.certs_d.iterdir()) == ["ca.crt", "client.cert", "client.key"]
    assert tls_certs.server_key.stat().st_mode & 0o077 == 0
    d = tls_certs.certs_d_for(tls_certs.directory / "containers-certs.d", "127.0.0.1:8443")
    assert (d / "ca.crt").read_bytes() == tls_certs.ca_pem


def test_image_is_deterministic_and_xpkg_shaped(tmp_path: Path) -> None:
    a = make_test_image(tmp_path / "a")
    b = make_test_image(tmp_path / "b")
    assert (a.manifest_digest, a.layer_digest, a.config_digest) == (
        b.manifest_digest,
        b.layer_digest,
        b.config_digest,
    )
    assert a.archive.read_bytes() == b.archive.read_bytes()
    manifest = json.loads(a.manifest)
    assert manifest["layers"][0]["annotations"] == {"io.crossplane.xpkg": "base"}
    config = json.loads(a.config)
    assert config["config"]["Labels"] == {f"io.crossplane.xpkg:{a.layer_digest}": "base"}
    assert config["rootfs"]["diff_ids"] == [a.diff_id]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(a.layer))) as tf:
        member = tf.extractfile("package.yaml")
        assert member is not None and member.read() == a.package_yaml
    for digest, data in a.blobs.items():
        assert (a.layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == data
    other = make_test_image(tmp_path / "c", package_yaml="kind: Other\n")
    assert other.manifest_digest != a.manifest_digest
    docker = make_test_image(tmp_path / "d", media_types="docker")
    assert json.loads(docker.manifest)["mediaType"] == DOCKER_MANIFEST


# -- plain ------------------------------------------------------------------------------------


def test_plain_registry_roundtrip_keeps_bytes(
    registry_plain: RegistryServer, skopeo: Skopeo, xpkg_image: TestImage
) -> None:
    assert registry_plain.mode == "plain"
    r = httpx.get(f"{registry_plain.url}/v2/")
    assert r.status_code == 200 and r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    ref = skopeo.push(xpkg_image, registry_plain)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True)
    assert raw.stdout.encode() == xpkg_image.manifest
    got = httpx.get(
        _manifest_url(registry_plain.url, xpkg_image.name, xpkg_image.tag), headers={"Accept": ACCEPT}
    )
    assert got.headers["Docker-Content-Digest"] == xpkg_image.manifest_digest
    blob = httpx.get(f"{registry_plain.url}/v2/{xpkg_image.name}/blobs/{xpkg_image.layer_digest}")
    assert blob.content == xpkg_image.layer


def test_docker_archive_and_index_push(
    registry_plain: RegistryServer, skopeo: Skopeo, tmp_path: Path, unique_repo: str
) -> None:
    img = make_test_image(tmp_path, name=unique_repo)
    ref = registry_plain.ref(unique_repo, "from-archive")
    skopeo("copy", "--dest-tls-verify=false", img.archive_ref, f"docker://{ref}", check=True)
    tags = skopeo(
        "list-tags", "--tls-verify=false", f"docker://{registry_plain.host}/{unique_repo}", check=True
    )
    assert "from-archive" in json.loads(tags.stdout)["Tags"]

    index = make_test_index(tmp_path / "idx", name=unique_repo)
    ref = skopeo.push(index, registry_plain, unique_repo)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True)
    assert raw.stdout.encode() == index.index
    assert sha256(index.index) == index.index_digest


# -- basic auth -------------------------------------------------------------------------------


def test_basic_auth_registry(registry_basic: RegistryServer, skopeo: Skopeo, xpkg_image: TestImage) -> None:
    url = f"{registry_basic.url}/v2/"
    r = httpx.get(url)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="test-realm"'
    assert httpx.get(url, auth=(registry_basic.username or "", "wrong")).status_code == 401
    assert (
        httpx.get(url, auth=(registry_basic.username or "", registry_basic.password or "")).status_code == 200
    )

    ref = registry_basic.ref(xpkg_image.name, xpkg_image.tag)
    denied = skopeo("copy", "--dest-tls-verify=false", xpkg_image.oci_ref, f"docker://{ref}")
    assert denied.returncode != 0 and "authentication required" in denied.stderr
    skopeo.push(xpkg_image, registry_basic)
    raw = skopeo("inspect", "--raw", *registry_basic.skopeo_flags(), f"docker://{ref}", check=True)
    assert raw.stdout.encode() == xpkg_image.manifest


def test_basic_auth_user_added_at_runtime(registry_basic: RegistryServer) -> None:
    registry_basic.add_user("late-user", "late-pass")
    deadline = time.monotonic() + 3
    status = 0
    while time.monotonic() < deadline:
        status = httpx.get(f"{registry_basic.url}/v2/", auth=("late-user", "late-pass")).status_code
        if status == 200:
            break
        time.sleep(0.05)
    assert status == 200


# -- TLS --------------------------------------------------------------------------------------


def test_tls_registry(
    registry_tls: RegistryServer, tls_certs: TLSCerts, skopeo: Skopeo, xpkg_image: TestImage, tmp_path: Path
) -> None:
    assert registry_tls.mode == "tls+basic" and registry_tls.url.startswith("https://")
    assert registry_tls.ca_file == tls_certs.ca_cert
    ctx = ssl.create_default_context(cafile=str(registry_tls.ca_file))
    url = f"{registry_tls.url}/v2/"
    assert httpx.get(url, verify=ctx).status_code == 401
    auth = (registry_tls.username or "", registry_tls.password or "")
    assert httpx.get(url, verify=ctx, auth=auth).status_code == 200
    port = registry_tls.port
    assert httpx.get(f"https://localhost:{port}/v2/", verify=ctx, auth=auth).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(url)  # system CAs only
    plain = httpx.get(f"http://{registry_tls.host}/v2/")
    assert plain.status_code == 400 and b"HTTPS server" in plain.content

    ref = registry_tls.ref(xpkg_image.name, xpkg_image.tag)
    no_ca = skopeo("inspect", "--raw", "--creds", registry_tls.creds or "", f"docker://{ref}")
    assert no_ca.returncode != 0 and "x509" in no_ca.stderr
    skopeo.push(xpkg_image, registry_tls)
    ca_dir = ca_only_dir(tls_certs, tmp_path / "ca-only")
    raw = skopeo(
        "inspect",
        "--raw",
        "--cert-dir",
        str(ca_dir),
        "--creds",
        registry_tls.creds or "",
        f"docker://localhost:{port}/{xpkg_image.name}:{xpkg_image.tag}",
        check=True,
    )
    assert raw.stdout.encode() == xpkg_image.manifest


def test_tls_client_cert_required(tmp_path: Path, tls_certs: TLSCerts) -> None:
    with RegistryServer(tmp_path / "mtls", tls=True, certs=tls_certs, require_client_cert=True) as reg:
        assert reg.mode == "tls"
        with_cert = tls_certs.client_context(with_client_cert=True)
        assert httpx.get(f"{reg.url}/v2/", verify=with_cert).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{reg.url}/v2/", verify=tls_certs.client_context())


# -- token ------------------------------------------------------------------------------------


def test_token_flow_with_httpx(
    registry_token: RegistryServer, token_server: TokenServer, unique_repo: str
) -> None:
    r = httpx.get(f"{registry_token.url}/v2/{unique_repo}/tags/list")
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{token_server.realm}"')
    assert f'scope="repository:{unique_repo}:pull"' in challenge

    token_server.reset()
    scope = f"repository:{unique_repo}:pull,push"
    params = {"service": token_server.service, "scope": scope}
    anon = httpx.get(token_server.realm, params=params).json()
    user = httpx.get(token_server.realm, params=params, auth=("testuser", "testpass")).json()
    assert httpx.get(token_server.realm, params=params, auth=("testuser", "nope")).status_code == 401
    reqs = token_server.requests
    assert [(q.user, q.granted, q.status) for q in reqs] == [
        (None, (f"repository:{unique_repo}:pull",), 200),
        ("testuser", (f"repository:{unique_repo}:pull,push",), 200),
        (None, (), 401),
    ]
    assert all(q.scopes == (scope,) for q in reqs)
    assert "testpass" not in repr(reqs)

    upload = f"{registry_token.url}/v2/{unique_repo}/blobs/uploads/"
    denied = httpx.post(upload, headers={"Authorization": f"Bearer {anon['token']}"})
    assert denied.status_code == 401
    ok = httpx.post(upload, headers={"Authorization": f"Bearer {user['access_token']}"})
    assert ok.status_code == 202 and ok.headers["Location"]


def test_token_oauth2_post_and_refresh(token_server: TokenServer, registry_token: RegistryServer) -> None:
    form = {
        "grant_type": "password",
        "username": "testuser",
        "password": "testpass",
        "service": "test-registry",
        "scope": "repository:x/y:pull",
        "access_type": "offline",
        "client_id": "xplane",
    }
    first = httpx.post(token_server.realm, data=form).json()
    assert first["refresh_token"]
    refreshed = httpx.post(
        token_server.realm,
        data={
            "grant_type": "refresh_token",
            "service": "test-registry",
            "refresh_token": first["refresh_token"],
            "scope": "repository:x/y:pull,push",
        },
    )
    assert refreshed.status_code == 200
    tok = refreshed.json()["access_token"]
    r = httpx.post(f"{registry_token.url}/v2/x/y/blobs/uploads/", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 202
    bad = httpx.post(token_server.realm, data={"grant_type": "refresh_token", "refresh_token": "nope"})
    assert bad.status_code == 401
    token_server.fail_next(503)
    assert httpx.get(token_server.realm).status_code == 503
    assert httpx.get(token_server.realm).status_code == 200
    secrets_seen = repr(token_server.requests)
    assert first["refresh_token"] not in secrets_seen and "testpass" not in secrets_seen


def test_token_registry_with_skopeo(
    registry_token: RegistryServer, token_server: TokenServer, skopeo: Skopeo, xpkg_image: TestImage
) -> None:
    ref = registry_token.ref(xpkg_image.name, xpkg_image.tag)
    anon_push = skopeo("copy", "--dest-tls-verify=false", xpkg_image.oci_ref, f"docker://{ref}")
    assert anon_push.returncode != 0 and "denied" in anon_push.stderr
    skopeo.push(xpkg_image, registry_token)
    token_server.reset()
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True)  # anonymous pull
    assert raw.stdout.encode() == xpkg_image.manifest
    assert any(
        q.user is None and q.granted == (f"repository:{xpkg_image.name}:pull",) for q in token_server.requests
    )


# -- fault proxy ------------------------------------------------------------------------------


@pytest.fixture
def pushed(registry_plain: RegistryServer, skopeo: Skopeo, xpkg_image: TestImage) -> TestImage:
    skopeo.push(xpkg_image, registry_plain)
    return xpkg_image


def test_proxy_passes_through_uploads(fault_proxy: FaultProxy, skopeo: Skopeo, xpkg_image: TestImage) -> None:
    ref = fault_proxy.ref(xpkg_image.name, "via-proxy")
    skopeo("copy", "--dest-tls-verify=false", xpkg_image.oci_ref, f"docker://{ref}", check=True)
    # uploads (POST then PUT on the Location) went through the proxy, not around it
    assert fault_proxy.count(r"/blobs/uploads/", "POST") >= 1
    assert fault_proxy.count(r"/blobs/uploads/.+", "PUT") >= 1
    assert fault_proxy.count(r"/manifests/via-proxy$", "PUT") == 1
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", check=True)
    assert raw.stdout.encode() == xpkg_image.manifest


def test_proxy_status_faults_then_recovers(fault_proxy: FaultProxy, pushed: TestImage) -> None:
    url = _manifest_url(fault_proxy.url, pushed.name, pushed.tag)
    rule = fault_proxy.fail(r"/manifests/", 500, times=1)
    fault_proxy.throttle(r"/manifests/", retry_after=2, times=1)
    with httpx.Client(headers={"Accept": ACCEPT}) as c:
        assert c.get(url).status_code == 500
        r = c.get(url)
        assert r.status_code == 429 and r.headers["Retry-After"] == "2"
        r = c.get(url)
        assert r.status_code == 200 and r.content == pushed.manifest
    assert rule.hits == 1
    assert fault_proxy.count(r"/manifests/", "GET") == 3
    fault_proxy.reset()
    assert fault_proxy.count() == 0


def test_proxy_drop_truncate_corrupt(fault_proxy: FaultProxy, pushed: TestImage) -> None:
    blob = f"{fault_proxy.url}/v2/{pushed.name}/blobs/{pushed.layer_digest}"
    fault_proxy.drop(r"/blobs/", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(blob)
    fault_proxy.truncate(r"/blobs/", at=10, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(blob)
    fault_proxy.corrupt(r"/blobs/", times=1)
    bad = httpx.get(blob)
    assert bad.status_code == 200 and len(bad.content) == len(pushed.layer)
    assert "sha256:" + hashlib.sha256(bad.content).hexdigest() != pushed.layer_digest
    good = httpx.get(blob)
    assert good.content == pushed.layer
    assert fault_proxy.count(r"/blobs/sha256:", "GET") == 4


def test_proxy_head_faults_and_delay(fault_proxy: FaultProxy, pushed: TestImage) -> None:
    url = _manifest_url(fault_proxy.url, pushed.name, pushed.tag)
    with httpx.Client(headers={"Accept": ACCEPT}) as c:
        assert c.head(url).headers["Docker-Content-Digest"] == pushed.manifest_digest
        fault_proxy.strip_digest(r"/manifests/")
        stripped = c.head(url)
        assert stripped.status_code == 200 and "Docker-Content-Digest" not in stripped.headers
        assert int(stripped.headers["Content-Length"]) == len(pushed.manifest)
        assert c.get(url).headers["Docker-Content-Digest"] == pushed.manifest_digest
        fault_proxy.reset()
        fault_proxy.head_not_allowed()
        assert c.head(url).status_code == 405
        assert c.get(url).status_code == 200
        fault_proxy.delay(r"/manifests/", 0.3, method="GET")
        start = time.monotonic()
        assert c.get(url).status_code == 200
        assert time.monotonic() - start >= 0.3


def test_proxy_stop_closes_idle_keepalive(registry_plain: RegistryServer) -> None:
    proxy = FaultProxy(registry_plain.host).start()
    with httpx.Client() as c:
        assert c.get(f"{proxy.url}/v2/").status_code == 200  # leaves a keep-alive connection open
        start = time.monotonic()
        proxy.stop()
        assert time.monotonic() - start < 2
        with pytest.raises(httpx.TransportError):
            c.get(f"{proxy.url}/v2/")


# -- lifecycle --------------------------------------------------------------------------------


def test_registry_start_failure_is_clear_and_stop_kills(tmp_path: Path) -> None:
    bad = RegistryServer(
        tmp_path / "bad",
        extra_config={"http": {"tls": {"certificate": "/nonexistent.crt", "key": "/nonexistent.key"}}},
    )
    with pytest.raises(
        TestServerError, match=r"(?s)exited with code 1.*nonexistent.crt: no such file"
    ) as info:
        bad.start()
    assert "log tail" in str(info.value)
    assert bad.proc is None
    reg = RegistryServer(tmp_path / "ok").start()
    proc = reg.proc
    assert proc is not None and proc.poll() is None
    reg.stop()
    assert proc.poll() is not None
    reg.stop()  # idempotent


def test_proxy_chunked_upload_with_httpx(fault_proxy: FaultProxy, unique_repo: str) -> None:
    data = b"x" * 70_000
    digest = sha256(data)
    with httpx.Client(base_url=fault_proxy.url) as c:
        start = c.post(f"/v2/{unique_repo}/blobs/uploads/")
        assert start.status_code == 202
        location = start.headers["Location"]
        assert location.startswith(fault_proxy.url)  # rewritten to keep uploads on the proxy
        fault_proxy.fail(r"/blobs/uploads/.+", 500, method="PATCH", times=1)
        assert c.patch(location, content=iter([data[:30_000], data[30_000:]])).status_code == 500
        patched = c.patch(location, content=iter([data[:30_000], data[30_000:]]))  # chunked body
        assert patched.status_code == 202, patched.text
        # httpx 0.28: params= would *replace* the Location query (_state); merge instead
        done = c.put(httpx.URL(patched.headers["Location"]).copy_merge_params({"digest": digest}))
        assert done.status_code == 201, done.text
        assert c.head(f"/v2/{unique_repo}/blobs/{digest}").headers["Docker-Content-Digest"] == digest
    assert fault_proxy.count(r"/blobs/uploads/.+", "PATCH") == 2


def test_factories_fresh_registry_mirror_and_proxy(
    registry_factory: Callable[..., RegistryServer],
    proxy_factory: Callable[[RegistryServer], FaultProxy],
    pushed: TestImage,
    registry_plain: RegistryServer,
) -> None:
    mirror = registry_factory(extra_config={"proxy": {"remoteurl": registry_plain.url}})
    assert httpx.get(f"{mirror.url}/v2/_catalog").json() == {"repositories": []}
    proxy = proxy_factory(mirror)
    got = httpx.get(_manifest_url(proxy.url, pushed.name, pushed.tag), headers={"Accept": ACCEPT})
    assert got.status_code == 200 and got.content == pushed.manifest  # pulled through the mirror
    assert proxy.count(r"/manifests/") == 1


def test_token_grants_by_user_kind(tls_certs: TLSCerts) -> None:
    ts = TokenServer(tls_certs, users={"rw": "a", "ro": "b"}, pull_only_users=["ro"], anonymous_pull=False)
    scopes = ["repository:org/app:pull,push", "registry:catalog:*"]
    assert ts._grant(None, scopes) == []
    assert ts._grant("ro", scopes) == [{"type": "repository", "name": "org/app", "actions": ["pull"]}]
    assert ts._grant("rw", scopes) == [
        {"type": "repository", "name": "org/app", "actions": ["pull", "push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    assert parse_scope("repository:host:5000/x:pull") == ("repository", "host:5000/x", ["pull"])
    assert parse_scope("garbage") is None


def test_auth_file_and_missing_binary(
    registry_basic: RegistryServer,
    skopeo: Skopeo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_docker_config(tmp_path / "docker", registries=[registry_basic])
    assert path.stat().st_mode & 0o777 == 0o600
    listed = skopeo(
        "list-tags", "--tls-verify=false", "--authfile", str(path), f"docker://{registry_basic.host}/none"
    )
    assert "404" in listed.stderr and "authentication required" not in listed.stderr  # creds accepted
    anon = skopeo("list-tags", "--tls-verify=false", f"docker://{registry_basic.host}/none")
    assert "authentication required" in anon.stderr  # isolated from the machine's logins

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(TestServerError, match="not installed") as info:
        RegistryServer(tmp_path / "nobin").start()
    assert info.value.hint and "apt-get" in info.value.hint

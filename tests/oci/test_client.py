"""RegistryClient against real docker-registry processes: push/pull, auth, TLS, tags, interop."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.certs import TLSCerts
from tests.support.faultproxy import FaultProxy
from tests.support.images import TestImage
from tests.support.registry import RegistryServer
from tests.support.skopeo import Skopeo
from tests.support.tokenserver import TokenServer
from xplane._version import __version__
from xplane.oci.client import RegistryClient
from xplane.oci.credentials import CredentialMatch, Credentials, default_keychain
from xplane.oci.errors import AuthenticationError, NotFoundError, RegistryError, TLSError
from xplane.oci.models import OCI_MANIFEST, Manifest, parse_manifest, sha256_digest
from xplane.oci.reference import Reference
from xplane.oci.settings import RegistryConfig, RegistrySettings
from xplane.oci.transport import HostSession, RetryPolicy, api_host

FAST = RetryPolicy(
    max_attempts=3, backoff=0.05, max_backoff=0.2, budget=3.0, connect_timeout=2.0, read_timeout=10.0
)


class DictKeychain:
    """A keychain over a dict: ``registry/repository`` keys beat ``registry`` keys."""

    def __init__(
        self,
        entries: Mapping[str, Credentials],
        *,
        source: str = "test keychain",
        searched: list[str] | None = None,
    ) -> None:
        self.entries = dict(entries)
        self.source = source
        self._searched = searched if searched is not None else [source]

    def lookup(self, registry: str, repository: str) -> CredentialMatch | None:
        for key in (f"{registry}/{repository}", registry):
            if key in self.entries:
                return CredentialMatch(self.entries[key], f"{self.source} (key {key})")
        return None

    @property
    def searched(self) -> list[str]:
        return list(self._searched)


@dataclass
class StaticConfig:
    """A RegistryConfig stand-in: fixed settings per host, HTTPS defaults elsewhere."""

    settings: dict[str, RegistrySettings] = field(default_factory=dict)

    def for_registry(self, host: str) -> RegistrySettings:
        return self.settings.get(host) or RegistrySettings(host=host)

    def plain_http_by_name(self, host: str) -> bool:
        return self.for_registry(host).plain_http


def plain(*hosts: str) -> StaticConfig:
    """Settings marking ``hosts`` as plain HTTP."""
    return StaticConfig({h: RegistrySettings(host=h, plain_http=True, source="test config") for h in hosts})


def make_client(config: StaticConfig, keychain: DictKeychain | None = None, **kw: object) -> RegistryClient:
    kw.setdefault("retry", FAST)
    return RegistryClient(keychain=keychain or DictKeychain({}), config=config, **kw)  # type: ignore[arg-type]


def push_image(client: RegistryClient, ref: Reference, image: TestImage) -> str:
    """Upload ``image``'s blobs and manifest to ``ref`` with the client; return the manifest digest."""
    for digest, data in image.blobs.items():
        client.push_blob(ref, digest, len(data), lambda data=data: io.BytesIO(data))  # type: ignore[misc]
    return client.put_manifest(ref, image.manifest, image.manifest_media_type)


def fetch(client: RegistryClient, ref: Reference, digest: str) -> bytes:
    buf = io.BytesIO()
    n = client.fetch_blob(ref, digest, buf)
    assert n == len(buf.getvalue())
    return buf.getvalue()


# -- round trips on a plain registry ----------------------------------------------------------


def test_push_pull_round_trip(registry_plain: RegistryServer, xpkg_image: TestImage) -> None:
    ref = Reference.parse(registry_plain.ref(xpkg_image.name, "v0.1.0"))
    with make_client(plain(registry_plain.host)) as client:
        assert not client.blob_exists(ref, xpkg_image.layer_digest)
        digest = push_image(client, ref, xpkg_image)
        assert digest == xpkg_image.manifest_digest
        assert client.blob_exists(ref, xpkg_image.layer_digest)

        desc = client.head_manifest(ref)
        assert (desc.digest, desc.size, desc.media_type) == (digest, len(xpkg_image.manifest), OCI_MANIFEST)
        data, got = client.get_manifest(ref.with_digest(digest))
        assert data == xpkg_image.manifest and got == desc
        m = parse_manifest(data)
        assert isinstance(m, Manifest)
        assert fetch(client, ref, m.layers[0].digest) == xpkg_image.layer
        assert fetch(client, ref, m.config.digest) == xpkg_image.config
        # pushing again is a no-op (HEAD says the blobs exist)
        push_image(client, ref, xpkg_image)
        assert client.list_tags(ref) == ["v0.1.0"]


def test_push_by_digest_and_progress(registry_plain: RegistryServer, xpkg_image: TestImage) -> None:
    ref = Reference.parse(f"{registry_plain.host}/{xpkg_image.name}@{xpkg_image.manifest_digest}")
    seen: list[int] = []
    with make_client(plain(registry_plain.host)) as client:
        for digest, data in xpkg_image.blobs.items():
            client.push_blob(ref, digest, len(data), lambda data=data: io.BytesIO(data), progress=seen.append)  # type: ignore[misc]
        assert sum(seen) == len(xpkg_image.layer) + len(xpkg_image.config)
        assert client.put_manifest(ref, xpkg_image.manifest, OCI_MANIFEST) == xpkg_image.manifest_digest
        assert client.head_manifest(ref).digest == xpkg_image.manifest_digest
        got: list[int] = []
        client.fetch_blob(ref, xpkg_image.layer_digest, io.BytesIO(), progress=got.append)
        assert sum(got) == len(xpkg_image.layer)


def test_missing_things_are_not_found(registry_plain: RegistryServer, unique_repo: str) -> None:
    ref = Reference.parse(registry_plain.ref(unique_repo, "nope"))
    with make_client(plain(registry_plain.host)) as client:
        with pytest.raises(NotFoundError) as info:
            client.get_manifest(ref)
        msg = str(info.value)
        assert registry_plain.host in msg and unique_repo in msg and "404" in msg
        assert "MANIFEST_UNKNOWN" in msg or "NAME_UNKNOWN" in msg
        with pytest.raises(NotFoundError, match="after a HEAD request"):
            client.head_manifest(ref)
        with pytest.raises(NotFoundError, match="blob"):
            client.fetch_blob(ref, sha256_digest(b"x"), io.BytesIO())
        with pytest.raises(NotFoundError, match="tag list"):
            client.list_tags(ref)


def test_chunked_upload_and_cross_repo_mount(
    fault_proxy: FaultProxy, tmp_path: Path, unique_repo: str
) -> None:
    data = os.urandom(2500)
    digest = sha256_digest(data)
    src = Reference.parse(fault_proxy.ref(unique_repo + "/src"))
    dst = Reference.parse(fault_proxy.ref(unique_repo + "/dst"))
    path = tmp_path / "blob"
    path.write_bytes(data)
    with make_client(plain(fault_proxy.host)) as client:
        client.push_blob(src, digest, len(data), lambda: path.open("rb"), chunk_size=1000)
        assert fault_proxy.count(r"/src/blobs/uploads/", "PATCH") == 3
        assert fault_proxy.count(r"/src/blobs/uploads/", "PUT") == 1
        assert fetch(client, src, digest) == data

        client.push_blob(dst, digest, len(data), lambda: path.open("rb"), mount_from=src)
        assert any(m == "POST" and "mount=" in p and "from=" in p for m, p in fault_proxy.requests)
        assert fault_proxy.count(r"/dst/blobs/uploads/", "PUT") == 0
        assert fetch(client, dst, digest) == data


def test_monolithic_upload_rejects_wrong_digest(registry_plain: RegistryServer, unique_repo: str) -> None:
    ref = Reference.parse(registry_plain.ref(unique_repo))
    wrong = sha256_digest(b"something else")
    with make_client(plain(registry_plain.host)) as client, pytest.raises(Exception) as info:
        client.push_blob(ref, wrong, 5, lambda: io.BytesIO(b"hello"))
    assert "digest" in str(info.value).lower()


class _PagingRegistry(ThreadingHTTPServer):
    """A minimal registry that paginates ``tags/list`` like ghcr.io or Harbor do (distribution 2.8,
    the Debian ``docker-registry``, ignores ``n``). Serves ``/v2/`` and one repository's tags."""

    def __init__(self, tags: list[str]) -> None:
        self.tags = sorted(tags)
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _PagingHandler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _PagingHandler(BaseHTTPRequestHandler):
    server: _PagingRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        headers: dict[str, str] = {}
        if url.path == "/v2/":
            body = b"{}"
        elif url.path == "/v2/org/pkg/tags/list":
            n = int(q.get("n", ["1000"])[0])
            last = q.get("last", [""])[0]
            rest = [t for t in self.server.tags if t > last]
            page = rest[:n]
            if len(rest) > n:
                headers["Link"] = f'</v2/org/pkg/tags/list?n={n}&last={page[-1]}>; rel="next"'
            body = json.dumps({"name": "org/pkg", "tags": page}).encode()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def test_tags_pagination() -> None:
    tags = ["a1", "b2", "c3", "d4", "e5"]
    server = _PagingRegistry(tags)
    try:
        with make_client(plain(server.host)) as client:
            got = client.list_tags(Reference.parse(f"{server.host}/org/pkg"), page_size=2)
        assert got == tags
        pages = [p for p in server.seen if "tags/list" in p]
        assert pages == [
            "/v2/org/pkg/tags/list?n=2",
            "/v2/org/pkg/tags/list?n=2&last=b2",
            "/v2/org/pkg/tags/list?n=2&last=d4",
        ]
    finally:
        server.shutdown()
        server.server_close()


def test_tags_unpaginated_registry(registry_plain: RegistryServer, xpkg_image: TestImage) -> None:
    tags = ["a1", "b2", "c3"]
    with make_client(plain(registry_plain.host)) as client:
        for tag in tags:
            push_image(client, Reference.parse(registry_plain.ref(xpkg_image.name, tag)), xpkg_image)
        assert (
            sorted(client.list_tags(Reference.parse(registry_plain.ref(xpkg_image.name)), page_size=2))
            == tags
        )


def test_interop_with_skopeo(skopeo: Skopeo, registry_plain: RegistryServer, xpkg_image: TestImage) -> None:
    pushed = Reference.parse(skopeo.push(xpkg_image, registry_plain))
    with make_client(plain(registry_plain.host)) as client:
        data, desc = client.get_manifest(pushed)
        assert desc.digest == xpkg_image.manifest_digest and data == xpkg_image.manifest
        assert fetch(client, pushed, xpkg_image.layer_digest) == xpkg_image.layer
        mine = Reference.parse(registry_plain.ref(xpkg_image.name + "-copy", "v1"))
        push_image(client, mine, xpkg_image)
    out = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{mine}", check=True)
    assert sha256_digest(out.stdout if isinstance(out.stdout, bytes) else out.stdout.encode()) == (
        xpkg_image.manifest_digest
    )


# -- auth -------------------------------------------------------------------------------------


def test_token_auth_scopes_and_cache(
    registry_token: RegistryServer, token_server: TokenServer, xpkg_image: TestImage
) -> None:
    token_server.reset()
    host = registry_token.host
    ref = Reference.parse(registry_token.ref(xpkg_image.name))
    kc = DictKeychain({host: Credentials(username="testuser", password="testpass")})
    with make_client(plain(host), kc) as client:
        push_image(client, ref, xpkg_image)
        pull_scope = (f"repository:{xpkg_image.name}:pull",)
        push_scope = (f"repository:{xpkg_image.name}:pull,push",)
        scopes = [r.scopes for r in token_server.requests]
        # the existence check used a pull token; the upload needed a new token for the push scope
        assert scopes.count(pull_scope) == 1 and scopes.count(push_scope) == 1
        assert all(r.user == "testuser" and r.status == 200 for r in token_server.requests)
        n = len(token_server.requests)
        client.head_manifest(ref)
        client.get_manifest(ref)
        fetch(client, ref, xpkg_image.layer_digest)
        assert len(token_server.requests) == n  # the cached pull token served HEAD, GET and the blob
    with make_client(plain(host), kc) as client:
        client.get_manifest(ref)  # a new client has its own cache
    assert [r.scopes for r in token_server.requests[n:]] == [pull_scope]


def test_token_anonymous_pull_and_refused_push(
    registry_token: RegistryServer, token_server: TokenServer, xpkg_image: TestImage
) -> None:
    host = registry_token.host
    ref = Reference.parse(registry_token.ref(xpkg_image.name))
    kc = DictKeychain({host: Credentials(username="testuser", password="testpass")})
    with make_client(plain(host), kc) as client:
        push_image(client, ref, xpkg_image)
    token_server.reset()
    anon = DictKeychain({}, searched=["/nowhere/config.json"])
    with make_client(plain(host), anon) as client:
        assert client.head_manifest(ref).digest == xpkg_image.manifest_digest
        assert all(r.user is None for r in token_server.requests)
        other = Reference.parse(registry_token.ref(xpkg_image.name + "-anon"))
        with pytest.raises(AuthenticationError) as info:
            client.push_blob(
                other, xpkg_image.config_digest, len(xpkg_image.config), lambda: io.BytesIO(b"{}")
            )
    text = str(info.value)
    assert "/nowhere/config.json" in text and f"xp registry login {host}" in text and "401" in text


def test_identity_token_push(
    registry_token: RegistryServer, token_server: TokenServer, xpkg_image: TestImage
) -> None:
    host = registry_token.host
    kc = DictKeychain({host: Credentials(identity_token=token_server.issue_refresh_token("testuser"))})
    token_server.reset()
    with make_client(plain(host), kc) as client:
        push_image(client, Reference.parse(registry_token.ref(xpkg_image.name + "-idt")), xpkg_image)
    assert token_server.requests and all(r.grant_type == "refresh_token" for r in token_server.requests)


def test_basic_auth(registry_basic: RegistryServer, xpkg_image: TestImage) -> None:
    host = registry_basic.host
    ref = Reference.parse(registry_basic.ref(xpkg_image.name))
    good = DictKeychain({host: Credentials(username="testuser", password="testpass")})
    with make_client(plain(host), good) as client:
        push_image(client, ref, xpkg_image)
        assert client.head_manifest(ref).digest == xpkg_image.manifest_digest
        client.check_auth(host)
    with make_client(plain(host), DictKeychain({}, searched=["/a/auth.json", "/b/config.json"])) as client:
        with pytest.raises(AuthenticationError) as info:
            client.get_manifest(ref)
        assert "/a/auth.json, /b/config.json" in str(info.value) and info.value.status == 401
        with pytest.raises(AuthenticationError, match="no credentials"):
            client.check_auth(host)
    bad = DictKeychain({host: Credentials(username="testuser", password="nope")}, source="bad.json")
    with make_client(plain(host), bad) as client:
        with pytest.raises(AuthenticationError, match=r"credentials from bad.json \(key .*\) were rejected"):
            client.get_manifest(ref)
        with pytest.raises(AuthenticationError):
            client.check_auth(host)


def test_check_auth_token(registry_token: RegistryServer) -> None:
    host = registry_token.host
    with make_client(
        plain(host), DictKeychain({host: Credentials(username="testuser", password="testpass")})
    ) as c:
        c.check_auth(host)
        c.check_auth(host, "some/repo")
    bad = DictKeychain({host: Credentials(username="testuser", password="x")})
    with make_client(plain(host), bad) as c, pytest.raises(AuthenticationError, match="rejected"):
        c.check_auth(host)


def test_check_auth_without_auth_passes(registry_plain: RegistryServer) -> None:
    with make_client(plain(registry_plain.host)) as client:
        client.check_auth(registry_plain.host)


# -- TLS and plain HTTP -----------------------------------------------------------------------


def _tls_settings(server: RegistryServer, **kw: object) -> StaticConfig:
    return StaticConfig({server.host: RegistrySettings(host=server.host, source="test config", **kw)})  # type: ignore[arg-type]


def test_tls_with_ca(registry_tls: RegistryServer, xpkg_image: TestImage) -> None:
    assert registry_tls.ca_file is not None
    kc = DictKeychain({registry_tls.host: Credentials(username="testuser", password="testpass")})
    ref = Reference.parse(registry_tls.ref(xpkg_image.name))
    with make_client(_tls_settings(registry_tls, ca_files=(registry_tls.ca_file,)), kc) as client:
        push_image(client, ref, xpkg_image)
        assert client.head_manifest(ref).digest == xpkg_image.manifest_digest


def test_tls_without_ca_fails_naming_the_bundle(registry_tls: RegistryServer) -> None:
    ref = Reference.parse(registry_tls.ref("any/thing"))
    with make_client(_tls_settings(registry_tls)) as client, pytest.raises(TLSError) as info:
        client.get_manifest(ref)
    text = str(info.value)
    assert "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text
    assert "system CA bundle" in text and "--ca-file" in text and registry_tls.host in text


def test_plain_http_refused_unless_marked(registry_plain: RegistryServer) -> None:
    ref = Reference.parse(registry_plain.ref("any/thing"))
    # 127.0.0.1 is loopback, and still no HTTP fallback unless the settings say so
    with (
        make_client(StaticConfig(), transport=None) as client,
        pytest.raises(TLSError) as info,
    ):
        client.head_manifest(ref)
    assert "server gave HTTP response to HTTPS client" in str(info.value)
    assert "--plain-http" in str(info.value)


# -- transport details ------------------------------------------------------------------------


class RecordingTransport(httpx.BaseTransport):
    """A real HTTP transport that remembers each request's method, URL and header names."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_user_agent_and_accept(registry_plain: RegistryServer, xpkg_image: TestImage) -> None:
    rec = RecordingTransport()
    ref = Reference.parse(registry_plain.ref(xpkg_image.name))
    with make_client(plain(registry_plain.host), transport=rec) as client:
        push_image(client, ref, xpkg_image)
        client.get_manifest(ref)
    assert rec.seen and all(r.headers["User-Agent"] == f"xplane/{__version__}" for r in rec.seen)
    get = next(r for r in rec.seen if r.method == "GET" and "/manifests/" in r.url.path)
    accept = {a.strip() for a in get.headers["Accept"].split(",")}
    assert len(accept) == 4 and OCI_MANIFEST in accept


def test_docker_hub_api_host() -> None:
    assert api_host("index.docker.io") == "registry-1.docker.io"
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("ghcr.io") == "ghcr.io"
    session = HostSession(RegistrySettings(host="index.docker.io"), transport=httpx.HTTPTransport())  # type: ignore[arg-type]
    with session.client:
        assert session.url("/v2/") == "https://registry-1.docker.io/v2/"


# -- secrets never leak -----------------------------------------------------------------------


def test_no_secrets_in_logs_or_errors(
    registry_token: RegistryServer,
    registry_basic: RegistryServer,
    token_server: TokenServer,
    xpkg_image: TestImage,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = ["testpass", "wrong-pa55word", "opaque-registry-token"]
    refresh = token_server.issue_refresh_token("testuser")
    secrets.append(refresh)
    errors: list[str] = []
    rec = RecordingTransport()
    for server in (registry_token, registry_basic):
        host = server.host
        ref = Reference.parse(server.ref(xpkg_image.name + "-sec"))
        for creds in (
            Credentials(username="testuser", password="testpass"),
            Credentials(username="testuser", password="wrong-pa55word"),
            Credentials(identity_token=refresh),
            Credentials(registry_token="opaque-registry-token"),
        ):
            with make_client(plain(host), DictKeychain({host: creds}), transport=rec) as client:
                try:
                    push_image(client, ref, xpkg_image)
                    client.get_manifest(ref)
                    client.check_auth(host)
                except RegistryError as e:
                    errors.append(str(e) + repr(e) + repr(e.args))
    assert errors, "some credential sets must have failed"
    # every Authorization value that went over the wire is a secret too
    secrets += [r.headers["Authorization"].split(" ", 1)[1] for r in rec.seen if "Authorization" in r.headers]
    text = "\n".join(errors + [r.getMessage() for r in caplog.records])
    assert "credentials for" in text  # the source is logged ...
    for secret in set(secrets):
        assert secret not in text, "a secret leaked into a log line or error"
    assert "Authorization" not in text


def test_settings_source_in_plain_http_hint(registry_plain: RegistryServer) -> None:
    cfg = StaticConfig(
        {registry_plain.host: RegistrySettings(host=registry_plain.host, source="my-config.yaml")}
    )
    with make_client(cfg, transport=None) as client, pytest.raises(TLSError) as info:
        client.list_tags(Reference.parse(registry_plain.ref("a/b")))
    assert "my-config.yaml" in str(info.value)
    assert json.dumps(str(info.value))  # serialisable, plain text


def test_tls_session_trust_and_messages(registry_tls: RegistryServer) -> None:
    """HostSession with an explicit SSLContext factory (what ssl_context_for supplies in production)."""
    assert registry_tls.ca_file is not None
    ca = str(registry_tls.ca_file)
    with_ca = RegistrySettings(host=registry_tls.host, ca_files=(registry_tls.ca_file,), source="cfg.yaml")
    session = HostSession(with_ca, ssl_context=lambda s: ssl.create_default_context(cafile=ca))  # type: ignore[arg-type]
    with session.client:
        resp = session.send("GET", "/v2/")
        assert resp.status_code == 401  # TLS worked; basic auth wanted
    bare = RegistrySettings(host=registry_tls.host, source="cfg.yaml")
    session = HostSession(bare, ssl_context=lambda s: ssl.create_default_context(), retry=FAST)  # type: ignore[arg-type]
    start = time.monotonic()
    with session.client, pytest.raises(TLSError) as info:
        session.send("GET", "/v2/", repository="org/pkg")
    assert time.monotonic() - start < 1, "TLS failures are not retried"
    text = str(info.value)
    assert "certificate verify failed" in text.lower() and "system CA bundle" in text and "cfg.yaml" in text
    assert info.value.registry == registry_tls.host and info.value.repository == "org/pkg"


def test_plain_http_to_tls_registry_explains(registry_tls: RegistryServer) -> None:
    with make_client(plain(registry_tls.host)) as client, pytest.raises(RegistryError) as info:
        client.get_manifest(Reference.parse(registry_tls.ref("a/b")))
    assert info.value.status == 400
    assert "speaks HTTPS" in str(info.value) and "drop --plain-http" in str(info.value)


def test_plain_http_token_realm_needs_opt_in(
    registry_factory: Callable[..., RegistryServer],
    tls_certs: TLSCerts,
    token_server: TokenServer,
    xpkg_image: TestImage,
) -> None:
    reg = registry_factory(auth="token", tls=True, certs=tls_certs, token_server=token_server)
    transport = httpx.HTTPTransport(verify=tls_certs.client_context())  # trusts the test CA
    kc = DictKeychain({reg.host: Credentials(username="testuser", password="testpass")})
    ref = Reference.parse(reg.ref(xpkg_image.name))
    token_server.reset()
    with make_client(StaticConfig(), kc, transport=transport) as client, pytest.raises(RegistryError) as info:
        client.get_manifest(ref)
    assert "uses plain HTTP; refusing to send credentials" in str(info.value)
    assert token_server.requests == []
    realm_host = f"127.0.0.1:{token_server.port}"
    with make_client(plain(realm_host), kc, transport=transport) as client:
        push_image(client, ref, xpkg_image)
        assert client.head_manifest(ref).digest == xpkg_image.manifest_digest
    assert token_server.requests


def _registries_conf(tmp_path: Path, *hosts: str) -> RegistryConfig:
    """A real RegistryConfig from a registries.conf marking ``hosts`` ``insecure = true``."""
    conf = tmp_path / "registries.conf"
    conf.write_text("".join(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n' for h in hosts))
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    return RegistryConfig.load(env=env, system_root=tmp_path)


def test_registries_conf_insecure_falls_back_to_http(
    registry_plain: RegistryServer, registry_tls: RegistryServer, tmp_path: Path, xpkg_image: TestImage
) -> None:
    cfg = _registries_conf(tmp_path, registry_plain.host, registry_tls.host)
    assert cfg.for_registry(registry_plain.host).http_fallback
    kc = DictKeychain({registry_tls.host: Credentials(username="testuser", password="testpass")})
    rec = RecordingTransport()
    with RegistryClient(keychain=kc, config=cfg, retry=FAST) as client:
        for server in (registry_plain, registry_tls):  # plain HTTP, then HTTPS without verification
            ref = Reference.parse(server.ref(xpkg_image.name + "-insecure"))
            push_image(client, ref, xpkg_image)
            assert client.head_manifest(ref).digest == xpkg_image.manifest_digest
    # without the registries.conf entry: no fallback
    with make_client(StaticConfig(), transport=rec) as client, pytest.raises(TLSError):
        client.head_manifest(Reference.parse(registry_plain.ref(xpkg_image.name + "-insecure")))
    assert all(r.url.scheme == "https" for r in rec.seen)


def test_real_keychain_docker_config(
    registry_basic: RegistryServer, tmp_path: Path, xpkg_image: TestImage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="xplane")
    docker = tmp_path / "docker"
    docker.mkdir()
    auth = base64.b64encode(b"testuser:testpass").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {registry_basic.host: {"auth": auth}}}))
    env = {"DOCKER_CONFIG": str(docker), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    ref = Reference.parse(registry_basic.ref(xpkg_image.name + "-kc"))
    kc = default_keychain(env=env, system_root=tmp_path)
    with RegistryClient(keychain=kc, config=plain(registry_basic.host), retry=FAST) as client:  # type: ignore[arg-type]
        push_image(client, ref, xpkg_image)
        client.check_auth(registry_basic.host)
    assert any(str(docker / "config.json") in r.getMessage() for r in caplog.records)
    assert all(auth not in r.getMessage() and "testpass" not in r.getMessage() for r in caplog.records)
    (docker / "config.json").write_text(json.dumps({"auths": {}}))
    empty = default_keychain(env=env, system_root=tmp_path)
    with (
        RegistryClient(keychain=empty, config=plain(registry_basic.host), retry=FAST) as client,  # type: ignore[arg-type]
        pytest.raises(AuthenticationError) as info,
    ):
        client.get_manifest(ref)
    assert str(docker / "config.json") in str(info.value) and str(tmp_path / "run") in str(info.value)

"""Registry settings: xplane's config.yaml, registries.conf, certs.d, CLI overrides and real TLS."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.certs import TLSCerts
from tests.support.registry import RegistryServer
from xplane.oci.errors import ConfigError
from xplane.oci.settings import RegistryConfig, RegistryOverrides, RegistrySettings, ssl_context_for

HOST = "reg.example:8443"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg")}


def sysroot(env: dict[str, str]) -> Path:
    return Path(env["HOME"]) / "sysroot"


def load(env: dict[str, str], **kw: Any) -> RegistryConfig:
    return RegistryConfig.load(env=env, system_root=sysroot(env), **kw)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def xplane_config(env: dict[str, str], text: str) -> Path:
    return write(Path(env["XDG_CONFIG_HOME"]) / "xplane" / "config.yaml", text)


def test_defaults_never_plain_http_not_even_for_loopback(env: dict[str, str]) -> None:
    cfg = load(env)
    for host in (
        "127.0.0.1:5000",
        "localhost:5000",
        "[::1]:5000",
        "registry.localhost:5000",
        "10.0.0.1:5000",
    ):
        s = cfg.for_registry(host)
        assert s == RegistrySettings(host=host)
        assert not s.plain_http and not s.insecure_skip_verify and s.source == "defaults"


def test_xplane_config_file(tmp_path: Path, env: dict[str, str]) -> None:
    path = xplane_config(
        env,
        """\
defaults: {pullPolicy: IfNotPresent}   # other sections belong to others
registries:
  "127.0.0.1:5000":
    plainHTTP: true
  reg.example:8443:
    caFile: certs/ca.pem
    caFiles: [/abs/one.pem, two.pem]
    clientCert: client.cert
    clientKey: client.key
    insecureSkipVerify: yes
""",
    )
    cfg = load(env)
    plain = cfg.for_registry("127.0.0.1:5000")
    assert plain.plain_http and plain.source == f"{path}:3"
    tls = cfg.for_registry(HOST)
    d = path.parent
    assert tls.ca_files == (d / "certs/ca.pem", Path("/abs/one.pem"), d / "two.pem")
    assert (tls.client_cert, tls.client_key) == (d / "client.cert", d / "client.key")
    assert tls.insecure_skip_verify and not tls.plain_http and tls.source == f"{path}:5"
    assert cfg.for_registry("127.0.0.1:5001").plain_http is False  # another port: unmarked
    assert cfg.for_registry(HOST) is tls  # cached

    other = write(tmp_path / "other.yaml", 'registries: {"o.example": {plainHTTP: true}}\n')
    assert load({**env, "XPLANE_CONFIG": str(other)}).for_registry("o.example").plain_http
    assert not load({**env, "XPLANE_CONFIG": str(other)}).for_registry("127.0.0.1:5000").plain_http
    assert load(env, config_file=other).for_registry("o.example").plain_http
    with pytest.raises(ConfigError, match="does not exist"):
        load(env, config_file=tmp_path / "missing.yaml")
    write(path, "")
    assert load(env).for_registry("127.0.0.1:5000").source == "defaults"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("registries:\n  h:1:\n    plainHttp: true\n", 3, "unknown setting 'plainHttp' for 'h:1'"),
        ("registries:\n  h:1:\n    plainHTTP: 'yes please'\n", 3, "plainHTTP must be true or false"),
        (
            "registries:\n  h:1:\n    clientCert: c.pem\n",
            2,
            "clientCert and clientKey must be given together",
        ),
        ("registries:\n  h:1: {plainHTTP: true, caFile: x}\n", 2, "plainHTTP cannot be combined"),
        ("registries:\n  https://h:1: {plainHTTP: true}\n", 2, "must be host\\[:port\\], without scheme"),
        ("registries:\n  - h:1\n", 2, "registries must map host"),
        ("registries:\n  h:1: [1]\n", 2, "settings of 'h:1' must be a mapping"),
        ("registries:\n  h:1:\n    caFiles: x.pem\n", 3, "caFiles must be a list"),
        ("registries:\n  h:1:\n    plainHTTP: true\n   bad: [\n", 4, "invalid YAML"),
        ("- a\n- b\n", 1, "must be a mapping"),
    ],
)
def test_config_errors_name_file_and_line(env: dict[str, str], text: str, line: int, message: str) -> None:
    path = xplane_config(env, text)
    with pytest.raises(ConfigError, match=rf"^{path}:{line}: .*{message}"):
        load(env)


# -- registries.conf ----------------------------------------------------------------------------

REGISTRIES_CONF = """\
unqualified-search-registries = ["docker.io"]

[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "mirrored.example"
location = "secure.example"
  [[registry.mirror]]
  location = "mirror.local:5000"
  insecure = true

[[registry]]
location = "*.dev.example"
insecure = true

[[registry]]
location = "ns.example/team"
insecure = true
"""


def test_registries_conf_insecure(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write(tmp_path / "registries.conf", REGISTRIES_CONF)
    cfg = load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    s = cfg.for_registry("127.0.0.1:5000")
    # insecure = true: skip verification over HTTPS, and HTTP is allowed as a fallback.
    assert s.insecure_skip_verify and s.http_fallback and not s.plain_http
    assert s.source == f"{conf} ([[registry]] 127.0.0.1:5000)"
    assert cfg.for_registry("mirror.local:5000").http_fallback
    assert cfg.for_registry("a.dev.example").insecure_skip_verify
    assert cfg.for_registry("a.b.dev.example:443").insecure_skip_verify
    assert not cfg.for_registry("dev.example").insecure_skip_verify
    assert cfg.for_registry("ns.example").insecure_skip_verify  # TLS is per host
    for host in ("secure.example", "mirrored.example", "127.0.0.1:5001"):
        assert cfg.for_registry(host) == RegistrySettings(host=host)


def test_registries_conf_v1_and_search_order(tmp_path: Path, env: dict[str, str]) -> None:
    system = write(
        sysroot(env) / "etc/containers/registries.conf",
        '[[registry]]\nlocation = "sys.example"\ninsecure = true\n',
    )
    assert load(env).for_registry("sys.example").insecure_skip_verify
    user = write(
        Path(env["XDG_CONFIG_HOME"]) / "containers/registries.conf",
        '[registries.insecure]\nregistries = ["v1.example:5000"]\n',
    )
    cfg = load(env)  # the user's file replaces the system one, as in containers/image
    assert cfg.for_registry("v1.example:5000").http_fallback
    assert not cfg.for_registry("sys.example").insecure_skip_verify
    assert cfg.for_registry("v1.example:5000").source == f"{user} ([registries.insecure] v1.example:5000)"
    assert system.exists()


def test_registries_conf_errors(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write(tmp_path / "r.conf", '[[registry]]\nlocation = "x"\ninsecure = tru\n')
    with pytest.raises(ConfigError, match=rf"{conf}: invalid TOML: .*line 3"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    write(conf, '[[registry]]\nlocation = "x"\ninsecure = "yes"\n')
    with pytest.raises(ConfigError, match="insecure must be true or false"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    with pytest.raises(ConfigError, match="cannot read"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "missing.conf")})


def test_xplane_config_wins_over_registries_conf(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write(tmp_path / "r.conf", '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n')
    path = xplane_config(env, 'registries: {"127.0.0.1:5000": {plainHTTP: true}}\n')
    s = load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)}).for_registry("127.0.0.1:5000")
    assert s.plain_http and not s.http_fallback
    assert s.source == f"{conf} ([[registry]] 127.0.0.1:5000); {path}:1"
    xplane_config(env, 'registries: {"127.0.0.1:5000": {insecureSkipVerify: false}}\n')
    s = load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)}).for_registry("127.0.0.1:5000")
    assert not s.insecure_skip_verify and s.http_fallback


# -- certs.d ------------------------------------------------------------------------------------


def test_certs_d_directories(env: dict[str, str], tls_certs: TLSCerts) -> None:
    user_root = Path(env["XDG_CONFIG_HOME"]) / "containers/certs.d"
    etc_containers = sysroot(env) / "etc/containers/certs.d"
    etc_docker = sysroot(env) / "etc/docker/certs.d"
    d = tls_certs.certs_d_for(etc_docker, HOST)
    s = load(env).for_registry(HOST)
    assert (
        s.ca_files == (d / "ca.crt",)
        and s.client_cert == d / "client.cert"
        and s.client_key == d / "client.key"
    )
    assert s.source == f"certs.d {d}"
    d2 = tls_certs.certs_d_for(etc_containers, HOST, with_client_cert=False)
    (d2 / "extra.crt").write_bytes(tls_certs.ca_pem)
    s = load(env).for_registry(HOST)  # the first root holding the host wins
    assert s.ca_files == (d2 / "ca.crt", d2 / "extra.crt") and s.client_cert is None
    d3 = tls_certs.certs_d_for(user_root, HOST)
    assert load(env).for_registry(HOST).ca_files == (d3 / "ca.crt",)
    assert load(env).for_registry("other:1") == RegistrySettings(host="other:1")

    (d3 / "client.key").unlink()
    with pytest.raises(ConfigError, match=r"client.cert: client certificate without its key client.key"):
        load(env).for_registry(HOST)
    (d3 / "client.cert").unlink()
    (d3 / "lonely.key").write_text("x")
    with pytest.raises(ConfigError, match="client key without its certificate lonely.cert"):
        load(env).for_registry(HOST)


def test_cas_accumulate_and_overrides_apply_everywhere(
    tmp_path: Path, env: dict[str, str], tls_certs: TLSCerts
) -> None:
    d = tls_certs.certs_d_for(sysroot(env) / "etc/containers/certs.d", HOST, with_client_cert=False)
    path = xplane_config(env, f"registries:\n  {HOST}:\n    caFile: {tmp_path}/mine.pem\n")
    extra = tmp_path / "flag.pem"
    cfg = load(env, overrides=RegistryOverrides(ca_file=extra, insecure_skip_verify=True))
    s = cfg.for_registry(HOST)
    assert s.ca_files == (d / "ca.crt", tmp_path / "mine.pem", extra) and s.insecure_skip_verify
    assert s.source == f"certs.d {d}; {path}:2; command-line flags"
    anywhere = cfg.for_registry("anything.example")
    assert anywhere.ca_files == (extra,) and anywhere.source == "command-line flags"
    plain = load(env, overrides=RegistryOverrides(plain_http=True)).for_registry("x:1")
    assert plain.plain_http and plain.source == "command-line flags"
    # Default (no-op) overrides change nothing.
    assert load(env, overrides=RegistryOverrides()).for_registry("x:1") == RegistrySettings(host="x:1")


# -- TLS against a real registry ----------------------------------------------------------------


def get_v2(server: RegistryServer, settings: RegistrySettings) -> int:
    with httpx.Client(verify=ssl_context_for(settings), timeout=5) as client:
        return client.get(f"{server.url}/v2/").status_code


def test_ssl_context_verifies_by_default(registry_tls: RegistryServer, tls_certs: TLSCerts) -> None:
    host = registry_tls.host
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get_v2(registry_tls, RegistrySettings(host=host))
    assert get_v2(registry_tls, RegistrySettings(host=host, ca_files=(tls_certs.ca_cert,))) == 401
    assert get_v2(registry_tls, RegistrySettings(host=host, insecure_skip_verify=True)) == 401
    ctx = ssl_context_for(RegistrySettings(host=host))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_client_certificate_from_certs_d(
    registry_factory: Callable[..., RegistryServer], tls_certs: TLSCerts, env: dict[str, str]
) -> None:
    server = registry_factory(tls=True, certs=tls_certs, require_client_cert=True)
    only_ca = RegistrySettings(host=server.host, ca_files=(tls_certs.ca_cert,))
    with pytest.raises(httpx.HTTPError):
        get_v2(server, only_ca)
    tls_certs.certs_d_for(Path(env["XDG_CONFIG_HOME"]) / "containers/certs.d", server.host)
    settings = load(env).for_registry(server.host)
    assert settings.client_cert is not None
    assert get_v2(server, settings) == 200


def test_bad_tls_files_are_config_errors(tmp_path: Path, tls_certs: TLSCerts) -> None:
    junk = write(tmp_path / "junk.pem", "not a certificate\n")
    with pytest.raises(ConfigError, match=rf"CA file {junk} for h:1 cannot be loaded") as e:
        ssl_context_for(RegistrySettings(host="h:1", ca_files=(junk,), source="somewhere"))
    assert "somewhere" in str(e.value)
    with pytest.raises(ConfigError, match="CA file .*missing.pem"):
        ssl_context_for(RegistrySettings(host="h:1", ca_files=(tmp_path / "missing.pem",)))
    with pytest.raises(ConfigError, match="client certificate .* cannot be loaded"):
        ssl_context_for(RegistrySettings(host="h:1", client_cert=junk, client_key=tls_certs.client_key))

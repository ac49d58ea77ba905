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
from xplane.oci.registriesconf import load_registries_conf
from xplane.oci.settings import (
    RegistryConfig,
    RegistryOverrides,
    RegistrySettings,
    ssl_context_for,
)

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
    assert s.source == f"{conf}:3 ([[registry]] 127.0.0.1:5000)"
    mirror = cfg.for_registry("mirror.local:5000")
    assert mirror.http_fallback and mirror.source == f"{conf}:10 ([[registry.mirror]] mirror.local:5000)"
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
    assert cfg.for_registry("v1.example:5000").source == f"{user}:1 ([registries.insecure] v1.example:5000)"
    assert system.exists()


def test_registries_conf_errors(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write(tmp_path / "r.conf", '[[registry]]\nlocation = "x"\ninsecure = tru\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:3: invalid TOML: .*column 12"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    write(conf, '[[registry]]\nlocation = "x"\ninsecure = "yes"\n')
    with pytest.raises(ConfigError, match=rf"^{conf}:3: .*insecure must be true or false"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    with pytest.raises(ConfigError, match="cannot read"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(tmp_path / "missing.conf")})


def test_xplane_config_wins_over_registries_conf(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write(tmp_path / "r.conf", '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n')
    path = xplane_config(env, 'registries: {"127.0.0.1:5000": {plainHTTP: true}}\n')
    s = load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)}).for_registry("127.0.0.1:5000")
    assert s.plain_http and not s.http_fallback
    assert s.source == f"{conf}:1 ([[registry]] 127.0.0.1:5000); {path}:1"
    xplane_config(env, 'registries: {"127.0.0.1:5000": {insecureSkipVerify: false}}\n')
    s = load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)}).for_registry("127.0.0.1:5000")
    assert not s.insecure_skip_verify and s.http_fallback


# -- registries.conf.d drop-ins -------------------------------------------------------------------


def system_dir(env: dict[str, str]) -> Path:
    return sysroot(env) / "etc/containers/registries.conf.d"


def user_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "containers/registries.conf.d"


def insecure_hosts(cfg: RegistryConfig, *hosts: str) -> set[str]:
    return {h for h in hosts if cfg.for_registry(h).insecure_skip_verify}


HOSTS = ("a.example", "b.example", "c.example", "d.example", "mirror.example:5000", "u.example")


def test_drop_ins_merge_per_prefix_in_lexical_order(env: dict[str, str]) -> None:
    write(
        sysroot(env) / "etc/containers/registries.conf",
        """\
[[registry]]
location = "a.example"
insecure = true

[[registry]]
location = "b.example"
insecure = true
  [[registry.mirror]]
  location = "mirror.example:5000"
  insecure = true
""",
    )
    assert insecure_hosts(load(env), *HOSTS) == {"a.example", "b.example", "mirror.example:5000"}
    # "10-" sorts before "9-": lexical, not numeric. Later files replace a prefix's whole entry.
    write(system_dir(env) / "9-last.conf", '[[registry]]\nlocation = "c.example"\ninsecure = false\n')
    off = write(
        system_dir(env) / "10-first.conf",
        """\
# a drop-in may hold only some registries
[[registry]]
location = "a.example"

[[registry]]
location = "b.example"
insecure = true

[[registry]]
location = "c.example"
insecure = true
""",
    )
    write(system_dir(env) / "ignored.conf.bak", '[[registry]]\nlocation = "d.example"\ninsecure = true\n')
    write(
        system_dir(env) / "sub.conf" / "nested.conf",
        '[[registry]]\nlocation = "d.example"\ninsecure = true\n',
    )
    write(system_dir(env) / "aliases.conf", '[aliases]\n"alpine" = "docker.io/library/alpine"\n')
    cfg = load(env)
    # a: switched off; b: redefined without its mirror; c: on in 10-first, off again in 9-last.
    assert insecure_hosts(cfg, *HOSTS) == {"b.example"}
    assert cfg.for_registry("b.example").source == f"{off}:5 ([[registry]] b.example)"
    # The user's directory comes after the system's, whatever the names.
    user = write(user_dir(env) / "00.conf", '[[registry]]\nlocation = "d.example"\ninsecure = true\n')
    write(user_dir(env) / "01.conf", '[[registry]]\nlocation = "c.example"\ninsecure = true\n')
    cfg = load(env)
    assert insecure_hosts(cfg, *HOSTS) == {"b.example", "c.example", "d.example"}
    assert cfg.for_registry("d.example").source == f"{user}:1 ([[registry]] d.example)"


def test_drop_ins_replace_by_prefix_not_by_host(env: dict[str, str]) -> None:
    write(
        sysroot(env) / "etc/containers/registries.conf",
        """\
[[registry]]
prefix = "a.example/team"
location = "a.example"
insecure = true

[[registry]]
prefix = "b.example"
location = "b.example"
insecure = true

[[registry]]
prefix = "b.example"
location = "b.example"
insecure = true
  [[registry.mirror]]
  location = "mirror.example:5000"
  insecure = true
""",
    )
    # Within one file the first entry of a prefix wins (its mirror-less twin shadows the second).
    assert insecure_hosts(load(env), *HOSTS) == {"a.example", "b.example"}
    write(system_dir(env) / "x.conf", '[[registry]]\nlocation = "a.example"\ninsecure = false\n')
    # Another prefix for the same host does not replace "a.example/team" (and TLS is per host).
    assert insecure_hosts(load(env), *HOSTS) == {"a.example", "b.example"}


def test_drop_in_directories_follow_containers_image(tmp_path: Path, env: dict[str, str]) -> None:
    write(system_dir(env) / "s.conf", '[[registry]]\nlocation = "a.example"\ninsecure = true\n')
    write(user_dir(env) / "u.conf", '[[registry]]\nlocation = "u.example"\ninsecure = true\n')
    # No registries.conf at all: both directories still apply.
    assert insecure_hosts(load(env), *HOSTS) == {"a.example", "u.example"}
    # $CONTAINERS_REGISTRIES_CONF replaces the main file only: both directories still apply.
    main = write(tmp_path / "main.conf", '[[registry]]\nlocation = "b.example"\ninsecure = true\n')
    cfg = load({**env, "CONTAINERS_REGISTRIES_CONF": str(main)})
    assert insecure_hosts(cfg, *HOSTS) == {"a.example", "b.example", "u.example"}
    # $CONTAINERS_REGISTRIES_CONF_DIR replaces both directories.
    own = write(tmp_path / "own.d" / "o.conf", '[[registry]]\nlocation = "c.example"\ninsecure = true\n')
    cfg = load(
        {**env, "CONTAINERS_REGISTRIES_CONF": str(main), "CONTAINERS_REGISTRIES_CONF_DIR": str(own.parent)}
    )
    assert insecure_hosts(cfg, *HOSTS) == {"b.example", "c.example"}
    # A user registries.conf replaces the system file *and* the system directory.
    write(Path(env["XDG_CONFIG_HOME"]) / "containers/registries.conf", "")
    assert insecure_hosts(load(env), *HOSTS) == {"u.example"}
    # Without $XDG_CONFIG_HOME the user's files are under ~/.config.
    home_env = {"HOME": env["HOME"]}
    write(
        Path(env["HOME"]) / ".config/containers/registries.conf.d/h.conf",
        '[[registry]]\nlocation = "d.example"\ninsecure = true\n',
    )
    assert insecure_hosts(RegistryConfig.load(env=home_env, system_root=sysroot(env)), *HOSTS) == {
        "a.example",
        "d.example",
    }


def test_real_shortnames_drop_in_is_accepted(env: dict[str, str]) -> None:
    shipped = Path("/etc/containers/registries.conf.d/shortnames.conf")
    if not shipped.is_file():
        pytest.skip("no shortnames.conf on this machine")
    write(system_dir(env) / "000-shortnames.conf", shipped.read_text())
    assert load(env).for_registry("docker.io") == RegistrySettings(host="docker.io")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[registry]]\nlocation = "x"\ninsecure = tru\n', 3, r"invalid TOML: .*\(column 12\)"),
        (
            '[[registry]]\nlocation = "x"\n\n[[registry]]\nlocation = "y"\ninsecure = 1\n',
            6,
            "'y': insecure must be",
        ),
        ('[[registry]]\nlocation = "x"\nblocked = "no"\n', 3, "'x': blocked must be true or false"),
        ('[registries.insecure]\nregistries = ["x"]\n', 1, r"drop-in must use the v2 format"),
        ('[[registry]]\nlocation = "https://x"\n', 2, "URI schemes are not supported"),
        ("[[registry]]\ninsecure = true\n", 1, "needs a location or a prefix"),
        ('[[registry]]\nprefix = "x/y"\n', 1, "location is unset and prefix is not"),
        ('[[registry]]\nprefix = "*.x:5000"\n', 2, r"wildcard prefix '\*.x:5000' must be"),
        ('[[registry]]\nlocation = "x"\n  [[registry.mirror]]\n  insecure = true\n', 3, "has no location"),
        (
            '[[registry]]\nlocation = "x"\n  [[registry.mirror]]\n  location = "m"\n  insecure = "y"\n',
            5,
            "'m': insecure must be",
        ),
        (
            '[[registry]]\nprefix = "p"\nlocation = "x"\n[[registry]]\nlocation = "x"\ninsecure = true\n',
            6,
            "'x' is defined more than once with conflicting 'insecure'",
        ),
        ('registry = "x"\n', None, r"'registry' must be an array of tables"),
        ('registry = [{location = "x", insecure = 1}]\n', None, "'x': insecure must be"),
        ("[[registry]]\nlocation = 5\n", 2, "location must be a string"),
    ],
)
def test_malformed_drop_ins_name_file_and_line(
    env: dict[str, str], text: str, line: int | None, message: str
) -> None:
    write(system_dir(env) / "00-good.conf", '[[registry]]\nlocation = "ok.example"\ninsecure = true\n')
    bad = write(system_dir(env) / "50-bad.conf", text)
    where = f"{bad}:{line}" if line is not None else str(bad)
    with pytest.raises(ConfigError, match=rf"^{where}: .*{message}"):
        load(env)


def test_drop_in_removed_after_listing_is_skipped(tmp_path: Path) -> None:
    kept = write(tmp_path / "b.conf", '[[registry]]\nlocation = "b.example"\ninsecure = true\n')
    entries = load_registries_conf(None, [tmp_path / "a-gone.conf", kept])
    assert [(pattern, e.source) for pattern, e in entries] == [
        ("b.example", f"{kept}:1 ([[registry]] b.example)")
    ]
    with pytest.raises(ConfigError, match="cannot read .*main.conf: file not found"):
        load_registries_conf(tmp_path / "main.conf", [kept])


def test_main_file_rules(tmp_path: Path, env: dict[str, str]) -> None:
    conf = write(
        tmp_path / "r.conf",
        'unqualified-search-registries = ["docker.io"]\n\n[registries.insecure]\nregistries = ["x"]\n',
    )
    with pytest.raises(ConfigError, match=rf"^{conf}:3: mixing the v1 format"):
        load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    write(
        conf,
        '[registries.block]\nregistries = ["b.example"]\n[registries.insecure]\nregistries = ["a.example"]\n',
    )
    cfg = load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)})
    assert insecure_hosts(cfg, *HOSTS) == {"a.example"}
    # A v2 drop-in replaces a v1 host (its prefix is the host).
    write(user_dir(env) / "a.conf", '[[registry]]\nlocation = "a.example"\n')
    assert insecure_hosts(load({**env, "CONTAINERS_REGISTRIES_CONF": str(conf)}), *HOSTS) == set()


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

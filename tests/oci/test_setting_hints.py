"""Every config key an error hint names exists in the settings' key table (issue 7).

Each scenario provokes a real error from a real registry, the way a user meets it, and every word
of its hint that looks like a setting name (``camelCase`` or ``snake_case``) must be a key of
:data:`xplane.oci.settings.SETTING_KEYS`, so following a hint never gives "unknown setting".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.certs import TLSCerts
from tests.support.registry import RegistryServer
from tests.support.tokenserver import TokenServer
from xplane.errors import XplaneError
from xplane.oci.client import RegistryClient
from xplane.oci.credentials import Credentials, ExplicitSource, Keychain
from xplane.oci.errors import ConfigError, RegistryError, TLSError
from xplane.oci.reference import Reference
from xplane.oci.settings import (
    SETTING_KEYS,
    RegistryConfig,
    RegistryOverrides,
    RegistrySettings,
    config_hint,
    load_xplane_config,
)
from xplane.oci.transport import RetryPolicy

FAST = RetryPolicy(max_attempts=1, connect_timeout=2.0, read_timeout=10.0)
SETTING_LIKE = re.compile(r"\b[a-z]+(?:[A-Z][a-zA-Z]*)+\b|\b[a-z]+(?:_[a-z]+)+\b")


def named_settings(text: str) -> set[str]:
    """Words of ``text`` shaped like a setting name: ``plainHTTP``, ``ca_files``."""
    return set(SETTING_LIKE.findall(text))


def test_the_pattern_finds_setting_names() -> None:
    assert named_settings("set 'plainHTTP: true' or ca_files, not --ca-file or certs.d") == {
        "plainHTTP",
        "ca_files",
    }


def _error(
    tmp_path: Path,
    ref: str,
    *,
    config: str | None = None,
    overrides: RegistryOverrides | None = None,
    credentials: Credentials | None = None,
) -> XplaneError:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    if config is not None:
        (tmp_path / "config.yaml").write_text(config)
        env["XPLANE_CONFIG"] = str(tmp_path / "config.yaml")
    keychain = Keychain([ExplicitSource(credentials)] if credentials else [])
    cfg = RegistryConfig.load(env=env, overrides=overrides, system_root=tmp_path)
    with (
        RegistryClient(keychain=keychain, config=cfg, retry=FAST) as client,
        pytest.raises(XplaneError) as info,
    ):
        client.get_manifest(Reference.parse(ref))
    return info.value


Scenario = Callable[[Path, RegistryServer, RegistryServer], XplaneError]

# scenario -> (how to meet the error, the settings its hint should name)
SCENARIOS: dict[str, tuple[Scenario, set[str]]] = {
    "unknown CA": (lambda tmp, tls, plain: _error(tmp, tls.ref("a/b")), {"caFile", "caFiles"}),
    "HTTPS to a plain-HTTP registry": (lambda tmp, tls, plain: _error(tmp, plain.ref("a/b")), {"plainHTTP"}),
    "--plain-http to a TLS registry": (
        lambda tmp, tls, plain: _error(tmp, tls.ref("a/b"), overrides=RegistryOverrides(plain_http=True)),
        {"plainHTTP"},
    ),
    "plainHTTP in config.yaml for a TLS registry": (
        lambda tmp, tls, plain: _error(
            tmp, tls.ref("a/b"), config=f'registries:\n  "{tls.host}": {{plainHTTP: true}}\n'
        ),
        {"plainHTTP"},
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_setting_a_hint_names_exists(
    scenario: str, tmp_path: Path, registry_tls: RegistryServer, registry_plain: RegistryServer
) -> None:
    meet, expected = SCENARIOS[scenario]
    err = meet(tmp_path, registry_tls, registry_plain)
    assert isinstance(err, TLSError) and err.exit_code == 5, err
    assert err.hint
    hint = err.hint.replace(str(tmp_path), "<tmp>")  # paths in "settings from ..." are not settings
    named = named_settings(hint)
    assert named <= set(SETTING_KEYS), f"{sorted(named - set(SETTING_KEYS))} are not config keys: {hint}"
    assert named == expected, hint


def test_the_plain_http_token_realm_hint_names_a_real_key(
    tmp_path: Path,
    registry_factory: Callable[..., RegistryServer],
    tls_certs: TLSCerts,
    token_server: TokenServer,
) -> None:
    reg = registry_factory(auth="token", tls=True, certs=tls_certs, token_server=token_server)
    err = _error(
        tmp_path,
        reg.ref("a/b"),
        overrides=RegistryOverrides(ca_file=tls_certs.ca_cert),
        credentials=Credentials(username="testuser", password="testpass"),
    )
    assert isinstance(err, RegistryError) and "refusing to send credentials" in err.message
    named = named_settings(err.hint or "")
    assert named and named <= set(SETTING_KEYS), err.hint


def test_unknown_setting_lists_the_table(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text('registries:\n  "h:1": {plain_http: true}\n')
    with pytest.raises(ConfigError) as info:
        load_xplane_config(path)
    known = info.value.message.rpartition("(known: ")[2].rstrip(")")
    assert set(known.split(", ")) == set(SETTING_KEYS)


@pytest.mark.parametrize("key", sorted(SETTING_KEYS))
def test_every_key_in_the_table_is_read_and_sets_its_field(key: str, tmp_path: Path) -> None:
    spec = SETTING_KEYS[key]
    value = {"bool": "true", "path": "x.pem", "paths": "[x.pem]", "duration": "90s", "rate": "2K"}[spec.value]
    extra = {"clientCert": ", clientKey: k.pem", "clientKey": ", clientCert: c.pem"}.get(key, "")
    path = tmp_path / "config.yaml"
    path.write_text(f'registries:\n  "h:1": {{{key}: {value}{extra}}}\n')
    env = {"XPLANE_CONFIG": str(path), "HOME": str(tmp_path)}
    settings = RegistryConfig.load(env=env, system_root=tmp_path).for_registry("h:1")
    default = RegistrySettings(host="h:1")
    assert getattr(settings, spec.field) != getattr(default, spec.field)
    assert spec.field in {f.name for f in dataclasses.fields(RegistrySettings)}


def test_a_hint_for_a_field_no_key_sets_fails_loudly() -> None:
    assert config_hint("plain_http", "h:1").startswith("'plainHTTP: true' for h:1")
    with pytest.raises(KeyError):
        config_hint("http_fallback", "h:1")  # registries.conf only: xplane's config.yaml has no key

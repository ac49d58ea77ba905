"""Per-registry connection settings: plain HTTP, TLS verification, CA files, client certificates.

:meth:`RegistryConfig.load` merges, per ``host[:port]`` (later wins; CA files accumulate)::

    certs.d/<host:port>/   ($XDG_CONFIG_HOME/containers/certs.d, /etc/containers/certs.d,
                            /etc/docker/certs.d: the first that has the host's directory)
    registries.conf        ($CONTAINERS_REGISTRIES_CONF, else $XDG_CONFIG_HOME/containers/registries.conf
                            if present, else /etc/containers/registries.conf) and its
                            registries.conf.d/*.conf drop-ins: insecure = true
                            (its prefixes, locations, mirrors and blocked flags are kept in
                            ``registries_conf`` for xplane.oci.mirrors)
    xplane's config.yaml   ($XPLANE_CONFIG, else $XDG_CONFIG_HOME/xplane/config.yaml)
    CLI overrides          (RegistryOverrides: apply to every registry of one command)

Nothing is automatic: plain HTTP is used only for a registry marked so, loopback included.
See docs/registries.md for the file formats.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xplane.oci.errors import ConfigError
from xplane.oci.limits import DEFAULT_MIN_TRANSFER_RATE, DEFAULT_PULL_TIMEOUT, parse_duration, parse_rate
from xplane.oci.registriesconf import (
    ConfRegistry,
    _Entry,
    insecure_entries,
    read_registries_conf,
    registries_conf_files,
)

if TYPE_CHECKING:
    import yaml  # imported at run time only when a config file is read (keeps `xp` start-up lean)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingKey:
    """A key of one registry's entry under ``registries:`` in xplane's config.yaml."""

    name: str  # as written in the file
    field: str  # the RegistrySettings field it sets
    value: str  # "bool", "path", "paths" (a list of paths), "duration" or "rate"


#: Every key a registry entry in xplane's config.yaml accepts (docs/registries.md). Error hints that
#: name a setting are generated from this table (:func:`config_hint`), never written by hand.
SETTING_KEYS: Mapping[str, SettingKey] = {
    k.name: k
    for k in (
        SettingKey("plainHTTP", "plain_http", "bool"),
        SettingKey("insecureSkipVerify", "insecure_skip_verify", "bool"),
        SettingKey("caFile", "ca_files", "path"),
        SettingKey("caFiles", "ca_files", "paths"),
        SettingKey("clientCert", "client_cert", "path"),
        SettingKey("clientKey", "client_key", "path"),
        SettingKey("pullTimeout", "pull_timeout", "duration"),
        SettingKey("minTransferRate", "min_transfer_rate", "rate"),
    )
}
_EXAMPLE_VALUES = {"bool": "true", "path": "FILE", "paths": "[FILE, ...]", "duration": "30m", "rate": "256"}
_PARSERS: Mapping[str, Any] = {"duration": parse_duration, "rate": parse_rate}


def config_keys(field: str) -> tuple[str, ...]:
    """The config.yaml keys that set RegistrySettings ``field``; :class:`KeyError` when none does."""
    keys = tuple(k.name for k in SETTING_KEYS.values() if k.field == field)
    if not keys:
        raise KeyError(f"no key of xplane's config.yaml sets {field!r}")
    return keys


def config_hint(field: str, host: str) -> str:
    """How to set RegistrySettings ``field`` for ``host`` in xplane's config.yaml, for error hints.

    E.g. ``'plainHTTP: true' for h:5000 under 'registries:' in xplane's config.yaml``. Raises
    :class:`KeyError` for a field no key sets, so a hint cannot name a setting that does not exist.
    """
    keys = [SETTING_KEYS[name] for name in config_keys(field)]
    shown = " or ".join(f"'{k.name}: {_EXAMPLE_VALUES[k.value]}'" for k in keys)
    return f"{shown} for {host} under 'registries:' in xplane's config.yaml"


@dataclass(frozen=True)
class RegistrySettings:
    """How to connect to one registry host (``host[:port]`` as written in references)."""

    host: str
    plain_http: bool = False
    insecure_skip_verify: bool = False
    ca_files: tuple[Path, ...] = ()
    client_cert: Path | None = None
    client_key: Path | None = None
    source: str = "defaults"
    http_fallback: bool = False
    """registries.conf ``insecure = true``: HTTPS without verification, else plain HTTP (see docs)."""
    pull_timeout: float = DEFAULT_PULL_TIMEOUT
    """Seconds a whole pull of an image named with this registry may take (0: no limit)."""
    min_transfer_rate: int = DEFAULT_MIN_TRANSFER_RATE
    """Bytes per second a response from this host must average (0: no minimum); see docs."""


@dataclass(frozen=True)
class RegistryOverrides:
    """Settings from CLI flags; they apply to every registry one command talks to."""

    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    plain_http: bool = False
    pull_timeout: float | None = None
    min_transfer_rate: int | None = None


@dataclass(frozen=True)
class _XplaneEntry(_Entry):
    """An entry of xplane's config.yaml: registries.conf's settings plus xplane's own."""

    pull_timeout: float | None = None
    min_transfer_rate: int | None = None


@dataclass
class RegistryConfig:
    """Per-registry settings from xplane's config, registries.conf and certs.d, plus CLI overrides."""

    xplane: Mapping[str, _Entry] = field(default_factory=dict)
    containers: tuple[tuple[str, _Entry], ...] = ()  # (location pattern, entry), file order
    certs_d_roots: tuple[Path, ...] = ()
    overrides: RegistryOverrides | None = None
    registries_conf: tuple[ConfRegistry, ...] = ()  # merged [[registry]] entries (see xplane.oci.mirrors)

    def __post_init__(self) -> None:
        self._cache: dict[str, RegistrySettings] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        *,
        config_file: Path | None = None,
        env: Mapping[str, str] | None = None,
        overrides: RegistryOverrides | None = None,
        system_root: Path = Path("/"),
    ) -> RegistryConfig:
        """Read the config files named by ``env`` (default ``os.environ``); ConfigError if malformed.

        ``config_file`` replaces ``$XPLANE_CONFIG``; ``system_root`` prefixes /etc paths (tests).
        """
        env = os.environ if env is None else env
        config_home = _config_home(env)
        path = config_file or _xplane_config_path(env, config_home)
        xplane = load_xplane_config(path) if path is not None and path.is_file() else {}
        if config_file is not None and not config_file.is_file():
            raise ConfigError(f"config file {config_file} does not exist")
        conf, drop_ins = registries_conf_files(env, config_home, system_root)
        registries = read_registries_conf(conf, drop_ins)
        roots = [
            *([config_home / "containers" / "certs.d"] if config_home else []),
            system_root / "etc" / "containers" / "certs.d",
            system_root / "etc" / "docker" / "certs.d",
        ]
        return cls(xplane, insecure_entries(registries), tuple(roots), overrides, registries)

    def for_registry(self, host: str) -> RegistrySettings:
        """The merged settings for ``host[:port]`` (cached; reads its certs.d directory once)."""
        with self._lock:
            cached = self._cache.get(host)
        if cached is not None:
            return cached
        settings = self._merge(host)
        with self._lock:
            self._cache[host] = settings
        return settings

    def _from_files(self, host: str) -> tuple[RegistrySettings, list[str]]:
        """The settings the files give ``host`` (no command-line flags), and the files that did."""
        entries: list[_Entry] = []
        certs = read_certs_d(self.certs_d_roots, host)
        if certs is not None:
            entries.append(certs)
        entries.extend(e for pattern, e in self.containers if _host_matches(pattern, host))
        if host in self.xplane:
            entries.append(self.xplane[host])
        s = RegistrySettings(host=host)
        sources: list[str] = []
        for e in entries:
            sources.append(e.source)
            if e.insecure:
                s = replace(s, insecure_skip_verify=True, http_fallback=True)
            if e.plain_http is not None:
                s = replace(s, plain_http=e.plain_http, http_fallback=False)
            if e.insecure_skip_verify is not None:
                s = replace(s, insecure_skip_verify=e.insecure_skip_verify)
            if e.ca_files:
                s = replace(s, ca_files=(*s.ca_files, *e.ca_files))
            if e.client_cert is not None:
                s = replace(s, client_cert=e.client_cert, client_key=e.client_key)
            if isinstance(e, _XplaneEntry) and e.pull_timeout is not None:
                s = replace(s, pull_timeout=e.pull_timeout)
            if isinstance(e, _XplaneEntry) and e.min_transfer_rate is not None:
                s = replace(s, min_transfer_rate=e.min_transfer_rate)
        return s, sources

    def _merge(self, host: str) -> RegistrySettings:
        s, sources = self._from_files(host)
        o = self.overrides
        if o is not None and (
            o.ca_file
            or o.insecure_skip_verify
            or o.plain_http
            or o.pull_timeout is not None
            or o.min_transfer_rate is not None
        ):
            sources.append("command-line flags")
            if o.plain_http:
                s = replace(s, plain_http=True, http_fallback=False)
            if o.insecure_skip_verify:
                s = replace(s, insecure_skip_verify=True)
            if o.ca_file is not None:
                s = replace(s, ca_files=(*s.ca_files, o.ca_file))
            if o.pull_timeout is not None:
                s = replace(s, pull_timeout=o.pull_timeout)
            if o.min_transfer_rate is not None:
                s = replace(s, min_transfer_rate=o.min_transfer_rate)
        return replace(s, source="; ".join(sources) or "defaults")

    def plain_http_by_name(self, host: str) -> bool:
        """True when a file names ``host`` for plain HTTP (``plainHTTP: true``); flags do not count.

        The token-realm rule uses it: ``--plain-http`` covers the registries a command talks to,
        not every host a registry's challenge may point credentials at.
        """
        return self._from_files(host)[0].plain_http


# -- locations ----------------------------------------------------------------------------------


def _config_home(env: Mapping[str, str]) -> Path | None:
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"])
    return Path(env["HOME"]) / ".config" if env.get("HOME") else None


def _xplane_config_path(env: Mapping[str, str], config_home: Path | None) -> Path | None:
    if env.get("XPLANE_CONFIG"):
        return Path(env["XPLANE_CONFIG"])
    return config_home / "xplane" / "config.yaml" if config_home else None


def _host_matches(pattern: str, host: str) -> bool:
    """registries.conf ``location``/``prefix`` against a host: exact host, or ``*.domain`` wildcard.

    A location with a repository path (``host/ns``) applies to the whole host: TLS is per host.
    """
    loc = pattern.split("://", 1)[-1].split("/", 1)[0].lower()
    h = host.lower()
    if loc.startswith("*."):
        return fnmatch(h.split(":", 1)[0], loc) and ":" not in loc
    return loc == h


# -- xplane's config.yaml -----------------------------------------------------------------------


def _err(path: Path, node: yaml.Node | None, msg: str) -> ConfigError:
    where = f"{path}:{node.start_mark.line + 1}" if node is not None else str(path)
    return ConfigError(f"{where}: {msg}", hint="see docs/registries.md for the config file format")


def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise _err(path, node, f"{what} must be a string")
    return str(node.value)


def _bool(path: Path, node: yaml.Node, key: str) -> bool:
    import yaml

    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":bool"):
        return str(node.value).lower() in ("true", "yes", "on")
    value = node.value if isinstance(node, yaml.ScalarNode) else "a non-scalar"
    raise _err(path, node, f"{key} must be true or false, not {value!r}")


def _path(path: Path, node: yaml.Node, key: str) -> Path:
    p = Path(os.path.expanduser(_scalar(path, node, key)))
    return p if p.is_absolute() else (path.parent / p)


def load_xplane_config(path: Path) -> dict[str, _Entry]:
    """The ``registries:`` section of xplane's config.yaml; ConfigError with file:line if malformed."""
    import yaml

    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise _err(path, root, "the config file must be a mapping")
    out: dict[str, _Entry] = {}
    for knode, vnode in root.value:
        if _scalar(path, knode, "a top-level key") != "registries":
            continue
        if isinstance(vnode, yaml.ScalarNode) and vnode.tag.endswith(":null"):
            continue
        if not isinstance(vnode, yaml.MappingNode):
            raise _err(path, vnode, "registries must map host[:port] to settings")
        for hnode, snode in vnode.value:
            host = _scalar(path, hnode, "a registry host")
            if "/" in host or "://" in host:
                raise _err(path, hnode, f"registry {host!r} must be host[:port], without scheme or path")
            out[host] = _registry_entry(path, hnode, snode)
    return out


def _registry_entry(path: Path, hnode: yaml.Node, snode: yaml.Node) -> _Entry:
    import yaml

    if not isinstance(snode, yaml.MappingNode):
        raise _err(path, snode, f"settings of {hnode.value!r} must be a mapping")
    kw: dict[str, Any] = {}
    ca: list[Path] = []
    for knode, vnode in snode.value:
        name = _scalar(path, knode, "a setting name")
        key = SETTING_KEYS.get(name)
        if key is None:
            known = ", ".join(sorted(SETTING_KEYS))
            raise _err(path, knode, f"unknown setting {name!r} for {hnode.value!r} (known: {known})")
        if key.value == "bool":
            kw[key.field] = _bool(path, vnode, name)
        elif key.value in _PARSERS:
            try:
                kw[key.field] = _PARSERS[key.value](_scalar(path, vnode, name))
            except ValueError as e:
                raise _err(path, vnode, f"{name}: {e}") from None
        elif key.field == "ca_files":
            if key.value == "path":
                ca.append(_path(path, vnode, name))
            elif not isinstance(vnode, yaml.SequenceNode):
                raise _err(path, vnode, f"{name} must be a list of paths")
            else:
                ca.extend(_path(path, n, name) for n in vnode.value)
        else:
            kw[key.field] = _path(path, vnode, name)
    if ("client_cert" in kw) != ("client_key" in kw):
        raise _err(path, hnode, f"{hnode.value!r}: clientCert and clientKey must be given together")
    if kw.get("plain_http") and (ca or "client_cert" in kw):
        raise _err(path, hnode, f"{hnode.value!r}: plainHTTP cannot be combined with TLS files")
    return _XplaneEntry(source=f"{path}:{hnode.start_mark.line + 1}", ca_files=tuple(ca), **kw)


def read_certs_d(roots: tuple[Path, ...], host: str) -> _Entry | None:
    """CA files (``*.crt``) and a client pair (``X.cert`` + ``X.key``) from the first ``root/host``."""
    for root in roots:
        d = root / host
        if not d.is_dir():
            continue
        try:
            names = sorted(p.name for p in d.iterdir())
        except OSError as e:
            raise ConfigError(f"cannot read certs.d directory {d}: {e.strerror or e}") from None
        cas = tuple(d / n for n in names if n.endswith(".crt"))
        cert: Path | None = None
        key: Path | None = None
        for n in names:
            if n.endswith(".cert"):
                pair = n[: -len(".cert")] + ".key"
                if pair not in names:
                    raise ConfigError(f"{d / n}: client certificate without its key {pair}")
                cert, key = d / n, d / pair
            elif n.endswith(".key") and n[: -len(".key")] + ".cert" not in names:
                raise ConfigError(f"{d / n}: client key without its certificate {n[:-4]}.cert")
        return _Entry(source=f"certs.d {d}", ca_files=cas, client_cert=cert, client_key=key)
    return None


# -- TLS ----------------------------------------------------------------------------------------


def ssl_context_for(settings: RegistrySettings) -> ssl.SSLContext:
    """An SSLContext: the system trust store plus ``ca_files``, the client pair, and no
    verification only when ``insecure_skip_verify`` is set. ConfigError names a bad file."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for ca in settings.ca_files:
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(
                f"CA file {ca} for {settings.host} cannot be loaded: {getattr(e, 'strerror', None) or e}",
                hint=f"settings from {settings.source}",
            ) from None
    if settings.client_cert is not None:
        try:
            ctx.load_cert_chain(str(settings.client_cert), str(settings.client_key or settings.client_cert))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(
                f"client certificate {settings.client_cert} (key {settings.client_key}) for "
                f"{settings.host} cannot be loaded: {getattr(e, 'strerror', None) or e}",
                hint=f"settings from {settings.source}",
            ) from None
    if settings.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx

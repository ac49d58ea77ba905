"""containers' ``registries.conf`` and ``registries.conf.d/*.conf`` drop-ins, as containers/image reads them.

Only what xplane uses is taken from them: ``[[registry]]`` entries with ``prefix``, ``location``,
``insecure`` (plain HTTP or skip-verify, see docs/registries.md), ``blocked``,
``mirror-by-digest-only`` and ``[[registry.mirror]]`` tables (``location``, ``insecure``,
``pull-from-mirror``). How they route pulls and pushes is :mod:`xplane.oci.mirrors`' business.
Malformed files raise :class:`ConfigError` naming the file and line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from xplane.oci.errors import ConfigError


@dataclass(frozen=True)
class _Entry:
    """One registry's settings from one file; None means "not said here"."""

    source: str
    plain_http: bool | None = None
    insecure_skip_verify: bool | None = None
    insecure: bool | None = None  # registries.conf: HTTP or skip-verify
    ca_files: tuple[Path, ...] = ()
    client_cert: Path | None = None
    client_key: Path | None = None


_V2_KEYS = (
    "registry",
    "unqualified-search-registries",
    "credential-helpers",
    "short-name-mode",
    "additional-layer-store-auth-helper",
    "aliases",
)

_REGISTRY_HEADER = re.compile(r"\s*\[\[\s*registry\s*\]\]")
_MIRROR_HEADER = re.compile(r"\s*\[\[\s*registry\s*\.\s*mirror\s*\]\]")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


PULL_FROM_MIRROR = ("all", "digest-only", "tag-only")


@dataclass(frozen=True)
class ConfMirror:
    """One ``[[registry.mirror]]`` of a :class:`ConfRegistry`."""

    location: str
    insecure: bool = False
    pull_from_mirror: str = "all"  # "all" | "digest-only" | "tag-only"
    source: str = ""  # "file:line ([[registry.mirror]] location)"


@dataclass(frozen=True)
class ConfRegistry:
    """One ``[[registry]]`` after validation: what drop-ins replace, keyed by ``prefix``."""

    prefix: str  # what references are matched against (``*.domain`` allowed)
    location: str  # where the prefix's images really are; "" for a ``*.domain`` prefix without one
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[ConfMirror, ...] = ()
    source: str = ""  # "file:line ([[registry]] pattern)"
    mirror_by_digest_only: bool = False
    blocked_source: str = ""  # "file:line" of the ``blocked`` setting (or of its table)

    @property
    def pattern(self) -> str:
        """The host[:port] (or ``*.domain``) the connection settings are for: location, else prefix."""
        return self.location or self.prefix


class _Lines:
    """Best-effort line numbers in a registries.conf (tomllib reports none for valid TOML)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        starts = [i for i, line in enumerate(self.lines) if _REGISTRY_HEADER.match(line)]
        self.blocks: list[tuple[int, int]] = []
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(self.lines)
            for j in range(start + 1, end):  # a top-level [table] ends the [[registry]]
                if self.lines[j].lstrip().startswith("[") and not _MIRROR_HEADER.match(self.lines[j]):
                    end = j
                    break
            self.blocks.append((start, end))

    def line(self, reg: int, key: str | None = None, mirror: int | None = None) -> int | None:
        """1-based line of registry ``reg`` (its ``mirror``-th mirror, its ``key``), or None."""
        if reg >= len(self.blocks):
            return None  # e.g. an inline `registry = [{...}]`
        start, end = self.blocks[reg]
        heads = [i for i in range(start, end) if _MIRROR_HEADER.match(self.lines[i])]
        if mirror is None:  # the registry's own keys come before its mirrors
            end = heads[0] if heads else end
        elif mirror < len(heads):
            start, end = heads[mirror], heads[mirror + 1] if mirror + 1 < len(heads) else end
        else:
            return start + 1  # an inline mirror = [{...}]
        if key is not None:
            pat = re.compile(rf"\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
            for i in range(start + 1, end):
                if pat.match(self.lines[i]):
                    return i + 1
        return start + 1

    def header(self, name: str) -> int | None:
        """1-based line of the ``[registries.<name>]`` table, or None."""
        pat = re.compile(rf"\s*\[\s*registries\s*\.\s*{name}\s*\]")
        return next((i + 1 for i, line in enumerate(self.lines) if pat.match(line)), None)

    def where(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def error(self, line: int | None, msg: str) -> ConfigError:
        return ConfigError(
            f"{self.where(line)}: {msg}",
            hint="see containers-registries.conf(5); `podman info` checks the same files",
        )


def registries_conf_files(
    env: Mapping[str, str], config_home: Path | None, system_root: Path = Path("/")
) -> tuple[Path | None, tuple[Path, ...]]:
    """The registries.conf to read (None: none exists) and its drop-ins in merge order.

    As containers/image: ``$CONTAINERS_REGISTRIES_CONF``, else the user's file, else the system
    file. Drop-ins are ``*.conf`` in ``$CONTAINERS_REGISTRIES_CONF_DIR`` if set, else in the user's
    ``registries.conf.d`` only when the user's file is used, else in the system's then the user's
    directory; each directory in lexical order, not recursive; missing directories are skipped.
    """
    user_dir = config_home / "containers" / "registries.conf.d" if config_home else None
    system_dir = system_root / "etc" / "containers" / "registries.conf.d"
    user_file = config_home / "containers" / "registries.conf" if config_home else None
    system_file = system_root / "etc" / "containers" / "registries.conf"
    main: Path | None
    dirs: list[Path | None]
    if env.get("CONTAINERS_REGISTRIES_CONF"):
        main, dirs = Path(env["CONTAINERS_REGISTRIES_CONF"]), [system_dir, user_dir]
    elif user_file is not None and user_file.is_file():
        main, dirs = user_file, [user_dir]
    else:
        main, dirs = (system_file if system_file.is_file() else None), [system_dir, user_dir]
    if env.get("CONTAINERS_REGISTRIES_CONF_DIR"):
        dirs = [Path(env["CONTAINERS_REGISTRIES_CONF_DIR"])]
    drop_ins: list[Path] = []
    for d in dirs:
        if d is None or not d.is_dir():
            continue
        try:
            names = sorted(p.name for p in d.iterdir())
        except OSError as e:
            raise ConfigError(f"cannot read {d}: {e.strerror or e}") from None
        drop_ins.extend(d / n for n in names if n.endswith(".conf") and not (d / n).is_dir())
    return main, tuple(drop_ins)


def read_registries_conf(path: Path | None, drop_ins: Sequence[Path] = ()) -> tuple[ConfRegistry, ...]:
    """The ``[[registry]]`` entries of ``path`` merged with its ``drop_ins`` (a later ``[[registry]]``
    with the same ``prefix`` replaces the earlier one whole, mirrors included); ConfigError with file:line."""
    merged: dict[str, ConfRegistry] = {}
    files = [(path, False)] if path is not None else []
    files.extend((p, True) for p in drop_ins)
    for p, drop_in in files:
        try:
            registries = _parse_registries_conf(p, drop_in=drop_in)
        except FileNotFoundError:
            if drop_in:  # removed since the directory was listed: skip it, as containers/image does
                continue
            raise ConfigError(f"cannot read {p}: file not found") from None
        for reg in registries:
            merged.pop(reg.prefix, None)
            merged[reg.prefix] = reg
    return tuple(merged.values())


def insecure_entries(registries: Sequence[ConfRegistry]) -> tuple[tuple[str, _Entry], ...]:
    """``(host pattern, entry)`` for every registry and mirror marked ``insecure = true``."""
    out: list[tuple[str, _Entry]] = []
    for reg in registries:
        if reg.insecure:
            out.append((reg.pattern, _Entry(source=reg.source, insecure=True)))
        out.extend((m.location, _Entry(source=m.source, insecure=True)) for m in reg.mirrors if m.insecure)
    return tuple(out)


def load_registries_conf(path: Path | None, drop_ins: Sequence[Path] = ()) -> tuple[tuple[str, _Entry], ...]:
    """Insecure hosts from ``path`` merged with its ``drop_ins`` (see :func:`read_registries_conf`)."""
    return insecure_entries(read_registries_conf(path, drop_ins))


def _parse_registries_conf(path: Path, *, drop_in: bool) -> list[ConfRegistry]:
    """One file's registries, validated as containers/image does; the first of a prefix wins."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg, m = str(e), _TOML_POSITION.search(str(e))
        where = f"{path}:{m.group(1)}" if m else str(path)
        detail = f"{msg[: m.start()]} (column {m.group(2)})" if m else msg
        raise ConfigError(
            f"{where}: invalid TOML: {detail}", hint="check the file with podman info"
        ) from None
    lines = _Lines(path, text)
    v1 = _v1_registries(lines, data)
    has_v1 = isinstance(data.get("registries"), dict) and any(
        isinstance(t, dict) and "registries" in t for t in data["registries"].values()
    )
    if drop_in and has_v1:
        raise lines.error(
            lines.header("insecure") or lines.header("block") or lines.header("search"),
            "a registries.conf.d drop-in must use the v2 format ([[registry]]), not [registries.*]",
        )
    if v1 and any(data.get(k) for k in _V2_KEYS):
        raise lines.error(
            lines.header("insecure") or lines.header("block"),
            "mixing the v1 format ([registries.*]) and the v2 format is not supported: use [[registry]]",
        )
    regs = data.get("registry", [])
    if not isinstance(regs, list):
        raise lines.error(None, "'registry' must be an array of tables ([[registry]])")
    out = v1 or [_registry(lines, i, reg) for i, reg in enumerate(regs)]
    by_location: dict[str, ConfRegistry] = {}
    for i, reg in enumerate(out):
        other = by_location.setdefault(reg.pattern, reg)
        for what in ("insecure", "blocked"):
            if getattr(other, what) != getattr(reg, what):
                raise lines.error(
                    lines.line(i, what),
                    f"registry {reg.pattern!r} is defined more than once with conflicting {what!r} settings",
                )
    first: dict[str, ConfRegistry] = {}
    for reg in out:
        first.setdefault(reg.prefix, reg)
    return list(first.values())


def _location(lines: _Lines, line: int | None, value: object, what: str) -> str:
    if not isinstance(value, str):
        raise lines.error(line, f"{what} must be a string")
    loc = value.rstrip("/")
    if loc.startswith(("http://", "https://")):
        raise lines.error(line, f"{what} {value!r}: URI schemes are not supported, write host[:port][/path]")
    return loc


def _flag(lines: _Lines, line: int | None, reg: Mapping[str, object], key: str, loc: str) -> bool:
    value = reg.get(key, False)
    if not isinstance(value, bool):
        raise lines.error(line, f"[[registry]] {loc!r}: {key} must be true or false")
    return value


def _registry(lines: _Lines, i: int, reg: object) -> ConfRegistry:
    if not isinstance(reg, dict):
        raise lines.error(lines.line(i), f"[[registry]] #{i + 1} is not a table")
    loc = _location(lines, lines.line(i, "location"), reg.get("location", ""), "location")
    prefix = _location(lines, lines.line(i, "prefix"), reg.get("prefix", ""), "prefix") or loc
    if not prefix:
        raise lines.error(lines.line(i), "[[registry]] needs a location or a prefix")
    if prefix.startswith("*.") and any(c in prefix for c in "/@:"):
        raise lines.error(
            lines.line(i, "prefix"), f"wildcard prefix {prefix!r} must be *.domain (no port or path)"
        )
    if not loc and not prefix.startswith("*."):
        raise lines.error(
            lines.line(i), f"[[registry]] {prefix!r}: location is unset and prefix is not *.domain"
        )
    pattern = loc or prefix
    insecure = _flag(lines, lines.line(i, "insecure"), reg, "insecure", pattern)
    blocked = _flag(lines, lines.line(i, "blocked"), reg, "blocked", pattern)
    by_digest = _flag(lines, lines.line(i, "mirror-by-digest-only"), reg, "mirror-by-digest-only", pattern)
    if "pull-from-mirror" in reg:
        raise lines.error(
            lines.line(i, "pull-from-mirror"),
            f"[[registry]] {pattern!r}: pull-from-mirror belongs in a [[registry.mirror]], not the registry",
        )
    mirrors = reg.get("mirror", [])
    if not isinstance(mirrors, list):
        raise lines.error(
            lines.line(i, "mirror"), f"[[registry]] {pattern!r}: mirror must be [[registry.mirror]] tables"
        )
    ms = [_mirror(lines, i, j, m, pattern, by_digest) for j, m in enumerate(mirrors)]
    source = f"{lines.where(lines.line(i))} ([[registry]] {pattern})"
    blocked_source = lines.where(lines.line(i, "blocked"))
    return ConfRegistry(prefix, loc, insecure, blocked, tuple(ms), source, by_digest, blocked_source)


def _mirror(lines: _Lines, i: int, j: int, m: object, pattern: str, by_digest: bool) -> ConfMirror:
    line = lines.line(i, mirror=j)
    if not isinstance(m, dict):
        raise lines.error(line, f"[[registry.mirror]] #{j + 1} of {pattern!r} is not a table")
    mloc = _location(lines, lines.line(i, "location", j), m.get("location", ""), "mirror location")
    if not mloc:
        raise lines.error(line, f"a [[registry.mirror]] of {pattern!r} has no location")
    minsecure = _flag(lines, lines.line(i, "insecure", j), m, "insecure", mloc)
    usage = m.get("pull-from-mirror", "")
    usage_line = lines.line(i, "pull-from-mirror", j)
    if usage != "" and usage not in PULL_FROM_MIRROR:
        raise lines.error(
            usage_line,
            f"[[registry.mirror]] {mloc!r}: pull-from-mirror must be one of {', '.join(PULL_FROM_MIRROR)}, "
            f"not {usage!r}",
        )
    if usage and by_digest:
        raise lines.error(
            usage_line,
            f"[[registry.mirror]] {mloc!r}: pull-from-mirror cannot be combined with "
            f"mirror-by-digest-only = true on {pattern!r}",
        )
    source = f"{lines.where(line)} ([[registry.mirror]] {mloc})"
    return ConfMirror(mloc, minsecure, str(usage or "all"), source)


def _v1_registries(lines: _Lines, data: Mapping[str, object]) -> list[ConfRegistry]:
    """``[registries.block]`` / ``[registries.insecure]`` (v1) as registries, as containers/image converts them."""
    v1 = data.get("registries", {})
    if not isinstance(v1, dict):
        raise lines.error(None, "'registries' must be a table ([registries.insecure] registries = [...])")
    found: dict[str, ConfRegistry] = {}
    for table in ("block", "insecure"):
        line = lines.header(table)
        section = v1.get(table, {})
        hosts = section.get("registries", []) if isinstance(section, dict) else None
        if not isinstance(hosts, list):
            raise lines.error(line, f"[registries.{table}] registries must be a list of host[:port]")
        for h in hosts:
            loc = _location(lines, line, h, f"[registries.{table}] entry")
            source = f"{lines.where(line)} ([registries.{table}] {loc})"
            reg = found.get(loc) or ConfRegistry(loc, loc, source=source)
            if table == "block":
                found[loc] = replace(reg, blocked=True, blocked_source=lines.where(line))
            else:
                found[loc] = replace(reg, insecure=True)
    return list(found.values())


# -- certs.d ------------------------------------------------------------------------------------

"""Where a pull or a push really goes: registries.conf ``location`` remapping, mirrors and ``blocked``.

The rules are containers/image's (``pkg/sysregistriesv2``, containers-registries.conf(5) v2):

- the ``[[registry]]`` whose ``prefix`` is the longest match of the reference applies. A prefix
  matches whole parts: ``host[:port]``, then ``/path`` components, then ``:tag`` or ``@digest``;
  ``*.domain`` matches every subdomain of ``domain`` (not ``domain`` itself);
- a ``blocked`` registry refuses pulls and pushes (:class:`BlockedRegistryError`, naming the file
  and line);
- a pull tries the mirrors in order, then the primary location. Each candidate is the reference
  with the matched prefix replaced by the endpoint's ``location``. ``mirror-by-digest-only = true``
  keeps every mirror for pulls by digest; a mirror's ``pull-from-mirror`` (``all``,
  ``digest-only``, ``tag-only``) decides for that mirror alone;
- a push goes to the primary location (remapped, as Podman does), never to a mirror.

The reference the user wrote stays the image's name (cache index, progress); only the registry
client sees the endpoints. Two deliberate differences from containers/image: a prefix ``host``
does not match ``host:5000`` (containers/image's documented "do not rely on it" quirk), and as
xplane names Docker Hub ``index.docker.io``, Docker Hub references match ``docker.io`` prefixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from xplane.oci.errors import BlockedRegistryError, ConfigError, InvalidReferenceError
from xplane.oci.reference import DEFAULT_REGISTRY, Reference
from xplane.oci.registriesconf import ConfRegistry

_HUB = "docker.io"  # containers/image's name for Docker Hub


@dataclass(frozen=True)
class Endpoint:
    """One place to pull from (or push to): the reference to send, and why."""

    reference: Reference
    source: str = ""  # the registries.conf entry routing here ("file:line ([[registry]] ...)"), or ""
    mirror: bool = False


def registries_of(config: object) -> tuple[ConfRegistry, ...]:
    """The registries.conf entries a :class:`~xplane.oci.settings.RegistryConfig` carries (none for stand-ins)."""
    return tuple(getattr(config, "registries_conf", ()) or ())


def match_text(ref: Reference) -> str:
    """``ref`` as containers/image matches prefixes against it: ``host/repository[:tag][@digest]``."""
    host = _HUB if ref.registry == DEFAULT_REGISTRY else ref.registry
    text = f"{host}/{ref.repository}"
    if ref.effective_tag:
        text += f":{ref.effective_tag}"
    if ref.digest:
        text += f"@{ref.digest}"
    return text


def _canonical(prefix: str) -> str:
    host, sep, rest = prefix.partition("/")
    return f"{_HUB}{sep}{rest}" if host == DEFAULT_REGISTRY else prefix


def prefix_match(text: str, prefix: str) -> int | None:
    """How many leading characters of ``text`` the registries.conf ``prefix`` matches, or None."""
    prefix = _canonical(prefix)
    if prefix.startswith("*."):
        host = text.split("/", 1)[0]
        hostname = host.split(":", 1)[0]
        domain = prefix[1:]  # ".example.com"
        return len(hostname) if hostname.endswith(domain) and len(hostname) > len(domain) else None
    if text == prefix:
        return len(prefix)
    if not text.startswith(prefix):
        return None
    after = text[len(prefix)]
    if after in "/@" or (after == ":" and "/" in prefix):  # ":" after a bare host would be a port
        return len(prefix)
    return None


def find_registry(registries: Sequence[ConfRegistry], text: str) -> tuple[ConfRegistry, int] | None:
    """The entry with the longest matching prefix for ``text`` and the length it matched, or None."""
    best: tuple[ConfRegistry, int] | None = None
    best_len = 0
    for reg in registries:
        n = prefix_match(text, reg.prefix)
        if n is not None and len(_canonical(reg.prefix)) > best_len:
            best, best_len = (reg, n), len(_canonical(reg.prefix))
    return best


def _refuse(reg: ConfRegistry, what: str, action: str) -> None:
    if not reg.blocked:
        return
    host = what.split("/", 1)[0]
    raise BlockedRegistryError(
        f"refusing to {action} {what}: registries.conf blocks {reg.prefix!r} ({reg.blocked_source})",
        registry=host,
        repository=what.split("/", 1)[1] if "/" in what else None,
        hint=f"remove `blocked = true` for {reg.prefix!r} at {reg.blocked_source} if it should be allowed; "
        "images already in the cache stay usable (--pull-policy IfNotPresent or Never)",
    )


def check_not_blocked(registries: Sequence[ConfRegistry], registry: str, repository: str = "") -> None:
    """Raise :class:`BlockedRegistryError` when registries.conf blocks ``registry[/repository]``."""
    if not registries:
        return
    host = _HUB if registry == DEFAULT_REGISTRY else registry
    found = find_registry(registries, f"{host}/{repository}" if repository else host)
    if found is not None:
        _refuse(found[0], f"{registry}/{repository}" if repository else registry, "contact")


def _parse_endpoint(text: str, origin: str) -> Reference:
    host, _, rest = text.partition("/")
    try:
        if rest and "." not in host and ":" not in host:  # e.g. `localhost`: a host all the same
            return replace(Reference.parse(f"registry.invalid/{rest}"), registry=host, original=text)
        return Reference.parse(text)
    except InvalidReferenceError as e:
        raise ConfigError(
            f"{origin}: the rewritten reference {text!r} is not valid: {e.message}",
            hint="a location is host[:port][/path], replacing the matched prefix; see containers-registries.conf(5)",
        ) from None


def _rewrite(ref: Reference, text: str, matched: int, location: str, origin: str) -> Reference:
    if not location:  # a `*.domain` prefix without a location: the reference as written
        return ref
    new = location + text[matched:]
    return ref if new == text else _parse_endpoint(new, origin)


def pull_sources(ref: Reference, registries: Sequence[ConfRegistry]) -> tuple[Endpoint, ...]:
    """The endpoints to try, in order, to pull ``ref``: its mirrors that apply, then its primary location.

    Raises :class:`BlockedRegistryError` when ``ref``'s registry is blocked.
    """
    text = match_text(ref)
    found = find_registry(registries, text)
    if found is None:
        return (Endpoint(ref),)
    reg, matched = found
    _refuse(reg, str(ref), "pull")
    by_digest = ref.digest is not None
    out: list[Endpoint] = []
    for m in reg.mirrors:
        if reg.mirror_by_digest_only or m.pull_from_mirror == "digest-only":
            if not by_digest:
                continue
        elif m.pull_from_mirror == "tag-only" and by_digest:
            continue
        out.append(Endpoint(_rewrite(ref, text, matched, m.location, m.source), m.source, mirror=True))
    out.append(Endpoint(_rewrite(ref, text, matched, reg.location, reg.source), reg.source))
    return tuple(out)


def push_endpoint(ref: Reference, registries: Sequence[ConfRegistry]) -> Endpoint:
    """Where a push of ``ref`` goes: its primary location (remapped by ``location``), never a mirror.

    Raises :class:`BlockedRegistryError` when ``ref``'s registry is blocked.
    """
    text = match_text(ref)
    found = find_registry(registries, text)
    if found is None:
        return Endpoint(ref)
    reg, matched = found
    _refuse(reg, str(ref), "push to")
    return Endpoint(_rewrite(ref, text, matched, reg.location, reg.source), reg.source)


__all__ = [
    "Endpoint",
    "check_not_blocked",
    "find_registry",
    "match_text",
    "prefix_match",
    "pull_sources",
    "push_endpoint",
    "registries_of",
]

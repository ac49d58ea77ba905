"""Image references: ``registry[:port]/repository[:tag][@digest]``, parsed like Crossplane does.

Crossplane parses references with go-containerregistry (ggcr), so these rules follow ggcr: the
first path component is a registry only if it contains ``.`` or ``:``; otherwise the reference is
on Docker Hub (``index.docker.io``, with ``library/`` for one-component names); ``docker.io`` is
normalised to ``index.docker.io``; the tag defaults to ``latest`` only when neither a tag nor a
digest is given. Repository components must match the distribution grammar (lower-case
alphanumerics separated by ``.``, ``_``, ``__`` or dashes), which every registry enforces.

The name helpers :func:`to_dns_label`, :func:`friendly_id` and :func:`package_source` reproduce
crossplane-runtime's ``pkg/xpkg/name.go`` byte for byte: revision names and cache keys derive
from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xplane.oci.errors import InvalidReferenceError

DEFAULT_REGISTRY = "index.docker.io"
DEFAULT_TAG = "latest"

_DIGEST_RE = re.compile(r"^(?P<alg>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[0-9a-fA-F]{32,})$")
_KNOWN_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST_RE = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::[0-9]{1,5})?$"
)


@dataclass(frozen=True, order=True)
class Digest:
    """A content digest such as ``sha256:<64 hex>``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse ``alg:hex``; raise :class:`InvalidReferenceError` when it is not a digest."""
        m = _DIGEST_RE.match(value)
        if not m:
            raise InvalidReferenceError(
                f"invalid digest {value!r}: want <algorithm>:<hex>, e.g. sha256:<64 hex>"
            )
        alg, hexpart = m.group("alg"), m.group("hex")
        want = _KNOWN_DIGEST_LENGTHS.get(alg)
        if want is not None and len(hexpart) != want:
            raise InvalidReferenceError(f"invalid digest {value!r}: {alg} wants {want} hex characters")
        if hexpart != hexpart.lower():
            raise InvalidReferenceError(f"invalid digest {value!r}: hex must be lower case")
        return cls(alg, hexpart)

    @classmethod
    def is_digest(cls, value: str) -> bool:
        """True when ``value`` parses as a digest."""
        try:
            cls.parse(value)
        except InvalidReferenceError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. ``original`` keeps the string as the user wrote it."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    original: str = ""

    @classmethod
    def parse(cls, value: str, *, strict: bool = False) -> Reference:
        """Parse ``value``.

        With ``strict`` (as ``crossplane xpkg push`` does) the registry, the full repository path
        and a tag or digest must be written out: nothing is defaulted.
        """
        if not isinstance(value, str) or not value.strip():
            raise InvalidReferenceError("an image reference must not be empty")
        if value != value.strip() or any(c.isspace() for c in value):
            raise InvalidReferenceError(f"invalid reference {value!r}: it contains white space")
        rest, digest = value, None
        if "@" in rest:
            rest, _, digest = rest.partition("@")
            if "@" in digest:
                raise InvalidReferenceError(f"invalid reference {value!r}: more than one '@'")
            Digest.parse(digest)
        tag = None
        parts = rest.split(":")
        if len(parts) > 1 and "/" not in parts[-1]:
            rest, tag = ":".join(parts[:-1]), parts[-1]
            if not _TAG_RE.match(tag):
                raise InvalidReferenceError(
                    f"invalid reference {value!r}: tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], "
                    "not starting with '.' or '-'"
                )
        registry, repository = _split_registry(rest, value)
        explicit_registry = registry is not None
        if registry is None or registry == "docker.io":
            registry = DEFAULT_REGISTRY
        if strict and not explicit_registry:
            raise InvalidReferenceError(
                f"invalid reference {value!r}: the registry must be given, e.g. registry.example.com/{rest}"
            )
        if registry == DEFAULT_REGISTRY and "/" not in repository:
            if strict:
                raise InvalidReferenceError(
                    f"invalid reference {value!r}: the full repository path is required (missing 'library/')"
                )
            repository = f"library/{repository}"
        if strict and tag is None and digest is None:
            raise InvalidReferenceError(f"invalid reference {value!r}: a tag or digest is required")
        _check_repository(repository, value)
        return cls(registry=registry, repository=repository, tag=tag, digest=digest, original=value)

    @property
    def identifier(self) -> str:
        """The digest if there is one, else the tag (``latest`` when none was given)."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def effective_tag(self) -> str | None:
        """The tag a registry would be asked for: the given tag, ``latest`` if neither tag nor digest."""
        if self.tag is not None:
            return self.tag
        return None if self.digest else DEFAULT_TAG

    @property
    def name(self) -> str:
        """``registry/repository`` (no tag or digest)."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        """The same repository, pinned to ``digest`` (tag dropped)."""
        return Reference(self.registry, self.repository, None, digest, f"{self.name}@{digest}")

    def with_tag(self, tag: str) -> Reference:
        """The same repository at ``tag``."""
        return Reference(self.registry, self.repository, tag, None, f"{self.name}:{tag}")

    def __str__(self) -> str:
        """The canonical form: ``registry/repository[:tag][@digest]``, with the default tag made explicit."""
        s = self.name
        if self.effective_tag:
            s += f":{self.effective_tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def _split_registry(rest: str, value: str) -> tuple[str | None, str]:
    if not rest:
        raise InvalidReferenceError(f"invalid reference {value!r}: a repository name must be specified")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first):
        if not _HOST_RE.match(first):
            raise InvalidReferenceError(f"invalid reference {value!r}: registry {first!r} is not host[:port]")
        port = first.rsplit(":", 1)[1] if ":" in first and not first.endswith("]") else None
        if port is not None and not 0 < int(port) < 65536:
            raise InvalidReferenceError(f"invalid reference {value!r}: port {port} is out of range")
        return first, remainder
    return None, rest


def _check_repository(repository: str, value: str) -> None:
    if len(repository) > 255:
        raise InvalidReferenceError(
            f"invalid reference {value!r}: the repository is longer than 255 characters"
        )
    for component in repository.split("/"):
        if not _COMPONENT_RE.match(component):
            raise InvalidReferenceError(
                f"invalid reference {value!r}: repository component {component!r} must be lower-case "
                "letters and digits, separated by '.', '_', '__' or '-'"
            )


def _go_rune_starts(data: bytes) -> list[int]:
    """Byte offsets that Go's ``for i := range s`` visits: one per rune, invalid bytes one each."""
    starts, i, n = [], 0, len(data)
    while i < n:
        starts.append(i)
        lead = data[i]
        width = 1 if lead < 0x80 else 2 if 0xC2 <= lead < 0xE0 else 3 if 0xE0 <= lead < 0xF0 else 4
        if width > 1:
            try:
                data[i : i + width].decode("utf-8")
            except UnicodeDecodeError:
                width = 1
        i += width
    return starts


def to_dns_label(s: str | bytes) -> str:
    """Crossplane's ``ToDNSLabel``: keep ``[a-z0-9]``, turn ``. : / -`` into ``-``, stop at byte 62.

    Upper-case letters, ``_`` and other bytes are dropped, not lowered: ``Upbound/Provider_AWS``
    becomes ``pbound-rovider``. Separators at byte 0, 62 or the last byte are dropped too, and the
    result is trimmed of ``-``.
    """
    data = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s
    out = bytearray()
    last = len(data) - 1
    for i in _go_rune_starts(data):
        b = data[i]
        if 0x61 <= b <= 0x7A or 0x30 <= b <= 0x39:
            out.append(b)
        if b in b".:/-" and i not in (0, 62, last):
            out.append(0x2D)
        if i == 62:
            break
    return out.decode("ascii").strip("-")


def _truncate(s: str | bytes, n: int) -> bytes:
    data = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s
    return data[:n]


def friendly_id(name: str, hash_: str) -> str:
    """Crossplane's ``FriendlyID``: ``ToDNSLabel(name[:50] + "-" + hash[:12])`` (byte truncation)."""
    return to_dns_label(_truncate(name, 50) + b"-" + _truncate(hash_, 12))


def package_source(ref: Reference | str) -> str:
    """Crossplane's ``ParsePackageSourceFromReference``: the reference as written, minus its identifier.

    ``reg/x:v1@sha256:...`` keeps the tag (``reg/x:v1``), as upstream does.
    """
    r = ref if isinstance(ref, Reference) else Reference.parse(ref)
    original = r.original or str(r)
    ident = r.identifier
    if original.endswith(ident):
        original = original[: len(original) - len(ident)]
    return original.rstrip(":@")
